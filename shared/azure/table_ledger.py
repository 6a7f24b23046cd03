"""Ledger on Azure Table Storage (azure-data-tables; Azurite locally), imported lazily."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain.ledger import Claim, LedgerEntry, Status, UploadKey, decide_claim, remember_studio_url
from shared.settings import STORAGE_CONNECTION, SettingsError, storage_connection

if TYPE_CHECKING:
    from azure.data.tables import TableClient

_FIELDS = ("status", "attempt", "claim_id", "claimed_at", "upload_etag", "source", "cid", "job_name", "error", "deploy")


def table_client(table: str, env: Mapping[str, str] | None = None, *, create: bool = True) -> TableClient:
    """A TableClient on CHATFT_STORAGE (connection string locally, managed identity in Azure). The app creates
    the table if missing (an account-level call); the commands (`create=False`) only read and update rows,
    which a role on the table alone allows."""
    from azure.data.tables import TableServiceClient

    connection = storage_connection(env, service="table")
    if connection is None:
        raise SettingsError(
            f"invalid settings: {STORAGE_CONNECTION}: missing (or {STORAGE_CONNECTION}__tableServiceUri)"
        )
    kind, value = connection
    if kind == "connection_string":
        service = TableServiceClient.from_connection_string(value)
    else:
        from shared.azure.identity import credential

        service = TableServiceClient(endpoint=value, credential=credential(STORAGE_CONNECTION, env))
    return service.create_table_if_not_exists(table) if create else service.get_table_client(table)


def _to_entity(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "PartitionKey": entry.key.dataset,
        "RowKey": entry.key.sha256,
        "status": entry.status.value,
        "attempt": entry.attempt,
        "claim_id": entry.claim_id,
        "claimed_at": entry.claimed_at.isoformat(),
        "upload_etag": entry.upload_etag,
        "source": entry.source,
        "cid": entry.cid,
        "job_name": entry.job_name,
        "error": entry.error[:30000],
        "updated_at": (entry.updated_at or entry.claimed_at).isoformat(),
        "deploy": json.dumps(entry.deploy, sort_keys=True) if entry.deploy else "",
        **entry.extra,
    }


def _from_entity(entity: Mapping[str, Any]) -> LedgerEntry:
    known = {"PartitionKey", "RowKey", "updated_at", *_FIELDS}
    return LedgerEntry(
        key=UploadKey(entity["PartitionKey"], entity["RowKey"]),
        status=Status(entity["status"]),
        attempt=int(entity["attempt"]),
        claim_id=entity["claim_id"],
        claimed_at=datetime.fromisoformat(entity["claimed_at"]),
        upload_etag=entity.get("upload_etag", ""),
        source=entity.get("source", ""),
        cid=entity.get("cid", ""),
        job_name=entity.get("job_name", ""),
        error=entity.get("error", ""),
        updated_at=datetime.fromisoformat(entity["updated_at"]) if entity.get("updated_at") else None,
        extra={k: v for k, v in entity.items() if k not in known},
        deploy=json.loads(entity.get("deploy") or "{}"),
        etag=getattr(entity, "metadata", {}).get("etag", ""),
    )


class TableLedger:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get(self, key: UploadKey) -> LedgerEntry | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _from_entity(self._table.get_entity(key.dataset, key.sha256))
        except ResourceNotFoundError:
            return None

    def claim(
        self, key: UploadKey, *, upload_etag: str, source: str, cid: str, now: datetime, stale_after: timedelta
    ) -> Claim:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        claim_id = uuid.uuid4().hex
        fresh = LedgerEntry(key, Status.CLAIMED, 1, claim_id, now, upload_etag, source, cid, updated_at=now)
        try:
            self._table.create_entity(_to_entity(fresh))
            return Claim(True, 1, "first claim", claim_id)
        except ResourceExistsError:
            pass
        try:
            entity = self._table.get_entity(key.dataset, key.sha256)
        except ResourceNotFoundError:
            return Claim(False, 0, "the row vanished while claiming; the next delivery will claim it")
        existing = _from_entity(entity)
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
        if not self._replace_if_unchanged(taken, entity.metadata["etag"]):
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
        entry = _from_entity(self._table.get_entity(key.dataset, key.sha256))
        if entry.claim_id != claim_id:
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
            return [_from_entity(e) for e in self._table.query_entities(query)]
        except ResourceNotFoundError:  # no table yet (a command before the app's first upload): no rows
            return []

    def _replace_if_unchanged(self, entry: LedgerEntry, etag: str) -> bool:
        """Optimistic concurrency: write only if nobody changed the row since we read it."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            written = self._table.update_entity(
                _to_entity(entry), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        entry.etag = written.get("etag", entry.etag)
        return True
