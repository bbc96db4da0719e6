"""Resolve link paths to vault files the way Obsidian does.

A link path matches a file by name, case-insensitively, with or without the `.md`
extension, or by a path suffix such as `Folder/Note`. When several files match, the
one at the exact path wins, then the one beside the linking note (`Folder/Note`
from `Area/x.md` prefers `Area/Folder/Note.md`), then the shortest path. Links
written relative to the note (`../Docs/x.md`, `./Note`) are resolved only that way.
Names are compared in Unicode NFC, so a macOS file name matches the typed link.
"""

from __future__ import annotations

import posixpath
import unicodedata


def _key(path: str) -> str:
    """How paths compare: NFC, lowercased."""
    return path.lower() if path.isascii() else unicodedata.normalize("NFC", path).lower()


class LinkResolver:
    """An incremental map from file names to vault-relative paths."""

    def __init__(self, paths: list[str] | None = None) -> None:
        self._by_name: dict[str, set[str]] = {}  # key of the file name -> paths
        self._by_key: dict[str, str] = {}  # key of the whole path -> path as stored
        for path in paths or ():
            self.add(path)

    def add(self, path: str) -> None:
        key = _key(path)
        self._by_name.setdefault(posixpath.basename(key), set()).add(path)
        if self._by_key.get(key) != path:
            self._by_key[key] = min(path, self._by_key.get(key, path))  # stable on case clashes

    def remove(self, path: str) -> None:
        key = _key(path)
        name = posixpath.basename(key)
        same_name = self._by_name.get(name, set())
        same_name.discard(path)
        if not same_name:
            self._by_name.pop(name, None)
        if self._by_key.get(key) == path:
            del self._by_key[key]
            clashes = [p for p in same_name if _key(p) == key]  # `a/Note.md` and `a/note.md`
            if clashes:
                self._by_key[key] = min(clashes)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and _key(path) in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def resolve(self, linkpath: str, source: str) -> str | None:
        """The vault path `linkpath` points to from note `source`, or None if unresolved.

        An empty link path (`[[#Heading]]`) points to the note itself.
        """
        linkpath = linkpath.strip().replace("\\", "/")
        if not linkpath:
            return source
        if linkpath.startswith(("./", "../")):
            return self._relative(linkpath, source)
        wanted = _key(linkpath.lstrip("/"))
        folder = _key(posixpath.dirname(source))
        for candidate in (wanted + ".md", wanted):
            match = self._best_match(candidate, folder)
            if match is not None:
                return match
        return None

    def _relative(self, linkpath: str, source: str) -> str | None:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(source), linkpath))
        if joined == ".." or joined.startswith("../"):
            return None  # outside the vault
        key = _key(joined)
        return self._by_key.get(key + ".md") or self._by_key.get(key)

    def _best_match(self, wanted: str, folder: str) -> str | None:
        exact = self._by_key.get(wanted)
        if exact is not None:
            return exact
        beside = f"{folder}/{wanted}" if folder else wanted
        suffix = "/" + wanted
        matches = [
            (_key(path), path)
            for path in self._by_name.get(posixpath.basename(wanted), ())
            if "/" not in wanted or _key(path).endswith(suffix)
        ]
        if not matches:
            return None
        _, best = min(matches, key=lambda item: (item[0] != beside, len(item[1]), item[1]))
        return best
