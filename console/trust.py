"""Whether a file can only have come from administrators: the machine-wide configuration and the
delegation policy it names.

A person must not be able to give themselves rights by writing the policy their console reads, so
the console uses such a file only when no one but administrators can change it, nor the folder
it lies in (who can write the folder can replace the file):

- on Windows, the file's and its folder's owner and access list (DACL): the owner and every
  entry that allows a write right (write data, append, delete, delete child, change permissions,
  take ownership, generic write or all) must be SYSTEM, Administrators, TrustedInstaller, or the
  domain's Domain Admins or Enterprise Admins. A file owned by a person, even an administrator, is
  refused (their account can change its permissions): the installer's folder is owned by
  Administrators. Deny entries are not counted (a narrower grant is never assumed).
- elsewhere, the file and every folder above it: owned by root and not writable by group or
  others (a folder with the sticky bit, like /tmp, may be: no one else can rename what root owns
  in it).

The owners trusted are what `trusted_uids` and `trusted_sids` return. Tests replace those two
functions (monkeypatch) to trust their own account: nothing a person can set from outside the
program (an environment variable, an option, a file) changes them.
"""
from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

SYSTEM = "S-1-5-18"
ADMINISTRATORS = "S-1-5-32-544"
TRUSTED_INSTALLER = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
# Domain Admins (512) and Enterprise Admins (519) of any domain.
DOMAIN_ADMINS = re.compile(r"S-1-5-21(-\d+){3}-(512|519)", re.IGNORECASE)
# Entries for these apply to objects created later (inherited), never to the object itself.
CREATOR_SIDS = frozenset({"S-1-3-0", "S-1-3-1"})

# The rights that change a file or what a folder holds (winnt.h).
FILE_WRITE_DATA = 0x2  # a folder: add a file
FILE_APPEND_DATA = 0x4  # a folder: add a subfolder
FILE_DELETE_CHILD = 0x40
DELETE = 0x10000
WRITE_DAC = 0x40000
WRITE_OWNER = 0x80000
MAXIMUM_ALLOWED = 0x2000000
GENERIC_ALL = 0x10000000
GENERIC_WRITE = 0x40000000
WRITE_RIGHTS = (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_DELETE_CHILD | DELETE | WRITE_DAC
                | WRITE_OWNER | MAXIMUM_ALLOWED | GENERIC_ALL | GENERIC_WRITE)


def trusted_uids() -> frozenset[int]:
    """The owners a trusted file and its folders may have outside Windows: root.

    The test hook: tests monkeypatch this function to add their own user id. It is a function on
    purpose, not an environment variable or a setting, so nothing outside the program changes it.
    """
    return frozenset({0})


def trusted_sids() -> frozenset[str]:
    """The Windows accounts that may own or write a trusted file (besides Domain Admins and
    Enterprise Admins). Tests monkeypatch it, like `trusted_uids`."""
    return frozenset({SYSTEM, ADMINISTRATORS, TRUSTED_INSTALLER})


@dataclass(frozen=True)
class AccessEntry:
    """One entry of a DACL. `sid` is empty for an entry of a kind that cannot be read."""

    sid: str
    mask: int
    allow: bool = True
    inherit_only: bool = False


@dataclass(frozen=True)
class Acl:
    owner: str
    entries: tuple[AccessEntry, ...] | None  # None: no DACL at all, which lets everyone in


AclReader = Callable[[Path], Acl]


def _is_admin_sid(sid: str, trusted: frozenset[str]) -> bool:
    return sid.upper() in {s.upper() for s in trusted} or bool(DOMAIN_ADMINS.fullmatch(sid))


def acl_problem(acl: Acl, trusted: frozenset[str] | None = None) -> str:
    """Who other than administrators can change the object, as the end of a sentence; '' when
    no one can."""
    trusted = trusted_sids() if trusted is None else trusted
    if not _is_admin_sid(acl.owner, trusted):
        return f"it is owned by {acl.owner}, who is not SYSTEM or Administrators"
    if acl.entries is None:
        return "it has no access list, so everyone may change it"
    for entry in acl.entries:
        if not entry.allow or entry.inherit_only or not entry.mask & WRITE_RIGHTS:
            continue
        if not entry.sid:
            return "its access list holds an entry of a kind the console cannot read"
        if entry.sid.upper() in CREATOR_SIDS or _is_admin_sid(entry.sid, trusted):
            continue
        return f"{entry.sid} may change it (access mask 0x{entry.mask:08x})"
    return ""


def windows_problem(path: Path, read_acl: AclReader) -> str:
    """'' when only administrators can change `path` and its folder, else why not."""
    for target, what in ((path, "the file"), (path.parent, "its folder")):
        try:
            acl = read_acl(target)
        except OSError as error:
            return f"the permissions of {what} cannot be read ({error.strerror or error})"
        problem = acl_problem(acl)
        if problem:
            return f"{what} {target}: {problem}"
    return ""


