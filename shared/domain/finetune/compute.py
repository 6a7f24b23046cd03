"""Compute checks the notebook does by eye: provisioning, allowed VM sizes, GPUs per node."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import PreflightError
from .params import parse_python_literal

SERVERLESS = "serverless"
# Sizes the chat-completion fine-tuning components reject (too little GPU memory, or retired).
UNSUPPORTED_SIZES = frozenset({"standard_nc6", "standard_nc12", "standard_nc24", "standard_nc24r"})


@dataclass(frozen=True)
class ComputePlan:
    """Where the pipeline runs: a named cluster, or serverless with an instance type."""

    target: str
    """A cluster name, or "serverless"."""
    vm_size: str
    gpus_per_node: int

    @property
    def serverless(self) -> bool:
        return self.target == SERVERLESS


def size_list(tags: dict[str, str] | None, tag: str) -> list[str] | None:
    """A model's VM size list tag (a Python-literal list) as written, casing kept; None if absent."""
    raw = (tags or {}).get(tag)
    if raw is None:
        return None
    try:
        sizes = parse_python_literal(raw, f"the model's {tag} tag", list)
    except ValueError:
        # Registry YAML writes this as a bare list: [Standard_A, Standard_B]
        sizes = [s.strip() for s in str(raw).strip().strip("[]").split(",") if s.strip()]
    return [str(s).strip() for s in sizes]


def allowed_sizes(tags: dict[str, str] | None, tag: str = "finetune_compute_allow_list") -> list[str] | None:
    """A model's VM size allow-list tag (a Python-literal list), lower-cased; None if absent."""
    sizes = size_list(tags, tag)
    return None if sizes is None else [s.lower() for s in sizes]


def check_vm_size(vm_size: str, tags: dict[str, str] | None, *, setting: str) -> None:
    size = vm_size.strip().lower()
    allow = allowed_sizes(tags)
    if allow is not None:
        if size not in allow:
            raise PreflightError(
                f"VM size {vm_size} is not in the model's finetune_compute_allow_list ({', '.join(allow)})", setting
            )
    elif size in UNSUPPORTED_SIZES:
        raise PreflightError(f"VM size {vm_size} is not supported for fine-tuning", setting)


def gpus_for(vm_size: str, sizes: Iterable[tuple[str, int | None]], *, setting: str) -> int:
    """GPUs per node from the workspace's list of VM sizes (entry whose name equals the size)."""
    wanted = vm_size.strip().lower()
    for name, gpus in sizes:
        if (name or "").lower() == wanted:
            if not gpus:
                raise PreflightError(f"VM size {vm_size} has no GPUs; fine-tuning needs a GPU size", setting)
            return int(gpus)
    raise PreflightError(f"VM size {vm_size} is not offered in the workspace's region", setting)


def check_cluster_state(name: str, provisioning_state: str | None) -> None:
    if (provisioning_state or "").lower() == "failed":
        raise PreflightError(f"compute cluster {name} is in provisioning state Failed", "FINETUNE_COMPUTE")
