"""Errors a person must act on, each naming the setting to change."""

from __future__ import annotations


class PreflightError(Exception):
    """The job would fail (or cannot start): nothing is submitted, and the report says why."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        named = setting is None or message.startswith(setting)  # "LOCAL_BASE_MODEL /x: ..." names it already
        super().__init__(message if named else f"{message} (setting: {setting})")
        self.setting = setting
