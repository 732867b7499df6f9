"""Keep run processes out of the host's state with Landlock (Linux 5.13 and later).

Before any strategy code runs, a run process gives up:

- every access to the protected paths: ``state/`` (the database, the credential
  and router keys, the logs, the lock files) and whatever ``[host] protect``
  adds. Connecting to a socket there still works (Landlock does not govern
  ``connect``), so ctx still reaches the router and the supervisor;
- creating, changing or removing anything directly in the folders that contain
  a protected path, up to ``/`` (the project folder itself, among them). They can
  still be listed, and everything else in them is as open as before;
- with Landlock ABI 6 (Linux 6.12): sending a signal to any process outside its
  own sandbox (the supervisor, the router, other runs) and connecting to an
  abstract UNIX socket made outside it.

Landlock has no "deny" rule and a grant covers a whole tree, so the sandbox is
built the other way round: full access to every entry beside each protected
path and beside each folder above it, listing only for those folders. What a
kernel's ABI lacks is left out, never guessed; a kernel without Landlock runs
strategies unconfined (the supervisor says so when it starts).
"""

from __future__ import annotations

import ctypes
import enum
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["Entry", "Grant", "Reach", "Rulesets", "SandboxError", "abi", "build", "confine", "describe", "host_code", "overlaps", "plan", "reopens_code", "restrict"]

# The same numbers on every architecture (generic syscall table, Linux 5.13).
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_ABI1 = (1 << 13) - 1  # EXECUTE … MAKE_SYM
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
"""The rights a rule on a file (not a folder) may carry."""
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class SandboxError(OSError):
    """The kernel refused to set up a sandbox it said it supports."""


class Reach(enum.Enum):
    """How much of a path a grant opens."""

    TREE = "tree"
    """Everything in and beneath a folder."""
    READ_TREE = "read-tree"
    """Reading and running what is in and beneath a folder, nothing else."""
    READ_FILE = "read-file"
    """Reading and running one file."""
    LIST = "list"
    """Listing a folder (and the folders beneath it), nothing else."""


@dataclass(frozen=True)
class Entry:
    """A folder's entry as :func:`plan` needs it: its path, whether it is a folder, and a symlink's real target."""

    path: str
    is_dir: bool
    target: str | None = None


@dataclass(frozen=True)
class Grant:
    path: str
    reach: Reach


# ---------------------------------------------------------------- pure: what to grant


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def overlaps(path: str, folder: str) -> bool:
    """Whether one of the two paths is, or is inside, the other (pure)."""
    a, b = os.path.normpath(path), os.path.normpath(folder)
    return _inside(a, b) or _inside(b, a)


def _ancestors(path: str) -> Iterator[str]:
    parent = os.path.dirname(path)
    while True:
        yield parent
        above = os.path.dirname(parent)
        if above == parent:  # "/" (or "//", which POSIX lets normpath keep)
            return
        parent = above


def _roots(paths: Iterable[str]) -> list[str]:
    """The paths not inside another of them (normalised, sorted)."""
    unique = sorted({os.path.normpath(p) for p in paths})
    return [p for p in unique if not any(q != p and _inside(p, q) for q in unique)]


def plan(
    protected: Iterable[str], entries: Callable[[str], Iterable[Entry]], readonly: Iterable[str] = (), writable: Iterable[str] = (),
) -> list[Grant]:
    """The grants that open everything but ``protected``, ``readonly`` only to reading and running.

    Paths are absolute and real; ``entries`` lists a folder. A path inside
    another of its kind adds nothing; a read-only path inside a protected one
    stays closed; one that does not exist yet still keeps its folder closed
    to writes. A file directly in a folder above a special path is read-only:
    a file written there and renamed over a protected one would carry its
    grant along. A symlink is granted as its target: not at all if that
    target is protected or above a special path, read-only if it is read-only.
    ``writable`` folders inside read-only ones are opened again (Landlock's
    grants add up), unless they are protected or above a protected path.
    """
    closed_roots = _roots(protected)
    read_roots = [r for r in _roots(readonly) if not any(_inside(r, p) for p in closed_roots)]
    # Landlock's grants add up down the tree: a folder above a special path can be granted no more than listing.
    above = {a for p in (*closed_roots, *read_roots) for a in _ancestors(p)}

    def reach(path: str, is_dir: bool) -> Reach | None:
        if path in above or any(_inside(path, root) for root in closed_roots):
            return None
        if any(_inside(path, root) for root in read_roots):
            return Reach.READ_TREE if is_dir else Reach.READ_FILE
        return Reach.TREE if is_dir else Reach.READ_FILE

    grants: list[Grant] = []
    for folder in sorted(above):
        grants.append(Grant(folder, Reach.LIST))
        for entry in entries(folder):
            own = reach(entry.path, entry.is_dir)
            target = own if entry.target is None else reach(entry.target, entry.is_dir)
            if own is not None and target is not None:
                # A link is no wider than the path it sits at, nor than its target.
                grants.append(Grant(entry.target or entry.path, max(own, target, key=_RANK.index)))
    opened = [w for w in map(os.path.normpath, writable) if w not in above and not any(_inside(w, r) or _inside(r, w) for r in closed_roots)]
    grants += [Grant(path, Reach.TREE) for path in _roots(opened)]
    return grants


