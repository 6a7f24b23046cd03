"""`chatft score`: one question to a live local endpoint, in the request shape its smoke test found.

The shape (shared.azure.scoring.InputShape) is on the ledger row of the endpoint's upload, which the endpoint's
tags name; the ledger is the one of the session running in the endpoint's state folder. When it cannot be read,
the question goes as the smoke test's went first (the notebook's shape, then the other once).
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.markup import escape

from shared.commands.output import EXIT_REJECTED, EXIT_USAGE, err, out
from shared.local.scoring import LiveEndpoint

STATE_ROOTS = (Path(".chatft"), Path(".chatft/demo"))


def remembered_shape(found: LiveEndpoint) -> str | None:
    """The ledger row's `deploy["input_shape"]` for this endpoint's upload, or None (best effort)."""
    from shared.commands.target import Target, applied
    from shared.domain.ledger import UploadKey
    from shared.local.session_file import live_sessions

    tags = found.config.get("tags") or {}
    key = UploadKey(str(tags.get("chatft_dataset") or ""), str(tags.get("chatft_upload") or ""))
    session = next(live_sessions([found.state_dir]), None)
    if session is None or not key.dataset or not key.sha256:
        return None
    try:
        with applied(Target(dict(session.settings), f"local session in {session.state_dir}")):
            import shared.runtime

            entry = shared.runtime.ledger(create=False).get(key)
    except Exception as exc:  # the question still goes, in the smoke test's order
        logging.getLogger("chatft").debug("no remembered request shape: %s: %s", type(exc).__name__, exc)
        return None
    return (entry.deploy.get("input_shape") or None) if entry is not None else None


def score_local(prompt: str, state: Path | None, endpoint: str | None) -> None:
    """Print the newest live endpoint's answer (exit 2: none is live; exit 1: it did not answer)."""
    from shared.azure.scoring import SmokeError, score
    from shared.local.scoring import live_endpoints

    roots = [state] if state else [*STATE_ROOTS, *sorted(Path(".chatft/runs").glob("*"))]
    found = next(iter(live_endpoints(roots, name=endpoint)), None)
    if found is None:
        what = f"named {endpoint!r} " if endpoint else ""
        where = state or ".chatft"
        err.print(
            f"[red]error:[/red] no live local endpoint {escape(what)}in {escape(str(where))}: "
            "run `make run ARGS=--keep` or `chatft dev` first"
        )
        raise typer.Exit(EXIT_USAGE)
    config = found.config
    try:
        traffic = config.get("traffic") or {}
        deployment = max(traffic, key=traffic.get) if traffic else next(iter(config.get("deployments") or {}), "")
        messages = [{"role": "user", "content": prompt}]
        result = score(found.url, config["key"], deployment, messages, 30, shape=remembered_shape(found))
    except (SmokeError, OSError, KeyError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(config.get('name')))}: {escape(str(exc))}")
        raise typer.Exit(EXIT_REJECTED) from None
    out.print(f"[dim]{escape(str(config['name']))} ({result.latency_ms} ms)[/]\n{escape(result.answer)}")
