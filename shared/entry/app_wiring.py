"""Per-process wiring for the function handlers: settings and clients built once, on first use."""

from __future__ import annotations

import functools

from shared.azure.storage import BlobPreparedStore, blob_service
from shared.flows.ingest import IngestOutcome, Submit, ingest_blob
from shared.settings import Settings


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def prepared_store() -> BlobPreparedStore:
    return BlobPreparedStore(blob_service(), settings().prepared_container)


@functools.cache
def ledger(*, create: bool = True):
    """The ledger. The app creates its table if missing; the commands pass create=False (they never need to,
    and the person running them has a role on the table alone) and get a command's bounded timeouts."""
    from shared.azure.storage import command_table_options
    from shared.azure.table_ledger import TableLedger, table_client

    options = {} if create else command_table_options()
    return TableLedger(table_client(settings().ledger_table, create=create, **options))


@functools.cache
def event_publisher():
    """The lifecycle events' publisher (azure-eventgrid, imported at the first publish), or None when
    EVENTS_TOPIC_ENDPOINT is empty."""
    endpoint = settings().events_topic_endpoint
    if not endpoint:
        return None
    from shared.azure.event_publisher import EventGridPublisher
    from shared.domain.lifecycle_events import event_source

    return EventGridPublisher(
        endpoint,
        event_source(settings().workspace_resource_id),
        namespace_topic=settings().events_namespace_topic or None,
    )


@functools.cache
def workspace():
    """The configured backend's Workspace (imported lazily), or None when ML_BACKEND=none."""
    backend = settings().ml_backend
    if backend == "azure":
        from shared.azure.azureml.client import AzureMLWorkspace

        return AzureMLWorkspace(settings())
    if backend == "local":
        from shared.local.backend import LocalWorkspace

        return LocalWorkspace(settings())
    return None


def usage_metrics(ws):
    """The UsageMetrics that goes with the backend: Azure Monitor, or the local servers' counts."""
    if settings().ml_backend == "local":
        from shared.local.backend import LocalUsageMetrics

        return LocalUsageMetrics(ws)
    from shared.azure.metrics import AzureMonitorUsage

    return AzureMonitorUsage(region=ws.location)


def submitter() -> Submit | None:
    """The submission step for the configured backend, or None when ML_BACKEND=none."""
    ws = workspace()
    if ws is None:
        return None
    from shared.flows.submission import submit_prepared

    return functools.partial(submit_prepared, settings=settings(), ledger=ledger(), workspace=ws)


@functools.cache
def deploy_context():
    from shared.azure.scoring import score
    from shared.flows.deploy_context import DeployContext

    ws = workspace()
    if ws is None:
        return None
    return DeployContext(
        settings=settings(),
        ledger=ledger(),
        workspace=ws,
        store=prepared_store(),
        scorer=score,
        events=event_publisher(),
        usage=usage_metrics(ws),
    )


def job_event_handler(event: object) -> str:
    """Event Grid: a run event from the workspace (see shared.flows.job_events). Event Grid waits 30 s for the
    answer, so a delivery only classifies, registers and writes the ledger: the settled row's lifecycle events
    (up to 15 s against a slow topic) and its training metrics (up to 20 s) go out on the reconciler's next tick."""
    from shared.domain.run_events import from_function_event
    from shared.flows.job_events import handle_run_event

    ctx = deploy_context()
    if ctx is None:
        return "ignored: ML_BACKEND=none"
    return handle_run_event(from_function_event(event), ctx)


def _publish_for(dataset: str, sha256: str) -> None:
    if not dataset or not sha256 or event_publisher() is None:
        return
    from shared.domain.ledger import UploadKey
    from shared.flows.lifecycle_events import publish_key

    publish_key(ledger(), event_publisher(), UploadKey(dataset, sha256), prepared_store())


def reconcile_handler() -> list[tuple[str, str]]:
    """Timer: move every deployment in progress one or more steps forward (see shared.flows.reconciler)."""
    from shared.flows.reconciler import reconcile

    ctx = deploy_context()
    return [] if ctx is None else reconcile(ctx)


@functools.cache
def janitor_context():
    from shared.flows.janitor import JanitorContext

    ws = workspace()
    if ws is None:
        return None
    return JanitorContext(settings(), ws, usage_metrics(ws), ledger(), prepared_store(), events=event_publisher())


def janitor_handler() -> list:
    """Timer: delete idle endpoints we created (see shared.janitor)."""
    from shared.flows.janitor import run_janitor

    ctx = janitor_context()
    return [] if ctx is None else run_janitor(ctx)


@functools.cache
def content_claims():
    """One claim per uploaded file's SHA-256 (shared.azure.content_claims): the same bytes train once."""
    from shared.azure.content_claims import BlobContentClaims

    return BlobContentClaims(blob_service(), settings().prepared_container, settings().upload_container)


def ingest_handler(client: object) -> IngestOutcome:
    outcome = ingest_blob(
        client,  # type: ignore[arg-type]
        settings(),
        prepared_store(),
        submitter(),
        event_publisher(),
        content_claims(),
    )
    if outcome.status == "accepted" and outcome.sha256 and workspace() is not None:  # submitted (or failed)
        from shared.domain.naming import dataset_name

        _publish_for(dataset_name(str(getattr(client, "blob_name", ""))), outcome.sha256)
    return outcome


def reset() -> None:
    """Forget cached settings and clients (tests change settings between cases)."""
    for cached in (
        settings,
        prepared_store,
        ledger,
        workspace,
        deploy_context,
        janitor_context,
        event_publisher,
        content_claims,
    ):
        getattr(cached, "cache_clear", lambda: None)()  # a test may have put a plain function in its place
