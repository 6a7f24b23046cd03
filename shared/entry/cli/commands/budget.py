"""`chatft budget [--json]`: the month's estimated spend by upload, against MONTHLY_BUDGET_USD.

An estimate from list prices (shared.domain.spend), which this command says: GPU hours of jobs at
GPU_HOURLY_PRICE_USD and endpoint hours at the size's list price; Azure's invoice is the truth.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from shared.entry.cli.commands.output import EXIT_ACCEPTED, fail, out
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt, target_applied
from shared.entry.cli.commands.upload import storage_failure

NOTE = (
    "an estimate from list prices: jobs' GPU hours at GPU_HOURLY_PRICE_USD, endpoints' hours up at their size's "
    "hourly list price; Azure's invoice is the truth"
)


def register(app: typer.Typer) -> None:
    """Add `chatft budget` to the `chatft` app."""

    @app.command("budget")
    def budget(
        as_json: Annotated[
            bool,
            typer.Option(
                "--json",
                help="One JSON object: month, estimated_spend_usd, budget_usd, share, note, and uploads (each: "
                "dataset, sha256, upload, status, gpu_hours, gpu_usd, endpoint_hours, endpoint_usd, instance_type, usd).",
            ),
        ] = False,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
    ) -> None:
        """The month's (UTC) estimated spend by upload, and MONTHLY_BUDGET_USD: at 80 % a warning event, at 100 %
        new jobs and deployments wait (live endpoints are not touched). Exit 0; 2 if settings or storage cannot be read."""
        with target_applied(settings_file, env, use_azd) as source:
            try:
                doc = _read()
            except Exception as exc:
                message = storage_failure(exc)
                if message is None:
                    raise
                fail(f"{message} (settings from {source})")
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
            sys.stdout.flush()
        else:
            _print(doc)
        raise typer.Exit(EXIT_ACCEPTED)


def _read() -> dict[str, Any]:
    import shared.entry.app_wiring
    from shared.flows.budget import spend_now

    settings = shared.entry.app_wiring.settings()
    spend = spend_now(shared.entry.app_wiring.ledger(create=False), settings, datetime.now(timezone.utc))

    def money(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "month": spend.month,
        "estimated_spend_usd": round(spend.usd, 2),
        "budget_usd": spend.budget,
        "share": None if spend.share is None else round(spend.share, 3),
        "gpu_hourly_price_usd": spend.gpu_price,
        "note": NOTE,
        "uploads": [
            {
                "dataset": u.dataset,
                "sha256": u.sha256,
                "upload": u.source,
                "status": u.status,
                "gpu_hours": round(u.gpu_hours, 3),
                "gpu_usd": money(u.gpu_usd),
                "endpoint_hours": round(u.endpoint_hours, 3),
                "endpoint_usd": money(u.endpoint_usd),
                "instance_type": u.instance_type or None,
                "usd": round(u.usd, 2),
            }
            for u in spend.uploads
        ],
    }


def _print(doc: dict[str, Any]) -> None:
    uploads = doc["uploads"]
    if uploads:
        table = Table(box=None, pad_edge=False)
        for column in ("upload", "sha256", "status", "GPU h", "GPU $", "endpoint h", "endpoint $", "total $"):
            table.add_column(column, overflow="fold", justify="right" if column[-1] in "h$" else "left")
        for u in uploads:
            table.add_row(
                escape(u["upload"]),
                u["sha256"][:12],
                u["status"],
                f"{u['gpu_hours']:.2f}",
                "-" if u["gpu_usd"] is None else f"{u['gpu_usd']:.2f}",
                f"{u['endpoint_hours']:.2f}",
                "-" if u["endpoint_usd"] is None else f"{u['endpoint_usd']:.2f}",
                f"{u['usd']:.2f}",
            )
        out.print(table)
    else:
        out.print(f"nothing spent in {doc['month']} yet")
    budget = doc["budget_usd"]
    total = f"{doc['month']}: about ${doc['estimated_spend_usd']:.2f}"
    if budget is None:
        out.print(f"{total} (no MONTHLY_BUDGET_USD set)", highlight=False)
    else:
        state = "new jobs and deployments wait" if doc["share"] >= 1 else "under it"
        out.print(f"{total} of MONTHLY_BUDGET_USD ${budget:g} ({doc['share']:.0%}): {state}", highlight=False)
    if doc["gpu_hourly_price_usd"] is None:
        out.print("[dim]GPU_HOURLY_PRICE_USD is empty: GPU hours are counted, not priced[/]")
    out.print(f"[dim]{NOTE}[/]")
