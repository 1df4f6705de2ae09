"""A file system, registry and drives held in memory: the Provider for tests, and the shape of
the objects the lab host's own provider gives (FileInfo/DirectoryInfo-like PSObjects)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .values import PSEnum, PSObject

# System.IO.FileAttributes
_ATTRIBUTES = {"ReadOnly": 1, "Hidden": 2, "System": 4, "Directory": 16, "Archive": 32, "Device": 64,
               "Normal": 128, "Temporary": 256, "SparseFile": 512, "ReparsePoint": 1024,
               "Compressed": 2048, "Offline": 4096, "NotContentIndexed": 8192, "Encrypted": 16384,
               "IntegrityStream": 32768, "NoScrubData": 131072}


def file_attributes(names: str | list[str]) -> PSEnum:
    """FileAttributes flags from names ("Archive, ReparsePoint" or a list): the string lists
    them in ascending value, as .NET's flags ToString does."""
    parts = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    value = 0
    for p in parts:
        value |= _ATTRIBUTES[next(k for k in _ATTRIBUTES if k.lower() == p.lower())]
    text = ", ".join(k for k, v in _ATTRIBUTES.items() if value & v) or "0"
    return PSEnum(text, value, "System.IO.FileAttributes")


def normalise(path: str) -> str:
    """The key of a Windows path: case-insensitive, `/` as `\\`, no trailing separator except a
    drive's root."""
    p = path.replace("/", "\\")
    if len(p) > 3 or not p.endswith(":\\"):
        p = p.rstrip("\\") or p
    return p.lower()


def _parent_key(key: str) -> str | None:
    if key.endswith(":\\"):
        return None
    cut = key.rfind("\\")
    if cut == -1:
        return None
    parent = key[:cut]
    if parent.endswith(":"):
        parent += "\\"
    if parent.startswith("\\\\") and parent.count("\\") < 4:
        return None
    return parent


class MemoryProvider:
    """Files, folders, registry keys and drives for a Runspace; paths compare without regard to
    case. Adding a file adds its folders."""

    def __init__(self) -> None:
        self._items: dict[str, PSObject] = {}
        self._children: dict[str, list[str]] = {}
        self._registry: dict[str, dict[str, Any]] = {}
        self._drives: dict[str, PSObject] = {}

    def _add(self, path: str, item: PSObject) -> PSObject:
        key = normalise(path)
        if key not in self._items:
            parent = _parent_key(key)
            if parent is not None:
                if parent not in self._items:
                    self.add_folder(_display_parent(path))
                self._children.setdefault(parent, []).append(key)
        self._items[key] = item
        return item

    def add_folder(self, path: str, attributes: str = "Directory", link_type: str | None = None,
                   target: str | None = None) -> PSObject:
        full = path.rstrip("\\/") if not path.endswith(":\\") else path
        if "Directory" not in attributes:
            attributes = "Directory, " + attributes
        if link_type and "ReparsePoint" not in attributes:
            attributes += ", ReparsePoint"
        name = full.rstrip("\\").rsplit("\\", 1)[-1] if not full.endswith(":\\") else full
        item = PSObject("System.IO.DirectoryInfo", {
            "FullName": full, "Name": name, "Extension": "", "Attributes": file_attributes(attributes),
            "LinkType": link_type, "Target": [target] if target else [], "PSIsContainer": True,
            "Mode": "d-----"}, text=full)
        return self._add(full, item)

    def add_file(self, path: str, length: int = 0, attributes: str = "Archive",
                 link_type: str | None = None, target: str | None = None) -> PSObject:
        if link_type and "ReparsePoint" not in attributes:
            attributes += ", ReparsePoint"
        name = path.rsplit("\\", 1)[-1]
        extension = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        item = PSObject("System.IO.FileInfo", {
            "FullName": path, "Name": name, "BaseName": name[:len(name) - len(extension)],
            "Extension": extension, "Length": length, "DirectoryName": _display_parent(path),
            "Attributes": file_attributes(attributes), "LinkType": link_type,
            "Target": [target] if target else [], "PSIsContainer": False, "Mode": "-a----"}, text=path)
        return self._add(path, item)

    def add_registry(self, path: str, values: Mapping[str, Any]) -> None:
        self._registry[normalise(path)] = dict(values)

    def add_drive(self, name: str, free: int, used: int, root: str | None = None,
                  provider: str = "FileSystem") -> PSObject:
        drive = PSObject("System.Management.Automation.PSDriveInfo", {
            "Name": name, "Root": root or f"{name}:\\", "Free": free, "Used": used,
            "Provider": f"Microsoft.PowerShell.Core\\{provider}"}, text=name)
        self._drives[name.lower()] = drive
        return drive

    def remove(self, path: str) -> None:
        key = normalise(path)
        self._items.pop(key, None)
        parent = _parent_key(key)
        if parent is not None and key in self._children.get(parent, []):
            self._children[parent].remove(key)

    # the Provider protocol

    def item(self, path: str) -> PSObject | None:
        return self._items.get(normalise(path))

    def children(self, path: str) -> list[PSObject]:
        return [self._items[k] for k in self._children.get(normalise(path), ())]

    def registry(self, path: str) -> Mapping[str, Any] | None:
        return self._registry.get(normalise(path))

    def drive(self, name: str) -> PSObject | None:
        return self._drives.get(name.lower())


def _display_parent(path: str) -> str:
    p = path.rstrip("\\")
    cut = p.rfind("\\")
    parent = p[:cut] if cut != -1 else p
    return parent + "\\" if parent.endswith(":") else parent
