"""`chatft report UPLOAD [--out DIR]`: print an upload's report.md and save it with training.png and its events.

Reads the prepared container and the ledger of whichever chatft the options name (a running `chatft dev`,
`--env`, `--settings`), so a report can be read while dev runs or from Azure, without Storage Explorer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shared.entry.cli.commands.output import EXIT_ACCEPTED, EXIT_REJECTED, err, fail, out
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt, target_applied
from shared.entry.cli.commands.upload import storage_failure

DEFAULT_OUT = Path("chatft-reports")
"""Without --out, each upload's files go to ./chatft-reports/<dataset>-<first 12 of the SHA-256>/."""


def register(app: typer.Typer) -> None:
    """Add `chatft report` to the `chatft` app."""

    @app.command("report")
    def report(
        upload: Annotated[
            str, typer.Argument(help="A blob name, a job or endpoint name, or 6+ hex digits of the file's SHA-256.")
        ],
        out_dir: Annotated[
            Path | None,
            typer.Option("--out", help=f"Folder to save into (default: {DEFAULT_OUT}/<dataset>-<sha256 prefix>)."),
        ] = None,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
    ) -> None:
        """Print the upload's report.md; save it with report.json, training.png and events.jsonl (its lifecycle
        events as CloudEvents, one per line). Exit 0; 1 if it has no report yet; 2 if UPLOAD names nothing
        (or several uploads), or settings or storage cannot be read."""
        from shared.domain.upload_lookup import UploadNotFound

        with target_applied(settings_file, env, use_azd) as source:
            try:
                view, files = _read(upload)
            except UploadNotFound as exc:
                fail(str(exc))
            except Exception as exc:
                message = storage_failure(exc)
                if message is None:
                    raise
                fail(f"{message} (settings from {source})")
        if files.markdown is None:
            fail(f"{view.name} has no report yet (stage {view.stage.value}): {view.detail}", EXIT_REJECTED)
        folder = out_dir or DEFAULT_OUT / f"{view.dataset}-{view.sha256[:12]}"
        try:
            saved = _save(folder, files)
        except OSError as exc:
            fail(f"cannot write to {folder}: {exc.strerror or exc}")
        out.print(files.markdown, markup=False, highlight=False, end="" if files.markdown.endswith("\n") else "\n")
        err.print(f"[dim]saved {escape(', '.join(saved))} in {escape(str(folder))}[/]", highlight=False)
        raise typer.Exit(EXIT_ACCEPTED)


def _read(query: str):
    """(the upload's view, its report files and events)."""
    import shared.entry.app_wiring
    from shared.azure.storage import BlobPreparedStore
    from shared.azure.upload import UploadContainer, cli_retry, storage_client
    from shared.domain.ledger import UploadKey
    from shared.domain.lifecycle_events import event_source
    from shared.domain.naming import dataset_prefix
    from shared.flows.report_files import ReportFiles, read_report_files
    from shared.flows.upload_status import find

    if not query.strip():
        fail("UPLOAD is empty: give a blob name, a job or endpoint name, or a SHA-256 prefix")
    settings = shared.entry.app_wiring.settings()
    client = storage_client(retry_policy=cli_retry())
    store = UploadContainer(client, settings.upload_container, settings.prepared_container)
    store.list_uploads()  # storage reachable? (fails in seconds, before the ledger's slower retries)
    ledger = shared.entry.app_wiring.ledger(create=False)
    view = find(ledger, store, query)
    if not view.sha256:  # not validated yet: no report to read
        return view, ReportFiles({})
    entry = ledger.get(UploadKey(view.dataset, view.sha256)) if view.status else None
    source = event_source(settings.workspace_resource_id)
    prepared = BlobPreparedStore(client, settings.prepared_container)
    return view, read_report_files(prepared, dataset_prefix(view.dataset, view.sha256), entry, source)


def _save(folder: Path, files) -> list[str]:
    """Write the files (and events.jsonl when there are events); returns the names written."""
    from shared.flows.report_files import EVENTS_FILE

    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.files.items():
        (folder / name).write_bytes(raw)
    saved = list(files.files)
    if files.events:
        lines = "".join(json.dumps(e, sort_keys=True) + "\n" for e in files.events)
        (folder / EVENTS_FILE).write_text(lines, encoding="utf-8")
        saved.append(f"{EVENTS_FILE} ({len(files.events)} events)")
    return saved
