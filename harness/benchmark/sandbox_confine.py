"""The OS side of the sandbox's confinement: namespaces, a minimal root, no privilege, read-back.

Used by ``sandbox_child.py`` before the program runs (standard library only: the child does not
import the harness, it loads this file by path). As root the namespaces are created directly;
otherwise inside a new user namespace that maps only the caller. In the mount namespace:

- the root is an empty tmpfs (mode 0111: its directories can be crossed, not listed), made
  read-only; on it, read-only bind mounts of exactly what the interpreter needs (the directories
  on its ``sys.path``, the system library directories, ``/etc/ld.so.cache``, ``/dev/null``,
  ``/dev/zero``, ``/dev/random``, ``/dev/urandom``) and a read-write bind of the program's own
  directory (nosuid, nodev, noexec); ``pivot_root`` onto it and the old root detached, so home
  directories, ``/etc``, ``/proc``, ``/sys``, credential folders are not there at all;
- ``/proc`` is bound only long enough to open ``/proc/self/status`` and ``/proc/self/mountinfo``,
  which the child reads after dropping privilege (``read_status``, ``read_mounts``): a result
  lists what the kernel reported from inside, not what was asked for.

``drop_privileges`` empties every capability set (bounding and ambient included), becomes the
target user where given (root only) and sets ``no_new_privs``.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 0x400, 0x800, 0x1000, 0x4000
MS_PRIVATE, MS_RELATIME = 0x40000, 0x200000
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522
CAP_SETS: tuple[str, ...] = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
"""The five capability sets, as /proc/self/status names them."""
LIBRARY_DIRS: tuple[str, ...] = (
    "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/local/lib", "/lib", "/lib64", "/lib32",
)  # fmt: skip
"""System library directories (libc, libffi, libssl, ... that the interpreter loads); a symlink
(merged /usr) is recreated as the same symlink."""
FILES: tuple[str, ...] = (
    "/etc/ld.so.cache",
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
)
HIDDEN: tuple[str, ...] = (
    "/root",
    "/home",
    "/etc",
    "/proc",
    "/sys",
    "/run",
    "/var",
    "/mnt",
    "/opt",
)
"""Places a result says are not there (nothing of them is mounted), checked in the mount table."""
SIOCGIFFLAGS, IFF_UP = 0x8913, 0x1


class Libc:
    """libc through ctypes; ``call`` raises OSError (naming what failed) on a -1 return."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL(None, use_errno=True)

    def call(self, what: str, name: str, *args) -> int:
        result = getattr(self.lib, name)(*args)
        if result == -1:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return result

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data=None):
        def enc(text: str | None) -> bytes | None:
            return text.encode() if text is not None else None

        args = (enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))
        self.call(f"mount {target}", "mount", *args)


def unshare(libc: Libc, root: bool, want_mounts: bool) -> tuple[bool, bool, str]:
    """New network (+ mount) namespaces: (mount namespace, network namespace, why not)."""
    uid, gid = os.getuid(), os.getgid()
    user = 0 if root else CLONE_NEWUSER
    tries = (CLONE_NEWNS | CLONE_NEWNET, CLONE_NEWNET) if want_mounts else (CLONE_NEWNET,)
    why = ""
    for flags in tries:
        try:
            libc.call("unshare", "unshare", user | flags)
            break
        except OSError as exc:
            why = why or exc.strerror or str(exc)
    else:
        return False, False, why
    if not root:  # map only ourselves, so that files keep their owner
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1")):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
        with open("/proc/self/gid_map", "w") as fh:
            fh.write(f"{gid} {gid} 1")
    return bool(flags & CLONE_NEWNS), True, why


def _locked_flags(path: str) -> int:
    """The flags of the mount under ``path`` that a remount in a user namespace must keep."""
    f = os.statvfs(path).f_flag
    flags = f & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    return flags | (MS_RELATIME if f & os.ST_RELATIME else 0)


SKELETON_MODE = 0o111
"""Directories of the new root: crossed, never listed or written, not even by their owner (in a
user namespace the program's own uid owns them)."""


def _makedirs(newroot: str, path: str) -> None:
    """``path`` and its parents in the new root, each ``SKELETON_MODE``; we create entries in
    them with CAP_DAC_OVERRIDE (as root, or over our own files in a user namespace)."""
    current = newroot
    for part in path.strip("/").split("/"):
        current = f"{current}/{part}" if part else current
        if not os.path.isdir(current):
            os.mkdir(current)
            os.chmod(current, SKELETON_MODE)  # exactly, whatever the umask


