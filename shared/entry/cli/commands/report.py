"""`chatft report UPLOAD [--out DIR]`: print an upload's report.md and save it with training.png and its events.

Reads the prepared container and the ledger of whichever chatft the options name (a running `chatft dev`,
`--env`, `--settings`), so a report can be read while dev runs or from Azure, without Storage Explorer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape

from shared.entry.cli.commands.output import EXIT_ACCEPTED, EXIT_REJECTED, err, fail, out
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt
from shared.entry.cli.commands.target_uploads import UploadArg, Uploads, find_one, read_uploads

DEFAULT_OUT = Path("chatft-reports")
"""Without --out, each upload's files go to ./chatft-reports/<dataset>-<first 12 of the SHA-256>/."""


def register(app: typer.Typer) -> None:
    """Add `chatft report` to the `chatft` app."""

    @app.command("report")
    def report(
        upload: UploadArg,
        out_dir: Annotated[
            Path | None,
            typer.Option("--out", help=f"Folder to save into (default: {DEFAULT_OUT}/<dataset>-<sha256 prefix>)."),
        ] = None,
        as_json: Annotated[
            bool,
            typer.Option(
                "--json",
                help="Print report.json's object instead of report.md, with `saved`: each file written -> its path.",
            ),
        ] = False,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
    ) -> None:
        """Print the upload's report.md; save it with report.json, training.png and events.jsonl (its lifecycle
        events as CloudEvents, one per line). Exit 0; 1 if it has no report yet; 2 if UPLOAD names nothing
        (or several uploads), or settings or storage cannot be read."""
        view, files = read_uploads(settings_file, env, use_azd, lambda found: _read(found, upload))
        if files.markdown is None:
            fail(f"{view.name} has no report yet (stage {view.stage.value}): {view.detail}", EXIT_REJECTED)
        folder = out_dir or DEFAULT_OUT / f"{view.dataset}-{view.sha256[:12]}"
        try:
            saved = _save(folder, files)
        except OSError as exc:
            fail(f"cannot write to {folder}: {exc.strerror or exc}")
        if as_json:  # report.json's object, as `chatft prepare --json` prints it, and where each file went
            doc = orjson.loads(files.files.get("report.json") or b"{}")
            sys.stdout.buffer.write(orjson.dumps({**doc, "saved": {n: str(p) for n, p in saved.items()}}) + b"\n")
            sys.stdout.flush()
        else:
            out.print(files.markdown, markup=False, highlight=False, end="" if files.markdown.endswith("\n") else "\n")
        err.print(
            f"[dim]saved {escape(_saved_line(saved, len(files.events)))} in {escape(str(folder))}[/]", highlight=False
        )
        raise typer.Exit(EXIT_ACCEPTED)


def _read(uploads: Uploads, query: str):
    """(the upload's view, its report files and events)."""
    from shared.azure.storage import BlobPreparedStore
    from shared.domain.ledger import UploadKey
    from shared.domain.lifecycle_events import event_source
    from shared.domain.naming import dataset_prefix
    from shared.flows.report_files import ReportFiles, read_report_files

    view = find_one(uploads, query)
    if not view.sha256:  # not validated yet: no report to read
        return view, ReportFiles({})
    entry = uploads.ledger.get(UploadKey(view.dataset, view.sha256)) if view.status else None
    source = event_source(uploads.settings.workspace_resource_id)
    prepared = BlobPreparedStore(uploads.client, uploads.settings.prepared_container)
    return view, read_report_files(prepared, dataset_prefix(view.dataset, view.sha256), entry, source)


def _save(folder: Path, files) -> dict[str, Path]:
    """Write the files (and events.jsonl when there are events); returns each name written and its path."""
    from shared.flows.report_files import EVENTS_FILE

    folder.mkdir(parents=True, exist_ok=True)
    saved = {name: folder / name for name in files.files}
    for name, raw in files.files.items():
        saved[name].write_bytes(raw)
    if files.events:
        saved[EVENTS_FILE] = folder / EVENTS_FILE
        lines = "".join(json.dumps(e, sort_keys=True) + "\n" for e in files.events)
        saved[EVENTS_FILE].write_text(lines, encoding="utf-8")
    return saved


def _saved_line(saved: dict[str, Path], events: int) -> str:
    """'report.md, report.json, events.jsonl (3 events)'."""
    from shared.flows.report_files import EVENTS_FILE

    return ", ".join(f"{name} ({events} events)" if name == EVENTS_FILE else name for name in saved)
