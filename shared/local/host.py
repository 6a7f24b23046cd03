"""`chatft dev`: host function_app the way the Azure Functions host would, with no Core Tools.

It reads the indexed function metadata (`app.get_functions()`): trigger types, paths,
connections and schedules, resolving %SETTING% expressions. Then it
- polls the blob trigger's container in Azurite once per new blob or ETag, keeping receipts in
  `azure-webjobs-hosts` like the host (5 failures and a blob is poisoned). With the polling source
  (LogsAndContainerScan) it invokes the function; with the EventGrid source it plays Event Grid and
  POSTs a BlobCreated event to its own `/runtime/webhooks/blobs?functionName=Host.Functions.<name>`,
  which it serves like the host's blobs extension (validation handshake included);
- serves POST /runtime/webhooks/EventGrid?functionName=<name>, with the subscription validation
  handshake, handing events to the function as func.EventGridEvent / func.CloudEvent;
- fires timer functions on their NCRONTAB schedules (six fields, seconds first, via croniter, with NCrontab's
  day rule).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from shared.domain.durations import duration_text
from shared.local.http import HttpError, JsonHandler, JsonServer
from shared.logs import log_step

_SETTING = re.compile(r"%([^%]+)%")
RECEIPTS = "azure-webjobs-hosts"
POISON_AFTER = 5
MAX_EVENT_BODY = 1 << 20  # Event Grid delivers at most 1 MiB per request
_STEP_LINE = re.compile(r"chatft (\S+) (\{.*\})\Z", re.DOTALL)
ROOT = Path(__file__).resolve().parents[2]


def resolve(expression: str, env: Mapping[str, str] | None = None) -> str:
    """Resolve %SETTING% expressions as the host does."""
    env = os.environ if env is None else env
    return _SETTING.sub(lambda m: env[m.group(1)], expression)


def load_local_settings(folder: Path = ROOT, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """local.settings.sample.json, then local.settings.json, then the environment, then overrides."""
    values: dict[str, str] = {}
    for name in ("local.settings.sample.json", "local.settings.json"):
        path = folder / name
        if path.exists():
            values.update(json.loads(path.read_text()).get("Values", {}))
    values.update({k: v for k, v in os.environ.items() if k in values})
    values.update(overrides or {})
    return values


@dataclass(frozen=True)
class ModelBindingData:
    """The fields of the worker's ModelBindingData message that SDK-type converters read."""

    version: str
    source: str
    content_type: str
    content: str


def blob_binding(function: Any, blob_name: str) -> Any:
    """What the worker hands a blob-triggered function with an SDK-type parameter."""
    from azurefunctions.extensions.base import Datum

    from shared.azure.blobref import BlobRef, BlobRefConverter

    trigger = function.get_trigger()
    container = resolve(trigger.path).split("/", 1)[0]
    content = json.dumps({"Connection": trigger.connection, "ContainerName": container, "BlobName": blob_name})
    data = ModelBindingData("1.0", "AzureStorageBlobs", "application/json", content)
    return BlobRefConverter.decode(Datum(data, "model_binding_data"), trigger_metadata={}, pytype=BlobRef)


def event_grid_event(body: Mapping[str, Any]) -> Any:
    """func.EventGridEvent or func.CloudEvent, decoded by azure.functions as for the host."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    return EventGridEventInConverter.decode(Datum(json.dumps(body), "json"), trigger_metadata={})


def describe_event(event: Mapping[str, Any]) -> str:
    """'RunStatusChanged(Running) PipelineRun': short enough for one line per event."""
    kind = str(event.get("eventType") or event.get("type") or "?").rsplit(".", 1)[-1]
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    status = f"({data['runStatus']})" if data.get("runStatus") else ""
    run_type = str(data.get("runType", "")).rsplit(".", 1)[-1]
    return f"{kind}{status} {run_type}".strip()


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """An Event Grid POST body: one JSON object or an array of them; HttpError(400) says what is wrong."""
    try:
        payload = json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError included
        raise HttpError(400, f"body is not UTF-8 JSON: {exc}") from exc
    except RecursionError as exc:
        raise HttpError(400, "body is JSON nested too deeply") from exc
    events = payload if isinstance(payload, list) else [payload]
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise HttpError(400, f"event {index} is not a JSON object (got {type(event).__name__})")
    return events


BLOBS_WEBHOOK = "/runtime/webhooks/blobs"
TOPIC_PATH = "/api/events"
"""Where the runner plays the Event Grid custom topic of EVENTS_TOPIC_ENDPOINT (the path a topic endpoint has)."""


def describe_lifecycle_event(event: Mapping[str, Any]) -> str:
    """'chatft.endpoint.live chats/0a1b2c3d4e5f endpoint=... ': one line per lifecycle event."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    subject = str(event.get("subject") or "")
    dataset, _, sha = subject.rpartition("/")
    detail = next(
        (f"{k}={data[k]}" for k in ("error", "reason", "scoring_uri", "model", "job_name") if data.get(k)), ""
    )
    return f"{event.get('type')} {dataset}/{sha[:12]} {detail}".strip()


