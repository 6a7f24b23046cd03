"""NCRONTAB schedules as the Functions host reads them, checked before the host meets them: a timer whose schedule
does not parse, or can never fire, stops the host rather than one function.

The host parses `schedule` with NCrontab and `IncludingSeconds = true` (Azure/azure-webjobs-sdk-extensions,
src/WebJobs.Extensions/Extensions/Timers/Scheduling/CronSchedule.cs, `TryCreate`): six fields separated by spaces,
`{second} {minute} {hour} {day} {month} {day-of-week}` (MicrosoftDocs, "Timer trigger for Azure Functions",
learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions). Each field is NCrontab's
(atifaziz/NCrontab, NCrontab/CrontabFieldImpl.cs `InternalParse` and CrontabField.cs `Accumulate`): a comma list
of `*`, `N`, `N-M` (swapped when N > M), each optionally `/STEP`, where `N/STEP` runs from N to the field's maximum;
months and days of the week may be names. NCrontab matches a day of the month AND a day of the week
(CrontabSchedule.cs `TryGetNextOccurrence`), so a schedule fires iff some day it lists exists in some month it lists.

Stricter than NCrontab on purpose: names are the three-letter abbreviations (NCrontab takes any prefix, so "J"
silently means January), and a step below 1 (which NCrontab quietly reads as 1) is refused.
"""

from __future__ import annotations

import re

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
_LONGEST_MONTH = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
_DIGITS = re.compile(r"[0-9]+")


def check_ncrontab(text: str) -> str:
    """The expression with single spaces; ValueError (one line naming the field) if the host could not use it."""
    if any(c.isspace() and c != " " for c in text):
        raise ValueError(f"separate the six fields with spaces only (the host splits on spaces), got {text!r}")
    tokens = [t for t in text.split(" ") if t]
    if len(tokens) != len(_FIELDS):
        raise ValueError(
            f"must be an NCRONTAB expression of 6 fields (second minute hour day month day-of-week), got {text!r}"
        )
    values = [_field(token, *spec) for token, spec in zip(tokens, _FIELDS, strict=True)]
    days, months = values[3], values[4]
    if not any(day <= _LONGEST_MONTH.get(month, 31) for day in days for month in months):
        raise ValueError(f"{text!r} never runs: no month it lists has the day {tokens[3]!r}")
    return " ".join(tokens)


def _field(token: str, name: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    found: set[int] = set()
    for part in token.split(","):
        try:
            found |= _part(part, low, high, names)
        except ValueError as exc:
            raise ValueError(f"{name} field {token!r}: {exc}") from None
    return found


def _part(part: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    if not part:
        raise ValueError("an empty item in the list")
    body, slash, every = part.partition("/")
    step = 1
    if slash:
        if not _DIGITS.fullmatch(every) or int(every) < 1:
            raise ValueError(f"the step {every!r} is not a whole number of 1 or more")
        step = int(every)
    if body == "*":
        start, end = low, high
    elif "-" in body[1:]:
        first, _, last = body.partition("-")
        start, end = sorted((_value(first, low, high, names), _value(last, low, high, names)))
    else:
        start = _value(body, low, high, names)
        end = high if slash else start
    return set(range(start, end + 1, step))


def _value(text: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if _DIGITS.fullmatch(text):
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}-{high}")
        return value
    if text.lower() in names:
        return names.index(text.lower()) + low
    allowed = f"{low}-{high}" + (f" or {names[0].title()}-{names[-1].title()}" if names else "")
    raise ValueError(f"{text!r} is not a value ({allowed})")