def _place(newroot: str, path: str, is_dir: bool) -> str:
    """Create ``path`` (a directory, or an empty file) in the new root with its parents; returns
    the path in the new root."""
    target = newroot + path
    _makedirs(newroot, path if is_dir else os.path.dirname(path))
    if not is_dir and not os.path.exists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    return target


def _bind(libc: Libc, newroot: str, path: str, writable: bool = False) -> None:
    target = _place(newroot, path, os.path.isdir(path))
    libc.mount(path, target, None, MS_BIND)
    if writable:
        flags = MS_NODEV | MS_NOEXEC
    else:  # a device node needs a mount without nodev
        flags = MS_RDONLY | (0 if path.startswith("/dev/") else MS_NODEV)
    flags |= MS_BIND | MS_REMOUNT | MS_NOSUID | _locked_flags(path)
    libc.mount(None, target, None, flags)


def readable_paths(search_path: list[str]) -> list[str]:
    """Real paths of what the interpreter needs: ``search_path`` (its ``sys.path`` directories
    and its own library directory) and the system library directories (directories inside
    another one left out)."""
    dirs = [os.path.realpath(p) for p in search_path if p and os.path.isdir(p)]
    dirs += [p for p in LIBRARY_DIRS if os.path.isdir(p) and not os.path.islink(p)]
    kept: list[str] = []
    for d in sorted(set(dirs)):
        if not any(d == k or d.startswith(k + "/") for k in kept):
            kept.append(d)
    return kept


