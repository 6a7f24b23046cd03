"""The worker protocol's Python classes, generated from tests/worker/function_rpc.proto.

`make setup` runs `python -m tests.worker.protos` in the deployed-runtime environment (grpcio-tools is
a test dependency there, never deployed); the classes land beside that environment, so a stale or
missing generation fails loudly instead of importing something else.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PROTO = Path(__file__).with_name("function_rpc.proto")
MODULE = "function_rpc_pb2"


def generated_dir() -> Path:
    """Where this interpreter's environment keeps the generated classes."""
    return Path(sys.prefix) / "worker_protos"


def generate(out: Path) -> Path:
    from grpc_tools import protoc  # a test tool of the deployed-runtime environment

    out.mkdir(parents=True, exist_ok=True)
    # `python -m grpc_tools.protoc` adds the well-known types' folder (google/protobuf/*.proto) itself;
    # called as a function it does not, so name it here.
    well_known = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{PROTO.parent}", f"-I{well_known}", f"--python_out={out}", str(PROTO)])
    if code != 0:
        raise SystemExit(f"protoc failed ({code}) on {PROTO}")
    return out / f"{MODULE}.py"


def load() -> ModuleType:
    """The generated module: what the host's worker passes to the library as `protos`."""
    path = generated_dir() / f"{MODULE}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make setup` (it generates the worker's protobuf classes)")
    spec = importlib.util.spec_from_file_location(MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    print(generate(Path(sys.argv[1]) if len(sys.argv) > 1 else generated_dir()))
