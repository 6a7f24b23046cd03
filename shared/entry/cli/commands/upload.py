"""`chatft upload FILE`: validate locally, upload to the upload container, and optionally follow the upload
through every stage until its endpoint is live (or it fails).

Validating first means a broken line 7 costs a second, not a round trip through storage and the ingest
function: a rejected file never reaches storage. The upload never replaces an existing one unless asked
(see shared.azure.upload).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shared.domain.shell import chatft
from shared.entry.cli.commands import json_lines
from shared.entry.cli.commands.output import EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE, err, fail, open_input, out
from shared.entry.cli.commands.target import AzdOpt, EnvOpt, SettingsOpt, reconnect, session_ended, target_applied
from shared.entry.cli.commands.validation_report import print_report

EXIT_INTERRUPTED = 130
"""Ctrl-C, as a shell reports SIGINT (128 + 2)."""
FOLLOW_INTERVAL = 5.0
FOLLOW_TIMEOUT = "6h"
"""Fine-tuning a 14B model takes hours; a deployment up to DEPLOY_DEADLINE_MINUTES more."""
RECONNECTING = "dev is not running (or restarted): reconnecting…"
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*\Z")


def storage_failure(exc: Exception) -> str | None:
    """One line for an error reaching storage or reading settings; None for anything else (a bug)."""
    from azure.core.exceptions import AzureError

    from shared.settings import SettingsError

    if isinstance(exc, SettingsError):
        return str(exc)
    from shared.azure.identity import sign_in_failure

    if (signed_out := sign_in_failure(exc, "storage", connection="CHATFT_STORAGE")) is not None:
        return signed_out
    if isinstance(exc, AzureError):
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):  # refused, reset, timed out
            return f"storage: {type(exc).__name__}: {first} (no answer: is it running? for Azurite, `chatft dev`)"
        return f"storage: {type(exc).__name__}: {first}"
    if isinstance(exc, ValueError):  # e.g. a malformed connection string
        return f"settings: {exc}"
    return None


def parse_duration(text: str) -> float:
    """'90', '90s', '30m', '6h', '1d' -> seconds."""
    found = _DURATION.match(text)
    if not found:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 30m, 6h")
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]


def _validate_and_hash(path: Path, validate: bool):  # -> tuple[Report | None, FileDigest]
    """One read: the validator's verdict (unless `validate` is False) and the file's SHA-256 and MD5."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from shared.azure.upload import Hasher
    from shared.domain.chatdata.streams import buffered, file_chunks
    from shared.domain.chatdata.validator import validate_stream
    from shared.settings import SettingsError, validation_options

    try:
        options = validation_options()
    except SettingsError as exc:
        fail(str(exc))
    hasher = Hasher()
    size = path.stat().st_size
    columns = (
        TextColumn("validating" if validate else "hashing"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    try:
        with path.open("rb") as f, Progress(*columns, console=err, transient=True, disable=size < 4 << 20) as bar:
            task = bar.add_task("read", total=size)

            def tap(chunk: bytes) -> None:
                hasher.update(chunk)
                bar.advance(task, len(chunk))

            stream = buffered(file_chunks(f), tap=tap)
            report = validate_stream(stream, options, source=str(path), read_all=False) if validate else None
            while (report is None or report.valid) and stream.read(1 << 20):  # hash what validation did not read
                pass  # (a rejected file is not uploaded: its hash is never needed)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        err.print("interrupted: nothing was uploaded", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return report, hasher.digest()


def _without_invalid(path: Path):  # -> tuple[Report, FileDigest, Path]
    """--drop-invalid: validate dropping invalid lines; when some were dropped, the file to upload is a copy holding
    only the valid conversations (as the validator writes them), so the ingest accepts exactly those. Which file
    was sent is the third value; the copy is removed when the command ends."""
    import atexit
    import dataclasses
    import tempfile

    from shared.domain.chatdata.report import dropped_text
    from shared.domain.chatdata.validator import validate_stream
    from shared.settings import SettingsError, validation_options

    try:
        options = dataclasses.replace(validation_options(), drop_invalid=True)
    except SettingsError as exc:
        fail(str(exc))
    with tempfile.NamedTemporaryFile(prefix="chatft-valid-", suffix=".jsonl", delete=False) as copy:
        atexit.register(Path(copy.name).unlink, missing_ok=True)

        class _AllRows:  # every kept row, in file order; which split it falls in does not matter here
            def write(self, split: int, row: bytes) -> None:
                copy.write(row)

            def move_train_rows(self, moves: dict[int, int]) -> None:
                pass

        try:
            with path.open("rb") as f:
                report = validate_stream(f, options, source=str(path), sink=_AllRows())
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}")
    if not report.valid or not report.dropped:
        return report, _validate_and_hash(path, validate=False)[1], path  # nothing dropped: the file as it is
    out.print(
        f"dropped {report.dropped.count} invalid line(s): {dropped_text(report.as_dict())}; "
        f"uploading the {report.conversations} valid conversations",
        highlight=False,
    )
    return report, _validate_and_hash(Path(copy.name), validate=False)[1], Path(copy.name)


def register(app: typer.Typer) -> None:
    """Add `chatft upload` to the `chatft` app."""

    @app.command("upload")
    def upload(
        ctx: typer.Context,
        path: Annotated[Path, typer.Argument(help="The JSONL file of chat conversations.")],
        name: Annotated[
            str | None,
            typer.Option("--name", help="Blob name in the upload container (default: the file's name)."),
        ] = None,
        follow: Annotated[
            bool, typer.Option("--follow", help="Print each stage as it happens, until live or failed.")
        ] = False,
        no_validate: Annotated[
            bool, typer.Option("--no-validate", help="Skip the local validation (the ingest function still validates).")
        ] = False,
        drop_invalid: Annotated[
            bool,
            typer.Option(
                "--drop-invalid", help="Upload only the valid conversations (as `chatft prepare --drop-invalid`)."
            ),
        ] = False,
        overwrite: Annotated[
            bool,
            typer.Option(
                "--overwrite",
                help="Replace a blob of that name (the only way to: without it a free name gets a -2, -3 suffix). "
                "Re-uploading the same bytes under the same name is how a failed upload is retried.",
            ),
        ] = False,
        interval: Annotated[
            float, typer.Option("--interval", min=0.1, help="--follow: seconds between looks at the ledger.")
        ] = FOLLOW_INTERVAL,
        timeout: Annotated[
            str, typer.Option("--timeout", help="--follow: give up after this long (90s, 30m, 6h); exit 2.")
        ] = FOLLOW_TIMEOUT,
        concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=32, help="Blocks uploaded at once.")] = 4,
        model: Annotated[
            str | None, typer.Option("--model", help="Fine-tune this registry model instead of FINETUNE_MODEL.")
        ] = None,
        epochs: Annotated[
            int | None, typer.Option("--epochs", min=1, help="Training epochs (num_train_epochs), this upload only.")
        ] = None,
        learning_rate: Annotated[
            float | None, typer.Option("--learning-rate", help="Learning rate for this upload only.")
        ] = None,
        suffix: Annotated[
            str | None,
            typer.Option(
                "--suffix", help="Registered model name: <model>-<dataset>-<suffix> (over REGISTERED_MODEL_SUFFIX)."
            ),
        ] = None,
        as_json: Annotated[
            bool,
            typer.Option(
                "--json",
                help="JSON lines on stdout, one event per line (uploaded, already_uploaded or rejected; with "
                "--follow each stage, step, training progress and done as they happen); the human lines go to stderr.",
            ),
        ] = False,
        settings_file: SettingsOpt = None,
        env: EnvOpt = None,
        use_azd: AzdOpt = False,
    ) -> None:
        """Validate FILE locally, upload it to the upload container, and (--follow) watch it go live.

        Exit codes: 0 uploaded, or already uploaded (with --follow: live); 1 rejected by the validator, failed,
        the upload did not verify, or the same bytes are being uploaded right now; 2 usage, settings or storage
        error, or --follow timed out."""
        seconds = parse_duration(timeout)
        if as_json:
            json_lines.start(ctx)
        choices = _choices(model, epochs, learning_rate, suffix)
        open_input(path).close()  # a regular, readable file, or exit 2 now
        blob = name if name is not None else path.name
        if not blob.strip() or blob.endswith("/"):
            fail(f"--name {blob!r} is not a blob name")
        _refuse_unless_jsonl(path, blob, given=name is not None)
        with target_applied(settings_file, env, use_azd) as source:
            retry_flags = ["--drop-invalid"] if drop_invalid else []
            if drop_invalid and not no_validate:
                report, digest, sent = _without_invalid(path)
            else:
                (report, digest), sent = _validate_and_hash(path, validate=not no_validate), path
            if report is not None and not report.valid:
                json_lines.emit("rejected", file=str(path), report=report.as_dict())
                print_report(report)  # the same summary as `chatft validate`
                err.print("[red]rejected:[/red] nothing was uploaded; fix the lines above and upload again")
                raise typer.Exit(EXIT_REJECTED)
            try:
                same = None if overwrite else _same_bytes(digest.sha256)
                claim = None
                if same is None:  # claimed before a byte is written: uploads of one file at once store it once
                    claim, same = _claim_bytes(digest.sha256, blob)
                if same is not None:  # a second copy would train the same data again, on GPUs, for nothing
                    uploaded, store = same
                    json_lines.emit("already_uploaded", name=uploaded.name, sha256=digest.sha256)
                    out.print(
                        f"already uploaded as {escape(uploaded.name)} (same bytes, sha256 {digest.sha256[:12]}): "
                        f"not uploaded again. {escape(chatft('status', uploaded.name))} shows it; to retry it, "
                        f"{escape(chatft('upload', str(path), '--name', uploaded.name, '--overwrite', *retry_flags))}",
                        highlight=False,
                    )
                    if choices.given():  # the bytes are trained once: its choices are the first upload's
                        err.print(
                            "[yellow]note:[/] the choices given were not applied: these bytes were already uploaded "
                            "with their own (`chatft status` shows them); new choices need new data",
                            highlight=False,
                        )
                    if follow:
                        raise typer.Exit(follow_upload(uploaded, digest.sha256, store, interval, seconds))
                    raise typer.Exit(EXIT_ACCEPTED)
                uploaded, store = _upload(sent, blob, digest, overwrite, concurrency, claim, choices.as_metadata())
            except typer.Exit:
                raise
            except KeyboardInterrupt as exc:  # one line saying what storage holds, never a blank line
                from shared.azure.upload import UploadInterrupted

                said = str(exc) if isinstance(exc, UploadInterrupted) else "interrupted: nothing was uploaded"
                err.print(escape(said), highlight=False)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            except Exception as exc:
                from shared.azure.upload import UploadError

                if isinstance(exc, UploadError):
                    fail(str(exc), EXIT_REJECTED)
                message = storage_failure(exc)
                if message is None:
                    raise
                fail(f"{message} (settings from {source})")
            _say_uploaded(path, uploaded, digest, store.upload_container, report)
            if follow:
                code = follow_upload(uploaded, digest.sha256, store, interval, seconds)
                raise typer.Exit(code)
        raise typer.Exit(EXIT_ACCEPTED)


