"""`chatft score`: one question to a live local endpoint, in the request shape its smoke test found.

The shape (shared.azure.scoring.InputShape) is on the ledger row of the endpoint's upload, which the endpoint's
tags name; the ledger is the one of the session running in the endpoint's state folder. When it cannot be read,
the question goes as the smoke test's went first (the notebook's shape, then the other once).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.markup import escape

from shared.azure.scoring import SmokeResult
from shared.entry.cli.commands.output import EXIT_REJECTED, EXIT_USAGE, err, out
from shared.local.scoring import LiveEndpoint

STATE_ROOTS = (Path(".chatft"), Path(".chatft/demo"))


def remembered_shape(found: LiveEndpoint) -> str | None:
    """The ledger row's `deploy["input_shape"]` for this endpoint's upload, or None (best effort)."""
    from shared.domain.ledger import UploadKey
    from shared.entry.cli.commands.target import Target, applied
    from shared.local.session_file import live_sessions

    tags = found.config.get("tags") or {}
    key = UploadKey(str(tags.get("chatft_dataset") or ""), str(tags.get("chatft_upload") or ""))
    session = next(live_sessions([found.state_dir]), None)
    if session is None or not key.dataset or not key.sha256:
        return None
    try:
        with applied(Target(dict(session.settings), f"local session in {session.state_dir}")):
            import shared.entry.app_wiring

            entry = shared.entry.app_wiring.ledger(create=False).get(key)
    except Exception as exc:  # the question still goes, in the smoke test's order
        logging.getLogger("chatft").debug("no remembered request shape: %s: %s", type(exc).__name__, exc)
        return None
    return (entry.deploy.get("input_shape") or None) if entry is not None else None


def score_local(prompt: str, state: Path | None, endpoint: str | None, as_json: bool = False) -> None:
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
    _say(Asked(str(config["name"]), deployment, found.url, messages, result), as_json)


def score_target(
    prompt: str, endpoint: str | None, settings_file: Path | None, env: str | None, azd: bool, as_json: bool = False
) -> None:
    """Ask an endpoint of the chatft the options name (Azure: `--env`, `--settings`): its scoring URI and
    auth from the workspace, the request shape from its upload's ledger row. Exit 2: no such endpoint or no
    target; exit 1: it did not answer."""
    import os

    from shared.azure.scoring import SmokeError
    from shared.entry.cli.commands.endpoint_actions import azure_error
    from shared.entry.cli.commands.output import fail
    from shared.entry.cli.commands.target import target_applied
    from shared.settings import SettingsError

    with target_applied(settings_file, env, azd):  # it says which target, in one dim line
        try:
            asked = _ask(prompt, endpoint)
        except (LookupError, SettingsError) as exc:
            fail(str(exc).strip("'\""))
        except SmokeError as exc:
            fail(f"{endpoint or 'the endpoint'}: {exc}", EXIT_REJECTED)
        except Exception as exc:  # Azure said no, or could not be reached (signed out included): one line
            if os.environ.get("CHATFT_DEBUG"):
                raise
            fail(azure_error(exc), EXIT_REJECTED)
    _say(asked, as_json)


@dataclass(frozen=True)
class Asked:
    """One question asked: where it went, what was sent, and the SmokeResult (answer, latency, shape used)."""

    endpoint: str
    deployment: str
    scoring_uri: str
    messages: list[dict[str, str]]
    result: SmokeResult

    def as_json(self) -> dict[str, Any]:
        """`--json`: what `az ml online-endpoint invoke` takes to ask again (the endpoint, --deployment-name and
        the body, `request`, as sent), its `scoring_uri` as `az ml online-endpoint show` says it, the answer
        and the latency."""
        from shared.azure.scoring import request_body

        return {
            "endpoint": self.endpoint,
            "deployment": self.deployment,
            "scoring_uri": self.scoring_uri,
            "input_shape": self.result.shape.value,
            "request": request_body(self.messages, self.result.shape),
            "answer": self.result.answer,
            "latency_ms": self.result.latency_ms,
        }


def _say(asked: Asked, as_json: bool) -> None:
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(asked.as_json()) + b"\n")
        sys.stdout.flush()
        return
    out.print(f"[dim]{escape(asked.endpoint)} ({asked.result.latency_ms} ms)[/]\n{escape(asked.result.answer)}")


ANSWER_TIMEOUT = 90.0
"""Seconds to wait for the answer: the deployment's request_timeout_ms (90000) that chatft sets."""


def _ask(prompt: str, endpoint: str | None) -> Asked:
    """The named endpoint, or the newest live upload's, asked."""
    import shared.entry.app_wiring
    from shared.azure.scoring import score
    from shared.domain.ledger import Status

    workspace = shared.entry.app_wiring.workspace()
    if workspace is None:
        raise LookupError("ML_BACKEND=none in these settings: there is no workspace to score on")
    live = [
        e for e in shared.entry.app_wiring.ledger(create=False).with_status(Status.LIVE) if e.deploy.get("endpoint")
    ]
    live.sort(key=lambda e: str(e.deploy.get("live_at") or ""), reverse=True)
    if endpoint is None and not live:
        raise LookupError("no live endpoint in this chatft's ledger: name one with --endpoint (`chatft status`)")
    name = endpoint or str(live[0].deploy["endpoint"])
    entry = next((e for e in live if e.deploy.get("endpoint") == name), None)
    info = workspace.get_endpoint(name)
    if info is None or not info.scoring_uri:
        raise LookupError(f"no endpoint {name} in the workspace: `chatft status` lists the live ones")
    traffic = {k: v for k, v in (info.traffic or {}).items() if v}
    deployment = max(traffic, key=traffic.get) if traffic else str((entry.deploy if entry else {}).get("deployment"))
    secret = workspace.endpoint_key(name)  # a key, or a token, as the endpoint's auth mode says
    shape = entry.deploy.get("input_shape") if entry is not None else None
    messages = [{"role": "user", "content": prompt}]
    result = score(info.scoring_uri, secret, deployment, messages, ANSWER_TIMEOUT, shape=shape)
    return Asked(name, deployment, info.scoring_uri, messages, result)