BLOB_CREATED = "Microsoft.Storage.BlobCreated"


def _blobs_by_event(function: Any) -> bool:
    trigger = function.get_trigger()
    return trigger.type == "blobTrigger" and str(getattr(trigger, "source", "")).lower() == "eventgrid"


def created_blob(event: dict[str, Any], container: str) -> str | None:
    """The blob name of a BlobCreated event (Event Grid or CloudEvents schema) in `container`, else None.

    Its subject is `/blobServices/default/containers/<container>/blobs/<name>`.
    """
    kind = event.get("eventType") or event.get("type")
    subject = event.get("subject")
    if kind != BLOB_CREATED or not isinstance(subject, str):
        return None
    prefix = f"/blobServices/default/containers/{container}/blobs/"
    return subject[len(prefix) :] if subject.startswith(prefix) and len(subject) > len(prefix) else None


def validation_code(events: list[dict[str, Any]]) -> str:
    """The handshake's data.validationCode; HttpError(400) if the first event has none."""
    data = events[0].get("data") if events else None
    code = data.get("validationCode") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:
        raise HttpError(400, "a SubscriptionValidation event needs data.validationCode (a string)")
    return code


def timer_request(past_due: bool) -> Any:
    from azure.functions.meta import Datum
    from azure.functions.timer import TimerRequestConverter

    return TimerRequestConverter.decode(Datum(json.dumps({"IsPastDue": past_due}), "json"), trigger_metadata={})


Say = Callable[[str], None]
_INDEXED: dict[int, list[Any]] = {}


def indexed_functions(app: Any) -> list[Any]:
    """`app.get_functions()` once per app, as the worker does (a second call fails on duplicate names)."""
    if id(app) not in _INDEXED:
        _INDEXED[id(app)] = app.get_functions()
    return _INDEXED[id(app)]