def _refuse_unless_jsonl(path: Path, blob: str, *, given: bool) -> None:
    """The ingest function takes only *.jsonl names (shared.domain.naming.is_upload): any other would sit in the
    container with nothing happening. Refused, never renamed: `az storage blob upload -n` keeps the name it is
    given, and OpenAI's fine-tuning uploads take only JSONL; the hint is the command to copy."""
    import shlex

    from shared.domain.naming import is_upload
    from shared.flows.upload_status import jsonl_name

    if is_upload(blob):
        return
    what = f"--name {blob}" if given else str(path)
    again = f"chatft upload {shlex.quote(str(path))} --name {shlex.quote(jsonl_name(blob))}"
    fail(
        f"{what}: the ingest function takes only names ending in .jsonl (one JSON conversation per line), "
        f"so nothing was uploaded; if the file is JSON Lines: `{again}`"
    )


def _same_bytes(sha256: str):  # -> (Uploaded, UploadContainer) | None
    """The blob `chatft upload` already put these exact bytes in (its sha256 metadata), if any."""
    import shared.entry.app_wiring
    from shared.azure.upload import UploadContainer, Uploaded, cli_retry, storage_client

    settings = shared.entry.app_wiring.settings()
    store = UploadContainer(
        storage_client(retry_policy=cli_retry()), settings.upload_container, settings.prepared_container
    )
    found = [b for b in store.list_uploads() if b.sha256 == sha256]
    if not found:
        return None
    newest = max(found, key=lambda b: b.last_modified.timestamp() if b.last_modified else 0.0)
    return Uploaded(newest.name, newest.etag, newest.size, newest.last_modified), store


