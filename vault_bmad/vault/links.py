"""Resolve link paths to vault files the way Obsidian does.

A link path matches a file by name, case-insensitively, with or without the `.md`
extension, or by a path suffix such as `Folder/Note`. When several files match, the
one at the exact path wins, then one in the linking note's folder, then the shortest
path. Markdown links written relative to the note (`../Docs/x.md`) are tried first.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict


class LinkResolver:
    """An incremental map from file names to vault-relative paths."""

    def __init__(self, paths: list[str] | None = None) -> None:
        self._by_name: dict[str, set[str]] = defaultdict(set)
        self._lower: dict[str, str] = {}  # lowercased path -> path as stored
        for path in paths or ():
            self.add(path)

    def add(self, path: str) -> None:
        self._by_name[posixpath.basename(path).lower()].add(path)
        self._lower[path.lower()] = path

    def remove(self, path: str) -> None:
        name = posixpath.basename(path).lower()
        self._by_name[name].discard(path)
        if not self._by_name[name]:
            del self._by_name[name]
        self._lower.pop(path.lower(), None)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path.lower() in self._lower

    def resolve(self, linkpath: str, source: str) -> str | None:
        """The vault path `linkpath` points to from note `source`, or None if unresolved."""
        linkpath = linkpath.strip().replace("\\", "/")
        if not linkpath:
            return source  # [[#Heading]] links to the note itself
        relative = self._relative(linkpath, source)
        if relative is not None:
            return relative
        wanted = linkpath.lstrip("/")
        for candidate in (wanted + ".md", wanted):
            match = self._best_suffix_match(candidate.lower(), source)
            if match is not None:
                return match
        return None

    def _relative(self, linkpath: str, source: str) -> str | None:
        if not linkpath.startswith(("./", "../")):
            return None
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(source), linkpath))
        if joined.startswith("../"):
            return None
        for candidate in (joined + ".md", joined):
            found = self._lower.get(candidate.lower())
            if found is not None:
                return found
        return None

    def _best_suffix_match(self, wanted: str, source: str) -> str | None:
        exact = self._lower.get(wanted)
        if exact is not None:
            return exact
        name = posixpath.basename(wanted)
        matches = [
            path
            for path in self._by_name.get(name, ())
            if "/" not in wanted or path.lower().endswith("/" + wanted)
        ]
        if not matches:
            return None
        folder = posixpath.dirname(source)
        return min(matches, key=lambda p: (posixpath.dirname(p) != folder, len(p), p))
