"""The one block of a task note's body vault-bmad writes: its agent's questions, as a callout.

The block is a marker comment, which Obsidian hides in reading view, then a callout (its
`>` lines) and one blank line. It sits at the top of the body. The rest of the body is the
user's, byte for byte; reading the task's request leaves the block out, so the agent never
sees its own questions as part of the request.
"""

from __future__ import annotations

import re

from vault_bmad.vault.frontmatter_edit import split_note

MARKER = "%% vault-bmad: questions %%"
_BLOCK = re.compile(
    r"^[ \t]*" + re.escape(MARKER) + r"[ \t]*(?:\r?\n|\Z)(?:>[^\n]*(?:\n|\Z))*(?:[ \t]*\r?\n)?",
    re.MULTILINE,
)


def strip_callout(body: str) -> str:
    """`body` without vault-bmad's block."""
    return _BLOCK.sub("", body, count=1)


def set_callout(text: str, callout: str | None) -> str:
    """The note `text` with vault-bmad's block set to `callout` (its `>` lines), at the top of
    the body, or removed (None). Everything else stays as it was."""
    parts = split_note(text)
    head, body = ("", text) if parts is None else (text[: len(text) - len(parts.body)], parts.body)
    newline = parts.newline if parts is not None else ("\r\n" if "\r\n" in text else "\n")
    block = ""
    if callout is not None:
        lines = callout.strip("\n").split("\n")
        block = newline.join([MARKER, *lines]) + newline + newline
    found = _BLOCK.search(body)
    if found is None:
        return text if not block else head + block + body
    return head + body[: found.start()] + block + body[found.end() :]