_RANK = [Reach.TREE, Reach.READ_TREE, Reach.READ_FILE]
"""From widest to narrowest; a folder and a file never meet in one entry."""


def describe(version: int) -> str:
    """One line on what a sandbox with this Landlock ABI keeps strategies from (pure)."""
    if version <= 0:
        return "off: this kernel has no Landlock; strategies can read and write state/ and signal the host"
    what = "state/ closed to strategies"
    if version >= 6:
        what += ", no signals outside their own run"
    return f"Landlock ABI {version}: {what}"


# ---------------------------------------------------------------- the kernel


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    version = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _handled(version: int) -> int:
    rights = _ABI1
    if version >= 2:
        rights |= _REFER
    if version >= 3:
        rights |= _TRUNCATE
    if version >= 5:
        rights |= _IOCTL_DEV
    return rights


def _real_entries(folder: str) -> Iterator[Entry]:
    try:
        listing = list(os.scandir(folder))
    except OSError:
        return  # a folder we may pass through but not read: nothing in it to grant
    for item in listing:
        try:
            if item.is_symlink():
                target = os.path.realpath(item.path)
                if not os.path.exists(target):
                    continue
                yield Entry(item.path, os.path.isdir(target), target)
            else:
                yield Entry(item.path, item.is_dir(follow_symlinks=False))
        except OSError:
            continue


def _fail(what: str) -> SandboxError:
    errno = ctypes.get_errno()
    return SandboxError(errno, f"{what} failed: {os.strerror(errno)}")


def build(protected: Iterable[str], version: int, readonly: Iterable[str] = (), writable: Iterable[str] = ()) -> int:
    """A ruleset for this ABI (see :func:`plan`); returns its descriptor (the caller closes it)."""
    handled = _handled(version)
    attr = _RulesetAttr(handled, 0, _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if version >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if version >= 6 else 16 if version >= 4 else 8
    ruleset = int(_libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)))
    if ruleset < 0:
        raise _fail("landlock_create_ruleset")
    try:
        real = [[os.path.realpath(p) for p in paths] for paths in (protected, readonly)]
        # A writable folder was checked as the real path it had then; one that leads elsewhere now (a link a run
        # put in its place) is not opened.
        opened = [w for w in writable if os.path.realpath(w) == os.path.normpath(w)]
        for grant in plan(real[0], _real_entries, real[1], opened):
            allowed = {
                Reach.TREE: handled, Reach.READ_TREE: _READ_FILE | _READ_DIR | _EXECUTE, Reach.READ_FILE: _READ_FILE | _EXECUTE, Reach.LIST: _READ_DIR,
            }[grant.reach]
            try:
                fd = os.open(grant.path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # gone since it was listed: nothing to grant
            try:
                if os.readlink(f"/proc/self/fd/{fd}") != grant.path:
                    continue  # a folder on the way was swapped for a link since it was planned: grant nothing
                rule = _PathBeneathAttr(allowed, fd)
                if _libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    raise _fail(f"landlock_add_rule on {grant.path}")
            finally:
                os.close(fd)
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def restrict(ruleset: int) -> None:
    """Put the calling process (and all it starts) under ``ruleset`` for good.

    Call it in a freshly forked, single-threaded child: Landlock binds the
    calling thread and its future children. Each call makes a sandbox of its
    own, so two processes restricted by one ruleset cannot signal each other.
    """
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_NO_NEW_PRIVS)")
    if _libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        raise _fail("landlock_restrict_self")


def confine(protected: Iterable[str], readonly: Iterable[str] = (), writable: Iterable[str] = (), *, version: int | None = None) -> int:
    """Build a ruleset and restrict the calling process with it; return the ABI used, 0 if none."""
    version = abi() if version is None else version
    if version <= 0:
        return 0
    ruleset = build(protected, version, readonly, writable)
    try:
        restrict(ruleset)
    finally:
        os.close(ruleset)
    return version