def _claim_bytes(sha256: str, blob: str):  # -> (HeldClaim | None, (Uploaded, UploadContainer) | None)
    """Claim these bytes for `blob` before writing anything (shared.azure.content_claims: a create keyed by the
    SHA-256 that only one caller wins). Held by another name: that upload is the answer when its blob is
    there; while it is still being uploaded this one is refused (exit 1), never a second copy."""
    from datetime import datetime, timezone

    import shared.entry.app_wiring
    from shared.azure.content_claims import BlobContentClaims, ClaimContended, HeldClaim
    from shared.azure.upload import UploadContainer, Uploaded, cli_retry, storage_client
    from shared.domain.content_claim import STALE_AFTER

    settings = shared.entry.app_wiring.settings()
    service = storage_client(retry_policy=cli_retry())
    claims = BlobContentClaims(service, settings.prepared_container, settings.upload_container)
    try:
        found = claims.claim(sha256, blob, by="chatft upload", now=datetime.now(timezone.utc))
    except ClaimContended as exc:
        fail(str(exc))
    if found.acquired:
        return HeldClaim(claims, found.claim), None
    holder, seen = found.claim.blob, found.seen
    if found.uploaded and seen is not None:
        store = UploadContainer(service, settings.upload_container, settings.prepared_container)
        return None, (Uploaded(holder, seen.etag, seen.size, seen.last_modified), store)
    fail(
        f"not uploaded again: the same bytes are {found.reason} (by another `chatft upload`); "
        f"{escape(chatft('status', holder))} shows it once it is there. If that upload was stopped, its claim lapses "
        f"{STALE_AFTER.total_seconds() / 60:.0f} min after its last progress: upload again then",
        EXIT_REJECTED,
    )


