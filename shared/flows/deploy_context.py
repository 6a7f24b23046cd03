"""What the flows that move an upload after its job (job events, the poll, the reconciler) act through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from shared.azure.scoring import InputShape, SmokeResult
from shared.azure.storage import PreparedStore
from shared.domain.ledger import Ledger
from shared.domain.workspace import Workspace
from shared.flows.lifecycle_events import Publisher
from shared.settings import Settings


class Scorer(Protocol):
    """shared.azure.scoring.score: (scoring URI, key, deployment, messages, timeout, shape) -> the answer."""

    def __call__(
        self,
        scoring_uri: str,
        key: str,
        deployment: str,
        messages: list[dict[str, str]],
        timeout: float,
        *,
        shape: InputShape | str | None = None,
    ) -> SmokeResult: ...


@dataclass
class DeployContext:
    settings: Settings
    ledger: Ledger
    workspace: Workspace
    store: PreparedStore
    scorer: Scorer
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    events: Publisher | None = None
    """Where lifecycle events go (shared.flows.lifecycle_events); None: nowhere."""
    usage: Any = None
    """The endpoints' request counts (shared.azure.metrics.UsageMetrics), for DEPLOY_EVICT_IDLE; None: no eviction."""
