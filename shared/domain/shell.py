"""A `chatft ...` command as a hint prints it: quoted for a POSIX shell, so it is copied and pasted as is."""

from __future__ import annotations

import shlex


def chatft(*args: str) -> str:
    """`chatft status 'my chats.jsonl'`: each argument quoted only when the shell needs it (shlex.join)."""
    return f"`{shlex.join(['chatft', *args])}`"
