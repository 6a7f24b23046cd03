"""PowerShell cannot be installed here, so the .ps1 hooks are checked as text."""

from __future__ import annotations


def balanced(masked: str, pairs: str = "(){}[]") -> bool:
    """Brackets close in order, in code whose comments and strings were masked out first."""
    stack: list[str] = []
    closers = {pairs[i + 1]: pairs[i] for i in range(0, len(pairs), 2)}
    for ch in masked:
        if ch in pairs[0::2]:
            stack.append(ch)
        elif ch in closers and (not stack or stack.pop() != closers[ch]):
            return False
    return not stack
