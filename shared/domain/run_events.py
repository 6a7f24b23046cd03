"""Azure ML run events from Event Grid, in either schema, and which of them chatft acts on.

Pure: the function handler turns its `func.EventGridEvent` or `func.CloudEvent` into a RunEvent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
PIPELINE_RUN = "azureml.PipelineRun"
MANAGED_TAG = "chatft_managed"


@dataclass(frozen=True)
class RunEvent:
    id: str
    source: str
    """Event Grid `topic` or CloudEvents `source`: the workspace's resource id."""
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.data.get("runId") or "")

    @property
    def run_type(self) -> str:
        return str(self.data.get("runType") or "")

    @property
    def tags(self) -> dict[str, str]:
        """Run tags with lower-cased names: Azure treats tag names case-insensitively."""
        tags = self.data.get("runTags") or {}
        return {str(k).lower(): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}

    @property
    def run_status(self) -> str:
        """Lower-cased: real payloads say Completed/Failed/Canceled, the documentation's sample `failed`."""
        return str(self.data.get("runStatus") or "").strip().lower()


def from_function_event(event: Any) -> RunEvent:
    """From azure.functions' EventGridEvent (topic, event_type) or CloudEvent (source, type)."""
    source = getattr(event, "topic", None) or getattr(event, "source", None) or ""
    event_type = getattr(event, "event_type", None) or getattr(event, "type", None) or ""
    data = event.get_json()
    return RunEvent(
        id=str(event.id or ""), source=str(source), type=str(event_type), data=data if isinstance(data, dict) else {}
    )


class Outcome(str, Enum):
    IGNORE = "ignore"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


_TERMINAL = {
    "completed": Outcome.COMPLETED,
    "failed": Outcome.FAILED,
    "canceled": Outcome.CANCELED,
    "cancelled": Outcome.CANCELED,
}


def outcome_of_status(status: str) -> Outcome | None:
    """A job's status as `jobs.get` reports it (Completed, Failed, Canceled, ...), or None while it runs."""
    return _TERMINAL.get(status.strip().lower())


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str


def classify(event: RunEvent, workspace_id: str) -> Decision:
    """Act only on our own parent pipeline job reaching a final state in our workspace."""
    if event.source.strip().rstrip("/").lower() != workspace_id.strip().rstrip("/").lower():
        return Decision(Outcome.IGNORE, f"event from another source: {event.source}")
    if event.type not in (RUN_COMPLETED, RUN_STATUS_CHANGED):
        return Decision(Outcome.IGNORE, f"event type {event.type} is not a run event")
    if event.run_type != PIPELINE_RUN:
        return Decision(Outcome.IGNORE, f"{event.run_type or 'unknown'} run (only the parent pipeline run acts)")
    if event.tags.get(MANAGED_TAG, "").lower() != "true":
        return Decision(Outcome.IGNORE, "not a chatft job (no chatft_managed tag)")
    if event.type == RUN_COMPLETED:
        return Decision(Outcome.COMPLETED, "RunCompleted")
    outcome = outcome_of_status(event.run_status)
    if outcome is None:
        return Decision(Outcome.IGNORE, f"status {event.run_status or 'missing'} is not final")
    return Decision(outcome, f"RunStatusChanged to {event.run_status}")
