"""The azure-core HttpTransport plumbing every in-memory service in the tests shares (they answer `send`)."""

from __future__ import annotations

import time
from typing import Any

from azure.core.pipeline.transport import HttpTransport


class InMemoryTransport(HttpTransport):
    """Nothing to open or close; retry back-offs and poll intervals are cut short so a test (or a poller
    thread) never waits, without spinning."""

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def sleep(self, duration: float) -> None:
        time.sleep(min(duration, 0.02))
