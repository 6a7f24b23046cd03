"""A registered model's deployment as the ledger starts it, and as the report shows it.

Below every flow that starts one (a finished job, a re-upload of retired bytes, `chatft redeploy`) or
reports one (the reconciler, the janitor, the endpoint-action commands)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain import upload_history
from shared.domain.ledger import LedgerEntry, Status
from shared.settings import Settings


def start_deployment(entry: LedgerEntry, settings: Settings, now: datetime, **deploy: Any) -> None:
    """Initial deployment state, set when the model is registered; the reconciler takes it from here.
    What the deployment it replaces showed (its retirement, a redeploy) stays in the upload's history."""
    upload_history.archive(entry, entry.deploy)
    entry.status = Status.REGISTERED
    entry.updated_at = now
    entry.deploy = {
        **deploy,
        "deployment": settings.deployment_name,
        "instance_type": settings.deploy_instance_type,
        "step": "check_sku",
        "started_at": now.isoformat(),
        "deadline": (now + timedelta(minutes=settings.deploy_deadline_minutes)).isoformat(),
    }


def deployment_summary(entry: LedgerEntry) -> dict[str, Any]:
    """The report's view of a deployment."""
    d = entry.deploy
    summary: dict[str, Any] = {
        "status": entry.status.value,
        "model": f"{d.get('model_name')}:{d.get('model_version')}",
        "model_id": d.get("model_id"),
        "endpoint": d.get("endpoint"),
        "deployment": d.get("deployment"),
        "instance_type": d.get("instance_type") or None,
        "instance_type_why": d.get("instance_type_reason"),
        "scoring_uri": d.get("scoring_uri"),
        "step": d.get("step"),
        "error": d.get("error"),
    }
    if d.get("smoke"):
        summary["smoke_test"] = {"latency ms": d["smoke"]["latency_ms"], "answer": d["smoke"]["answer"][:80]}
    gated = d.get("gated") if isinstance(d.get("gated"), dict) else {}
    if gated.get("reason"):
        where = "no endpoint was created" if gated.get("phase") == "training" else "its endpoint is retired"
        summary["gate"] = (
            f"not deployed: {gated['reason']}; {where}, the model stays registered, and "
            "`chatft redeploy UPLOAD --skip-gate` deploys it anyway"
        )
    if d.get("skip_gate"):
        summary["gates"] = f"skipped ({d['skip_gate']})"
    queued = d.get("queued") if isinstance(d.get("queued"), dict) else {}
    if entry.status is Status.DEPLOY_QUEUED and queued.get("reason"):
        summary["queued"] = f"since {queued.get('at')}: {queued['reason']}; it deploys when there is room"
    if isinstance(d.get("evicted"), dict):
        summary["evicted"] = (
            f"endpoint {d['evicted'].get('endpoint')} retired to make room: {d['evicted'].get('reason')}"
        )
    if entry.status is Status.DEPLOY_FAILED:
        summary["cleanup"] = f"endpoint {d.get('endpoint')} deleted so nothing stays billable"
    if history := upload_history.lines(entry):
        summary["history"] = history
    return summary