class StepCapture(logging.Handler):
    """Collects the `chatft <step> {json}` lines logged at WARNING or above by the thread that is
    running an invocation (invocations run concurrently: other threads' lines are not ours)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        steps = getattr(self._local, "steps", None)
        if steps is not None and (found := _STEP_LINE.match(record.getMessage())):
            with contextlib.suppress(ValueError):
                steps.append((found.group(1), json.loads(found.group(2))))

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        self._local.steps = steps = []
        try:
            yield steps
        finally:
            self._local.steps = None


def outcome(steps: list[tuple[str, dict[str, Any]]]) -> str:
    """'ok', or the last warning step with its report/error: 'ingest.rejected (report c/p/report.json)'."""
    if not steps:
        return "ok"
    step, fields = steps[-1]
    for key in ("report", "error", "reason"):
        if fields.get(key):
            step = f"{step} ({key} {fields[key]})"
            break
    return step + (f" (+{len(steps) - 1} more warnings)" if len(steps) > 1 else "")


def schedule_times(schedule: str, start: datetime) -> Any:
    """The fire times of an NCRONTAB schedule (six fields, seconds first) after `start`, as the Functions host's
    NCrontab computes them: a day must match the day-of-month AND the day-of-week fields (NCrontab
    CrontabSchedule.TryGetNextOccurrence checks the day of week after choosing the day), not either one as cron's
    (and croniter's default) OR does, so `0 0 0 13 * 5` is Friday the 13th only."""
    from croniter import croniter

    return croniter(schedule, start, second_at_beginning=True, day_or=False)


def next_run(schedule: str, after: datetime) -> datetime:
    """The first time after `after` that an NCRONTAB schedule fires."""
    return schedule_times(schedule, after).get_next(datetime)


class LocalHost:
    """Runs the indexed functions of `app` until `stop()`."""

    def __init__(self, app: Any, *, port: int = 7071, poll_seconds: float = 1.0, say: Say = print) -> None:
        self.app = app
        self.port = port
        self.poll_seconds = poll_seconds
        self._say = say
        self.functions = {f.get_function_name(): f for f in indexed_functions(app)}
        self.failures: dict[str, str] = {}
        """'<function> <what>' -> the last error of that invocation (cleared when it succeeds)."""
        self.poisoned: set[str] = set()
        """'<function> <container>/<blob>' that failed POISON_AFTER times: the host gave up on them."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._crashed: list[str] = []
        self._http: JsonServer | None = None
        self._steps = StepCapture()
        self.published: list[dict[str, Any]] = []
        """Lifecycle events POSTed to the local topic (TOPIC_PATH), in arrival order."""

    def listing(self, now: datetime | None = None) -> list[str]:
        """One line per function, as `func start` lists them: its trigger, what it watches or where to POST,
        and for a timer its schedule and next run (so a wait on the reconciler is a known wait)."""
        now = now or datetime.now(timezone.utc)
        width = max((len(name) for name in self.functions), default=0)
        lines = []
        for name, function in sorted(self.functions.items()):
            trigger = function.get_trigger()
            if trigger.type == "blobTrigger":
                how = "Event Grid BlobCreated" if _blobs_by_event(function) else f"a scan every {self.poll_seconds:g}s"
                what = f"blob   {resolve(trigger.path)} (new blobs by {how})"
            elif trigger.type == "eventGridTrigger":
                what = f"event  POST http://127.0.0.1:{self.port}/runtime/webhooks/EventGrid?functionName={name}"
            elif trigger.type == "timerTrigger":
                schedule = resolve(trigger.schedule)
                due = next_run(schedule, now)
                at = due.astimezone().strftime("%H:%M:%S")
                what = f"timer  {schedule}: next run {at} (in {duration_text((due - now).total_seconds())})"
            else:
                what = trigger.type
            lines.append(f"{name:<{width}}  {what}")
        return lines

    # --- lifecycle ---

    def start(self) -> LocalHost:
        if any(f.get_trigger().type == "eventGridTrigger" or _blobs_by_event(f) for f in self.functions.values()):
            self._http = JsonServer(("127.0.0.1", self.port), self._webhook_handler())  # a busy port fails here
            self.port = self._http.server_address[1]
            self._thread(self._http.serve_forever, 0.1)
        logging.getLogger("chatft").addHandler(self._steps)
        for name, function in self.functions.items():
            kind = function.get_trigger().type
            if kind == "blobTrigger":
                self._thread(self._watch_blobs, name)
            elif kind == "timerTrigger":
                self._thread(self._run_timer, name)
        return self

    def say(self, line: str) -> None:
        """Quiet once stopping: an invocation still finishing must not print after the session is over."""
        if not self._stop.is_set():
            self._say(line)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop accepting work at once; wait up to `timeout` for running invocations. The threads are
        daemons, so one stuck in a long call never keeps the process alive."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()  # returns within the 0.1 s poll interval
            self._http.server_close()
        self.join(time.monotonic() + timeout)
        logging.getLogger("chatft").removeHandler(self._steps)

    def join(self, deadline: float) -> bool:
        """Wait for the threads until `deadline` (monotonic); True if they all ended."""
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def problem(self) -> str | None:
        """A trigger loop that died (the host would be broken), or None."""
        if self._crashed:
            return f"the host's {', '.join(self._crashed)} stopped (see the log)"
        dead = [t.name for t in self._threads if not t.is_alive()]
        return f"the host's {', '.join(dead)} thread ended" if dead and not self._stop.is_set() else None

    def _thread(self, target: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            try:
                target(*args)
            except Exception as exc:  # a dead trigger loop must not fail silently
                if self._stop.is_set():
                    return
                self._crashed.append(f"{target.__name__}{args}")
                logging.getLogger("chatft.host").exception("%s stopped", target.__name__)
                self.say(f"host   {target.__name__}{args} stopped: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, daemon=True, name=f"host-{target.__name__}")
        thread.start()
        self._threads.append(thread)

    def _invoke(self, kind: str, what: str, name: str, call: Callable[[], Any]) -> bool:
        started = time.perf_counter()
        with self._steps.capture() as steps:
            try:
                call()
            except Exception as exc:  # the host logs, and retries where the trigger retries
                self.failures[f"{name} {what}"] = f"{type(exc).__name__}: {exc}"
                if not self._stop.is_set():
                    logging.getLogger("chatft.host").exception("%s failed", name)
                self.say(f"{kind:<6} {what} → {name} failed: {type(exc).__name__}: {exc}")
                return False
        self.failures.pop(f"{name} {what}", None)
        if kind == "timer" and not steps:  # a tick every few seconds that had nothing to say stays quiet
            return True
        self.say(f"{kind:<6} {what} → {name} {outcome(steps)} ({time.perf_counter() - started:.1f}s)")
        return True

    # --- blob trigger: poll the container, receipts per name and ETag ---

    def _watch_blobs(self, name: str) -> None:
        from shared.azure.storage import blob_service, ensure_container

        function = self.functions[name]
        trigger = function.get_trigger()
        container = resolve(trigger.path).split("/", 1)[0]
        service = blob_service(connection=trigger.connection)
        receipts = service.get_container_client(RECEIPTS)
        for client in (service.get_container_client(container), receipts):
            ensure_container(client)
        while not self._stop.is_set():
            try:
                for blob in service.get_container_client(container).list_blobs():
                    if self._stop.is_set():
                        return
                    self._maybe_trigger(function, name, container, blob, receipts)
            except Exception:  # storage hiccup: the next poll tries again
                if self._stop.is_set():
                    return
                logging.getLogger("chatft.host").exception("polling %s failed", container)
            self._stop.wait(self.poll_seconds)

    def _maybe_trigger(self, function: Any, name: str, container: str, blob: Any, receipts: Any) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        receipt = receipts.get_blob_client(f"blobreceipts/chatft-dev/{name}/{container}/{blob.name}")
        try:
            meta = receipt.get_blob_properties().metadata
        except ResourceNotFoundError:
            meta = {}
        etag = str(blob.etag).strip('"')
        if meta.get("etag") == etag and (meta.get("done") == "true" or int(meta.get("failures", "0")) >= POISON_AFTER):
            return
        failures = int(meta.get("failures", "0")) if meta.get("etag") == etag else 0
        if _blobs_by_event(function):  # play Event Grid: deliver BlobCreated to our own blobs webhook
            ok = self._publish_blob_created(name, container, blob.name)
        else:
            ok = self._invoke(
                "blob",
                f"{container}/{blob.name}",
                name,
                lambda: function.get_user_function()(blob_binding(function, blob.name)),
            )
        failures = 0 if ok else failures + 1
        if failures >= POISON_AFTER:
            self.poisoned.add(f"{name} {container}/{blob.name}")
            self.say(f"blob   {container}/{blob.name} poisoned after {POISON_AFTER} failures")
        receipt.upload_blob(
            b"", overwrite=True, metadata={"etag": etag, "done": str(ok).lower(), "failures": str(failures)}
        )

    # --- Event Grid webhook ---

    def _webhook_handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                raise HttpError(404, f"not found: {urlparse(self.path).path} (POST /runtime/webhooks/EventGrid)")

            def do_POST(self) -> None:
                url = urlparse(self.path)
                name = (parse_qs(url.query).get("functionName") or [""])[0]
                if url.path == BLOBS_WEBHOOK:
                    return self._reply(*host._blob_events(name.removeprefix("Host.Functions."), self))
                if url.path == TOPIC_PATH:
                    return self._reply(*host._topic_events(self))
                function = host.functions.get(name)
                if url.path != "/runtime/webhooks/EventGrid":
                    raise HttpError(404, f"not found: {url.path} (POST /runtime/webhooks/EventGrid?functionName=...)")
                if function is None or function.get_trigger().type != "eventGridTrigger":
                    raise HttpError(404, f"no Event Grid function named {name!r}")
                events = parse_events(self.read_body(MAX_EVENT_BODY))
                kind = (self.headers.get("aeg-event-type") or "").lower()
                if kind == "subscriptionvalidation":
                    return self._reply(200, {"validationResponse": validation_code(events)})
                if kind != "notification":
                    raise HttpError(400, "missing aeg-event-type: Notification or SubscriptionValidation")
                decoded = []
                for index, event in enumerate(events):
                    try:
                        decoded.append(event_grid_event(event))
                    except Exception as exc:
                        raise HttpError(400, f"event {index} is not an Event Grid or CloudEvents event: {exc}") from exc
                if host._stop.is_set():
                    raise HttpError(503, "the host is stopping; Event Grid would retry")
                for event, value in zip(events, decoded, strict=True):
                    if not host._invoke(
                        "event", describe_event(event), name, lambda v=value: function.get_user_function()(v)
                    ):
                        raise HttpError(500, f"the function {name} failed; Event Grid would retry")
                return self._reply(200, {"invoked": len(events)})

        return Handler

    # --- the app's own lifecycle events: a local stand-in for the Event Grid custom topic ---

    def _topic_events(self, request: JsonHandler) -> tuple[int, Any]:
        """POST /api/events, as EventGridPublisherClient sends to a custom topic (a CloudEvents batch):
        kept in `published` and printed, one line per event."""
        events = parse_events(request.read_body(MAX_EVENT_BODY))
        for event in events:
            self.published.append(event)
            self.say(f"topic  {describe_lifecycle_event(event)}")
        return 200, None

    # --- the Event Grid source of the blob trigger: POST /runtime/webhooks/blobs ---

    def _publish_blob_created(self, name: str, container: str, blob: str) -> bool:
        """What Event Grid does for a storage account's BlobCreated subscription, offline: POST the
        event to the blobs webhook, so the function runs through the same path as in Azure."""
        import urllib.error
        import urllib.request

        event = {
            "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/chatft-local"
            "/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
            "subject": f"/blobServices/default/containers/{container}/blobs/{blob}",
            "eventType": BLOB_CREATED,
            "id": str(uuid.uuid4()),
            "eventTime": datetime.now(timezone.utc).isoformat(),
            "data": {"api": "PutBlob", "url": f"http://127.0.0.1/devstoreaccount1/{container}/{blob}"},
            "dataVersion": "",
            "metadataVersion": "1",
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{BLOBS_WEBHOOK}?functionName=Host.Functions.{name}",
            data=json.dumps([event]).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):  # the function failed (500) or the host is stopping
            return False

    def _blob_events(self, name: str, request: JsonHandler) -> tuple[int, Any]:
        """What the host's blobs extension does with BlobCreated events: invoke the function for
        each new blob in its container (other events and containers are acknowledged, not acted on)."""
        function = self.functions.get(name)
        if function is None or not _blobs_by_event(function):
            raise HttpError(404, f"no blob trigger with the EventGrid source named {name!r}")
        events = parse_events(request.read_body(MAX_EVENT_BODY))
        kind = (request.headers.get("aeg-event-type") or "").lower()
        if kind == "subscriptionvalidation":
            return 200, {"validationResponse": validation_code(events)}
        if kind != "notification":
            raise HttpError(400, "missing aeg-event-type: Notification or SubscriptionValidation")
        container = resolve(function.get_trigger().path).split("/", 1)[0]
        blobs = [blob for event in events if (blob := created_blob(event, container)) is not None]
        if self._stop.is_set():
            raise HttpError(503, "the host is stopping; Event Grid would retry")
        for blob in blobs:
            if not self._invoke(
                "blob",
                f"{container}/{blob}",
                name,
                lambda b=blob: function.get_user_function()(blob_binding(function, b)),
            ):
                raise HttpError(500, f"the function {name} failed; Event Grid would retry")
        return 200, {"invoked": len(blobs)}

    # --- timers ---

    def _run_timer(self, name: str) -> None:
        function = self.functions[name]
        trigger = function.get_trigger()
        schedule = resolve(trigger.schedule)
        times = schedule_times(schedule, datetime.now(timezone.utc))
        if getattr(trigger, "run_on_startup", False) and not self._stop.is_set():
            self._invoke("timer", schedule, name, lambda: function.get_user_function()(timer_request(False)))
        while not self._stop.is_set():
            due = times.get_next(datetime)
            if self._stop.wait(max(0.0, (due - datetime.now(timezone.utc)).total_seconds())):
                return
            late = (datetime.now(timezone.utc) - due).total_seconds() > 1
            self._invoke("timer", schedule, name, lambda late=late: function.get_user_function()(timer_request(late)))
            log_step("host.timer", function=name, due=due.isoformat(), past_due=late, level=logging.DEBUG)
