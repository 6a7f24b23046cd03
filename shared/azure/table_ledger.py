"""Ledger on Azure Table Storage (azure-data-tables; Azurite locally), imported lazily."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.azure.ledger_rows import RowProblem, from_entity, to_entity, unreadable
from shared.domain.ledger import (
    Claim,
    LedgerEntry,
    Status,
    UnreadableRow,
    UploadKey,
    decide_claim,
    remember_studio_url,
)
from shared.logs import log_step
from shared.settings import STORAGE_CONNECTION, SettingsError, storage_connection

if TYPE_CHECKING:
    from azure.data.tables import TableClient

_REPORTED_MAX = 10_000
"""Row versions whose unreadability was logged; forgotten past this many (a long-lived host)."""


def table_client(
    table: str, env: Mapping[str, str] | None = None, *, create: bool = True, **options: Any
) -> TableClient:
    """A TableClient on CHATFT_STORAGE (connection string locally, managed identity in Azure). The app creates
    the table if missing (an account-level call); the commands (`create=False`) only read and update rows,
    which a role on the table alone allows. `options`: client options (a command's timeouts)."""
    from azure.data.tables import TableServiceClient

    connection = storage_connection(env, service="table")
    if connection is None:
        raise SettingsError(
            f"invalid settings: {STORAGE_CONNECTION}: missing (or {STORAGE_CONNECTION}__tableServiceUri)"
        )
    kind, value = connection
    if kind == "connection_string":
        service = TableServiceClient.from_connection_string(value, **options)
    else:
        from shared.azure.identity import credential

        service = TableServiceClient(endpoint=value, credential=credential(STORAGE_CONNECTION, env), **options)
    return service.create_table_if_not_exists(table) if create else service.get_table_client(table)


class TableLedger:
    """The Ledger on a table. Every row is parsed here (shared/azure/ledger_rows.py): one that does not parse is
    skipped with one ERROR log naming its keys and what is wrong, so no loop over rows ever stops on it."""

    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._reported: set[tuple[str, str, str, str]] = set()

    def _read(self, entity: Mapping[str, Any]) -> LedgerEntry | UnreadableRow:
        try:
            return from_entity(entity)
        except RowProblem as exc:
            row = unreadable(entity, str(exc))
            self._report(row, entity)
            return row

    def _report(self, row: UnreadableRow, entity: Mapping[str, Any]) -> None:
        """One ERROR log per version of a bad row (not one per listing: a reconciler tick lists rows often)."""
        metadata = getattr(entity, "metadata", None)
        version = (row.dataset, row.sha256, str(metadata.get("etag")) if isinstance(metadata, Mapping) else "")
        if (*version, row.problem) in self._reported:
            return
        if len(self._reported) >= _REPORTED_MAX:
            self._reported.clear()
        self._reported.add((*version, row.problem))
        log_step(
            "ledger.unreadable_row",
            level=logging.ERROR,
            PartitionKey=row.dataset,
            RowKey=row.sha256,
            problem=row.problem,
            fix="the row is skipped: correct the column or delete the row (chatft status lists it as unreadable)",
        )

    def _parsed(self, entities: Iterable[Mapping[str, Any]]) -> list[LedgerEntry | UnreadableRow]:
        return [self._read(e) for e in entities]

    def get(self, key: UploadKey) -> LedgerEntry | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = self._read(self._table.get_entity(key.dataset, key.sha256))
        except ResourceNotFoundError:
            return None
        return found if isinstance(found, LedgerEntry) else None

    def claim(
        self, key: UploadKey, *, upload_etag: str, source: str, cid: str, now: datetime, stale_after: timedelta
    ) -> Claim:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        claim_id = uuid.uuid4().hex
        fresh = LedgerEntry(key, Status.CLAIMED, 1, claim_id, now, upload_etag, source, cid, updated_at=now)
        try:
            self._table.create_entity(to_entity(fresh))
            return Claim(True, 1, "first claim", claim_id)
        except ResourceExistsError:
            pass
        try:
            entity = self._table.get_entity(key.dataset, key.sha256)
        except ResourceNotFoundError:
            return Claim(False, 0, "the row vanished while claiming; the next delivery will claim it")
        existing = self._read(entity)
        if isinstance(existing, UnreadableRow):
            return Claim(
                False,
                0,
                f"its ledger row (PartitionKey {key.dataset!r}, RowKey {key.sha256!r}) is unreadable: "
                f"{existing.problem}; correct or delete the row, then upload again",
            )
        decision = decide_claim(existing, upload_etag, now, stale_after)
        if not decision.acquire:
            return Claim(False, decision.attempt, decision.reason, existing=existing)
        taken = LedgerEntry(
            key,
            Status.CLAIMED,
            decision.attempt,
            claim_id,
            now,
            upload_etag or existing.upload_etag,
            source,
            cid,
            job_name=existing.job_name,
            updated_at=now,
            extra=existing.extra,
            deploy=existing.deploy,
        )
        if not self._replace_if_unchanged(taken, existing.etag):
            return Claim(False, decision.attempt, "another worker claimed it first", existing=existing)
        return Claim(True, decision.attempt, decision.reason, claim_id, existing)

    def finish(
        self,
        key: UploadKey,
        claim_id: str,
        status: Status,
        now: datetime,
        *,
        job_name: str = "",
        error: str = "",
        studio_url: str | None = None,
    ) -> bool:
        entry = self.get(key)
        if entry is None or entry.claim_id != claim_id:
            return False
        entry.status, entry.updated_at, entry.error = status, now, error
        entry.job_name = job_name or entry.job_name
        remember_studio_url(entry, studio_url)
        return self.save(entry)

    def save(self, entry: LedgerEntry) -> bool:
        return self._replace_if_unchanged(entry, entry.etag)

    def with_status(self, *statuses: Status) -> list[LedgerEntry]:
        from azure.core.exceptions import ResourceNotFoundError

        query = " or ".join(f"status eq '{s.value}'" for s in statuses)
        try:
            rows = self._parsed(self._table.query_entities(query))
        except ResourceNotFoundError:  # no table yet (a command before the app's first upload): no rows
            return []
        return [r for r in rows if isinstance(r, LedgerEntry)]

    def unreadable(self) -> list[UnreadableRow]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            rows = self._parsed(self._table.list_entities())
        except ResourceNotFoundError:
            return []
        return [r for r in rows if isinstance(r, UnreadableRow)]

    def _replace_if_unchanged(self, entry: LedgerEntry, etag: str) -> bool:
        """Optimistic concurrency: write only if nobody changed the row since we read it."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            written = self._table.update_entity(
                to_entity(entry), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        entry.etag = written.get("etag", entry.etag)
        return True