def _choices(model: str | None, epochs: int | None, learning_rate: float | None, suffix: str | None):
    """This upload's own choices (set as blob metadata: the ingest reads them there); a malformed one exits 2
    naming the option. The component's and the model's own limits are checked in preflight, after the upload."""
    from shared.domain.finetune.choices import OPTIONS, UploadChoices

    choices = UploadChoices(
        model=(model or "").strip(),
        epochs="" if epochs is None else str(epochs),
        learning_rate="" if learning_rate is None else repr(learning_rate),
        suffix=(suffix or "").strip(),
    )
    for choice, why in choices.problems():
        fail(f"{OPTIONS[choice]}: {why}")
    return choices


def _upload(path: Path, blob: str, digest, overwrite: bool, concurrency: int, claim=None, metadata=None):
    # -> (Uploaded, Store)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    import shared.entry.app_wiring
    from shared.azure.storage import SEND_SECONDS
    from shared.azure.upload import BLOCK_SIZE, SINGLE_PUT_SIZE, UploadContainer, cli_retry, storage_client

    settings = shared.entry.app_wiring.settings()
    service = storage_client(  # an 8 MiB block is sent under the connect timeout (see SEND_SECONDS)
        max_block_size=BLOCK_SIZE,
        max_single_put_size=SINGLE_PUT_SIZE,
        retry_policy=cli_retry(),
        connection_timeout=SEND_SECONDS,
    )
    store = UploadContainer(service, settings.upload_container, settings.prepared_container)
    columns = (
        TextColumn("uploading"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("upload", total=digest.size)

        def progress(current: int, total: int | None) -> None:  # the SDK's progress_hook (any upload thread)
            bar.update(task, completed=current, total=total or digest.size)

        uploaded = store.upload_file(
            path,
            blob,
            digest,
            overwrite=overwrite,
            progress=progress,
            max_concurrency=concurrency,
            claim=claim,
            metadata=metadata,
        )
    return uploaded, store


def _say_uploaded(path: Path, uploaded, digest, container: str, report) -> None:
    json_lines.emit(
        "uploaded",
        file=str(path),
        container=container,
        name=uploaded.name,
        size=digest.size,
        sha256=digest.sha256,
        replaced=bool(uploaded.replaced),
        skipped=list(uploaded.skipped),
        conversations=report.conversations if report is not None else None,
    )
    if report is not None:
        out.print(
            f"[green]✓[/] [bold]{'checked':<14}[/] {escape(str(path))}: {report.conversations} conversations, "
            f"{report.warnings.total} warnings (locally)",
            highlight=False,
        )
    for taken in uploaded.skipped:
        out.print(f"  {escape(taken)} is taken (never overwritten without --overwrite)", highlight=False)
    verb = "replaced" if uploaded.replaced else "uploaded"
    out.print(
        f"[green]✓[/] [bold]{verb:<14}[/] {escape(container)}/{escape(uploaded.name)} ({digest.size:,} bytes, "
        f"sha256 {digest.sha256[:12]}, MD5 verified)",
        highlight=False,
    )
    out.print(f"blob name: {escape(uploaded.name)}", highlight=False)


def follow_upload(uploaded, sha256: str, store, interval: float, timeout: float) -> int:
    """Print each stage once, in order, as the ledger and the report show it; the exit code at the end."""
    import shared.entry.app_wiring
    from shared.domain.upload_stage import Stage, stalled_hint
    from shared.flows.upload_status import follow_view

    started = time.monotonic()
    printed: set[Stage] = set()
    step, problem = "", ""
    ledger = None
    training = _TrainingLines()
    hinted = False
    try:
        while True:
            try:
                ledger = ledger or shared.entry.app_wiring.ledger(create=False)
                view = follow_view(
                    ledger,
                    store,
                    name=uploaded.name,
                    sha256=sha256,
                    etag=uploaded.etag,
                    uploaded_at=uploaded.last_modified,
                )
                problem = ""
            except Exception as exc:
                message = storage_failure(exc)
                if message is None:
                    raise
                view = None
                if session_ended():  # `chatft dev` was killed or restarted: find it again (new Azurite ports)
                    if problem != RECONNECTING:
                        err.print(f"[yellow]{RECONNECTING}[/]", highlight=False)
                    problem = RECONNECTING
                    if (source := reconnect()) is not None:
                        store, ledger, problem = _store_again(), None, ""
                        err.print(f"reconnected: {escape(source)}", highlight=False)
                        continue
                elif message != problem:  # once per distinct problem; keep polling until the timeout
                    err.print(f"[yellow]cannot read the status yet:[/] {escape(message)}", highlight=False)
                    problem = message
            if view is not None:
                for milestone in view.milestones:
                    if milestone.stage not in printed:
                        printed.add(milestone.stage)
                        _stage_line(milestone, uploaded.last_modified, time.monotonic() - started)
                        step = view.step if milestone.stage is Stage.DEPLOYING else step
                training.look(view)
                if not hinted and (hint := stalled_hint(view, datetime.now(timezone.utc))):
                    err.print(f"[dim]{escape(hint)}[/]", highlight=False)
                    hinted = True
                if view.stage is Stage.DEPLOYING and view.step and view.step != step:
                    step = view.step
                    json_lines.emit("step", step=step)
                    out.print(f"  {'':<14} step {escape(step)}", highlight=False)
                if view.final:
                    json_lines.emit(
                        "done", stage=view.stage.value, failed=bool(view.failed), not_submitted=bool(view.not_submitted)
                    )
                    if view.not_submitted:
                        out.print("not submitted for fine-tuning (see the line above); nothing more will happen")
                    return EXIT_REJECTED if view.failed else EXIT_ACCEPTED
            if time.monotonic() - started > timeout:
                where = view.stage.value if view is not None else "unknown"
                err.print(
                    f"[yellow]timed out[/] after {timeout:.0f}s following {escape(uploaded.name)} (now {where}); "
                    f"it goes on: {escape(chatft('status', uploaded.name))} shows it later",
                    highlight=False,
                )
                return EXIT_USAGE
            time.sleep(interval)
    except KeyboardInterrupt:
        err.print(f"stopped following; the upload goes on: {escape(chatft('status', uploaded.name))}", highlight=False)
        return 130


class _TrainingLines:
    """--follow while the job trains (its studio link is on the submitted line, once): a line each time the
    newest step or training loss changes, nothing when nothing is new, and one dim line at most, once, when
    the tracking store cannot be read: progress is a courtesy, never a reason to stop following."""

    def __init__(self) -> None:
        self.last = ""
        self.warned = False

    def look(self, view) -> None:
        from shared.domain.upload_stage import Stage

        if view.stage is not Stage.TRAINING or not view.job:
            return
        read = _read_progress(view.job)  # each look: a file read offline, a few MLflow requests on Azure
        if read.problem and not self.warned:
            self.warned = True
            err.print(f"[dim]no training progress: {escape(read.problem)}[/]", highlight=False)
        found = read.progress
        if found is None or found.line == self.last:
            return
        self.last = found.line
        json_lines.emit(
            "progress",
            job=view.job,
            studio_url=view.studio_url or None,
            unit=found.unit,
            step=found.step,
            train_loss=found.train_loss,
        )
        out.print(f"  {'':<14} {escape(found.line)}", highlight=False)


def _read_progress(job: str):  # -> ProgressRead
    """The job's newest step and training loss from the target's backend (shared.flows.upload_status)."""
    import shared.entry.app_wiring
    from shared.flows.upload_status import ProgressRead, job_progress, tracking_failure

    try:
        workspace = shared.entry.app_wiring.workspace()
    except Exception as exc:  # the backend's settings or client could not be made
        return ProgressRead(problem=tracking_failure(exc) or f"{type(exc).__name__}: {exc}")
    return job_progress(workspace, job)


def _store_again():  # -> UploadContainer
    """The upload container as the settings now say (after reconnecting to a restarted dev)."""
    import shared.entry.app_wiring
    from shared.azure.upload import UploadContainer, storage_client

    settings = shared.entry.app_wiring.settings()
    return UploadContainer(storage_client(), settings.upload_container, settings.prepared_container)


def _stage_line(milestone, uploaded_at, elapsed: float) -> None:
    """One stage: its real time (and how long after the upload) when the ledger or report says, else how long
    this command has been following."""
    from shared.domain.durations import duration_text
    from shared.domain.upload_stage import FAILURES

    stage, at = milestone.stage, milestone.at
    if stage.value not in ("checked", "uploaded"):  # those two are the `uploaded` event
        json_lines.emit("stage", stage=stage.value, detail=milestone.detail, at=at.isoformat() if at else None)
    mark = "[red]✗[/]" if stage in FAILURES else "[green]✓[/]"
    when = f"{elapsed:.0f}s"
    if at is not None:
        when = at.astimezone().strftime("%H:%M:%S")
        if uploaded_at is not None and at >= uploaded_at:
            when += f", {duration_text((at - uploaded_at).total_seconds())} after upload"
    out.print(f"{mark} [bold]{stage.value:<14}[/] {escape(milestone.detail)} [dim]({when})[/]", highlight=False)


__all__ = ["AzdOpt", "EnvOpt", "SettingsOpt", "fail", "follow_upload", "register", "storage_failure", "target_applied"]
