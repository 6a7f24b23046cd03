"""Per-upload choices (model, epochs, learning rate, suffix): blob metadata that overrides the app's settings.

`chatft upload --model --epochs --learning-rate --suffix` sets them as metadata on the uploaded blob; any other
tool can set the same names (`az storage blob upload --metadata chatft_epochs=2`). Blob metadata names are C#
identifiers and case-insensitive (learn.microsoft.com/rest/api/storageservices/setting-and-retrieving-properties-
and-metadata-for-blob-resources), so `CHATFT_Epochs` counts too. Here they are only parsed and checked for shape;
the component's bounds and the model's own rules are checked in preflight, like the settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from .errors import PreflightError

METADATA = {
    "model": "chatft_model",
    "epochs": "chatft_epochs",
    "learning_rate": "chatft_learning_rate",
    "suffix": "chatft_suffix",
}
"""Choice -> the blob metadata name that carries it."""
OPTIONS = {"model": "--model", "epochs": "--epochs", "learning_rate": "--learning-rate", "suffix": "--suffix"}
PARAMETERS = {"epochs": "num_train_epochs", "learning_rate": "learning_rate"}
"""Choice -> the pipeline component input it sets (the same inputs FINETUNE_OVERRIDES can set)."""
SETTINGS = {
    "model": "FINETUNE_MODEL",
    "epochs": "FINETUNE_OVERRIDES num_train_epochs",
    "learning_rate": "FINETUNE_OVERRIDES learning_rate",
    "suffix": "REGISTERED_MODEL_SUFFIX",
}
LEDGER_PREFIX = "choice_"
"""The ledger row keeps them (`choice_epochs`, ...), so a queued or resubmitted upload trains as asked."""

_MODEL = re.compile(r"[A-Za-z0-9][\w.-]{0,254}")
"""As FINETUNE_MODEL: a registry model name."""
_SUFFIX = re.compile(r"[A-Za-z0-9][\w-]{0,63}")
"""As REGISTERED_MODEL_SUFFIX: part of an Azure ML asset name (letters, digits, '-', '_')."""


def label(choice: str) -> str:
    """How a rejection names the choice: the metadata key and the upload option that sets it."""
    return f"blob metadata {METADATA[choice]} (chatft upload {OPTIONS[choice]})"


@dataclass(frozen=True)
class UploadChoices:
    """What one upload asked for; "" means the app's setting applies. Values are kept as given (text)."""

    model: str = ""
    epochs: str = ""
    learning_rate: str = ""
    suffix: str = ""

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str] | None) -> UploadChoices:
        """Read our names from a blob's metadata, whatever their case; other metadata is ignored."""
        lowered = {str(k).lower(): str(v).strip() for k, v in (metadata or {}).items()}
        return cls(**{choice: lowered.get(key, "") for choice, key in METADATA.items()})

    @classmethod
    def from_ledger(cls, extra: Mapping[str, str]) -> UploadChoices:
        return cls(**{f.name: str(extra.get(LEDGER_PREFIX + f.name, "") or "") for f in fields(cls)})

    def as_metadata(self) -> dict[str, str]:
        return {METADATA[choice]: value for choice, value in self.given().items()}

    def as_ledger(self) -> dict[str, str]:
        return {LEDGER_PREFIX + choice: value for choice, value in self.given().items()}

    def given(self) -> dict[str, str]:
        """Only the choices this upload made."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def overrides(self) -> dict[str, str]:
        """Component input -> value, layered over FINETUNE_OVERRIDES (coerced and bounded by the component)."""
        return {PARAMETERS[c]: v for c, v in self.given().items() if c in PARAMETERS}

    def problems(self) -> list[tuple[str, str]]:
        """(choice, why) for every value of the wrong shape; the component's bounds come later, in preflight."""
        found = []
        if self.model and not _MODEL.fullmatch(self.model):
            found.append(("model", f"{self.model!r} is not a model name"))
        if self.suffix and not _SUFFIX.fullmatch(self.suffix):
            found.append(("suffix", f"{self.suffix!r} is not a name suffix (letters, digits, '-', '_'; up to 64)"))
        if self.epochs and _number(self.epochs) is None:  # whole, at least 1: the component's own `min` says
            found.append(("epochs", f"{self.epochs!r} is not a number of epochs"))
        if self.learning_rate and not (_number(self.learning_rate) or 0) > 0:  # the component sets no minimum
            found.append(("learning_rate", f"{self.learning_rate!r} is not a number above 0"))
        return found

    def check(self) -> None:
        """PreflightError naming the metadata key (and the option) of the first bad value."""
        for choice, why in self.problems():
            raise PreflightError(f"{label(choice)}: {why}", METADATA[choice])

    def line(self) -> str:
        """For `chatft status`: the choices made, in one line; "" when the app's settings applied throughout."""
        given = self.given()
        if not given:
            return ""
        return ", ".join(f"{c} {v}" for c, v in given.items()) + " (upload metadata, over the app's settings)"

    def summary(self) -> dict[str, str]:
        """For the report and status: each choice made, and what it overrode."""
        return {
            choice: f"{value} ({METADATA[choice]}, over {SETTINGS[choice]})" for choice, value in self.given().items()
        }


def _number(text: str) -> float | None:
    """A finite number, or None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None
