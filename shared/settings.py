"""The one place where settings are read: typed values, defaults, and one error naming every problem.

Cheap to import (no SDKs), because the function blueprints read it at index time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from shared.chatdata.options import ValidationOptions
from shared.chatdata.split import SplitFractions

STORAGE_CONNECTION = "CHATFT_STORAGE"
"""Name of the connection setting the blob trigger and our storage clients use.

Locally it holds a connection string (`UseDevelopmentStorage=true`); in Azure, use identity-based
settings instead: `CHATFT_STORAGE__blobServiceUri` and `CHATFT_STORAGE__queueServiceUri`.
"""

TRIGGER_SOURCES = ("LogsAndContainerScan", "EventGrid")


class SettingsError(ValueError):
    """Raised once, listing every missing or invalid setting by name."""


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {value}")
    return value


def _container(text: str) -> str:
    name = text.strip()
    ok = 3 <= len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower() and "--" not in name
    if not ok or name[0] == "-" or name[-1] == "-":
        raise ValueError(f"{name!r} is not a valid blob container name (3-63 of a-z, 0-9, '-')")
    return name


def _trigger_source(text: str) -> str:
    for source in TRIGGER_SOURCES:
        if text.strip().lower() == source.lower():
            return source
    raise ValueError(f"must be one of {', '.join(TRIGGER_SOURCES)}, got {text!r}")


@dataclass(frozen=True)
class _Spec:
    env: str
    parse: Callable[[str], Any]
    default: str | None


_SPECS: dict[str, _Spec] = {
    "upload_container": _Spec("UPLOAD_CONTAINER", _container, "chat-uploads"),
    "prepared_container": _Spec("PREPARED_CONTAINER", _container, "chat-prepared"),
    "upload_trigger_source": _Spec("UPLOAD_TRIGGER_SOURCE", _trigger_source, "LogsAndContainerScan"),
    "strict": _Spec("VALIDATION_STRICT", _bool, "false"),
    "drop_invalid": _Spec("VALIDATION_DROP_INVALID", _bool, "false"),
    "max_seq_tokens": _Spec("MAX_SEQ_TOKENS", _positive_int, "4096"),
    "min_train_rows": _Spec("MIN_TRAIN_ROWS", _positive_int, "10"),
    "split_fractions": _Spec("SPLIT_FRACTIONS", SplitFractions.parse, "0.9,0.05,0.05"),
    "max_line_bytes": _Spec("MAX_LINE_BYTES", _positive_int, str(8 << 20)),
    "examples_per_code": _Spec("REPORT_EXAMPLES_PER_CODE", _positive_int, "20"),
    "duplicate_check_limit": _Spec("DUPLICATE_CHECK_LIMIT", _positive_int, "100000"),
}


@dataclass(frozen=True)
class Settings:
    upload_container: str
    prepared_container: str
    upload_trigger_source: str
    strict: bool
    drop_invalid: bool
    max_seq_tokens: int
    min_train_rows: int
    split_fractions: SplitFractions
    max_line_bytes: int
    examples_per_code: int
    duplicate_check_limit: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field in fields(cls):
            spec = _SPECS[field.name]
            raw = env.get(spec.env, spec.default)
            if raw is None:
                problems.append(f"{spec.env}: missing")
                continue
            try:
                values[field.name] = spec.parse(raw)
            except ValueError as exc:
                problems.append(f"{spec.env}: {exc}")
        if values.get("prepared_container") and values.get("prepared_container") == values.get("upload_container"):
            problems.append(
                "PREPARED_CONTAINER: must differ from UPLOAD_CONTAINER, or the trigger fires on its own output"
            )
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return cls(**values)

    def validation_options(self) -> ValidationOptions:
        return ValidationOptions(
            strict=self.strict,
            drop_invalid=self.drop_invalid,
            max_seq_tokens=self.max_seq_tokens,
            min_train_rows=self.min_train_rows,
            fractions=self.split_fractions,
            max_line_bytes=self.max_line_bytes,
            examples_per_code=self.examples_per_code,
            duplicate_check_limit=self.duplicate_check_limit,
        )


def setting_names() -> list[str]:
    """Every setting the app reads (for docs and the sample settings test)."""
    return [STORAGE_CONNECTION, *(spec.env for spec in _SPECS.values())]


def storage_connection(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """('connection_string', value) or ('account_url', value) for CHATFT_STORAGE, or None if unset."""
    env = os.environ if env is None else env
    if env.get(STORAGE_CONNECTION):
        return "connection_string", env[STORAGE_CONNECTION]
    for suffix in ("__blobServiceUri", "__serviceUri"):
        if env.get(STORAGE_CONNECTION + suffix):
            return "account_url", env[STORAGE_CONNECTION + suffix]
    return None


def upload_trigger_source(env: Mapping[str, str] | None = None) -> str:
    """Read at function-index time, so a bad value fails indexing with the setting's name."""
    env = os.environ if env is None else env
    try:
        return _trigger_source(env.get("UPLOAD_TRIGGER_SOURCE", "LogsAndContainerScan"))
    except ValueError as exc:
        raise SettingsError(f"invalid settings: UPLOAD_TRIGGER_SOURCE: {exc}") from exc