def minimal_root(libc: Libc, newroot: str, readable: list[str], workdir: str) -> None:
    """Make ``newroot`` (an empty directory) the root of this mount namespace, holding only
    ``readable`` (read-only), ``FILES`` (read-only) and ``workdir`` (read-write); ``/proc`` is
    there too until ``hide_proc``. The current directory becomes ``workdir``."""
    libc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    libc.mount("tmpfs", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0111,size=256k")
    for path in LIBRARY_DIRS:
        if os.path.islink(path):
            _makedirs(newroot, os.path.dirname(path))
            os.symlink(os.readlink(path), newroot + path)
    for path in readable + [f for f in FILES if os.path.exists(f)]:
        _bind(libc, newroot, path)
    _bind(libc, newroot, workdir, writable=True)
    proc = _place(newroot, "/proc", True)
    libc.mount("/proc", proc, None, MS_BIND | MS_REC)
    libc.mount(None, newroot, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    machine = os.uname().machine  # not `platform`: its import costs more than this call
    number = SYS_PIVOT_ROOT.get(machine)
    if number is None:
        raise OSError(f"pivot_root: no syscall number known for {machine}")
    os.chdir(newroot)
    libc.call("pivot_root", "syscall", number, b".", b".")
    libc.call("umount the old root", "umount2", b".", MNT_DETACH)
    os.chdir("/")
    os.chdir(workdir)


def hide_proc(libc: Libc) -> None:
    """Detach the ``/proc`` that ``minimal_root`` left (after the read-back files are open)."""
    libc.call("umount /proc", "umount2", b"/proc", MNT_DETACH)


def drop_privileges(libc: Libc, target: tuple[int, int] | None) -> bool:
    """Empty every capability set, become ``target`` (uid, gid) where given, set no_new_privs.
    Returns whether the bounding set could be emptied (it needs CAP_SETPCAP)."""
    bounding = True
    for cap in range(64):
        if libc.lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            if err == 22:  # EINVAL: past the last capability this kernel knows
                break
            bounding = False  # EPERM: no CAP_SETPCAP (an unprivileged caller without userns)
    libc.lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if target is not None:
        uid, gid = target
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)

    class Header(ctypes.Structure):
        _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))

    class Data(ctypes.Structure):
        _fields_ = tuple((n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable"))

    header, data = Header(CAPABILITY_VERSION_3, 0), (Data * 2)()
    libc.call("capset", "capset", ctypes.byref(header), data)
    libc.call("prctl(NO_NEW_PRIVS)", "prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.call("prctl(DUMPABLE)", "prctl", PR_SET_DUMPABLE, 0, 0, 0, 0)
    return bounding


def _pread_all(fd: int) -> str:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode(errors="replace")


def read_status(fd: int) -> dict[str, str]:
    """/proc/self/status (opened earlier, read now) as {field: value}."""
    pairs = (line.partition(":") for line in _pread_all(fd).splitlines())
    return {key: value.strip() for key, _, value in pairs}


def read_mounts(fd: int) -> list[tuple[str, str, bool]]:
    """/proc/self/mountinfo (opened inside the new root, read now): (mount point, filesystem
    type, read-only) for every mount this process can see."""
    out = []
    for line in _pread_all(fd).splitlines():
        fields = line.split()
        dash = fields.index("-")
        point = fields[4].encode().decode("unicode_escape")  # \040 for a space, etc.
        out.append((point, fields[dash + 1], "ro" in fields[5].split(",")))
    return out


def network_interfaces() -> list[tuple[str, bool]]:
    """(name, up) of every network interface this process can see."""
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        import fcntl

        for _, name in socket.if_nameindex():
            request = struct.pack("16sH14x", name.encode()[:15], 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
            out.append((name, bool(flags & IFF_UP)))
    return out


def capability_layer(status: dict[str, str], bounding_dropped: bool) -> str:
    """What the read-back capability sets say; raises if any set that grants privilege is not
    empty (the program never runs with a capability)."""
    sets = {name: int(status.get(name, "ffffffffffffffff"), 16) for name in CAP_SETS}
    kept = [f"{name} {sets[name]:016x}" for name in CAP_SETS if name != "CapBnd" and sets[name]]
    if kept or status.get("NoNewPrivs") != "1":
        raise OSError(f"capabilities left after dropping them: {', '.join(kept) or 'none'}; "
                      f"NoNewPrivs {status.get('NoNewPrivs')}")  # fmt: skip
    read = "read back from /proc/self/status"
    if sets["CapBnd"] == 0:
        return f"no capabilities: all five sets empty (effective, permitted, inheritable, ambient, bounding; {read}); no_new_privs set"
    why = "kept" if bounding_dropped else "not droppable without privilege"
    return (
        f"no capabilities: effective, permitted, inheritable and ambient sets empty ({read}); "
        f"the bounding set {sets['CapBnd']:016x} is {why}, and no_new_privs (set) stops exec "
        "from gaining any"
    )  # fmt: skip


def identity_layer(status: dict[str, str], names: dict[int, str]) -> str:
    """Who the program runs as, read back (real, effective, saved, filesystem ids)."""
    uids = set(status.get("Uid", "?").split())
    gids = set(status.get("Gid", "?").split())
    groups = status.get("Groups", "").split()
    if len(uids) != 1 or len(gids) != 1:
        raise OSError(f"ids differ after dropping root: Uid {uids}, Gid {gids}")
    uid, gid = int(uids.pop()), gids.pop()
    name = names.get(uid, f"uid {uid}")
    extra = f"groups {', '.join(groups)}" if groups else "no supplementary groups"
    return f"runs as {name} (uid {uid}, gid {gid}, {extra}; read back)"


def mount_layers(mounts: list[tuple[str, str, bool]], workdir: str, home: str) -> list[str]:
    """What the program can see, from the mount table read inside; raises if the table is not
    the one ``minimal_root`` builds (root a read-only tmpfs, nothing writable but ``workdir``)."""
    points = {point: (fstype, ro) for point, fstype, ro in mounts}
    root = points.get("/")
    if root is None or root != ("tmpfs", True):
        raise OSError(f"mount namespace: the root is not a read-only tmpfs ({root})")
    writable = sorted(p for p, (_, ro) in points.items() if not ro and p != workdir)
    if writable or points.get(workdir, (None, True))[1]:
        raise OSError(
            0,
            f"mount namespace: writable mounts {writable}, program directory {points.get(workdir)}",
        )
    shown = sorted(p for p in points if p not in ("/", workdir))
    layers = [
        "filesystem (mount namespace; mounts read back from /proc/self/mountinfo): an empty "
        "read-only tmpfs root whose directories cannot be listed; read-only: "
        f"{', '.join(shown)}; read-write: the program's directory only"
    ]
    hidden = []
    for place in sorted(set(HIDDEN + ((home,) if home and home != "/" else ()))):
        inside = [p for p in shown if p == place or p.startswith(place + "/")]
        hidden.append(f"{place} (but {', '.join(inside)})" if inside else place)
    layers.append(f"not visible: {'; '.join(hidden)}")
    return layers
