"""The embedded local backend: the Workspace and UsageMetrics protocols on one machine.

Jobs are real small training runs in their own processes; the registry is a folder of MLflow
model folders; an endpoint is a local scoring server process on 127.0.0.1. State lives under
LOCAL_STATE_DIR (git-ignored). The function handlers cannot tell it from Azure ML.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from shared.domain.finetune.errors import PreflightError
from shared.domain.finetune.params import (
    OPTIMISATION_DEFAULTS,
    RESERVED_INPUTS,
    TRAINING_DEFAULTS,
    InputSpec,
    MergedParameters,
    ParameterError,
    merge_parameters,
)
from shared.domain.naming import display_name
from shared.domain.training import TrainingMetrics, curve_keys, points
from shared.domain.workspace import (
    CREATED_AT_FORMAT,
    DeploymentInfo,
    EndpointInfo,
    FinetuneRequest,
    JobInfo,
    JobLog,
    RegisteredModel,
    SubmittedJob,
)
from shared.local import procs
from shared.local.scoring import MODELS_FILE
from shared.local.state import read_json, write_json
from shared.local.train_job import INTERRUPTED
from shared.local.trainers import trained_by, trainer_line, trainer_problem
from shared.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# What the registry says of the default model's (Phi-4, version 8) inference SKUs, so check_sku behaves as on Azure.
LOCAL_MODEL_TAGS = {
    "inference_compute_allow_list": "['Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4', 'Standard_NC96ads_A100_v4', "
    "'Standard_ND96asr_v4', 'Standard_ND96amsr_A100_v4', 'Standard_ND96isr_H100_v5', 'Standard_NC40ads_H100_v5', "
    "'Standard_NC80adis_H100_v5']",
    "task": "chat-completion",
}

TERMINAL_JOB_STATES = ("Completed", "Failed", "Canceled")
KILLED = "the job process ended without finishing (killed?)"
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Processes this Python process started (polled, so finished ones are reaped, never zombies)."""


