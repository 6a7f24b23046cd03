"""The uploads of the chatft the options name, read the one way `chatft status` and `chatft report` both need:
the target applied, storage touched first (an unreachable one fails in seconds), and every failure one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from shared.entry.cli.commands.output import fail
from shared.entry.cli.commands.target import target_applied
from shared.entry.cli.commands.upload import storage_failure

T = TypeVar("T")
UPLOAD_HELP = "A blob name, a job or endpoint name, or 6+ hex digits of the file's SHA-256."
UploadArg = Annotated[str, typer.Argument(help=UPLOAD_HELP)]
"""The UPLOAD argument of a command about one upload (shared.flows.upload_status.find reads it)."""
EMPTY = "UPLOAD is empty: give a blob name, a job or endpoint name, or a SHA-256 prefix"


@dataclass(frozen=True)
class Uploads:
    """The target's storage client, upload container (with its reports) and ledger."""

    settings: Any
    client: Any
    store: Any
    ledger: Any


def read_uploads(settings_file: Path | None, env: str | None, use_azd: bool, read: Callable[[Uploads], T]) -> T:
    """`read(uploads)` against the named target (shared.entry.cli.commands.target); exit 2 with one line when
    the upload is not found or storage or settings cannot be read (naming where the settings came from)."""
    from shared.domain.upload_lookup import UploadNotFound

    with target_applied(settings_file, env, use_azd) as source:
        try:
            return read(_open())
        except UploadNotFound as exc:
            fail(str(exc))
        except Exception as exc:
            message = storage_failure(exc)
            if message is None:
                raise
            fail(f"{message} (settings from {source})")


def find_one(uploads: Uploads, query: str):  # -> UploadView
    """The upload `query` names (shared.flows.upload_status.find); an empty query is exit 2."""
    from shared.flows.upload_status import find

    if not query.strip():
        fail(EMPTY)
    return find(uploads.ledger, uploads.store, query)


def _open() -> Uploads:
    import shared.entry.app_wiring
    from shared.azure.upload import UploadContainer, cli_retry, storage_client

    settings = shared.entry.app_wiring.settings()
    client = storage_client(retry_policy=cli_retry())
    store = UploadContainer(client, settings.upload_container, settings.prepared_container)
    store.list_uploads()  # storage reachable? (fails in seconds, before the ledger's slower retries)
    return Uploads(settings, client, store, shared.entry.app_wiring.ledger(create=False))