def posix_problem(path: Path) -> str:
    """'' when `path` and every folder above it are root's and writable by no one else."""
    absolute = Path(os.path.abspath(path))
    chain = [absolute, *absolute.parents]
    resolved = absolute.resolve()
    chain += [p for p in (resolved, *resolved.parents) if p not in chain]
    owners = trusted_uids()
    for target in chain:
        try:
            st = os.stat(target)
        except OSError as error:
            return f"{target} cannot be examined ({error.strerror or error})"
        what = "the file" if target in (absolute, resolved) else "the folder"
        if st.st_uid not in owners:
            return f"{what} {target} is owned by user id {st.st_uid}, not by root"
        sticky_folder = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_folder:
            who = "its group" if st.st_mode & stat.S_IWGRP else "everyone"
            return f"{what} {target} can be written by {who} (mode {stat.filemode(st.st_mode)})"
    return ""


def check_trusted(path: Path, what: str, key: str | None = None,
                  read_acl: AclReader | None = None) -> None:
    """Raise a ConfigError naming `path` and why, unless only administrators can change it.
    `what` names the file in the sentence ("The machine-wide configuration"). A file that does
    not exist is left to its reader to report."""
    if not os.path.lexists(path):
        return
    if sys.platform == "win32" or read_acl is not None:
        problem = windows_problem(path, read_acl or read_windows_acl)
    else:
        problem = posix_problem(path)
    if problem:
        raise ConfigError(
            f"{what} {path} is not used: someone other than an administrator can change it "
            f"({problem}). Only administrators may be able to write it and its folder; ask them "
            f"to correct its permissions.", key, str(path))


def read_windows_acl(path: Path) -> Acl:
    """The owner and DACL of a file or folder, through advapi32 (no pywin32 needed)."""
    if sys.platform == "win32":
        return _read_windows_acl(path)
    raise OSError("access lists are read on Windows only")


if sys.platform == "win32":  # pragma: no cover - the Windows branch, tested with an injected reader
    import ctypes
    from ctypes import wintypes

    class _AclHeader(ctypes.Structure):
        _fields_ = [("AclRevision", ctypes.c_ubyte), ("Sbz1", ctypes.c_ubyte),
                    ("AclSize", wintypes.WORD), ("AceCount", wintypes.WORD),
                    ("Sbz2", wintypes.WORD)]

    class _AceHeader(ctypes.Structure):
        _fields_ = [("AceType", ctypes.c_ubyte), ("AceFlags", ctypes.c_ubyte),
                    ("AceSize", wintypes.WORD)]

    _ALLOWED, _DENIED, _ALLOWED_CALLBACK, _DENIED_CALLBACK = 0x0, 0x1, 0x9, 0xA
    _ALLOWED_OBJECT, _ALLOWED_CALLBACK_OBJECT = 0x5, 0xB
    _INHERIT_ONLY = 0x8

    def _read_windows_acl(path: Path) -> Acl:
        advapi = ctypes.WinDLL("advapi32", use_last_error=True)
        kernel = ctypes.WinDLL("kernel32", use_last_error=True)
        owner, dacl, descriptor = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        # SE_FILE_OBJECT = 1; OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION = 1 | 4
        code = advapi.GetNamedSecurityInfoW(ctypes.c_wchar_p(str(path)), 1, 1 | 4,
                                            ctypes.byref(owner), None, ctypes.byref(dacl), None,
                                            ctypes.byref(descriptor))
        if code:
            raise OSError(code, ctypes.FormatError(code), str(path))

        def sid_text(sid: int | None) -> str:
            text = ctypes.c_wchar_p()
            if not advapi.ConvertSidToStringSidW(ctypes.c_void_p(sid), ctypes.byref(text)):
                raise ctypes.WinError(ctypes.get_last_error())
            try:
                return str(text.value)
            finally:
                kernel.LocalFree(text)

        try:
            if not dacl.value:
                return Acl(sid_text(owner.value), None)
            entries = []
            count = ctypes.cast(dacl, ctypes.POINTER(_AclHeader)).contents.AceCount
            for i in range(count):
                ace = ctypes.c_void_p()
                if not advapi.GetAce(dacl, i, ctypes.byref(ace)) or ace.value is None:
                    raise ctypes.WinError(ctypes.get_last_error())
                header = ctypes.cast(ace, ctypes.POINTER(_AceHeader)).contents
                inherit_only = bool(header.AceFlags & _INHERIT_ONLY)
                if header.AceType in (_ALLOWED, _DENIED, _ALLOWED_CALLBACK, _DENIED_CALLBACK):
                    # ACCESS_ALLOWED_ACE: the header, the mask, then the SID.
                    mask = ctypes.cast(ace.value + 4, ctypes.POINTER(wintypes.DWORD)).contents.value
                    entries.append(AccessEntry(
                        sid_text(ace.value + 8), mask,
                        header.AceType in (_ALLOWED, _ALLOWED_CALLBACK), inherit_only))
                elif header.AceType in (_ALLOWED_OBJECT, _ALLOWED_CALLBACK_OBJECT):
                    # another layout: kept as an allow that cannot be read, which is refused
                    entries.append(AccessEntry("", WRITE_RIGHTS, True, inherit_only))
            return Acl(sid_text(owner.value), tuple(entries))
        finally:
            kernel.LocalFree(descriptor)
