"""`chatft status [UPLOAD|--all] [--json]`: where each upload is, and since when.

One place answers "what happened to my file?": the ledger for everything after validation, the report
for a rejected upload (it has no ledger row), the upload container for one not validated yet.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.entry.cli.commands.output import EXIT_ACCEPTED, out
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt
from shared.entry.cli.commands.target_uploads import UPLOAD_HELP, Uploads, find_one, read_uploads
from shared.flows.upload_status import RECENT as RECENT_DEFAULT

JSON_HELP = (
    "Machine-readable output: with UPLOAD one JSON object, else a JSON array of them. Each has exactly the "
    "keys name, dataset, sha256, stage, status, detail, error, job, studio_url, progress, model, endpoint, step, "
    "scoring_uri, token_f1, latency_p95_ms, choices, report, uploaded_at, stage_since, stage_age_seconds, "
    "upload_age_seconds (null when unknown)."
)


def register(app: typer.Typer) -> None:
    """Add `chatft status` to the `chatft` app."""

    @app.command("status")
    def status(
        upload: Annotated[str | None, typer.Argument(help=UPLOAD_HELP)] = None,
        show_all: Annotated[
            bool, typer.Option("--all", help=f"Every upload (default: the {RECENT_DEFAULT} most recent).")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
    ) -> None:
        """Show the uploads: stage, job, model, endpoint, how long in this stage / since upload, last error, report.

        Stages: uploaded, rejected, validated, queued (waiting for a training slot or the budget: its place),
        submitted, training, registered, deploy_queued, deploying, live, held, retiring, retired, failed, canceled,
        deploy_failed, unreadable (a ledger row that does not parse). Exit 0; 2 if
        UPLOAD names nothing (or several uploads), or settings or storage cannot be read."""
        views = read_uploads(settings_file, env, use_azd, lambda found: _read(found, upload, show_all))
        now = datetime.now(timezone.utc)
        if as_json:
            from shared.domain.upload_stage import as_json as view_json

            docs = [view_json(v, now) for v in views]
            sys.stdout.buffer.write(orjson.dumps(docs[0] if upload is not None else docs) + b"\n")
            sys.stdout.flush()
        elif upload is not None:
            _print_one(views[0], now)
        else:
            _print_table(views, now, show_all)
        raise typer.Exit(EXIT_ACCEPTED)


def _read(uploads: Uploads, query: str | None, show_all: bool) -> list:
    from shared.flows.upload_status import list_uploads

    if query is not None:
        return [_with_progress(find_one(uploads, query))]
    return list_uploads(uploads.ledger, uploads.store, None if show_all else RECENT_DEFAULT)


def _with_progress(view):
    """A training upload's view with its job's newest step and training loss (read from the backend)."""
    import dataclasses

    import shared.entry.app_wiring
    from shared.domain.upload_stage import Stage
    from shared.flows.upload_status import training_progress

    if view.stage is not Stage.TRAINING or not view.job:
        return view
    return dataclasses.replace(view, progress=training_progress(shared.entry.app_wiring.workspace(), view.job))


def _ages(view, now: datetime) -> str:
    from shared.domain.upload_stage import age_text

    def seconds(at: datetime | None) -> float | None:
        return None if at is None else (now - at).total_seconds()

    return f"{age_text(seconds(view.since))} / {age_text(seconds(view.uploaded_at))}"


def _stage_text(view) -> str:
    colour = "red" if view.failed else "green" if view.stage.value == "live" else "cyan"
    colour = "yellow" if view.stage.value in ("held", "queued", "deploy_queued") else colour
    step = f" ({view.step})" if view.step else (f" (#{view.queue_place})" if view.queue_place else "")
    return f"[{colour}]{view.stage.value}[/]{escape(step)}"


COLUMNS = (
    "upload",
    "sha256",
    "stage",
    "job",
    "model",
    "endpoint",
    "F1 / p95",
    "age (stage / upload)",
    "error",
    "report",
)
NARROW = ("upload", "stage", "endpoint", "age (stage / upload)", "F1 / p95", "model", "sha256", "error")
"""Below WIDE columns a terminal gets the columns that fit whole, in this order of importance (the upload and
its stage always; `chatft status NAME` shows the rest)."""
WIDE = 160
ERROR_MIN = 20
"""The error column wraps at spaces; at least this wide, a longer word in it ends in an ellipsis."""


def _print_table(views: list, now: datetime, show_all: bool) -> None:
    if not views:
        out.print("no uploads yet: `chatft upload FILE` puts one in the upload container")
        return
    # a pipe or a file gets every column on one line each; a narrow terminal the columns that fit
    console = out if out.is_terminal else Console(width=10_000, soft_wrap=True, highlight=False)
    rows = [_cells(v, now) for v in views]
    columns, widths = _layout(rows, console.width)
    table = Table(show_lines=False, pad_edge=False, box=None, width=None)
    for column in columns:  # a word is never folded over two lines: it fits its column or ends in an ellipsis
        table.add_column(column, overflow="ellipsis", width=widths[column])
    for cells in rows:
        table.add_row(*(cells[c] for c in columns))
    console.print(table)
    if len(columns) < len(COLUMNS):
        out.print("[dim]job and report: `chatft status NAME`, a wider terminal, or --json[/]")
    if not show_all and len(views) >= RECENT_DEFAULT:
        out.print(f"[dim]the {RECENT_DEFAULT} most recent; --all lists every upload[/]")


def _cells(v, now: datetime) -> dict[str, str]:
    return {
        "upload": escape(v.name),
        "sha256": v.sha256[:12] or "-",
        "stage": _stage_text(v),
        "job": escape(v.job) or "-",
        "model": escape(v.model.rsplit(":", 1)[-1] if v.model else "") or "-",
        "endpoint": escape(v.endpoint) or "-",
        "F1 / p95": _evaluated(v),
        "age (stage / upload)": _ages(v, now),
        "error": escape(v.error[:120]) or "-",
        "report": escape(v.report) or "-",
    }


def _layout(rows: list[dict[str, str]], width: int) -> tuple[tuple[str, ...], dict[str, int]]:
    """The columns shown and each one's width: the columns, most important first (NARROW, then job and report in a
    WIDE terminal), that fit side by side (two spaces apart) at their longest word (header included), so no word is
    ever broken; the space left widens them, most important first, up to their longest line."""
    from rich.text import Text

    plain = {c: [c, *(Text.from_markup(r[c]).plain for r in rows)] for c in COLUMNS}
    need = {c: max(len(w) for text in plain[c] for w in text.split()) for c in COLUMNS}
    need["error"] = min(need["error"], ERROR_MIN)
    full = {c: max(len(text) for text in plain[c]) for c in COLUMNS}
    chosen, used = [], -2
    for column in (*NARROW, "job", "report") if width >= WIDE else NARROW:
        if column in ("upload", "stage") or used + 2 + need[column] <= width:
            chosen.append(column)
            used += 2 + need[column]
    widths = {c: min(need[c], width) for c in chosen}
    spare = width - used
    for column in chosen:
        extra = max(0, min(spare, full[column] - widths[column]))
        widths[column] += extra
        spare -= extra
    return tuple(c for c in COLUMNS if c in chosen), widths


def _evaluated(view) -> str:
    """The endpoint's token F1 and p95 latency on held-out conversations (shared.flows.evaluation), or "-"."""
    if view.token_f1 is None:
        return "-"
    return f"{view.token_f1:.2f} / {'-' if view.latency_p95_ms is None else view.latency_p95_ms} ms"


def _print_one(view, now: datetime) -> None:
    from shared.domain.upload_stage import stalled_hint

    rows = [
        ("upload", view.name),
        ("sha256", view.sha256 or "-"),
        ("dataset", view.dataset),
        ("stage", None),
        ("detail", view.detail),
        ("hint", stalled_hint(view, now)),
        ("age", f"{_ages(view, now)} (in this stage / since upload)"),
        ("job", view.job),
        ("progress", view.progress),
        ("studio", view.studio_url),
        ("model", view.model),
        ("choices", view.choices),
        ("endpoint", view.endpoint),
        ("scoring", view.scoring_uri),
        ("eval", view.evaluation),
        ("error", view.error),
        ("report", view.report),
    ]
    for label, value in rows:
        if label == "stage":
            out.print(f"{label:<9} {_stage_text(view)}", highlight=False)
        elif value:
            out.print(f"{label:<9} {escape(value)}", highlight=False)
    passed = " → ".join(m.stage.value for m in view.milestones)
    if passed:
        out.print(f"{'history':<9} {passed}", highlight=False)
    for done in view.history:  # keep / release / retire / redeploy, kept across redeploys
        out.print(f"{'':<9} {escape(done)}", highlight=False)
