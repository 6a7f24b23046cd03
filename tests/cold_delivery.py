"""One Event Grid delivery on a cold interpreter: `python -m tests.cold_delivery '<json>'` (tests/test_event_deadline.py).

Run in a fresh process so nothing is imported yet, as on a cold Functions instance: the clock starts before
function_app is imported, and the delivery pays for `azure.ai.ml`'s real import. The Azure ML network boundary
is faked as the `aml` fixture fakes it (the real MLClient over tests/aml_rest.py; MLflow's tracking store in
tests/mlflow_rest.py, made slow here: a delivery that read the training metrics would wait on it). The
measured time is an upper bound: it also holds the fakes' own imports and set-up.

Prints one JSON line: the delivery's seconds, the tracking requests it made, and whether the report had a
Training section after the delivery and after one reconciler tick.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

_resolve = socket.getaddrinfo


def _loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    """No network, as in tests/conftest.py: only loopback names resolve."""
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    if name not in ("localhost", "127.0.0.1", "::1", "") and not name.startswith("127."):
        raise socket.gaierror(socket.EAI_NONAME, f"tests do not resolve {name}: no network")
    return _resolve(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only

SLOW_TRACKING_SECONDS = 8.0
"""Each tracking request waits this long while the delivery runs: a read would show in the time as well."""


def main(job: str, tags: dict[str, str]) -> dict[str, Any]:
    import function_app  # the host imports the app when the instance starts

    cold = "azure.ai.ml" not in sys.modules
    from datetime import date

    import shared.entry.app_wiring
    from shared.azure.azureml.client import AzureMLWorkspace
    from tests.aml_rest import AmlRestService, FakeCredential, workspace_client
    from tests.deploy_flow import completed, send, tick
    from tests.fake_aml import FakeJobs, FakeRegistryClient, model
    from tests.mlflow_rest import MlflowRestService, finetune_tree

    class SlowTracking(MlflowRestService):
        slow = True

        def send(self, request: Any, **kwargs: Any) -> Any:
            if self.slow:
                time.sleep(SLOW_TRACKING_SECONDS)
            return super().send(request, **kwargs)

    service = AmlRestService()
    service.mlflow = SlowTracking(location=service.location, credential=FakeCredential())
    finetune_tree(service.mlflow, job, {"loss": [(10, 2.0), (20, 1.5)], "eval_loss": [(20, 1.6)]})
    jobs = FakeJobs()
    adapter = AzureMLWorkspace(
        shared.entry.app_wiring.settings(),
        workspace_client=workspace_client(service, jobs),
        registry_client=FakeRegistryClient([model()]),
        today=lambda: date(2026, 11, 22),
        tracking_transport=service.mlflow,
        credential_factory=lambda: service.mlflow.credential,
    )
    shared.entry.app_wiring.workspace = lambda: adapter  # type: ignore[assignment]  # as the aml fixture does
    from azure.ai.ml.entities import PipelineJob

    submitted = PipelineJob(name=job, display_name=job)  # the job the parent test submitted, now ended
    jobs.create_or_update(submitted, experiment_name="chatft", tags=tags)
    submitted._status = "Completed"

    send(completed(job, tags))  # through function_app's indexed job_events function
    seconds = time.perf_counter() - STARTED
    delivery_reads = [c.name for c in service.mlflow.calls]
    after_delivery = _training_section()
    service.mlflow.slow = False
    tick()
    return {
        "cold": cold,
        "seconds": round(seconds, 3),
        "tracking_reads": delivery_reads,
        "models_registered": len(service.models.created),
        "training_after_delivery": after_delivery,
        "training_after_tick": _training_section(),
        "unserved": service.unserved + service.mlflow.unserved,
        "function_app": function_app.__name__,
    }


def _training_section() -> Any:
    import shared.entry.app_wiring
    from tests.deploy_flow import SHA

    raw = shared.entry.app_wiring.prepared_store().read_bytes(f"chats/{SHA[:16]}/report.json")
    return json.loads(raw).get("training") if raw else None


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print(json.dumps(main(arguments["job"], arguments["tags"])))
