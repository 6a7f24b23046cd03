"""Find the upload a person means: by blob name, SHA-256 prefix, job name or endpoint name.

People copy whatever they have in front of them (the file they uploaded, a job name from the studio, an
endpoint name from the portal), so every one of them names an upload. Pure: works on ledger entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.domain.ledger import LedgerEntry

MIN_SHA_PREFIX = 6
_HEX = re.compile(r"[0-9a-f]+")


class UploadNotFound(LookupError):
    """Nothing matches, or several uploads do: the message lists what to type instead."""


def _blob_name(source: str) -> str:
    """'chat-uploads/demo/chats.jsonl' -> 'demo/chats.jsonl' (the source is '<container>/<blob>')."""
    return source.split("/", 1)[1] if "/" in source else source


def _matches(entry: LedgerEntry, query: str) -> bool:
    q = query.strip()
    lowered = q.lower()
    if not q:
        return False
    if q in (entry.source, _blob_name(entry.source), entry.job_name, entry.deploy.get("endpoint") or ""):
        return True
    return len(lowered) >= MIN_SHA_PREFIX and bool(_HEX.fullmatch(lowered)) and entry.key.sha256.startswith(lowered)


def _label(entry: LedgerEntry) -> str:
    return f"{_blob_name(entry.source) or entry.key.dataset} ({entry.key.sha256[:12]}, {entry.status.value})"


def find_upload(entries: Iterable[LedgerEntry], query: str) -> LedgerEntry:
    """The one upload `query` names. When one file was uploaded several times under the same name, the
    newest upload of it wins (that is the one people mean); other ambiguities are an error."""
    found = [e for e in entries if _matches(e, query)]
    if not found:
        raise UploadNotFound(
            f"no upload matches {query!r}: give a blob name, a job or endpoint name, "
            f"or at least {MIN_SHA_PREFIX} hex characters of the file's SHA-256 (`chatft status --all` lists them)"
        )
    if len(found) > 1:
        if len({e.source for e in found}) == 1:  # the same blob name, different bytes over time
            return max(found, key=lambda e: e.updated_at or e.claimed_at)
        listed = "; ".join(_label(e) for e in found[:10])
        if len({e.key.sha256 for e in found}) == 1:  # one file under several names: no SHA-256 tells them apart
            names = " or ".join(repr(_blob_name(e.source) or e.key.dataset) for e in found[:10])
            raise UploadNotFound(
                f"{query!r} is one file uploaded under {len(found)} names: {listed}. "
                f"Give the blob name instead ({names})"
            )
        raise UploadNotFound(
            f"{query!r} names {len(found)} uploads: {listed}. Give more of the SHA-256, or the blob name"
        )
    return found[0]