class Rulesets:
    """The fork server's rulesets, one per set of paths, each rebuilt when a folder above one of them changes.

    A rule binds what a folder holds when it is made: an entry added later
    (a new folder beside state/) would stay closed to runs until the ruleset is
    rebuilt. A folder's modification time moves whenever an entry is added,
    removed or renamed, so a few ``stat`` calls per launch tell when to rebuild.
    """

    def __init__(self, version: int | None = None) -> None:
        self.version = abi() if version is None else version
        self._built: dict[tuple[tuple[str, ...], ...], tuple[tuple[tuple[str, int], ...], int]] = {}

    def get(self, protected: Sequence[str], readonly: Sequence[str] = (), writable: Sequence[str] = ()) -> int | None:
        """The ruleset descriptor (owned by this cache); None when the kernel has no Landlock."""
        if self.version <= 0:
            return None
        key = (tuple(os.path.realpath(p) for p in protected), tuple(os.path.realpath(p) for p in readonly), tuple(writable))
        stamp = _stamp((*key[0], *key[1]))
        cached = self._built.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        ruleset = build(key[0], self.version, key[1], key[2])
        # One ruleset at a time (every launch asks for the same one until the config changes): nothing piles up.
        for _, old in self._built.values():
            os.close(old)
        self._built = {key: (stamp, ruleset)}
        return ruleset


def _stamp(paths: Sequence[str]) -> tuple[tuple[str, int], ...]:
    folders = sorted({a for p in paths for a in _ancestors(os.path.normpath(p))})
    stamp = []
    for folder in folders:
        try:
            # The change time, not the modification time: a run may set the latter back (utime), never the former.
            stamp.append((folder, os.stat(folder).st_ctime_ns))
        except OSError:
            stamp.append((folder, -1))
    return tuple(stamp)


_SYSTEM = ("/etc", "/usr", "/boot", "/opt", "/proc", "/sys")
_LOGIN = (".ssh", ".config", ".local/bin", ".profile", ".bashrc", ".bash_profile", ".bash_login", ".zshrc", ".zprofile", ".zshenv")
"""What the user's next login, shell or ssh session reads from the home folder: read-only to runs."""
"""What file permissions keep ordinary users from changing, and nothing keeps root from: read-only to a root host's runs."""


def _code(preload: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(paths no part of which may change, folders whose own entries may not change but whose subfolders may be opened)."""
    import site

    import brokers
    import host

    packages = [os.path.dirname(os.path.abspath(module.__file__ or "")) for module in (host, brokers)]
    user_site = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    programs = [os.path.abspath(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    libraries = [os.path.abspath(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    certificates = [os.path.abspath(os.environ[name]) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE") if os.environ.get(name)]
    home = os.path.expanduser("~")
    login = [os.path.join(home, name) for name in _LOGIN] if home != "~" else []
    whole = list(dict.fromkeys([
        *packages, *user_site, sys.prefix, sys.base_prefix, *programs, *libraries, *certificates, *_module_homes(preload), *login,
        # An import-path entry that is a file (a zip) or not there yet: no part of it may change or appear.
        *(os.path.abspath(p) for p in sys.path if p and not os.path.isdir(p)),
    ]))
    on_path = [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)]
    system = list(_SYSTEM) if os.geteuid() == 0 else []
    tops = [p for p in dict.fromkeys([os.path.dirname(packages[0]), *on_path, *system]) if not any(_inside(p, w) for w in whole)]
    return whole, tops


def _module_homes(names: Sequence[str]) -> list[str]:
    """Where the top-level packages of ``names`` (the fork server's preload) live, found without importing them."""
    import importlib.util

    homes = []
    for name in dict.fromkeys(n.split(".")[0] for n in names):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            homes += [os.path.abspath(p) for p in spec.submodule_search_locations]
        elif spec.origin and os.path.isabs(spec.origin):
            homes.append(os.path.abspath(spec.origin))
    return homes


def host_code(preload: Sequence[str] = ()) -> list[str]:
    """Where the code the supervisor, fork server and router run comes from, and what they load at start.

    tradehost's packages and the folder holding them, every entry of this
    interpreter's import path, the user's site-packages (made or not), the
    Python installation, the fork server's ``preload`` packages, every folder
    on ``PATH`` and ``LD_LIBRARY_PATH`` (a library may run a program by name),
    the certificates ``SSL_CERT_FILE``/``SSL_CERT_DIR`` name (the router trusts
    them), the home folder's login and ssh files (``~/.ssh``, ``~/.config``,
    ``~/.local/bin``, the shell start-up files: the operator's next login runs
    them); for a host run as root, the system folders as well. Runs may read
    and run all of it, never change it: what they changed would run
    unconfined at the host's next start. (The fork server and router start
    with ``-P``, so the working folder is not on their import path.)
    """
    whole, tops = _code(preload)
    return [*whole, *tops]


def reopens_code(path: str, preload: Sequence[str] = ()) -> bool:
    """Whether making ``path`` writable would reopen the host's code: it is, holds or lies in a path of
    :func:`host_code`, except below a folder on the import path (the project folder may be one) or a system folder."""
    whole, tops = _code(preload)
    return any(overlaps(path, folder) for folder in whole) or any(_inside(top, os.path.normpath(path)) for top in tops)