class LocalPoller:
    """What begin_* returns on Azure: a handle that reports progress. Nobody waits on it."""

    def __init__(self, status: Any) -> None:
        self._status = status

    def status(self) -> str:
        return self._status()

    def done(self) -> bool:
        return self.status() in ("Succeeded", "Failed")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _is_job_process(pid: int, folder: Path) -> bool:
    """Whether `pid` is still the training process of this job folder (not a reused pid, not a zombie)."""
    if not procs.is_running(pid):
        return False
    try:
        return str(folder).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no /proc: trust the pid
        return True


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = procs.start(
            [sys.executable, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
            env=env,
        )
    _CHILDREN[child.pid] = child
    return child


def _stop(pids: Iterable[int | None], grace: float = 0.5) -> None:
    """Stop these processes all at once (SIGTERM, SIGKILL after `grace`); ours are reaped, not even a zombie remains."""
    targets: list[subprocess.Popen[bytes] | int] = []
    for pid in {p for p in pids if p}:
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            targets.append(child)
        elif _alive(pid):
            targets.append(pid)
    procs.stop(targets, grace=grace)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes (POSIX flock); without fcntl (Windows), none."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


LOCAL_INPUTS = {
    "num_train_epochs": InputSpec("integer", min=1),
    "learning_rate": InputSpec("number"),
    "per_device_train_batch_size": InputSpec("integer", min=1),
    "per_device_eval_batch_size": InputSpec("integer", min=1),
    "gradient_accumulation_steps": InputSpec("integer"),
    "lr_scheduler_type": InputSpec(
        "string", ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"]
    ),
    "warmup_steps": InputSpec("integer"),
    "weight_decay": InputSpec("number"),
    "max_grad_norm": InputSpec("number"),
    "lora_r": InputSpec("integer"),
    "lora_alpha": InputSpec("integer"),
    "lora_dropout": InputSpec("number"),
    "seed": InputSpec("integer"),
}
"""The published chat_completion_pipeline's declarations (tests/fixtures/chat_completion_pipeline.published.json:
types, enum, `min: 1`) of the inputs the local trainers read (shared.local.lora.data Hyperparameters; the retrieval
stand-in reads num_train_epochs): offline there is no component to read them from, and FINETUNE_OVERRIDES and an
upload's choices are checked the same way."""


def _parameters(settings: Settings, request: FinetuneRequest) -> MergedParameters:
    """What the job is sent: chatft's defaults (no DeepSpeed offline, so no stage either), under FINETUNE_OVERRIDES,
    under the upload's choices, as the component would take them; PreflightError naming the setting or the key.
    An override no local trainer reads is reported dropped, as Azure ML drops what the component lacks."""
    try:
        merged = merge_parameters(LOCAL_INPUTS, {}, settings.finetune_overrides, request.choices)
    except ParameterError as exc:
        raise PreflightError(str(exc), exc.setting) from exc
    defaults = {k: v for k, v in OPTIMISATION_DEFAULTS.items() if k != "deepspeed_stage"}
    values = {**TRAINING_DEFAULTS, **defaults, "apply_deepspeed": "false", **merged.values}
    dropped = [  # chatft's own defaults for Azure's component are not news; an override not applied is
        (key, source, reason if key in RESERVED_INPUTS else "not read by the local trainers")
        for key, source, reason in merged.dropped
        if source == "FINETUNE_OVERRIDES"
    ]
    return MergedParameters(values, dropped)


class LocalWorkspace:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.local_state_dir).resolve()
        self._lock = threading.Lock()
        self._closed = False

    def _start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start a child unless shutdown() began: an invocation finishing late must not leave a process behind."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the local backend is shut down")
            return _spawn(args, log)

    # --- jobs ---

    def _job(self, name: str) -> Path:
        return self.root / "jobs" / name

    def submit_finetune(self, request: FinetuneRequest) -> SubmittedJob:
        s = self.settings
        request.choices.check()
        model = request.choices.model or s.finetune_model  # the upload's own choice, for this job only
        merged = _parameters(s, request)
        params = merged.values
        if problem := trainer_problem(s):  # LOCAL_TRAINER=lora without the extra or a readable base model
            raise problem
        result = SubmittedJob(
            name=request.job_name,
            display_name=display_name(model, params, 1),
            experiment_name=s.experiment_name,
            studio_url=self._job(request.job_name).as_uri(),
            parameters=params,
            warnings=[trainer_line(s)],
            model_id=f"azureml://registries/{s.aml_registry}/models/{model}/versions/local",
            compute="local",
            gpus_per_node=0,
            dropped_parameters=merged.dropped,
        )
        folder = self._job(request.job_name)
        if (folder / "job.json").exists():
            result.already_existed = True
            return result
        write_json(
            folder / "job.json",
            {
                "name": request.job_name,
                "status": "NotStarted",
                "experiment": s.experiment_name,
                "tags": {**request.tags, "chatft_base_model": result.model_id},
                "data_uris": request.data_uris,
                "datastores": {s.aml_datastore: s.prepared_container},
                "workspace_id": s.workspace_resource_id,
                "webhook": s.local_event_webhook,
                "base_model": model,
                "display_name": result.display_name,
                "params": params,
                "trainer": s.local_trainer,  # kept: a resumed job trains as it was submitted
                "local_base_model": s.local_base_model,
                "max_seq_tokens": s.max_seq_tokens,
                "created_at": time.time(),
            },
        )
        try:
            child = self._start(["shared.local.train_job", str(folder)], folder / "log.txt")
        except Exception as exc:  # never a job stuck at NotStarted
            job = read_json(folder / "job.json")
            write_json(folder / "job.json", {**job, "status": "Failed", "error": f"{type(exc).__name__}: {exc}"})
            raise
        write_json(folder / "process.json", {"pid": child.pid})
        return result

    def job_info(self, name: str) -> JobInfo | None:
        job = self.job_record(name)
        if not job:
            return None
        tags = {str(k).lower(): str(v) for k, v in (job.get("tags") or {}).items()}
        error = str(job.get("error") or "").strip().splitlines()[:1]  # the cause, not the service's whole answer
        return JobInfo(name, job["status"], self._job(name).as_uri(), tags, error=error[0] if error else "")

    def begin_cancel_job(self, name: str) -> str:
        """Stop the job's training process (SIGTERM, SIGKILL after a moment) and record it Canceled, as Azure ML
        would; the job itself says so in its events when it can (train_job reads `cancel_requested`). A job
        already ended is its final status; the next runner never resumes a canceled job."""
        folder = self._job(name)
        with _file_lock(self.root / "locks" / f"job-{name}.lock"):
            job = self.job_record(name)
            if not job:
                raise FileNotFoundError(f"job {name} does not exist")
            if job.get("status") in TERMINAL_JOB_STATES:
                return str(job["status"])
            write_json(folder / "job.json", {**job, "cancel_requested": time.time()})
            _stop([(read_json(folder / "process.json") or {}).get("pid")], grace=2.0)
            job = read_json(folder / "job.json") or job
            if job.get("status") in ("Completed", "Failed"):  # it ended on its own just before
                return str(job["status"])
            if job.get("status") != "Canceled":  # stopped before it could say so itself
                job.pop("interrupted", None)
                job.update(status="Canceled", ended_at=time.time())
                write_json(folder / "job.json", job)
        return ""

    def training_metrics(self, job_name: str) -> TrainingMetrics:
        """What the local job logged to metrics.json, in MLflow's Metric form, and its start and end."""
        job = self.job_record(job_name)
        if not job:
            raise FileNotFoundError(f"job {job_name} does not exist")
        logged = read_json(self._job(job_name) / "metrics.json")
        if not logged:
            raise FileNotFoundError(f"job {job_name} logged no metrics")
        history: dict[str, list[dict[str, Any]]] = {}
        for m in logged.get("metrics") or []:
            history.setdefault(str(m.get("key")), []).append(m)
        return TrainingMetrics(
            {k: points(history[k]) for k in curve_keys(list(history))},
            step_label=logged.get("step", "step"),
            started_at=job.get("started_at"),
            ended_at=job.get("ended_at"),
            run_id=f"{job_name}_chat_completion_finetune",
            notes=[line] if (line := trained_by(job)) else [],
        )

    def job_log(self, name: str) -> JobLog | None:
        """What the training process printed (log.txt, its stdout and stderr, which _start sends there) and, for a
        job that failed, its traceback (error.txt): offline, the two files Azure ML's step log holds."""
        job = self.job_record(name)
        if not job:
            return None
        files = []
        for log in ("log.txt", "error.txt"):
            try:
                files.append((log, (self._job(name) / log).read_text(encoding="utf-8", errors="replace")))
            except FileNotFoundError:
                continue
        return JobLog(str(job.get("status") or ""), tuple(files), self._job(name).as_uri())

    def job_record(self, name: str) -> dict[str, Any] | None:
        """The whole job record (status, metrics); local only, for `make run` to show.

        A job whose process is gone without a final status (killed) is recorded as Failed here; one its
        runner stopped (Queued, `interrupted`) waits for the next runner (resume_interrupted_jobs)."""
        folder = self._job(name)
        job = read_json(folder / "job.json")
        if not job or job.get("status") in TERMINAL_JOB_STATES or job.get("interrupted"):
            return job
        pid = (read_json(folder / "process.json") or {}).get("pid")
        if pid and not _alive(pid):
            job = read_json(folder / "job.json")  # it may have finished just before exiting
            if job and job.get("status") not in TERMINAL_JOB_STATES and not job.get("interrupted"):
                if job.get("cancel_requested"):
                    job.update(status="Canceled", ended_at=time.time())
                else:
                    job.update(status="Failed", error=KILLED, ended_at=time.time())
                write_json(folder / "job.json", job)
        return job

    def resume_interrupted_jobs(self, wait: float = 3.0) -> list[str]:
        """After a restart of the runner: start again every job that did not end (its runner stopped or died,
        even by kill -9), under the same name, with this session's event webhook; what Azure ML does with a job
        the Functions host never owned. A job process still running (orphaned, stopping) gets `wait` to end."""
        folder = self.root / "jobs"
        names = sorted(p.parent.name for p in folder.glob("*/job.json")) if folder.exists() else []
        deadline = time.monotonic() + wait
        resumed = []
        for name in names:
            job = read_json(self._job(name) / "job.json")
            if not isinstance(job, dict) or job.get("status") in TERMINAL_JOB_STATES:
                continue
            pid = (read_json(self._job(name) / "process.json") or {}).get("pid")
            while pid and _is_job_process(pid, self._job(name)) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid and _is_job_process(pid, self._job(name)):
                continue  # still running: not ours to start twice
            job = read_json(self._job(name) / "job.json")
            if job.get("status") in TERMINAL_JOB_STATES:  # it finished while we waited
                continue
            job.pop("interrupted", None)
            job.update(
                status="NotStarted", webhook=self.settings.local_event_webhook, resumed=job.get("resumed", 0) + 1
            )
            write_json(self._job(name) / "job.json", job)
            child = self._start(["shared.local.train_job", str(self._job(name))], self._job(name) / "log.txt")
            write_json(self._job(name) / "process.json", {"pid": child.pid})
            resumed.append(name)
        return resumed

    def foundation_model_tags(self, name: str) -> dict[str, str]:
        return dict(LOCAL_MODEL_TAGS)

    # --- registry ---

    def register_model(
        self, *, job_name: str, name: str, version: str, description: str, tags: dict[str, str]
    ) -> RegisteredModel:
        folder = self.root / "models" / name / version
        model_id = f"{self.settings.workspace_resource_id}/models/{name}/versions/{version}"
        if (folder / "model.json").exists():
            return RegisteredModel(model_id, name, version, created=False)
        source = self._job(job_name) / "outputs" / "trained_model"
        if not (source / "MLmodel").exists():
            raise FileNotFoundError(f"job {job_name} has no trained_model output")
        staging = folder.with_name(f".{version}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging / "model")
        write_json(
            staging / "model.json",
            {"id": model_id, "name": name, "version": version, "description": description, "tags": tags},
        )
        with contextlib.suppress(OSError):  # a concurrent registration won the rename: same content
            staging.rename(folder)
        shutil.rmtree(staging, ignore_errors=True)
        return RegisteredModel(model_id, name, version, created=True)

    def _model_path(self, model_id: str) -> Path:
        name, version = model_id.rstrip("/").split("/models/", 1)[1].split("/versions/")
        return self.root / "models" / name / version / "model"

    # --- endpoints ---

    def _endpoint(self, name: str) -> Path:
        return self.root / "endpoints" / name

    def _config(self, name: str) -> dict[str, Any] | None:
        return read_json(self._endpoint(name) / "endpoint.json")

    def _server(self, name: str) -> dict[str, Any]:
        return read_json(self._endpoint(name) / "server.json", {}) or {}

    def get_endpoint(self, name: str) -> EndpointInfo | None:
        config = self._config(name)
        if config is None:
            return None
        server = self._server(name)
        if server and _alive(server.get("pid")):
            state, uri = "Succeeded", f"http://127.0.0.1:{server['port']}/score"
        else:
            state, uri = ("Failed" if server else "Creating"), None
        created = datetime.strptime(config["createdAt"], CREATED_AT_FORMAT)
        return EndpointInfo(
            name, state, dict(config.get("traffic") or {}), uri, dict(config.get("tags") or {}), created
        )

    def list_endpoints(self) -> list[EndpointInfo]:
        folder = self.root / "endpoints"
        names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        return [info for info in map(self.get_endpoint, names) if info is not None]

    def begin_create_endpoint(self, *, name: str, description: str, tags: dict[str, str]) -> LocalPoller:
        folder = self._endpoint(name)
        if self._config(name) is None:
            write_json(
                folder / "endpoint.json",
                {
                    "name": name,
                    "description": description,
                    "tags": tags,
                    "auth_mode": "key",
                    "key": secrets.token_urlsafe(24),
                    "traffic": {},
                    "deployments": {},
                    "createdAt": datetime.now(timezone.utc).strftime(CREATED_AT_FORMAT),
                },
            )
        if not _alive(self._server(name).get("pid")):
            (folder / "server.json").unlink(missing_ok=True)
            (folder / MODELS_FILE).unlink(missing_ok=True)
            self._start(["shared.local.scoring", str(folder)], folder / "log.txt")
        return LocalPoller(lambda: (self.get_endpoint(name) or EndpointInfo(name, "Deleted")).provisioning_state)

    def _update(self, name: str, change: Any) -> None:
        """Read-modify-write endpoint.json under a lock on the file, so another process (`chatft keep` in a
        second shell while `chatft dev` sets traffic) cannot lose this change or have its own lost."""
        with _file_lock(self.root / "locks" / f"endpoint-{name}.lock"):
            config = self._config(name)
            if config is None:
                raise FileNotFoundError(f"endpoint {name} does not exist")
            change(config)
            write_json(self._endpoint(name) / "endpoint.json", config)

    def set_endpoint_traffic(self, name: str, traffic: dict[str, int]) -> None:
        self._update(name, lambda c: c.update(traffic=dict(traffic)))

    def set_endpoint_tags(self, name: str, tags: dict[str, str]) -> None:
        """Replace the tags in endpoint.json, which every process reads: the running host's janitor sees
        them on its next run. The scoring server never reads tags, so it is not restarted."""
        self._update(name, lambda c: c.update(tags=dict(tags)))

    def get_deployment(self, endpoint: str, name: str) -> DeploymentInfo | None:
        config = self._config(endpoint)
        deployment = (config or {}).get("deployments", {}).get(name)
        if deployment is None:
            return None
        server = self._server(endpoint)
        if not (Path(deployment["model_path"], "MLmodel").exists() and _alive(server.get("pid"))):
            return DeploymentInfo(name, "Creating")
        loads = read_json(self._endpoint(endpoint) / MODELS_FILE, {}) or {}
        if loads.get("pid") != server.get("pid"):  # written by an earlier server, or none yet
            return DeploymentInfo(name, "Creating")
        state = ((loads.get("deployments") or {}).get(name) or {}).get("state")
        return DeploymentInfo(name, state if state in ("Succeeded", "Failed") else "Creating")

    def begin_create_deployment(self, *, endpoint: str, name: str, model_id: str, instance_type: str) -> LocalPoller:
        entry = {"model_id": model_id, "model_path": str(self._model_path(model_id)), "instance_type": instance_type}
        self._update(endpoint, lambda c: c["deployments"].__setitem__(name, entry))
        return LocalPoller(
            lambda: (self.get_deployment(endpoint, name) or DeploymentInfo(name, "Deleted")).provisioning_state
        )

    def endpoint_key(self, name: str) -> str:
        config = self._config(name)
        if config is None:
            raise FileNotFoundError(f"endpoint {name} does not exist")
        return config["key"]

    def begin_delete_endpoint(self, name: str) -> LocalPoller:
        """Stop the server and forget the endpoint; deleting twice is fine."""
        _stop([self._server(name).get("pid")])
        shutil.rmtree(self._endpoint(name), ignore_errors=True)
        return LocalPoller(lambda: "Succeeded")

    def requests_file(self, name: str) -> Path:
        return self._endpoint(name) / "requests.json"

    # --- lifecycle ---

    def restart_stopped_endpoints(self) -> list[str]:
        """After a restart of the runner: bring back the servers of endpoints that still exist (and accept
        new processes again, if this workspace was shut down)."""
        with self._lock:
            self._closed = False
        restarted = []
        for info in self.list_endpoints():
            if info.provisioning_state != "Succeeded":
                self.begin_create_endpoint(name=info.name, description="", tags=info.tags)
                restarted.append(info.name)
        return restarted

    def shutdown(self, grace: float = 0.5) -> None:
        """Stop every process the backend started (scoring servers, training jobs) at once, start no more,
        and record the jobs that were stopped as interrupted: the next runner resumes them."""
        with self._lock:
            self._closed = True
        endpoints = sorted((self.root / "endpoints").glob("*")) if (self.root / "endpoints").exists() else []
        jobs = sorted((self.root / "jobs").glob("*/process.json")) if (self.root / "jobs").exists() else []
        pids = [self._server(folder.name).get("pid") for folder in endpoints]
        pids += [(read_json(record) or {}).get("pid") for record in jobs]
        _stop([*pids, *_CHILDREN], grace=grace)
        for record in jobs:
            job = read_json(record.parent / "job.json")
            if isinstance(job, dict) and job.get("status") not in TERMINAL_JOB_STATES and not job.get("interrupted"):
                job.update(status="Queued", interrupted=INTERRUPTED)  # killed before it could say so itself
                write_json(record.parent / "job.json", job)


class LocalUsageMetrics:
    """UsageMetrics from the scoring servers' request counts."""

    def __init__(self, workspace: LocalWorkspace) -> None:
        self.workspace = workspace

    def requests_in_window(self, endpoint_ids: Sequence[str], window: timedelta) -> dict[str, int]:
        since = time.time() - window.total_seconds()
        totals = {}
        for rid in endpoint_ids:
            name = rid.rstrip("/").rsplit("/", 1)[-1]
            if self.workspace._config(name) is None:
                continue
            counts = read_json(self.workspace.requests_file(name), {}) or {}
            totals[rid] = sum(n for second, n in counts.items() if int(second) > since)
        return totals
