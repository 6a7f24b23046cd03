"""Settings are read in one place; every problem is named in one error; the sample lists them all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.settings import IDENTITY_SETTINGS, Settings, SettingsError, setting_names, storage_connection

SAMPLE = Path(__file__).resolve().parent.parent / "local.settings.sample.json"


def test_defaults_are_complete_and_typed() -> None:
    settings = Settings.from_env({"ML_BACKEND": "none"})
    assert settings.upload_container == "chat-uploads" and settings.prepared_container == "chat-prepared"
    options = settings.validation_options()
    assert (options.min_train_rows, options.max_seq_tokens, options.strict) == (10, 4096, False)
    assert (options.fractions.train, options.fractions.validation, options.fractions.test) == (0.9, 0.05, 0.05)


def test_every_bad_setting_is_named_in_one_error() -> None:
    env = {
        "MAX_SEQ_TOKENS": "lots",
        "VALIDATION_STRICT": "maybe",
        "SPLIT_FRACTIONS": "1,1",
        "UPLOAD_CONTAINER": "Bad_Name",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    for name in env:
        assert name in message


def test_upload_and_prepared_containers_must_differ() -> None:
    with pytest.raises(SettingsError, match="PREPARED_CONTAINER"):
        Settings.from_env({"ML_BACKEND": "none", "UPLOAD_CONTAINER": "same", "PREPARED_CONTAINER": "same"})


def test_sample_settings_list_every_setting_and_are_valid() -> None:
    values = json.loads(SAMPLE.read_text())["Values"]
    assert set(setting_names()) | {"AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME"} == set(values)
    Settings.from_env(values)
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (SAMPLE.parent / "docs" / "settings.md").read_text()
    for name in setting_names():
        assert f"`{name}`" in readme, name


def test_storage_connection_prefers_identity_settings_without_a_connection_string() -> None:
    assert storage_connection({"CHATFT_STORAGE": "UseDevelopmentStorage=true"}) == (
        "connection_string",
        "UseDevelopmentStorage=true",
    )
    url = "https://acct.blob.core.windows.net"
    assert storage_connection({"CHATFT_STORAGE__blobServiceUri": url}) == ("account_url", url)
    assert storage_connection({}) is None


def test_bad_submission_settings_do_not_stop_ingest_but_are_all_named() -> None:
    settings = Settings.from_env({"FINETUNE_OVERRIDES": "[1]", "AML_WORKSPACE": "x"})
    problems = " ".join(settings.submission_problems)
    for name in ("FINETUNE_OVERRIDES", "AML_WORKSPACE", "AML_SUBSCRIPTION_ID", "AML_RESOURCE_GROUP"):
        assert name in problems
    assert settings.validation_options().min_train_rows == 10
    assert Settings.from_env({"ML_BACKEND": "none"}).submission_problems == ()


def test_storage_and_validation_problems_still_fail_at_once() -> None:
    with pytest.raises(SettingsError, match="ML_BACKEND"):
        Settings.from_env({"ML_BACKEND": "gpu-cloud"})


def test_the_azure_only_identity_settings_are_documented() -> None:
    readme = (SAMPLE.parent / "docs" / "settings.md").read_text()
    for name in IDENTITY_SETTINGS:
        assert f"`{name}`" in readme, f"{name} is missing from the settings table (docs/settings.md)"


# ---------------------------------------------------------------------------------------------
# issue 19, item 8: every numeric setting has a finite range, schedules parse and fire, storage and the
# local state folder are checked; each refusal names its setting when the settings are read.

NUMERIC = {
    # setting: (lowest allowed, highest allowed)
    "MAX_SEQ_TOKENS": ("1", "1048576"),
    "MIN_TRAIN_ROWS": ("1", "10000000"),
    "MAX_LINE_BYTES": ("1", str(64 << 20)),
    "REPORT_EXAMPLES_PER_CODE": ("1", "200"),
    "DUPLICATE_CHECK_LIMIT": ("1", "10000000"),
    "SUBMIT_CLAIM_TIMEOUT_SECONDS": ("60", "86400"),
    "DEPLOY_DEADLINE_MINUTES": ("10", "10080"),
    "SMOKE_TIMEOUT_SECONDS": ("1", "600"),
    "EVAL_SAMPLES": ("1", "1000"),
    "EVAL_MIN_TOKEN_F1": ("0.01", "1"),
    "DEPLOY_MAX_EVAL_LOSS": ("0.01", "1000000"),
    "JOB_POLL_QUIET_MINUTES": ("1", "10080"),
    "JANITOR_IDLE_MINUTES": ("0.05", "86400"),
    "JANITOR_MAX_DELETES": ("1", "1000"),
    "JANITOR_MAX_AGE_HOURS": ("0.05", "87600"),
    "GPU_HOURLY_PRICE_USD": ("0.01", "10000"),
    "MAX_ACTIVE_JOBS": ("1", "1000"),
    "MAX_LIVE_ENDPOINTS": ("1", "1000"),
    "JOB_MAX_HOURS": ("0.05", "8760"),
    "MONTHLY_BUDGET_USD": ("0.01", "10000000"),
}
EMPTY_BY_DEFAULT = (
    "JANITOR_MAX_AGE_HOURS",
    "GPU_HOURLY_PRICE_USD",
    "EVAL_MIN_TOKEN_F1",
    "DEPLOY_MAX_EVAL_LOSS",
    "MONTHLY_BUDGET_USD",
)
"""Empty is their default: no cap, no price, no gate."""
GARBAGE_NUMBERS = ("inf", "-inf", "nan", "1e308", "-1", "0", "1e20", "100000000000000000000", "9" * 5000, "", "ten")


def refusal(env: dict[str, str]) -> str:
    """What Settings.from_env says of these settings: its error, else the problems that block submission."""
    try:
        settings = Settings.from_env({"ML_BACKEND": "none", **env})
    except SettingsError as exc:
        return str(exc)
    return "; ".join(settings.submission_problems)


def test_the_numeric_settings_table_covers_every_numeric_setting() -> None:
    from shared.settings import _SPECS

    defaults = Settings.from_env({"ML_BACKEND": "none"})
    numeric = {
        s.env
        for n, s in _SPECS.items()
        if isinstance(getattr(defaults, n), int | float) and not isinstance(getattr(defaults, n), bool)
    } | set(EMPTY_BY_DEFAULT)
    assert numeric == set(NUMERIC)


@pytest.mark.parametrize("name", sorted(NUMERIC))
@pytest.mark.parametrize("bad", GARBAGE_NUMBERS, ids=lambda b: b[:12] or "empty")
def test_every_numeric_setting_refuses_what_is_not_finite_and_in_range(name: str, bad: str) -> None:
    if bad == "" and name in EMPTY_BY_DEFAULT:
        pytest.skip("empty is this setting's documented default (no cap / no price / no gate)")
    said = refusal({name: bad})
    assert said.count(name) == 1, said
    assert "\n" not in said and len(said) < 300, "one short line, whatever the value"


@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_every_numeric_setting_accepts_both_ends_of_its_range(name: str) -> None:
    low, high = NUMERIC[name]
    for value in (low, high):
        assert refusal({name: value}) == "", (name, value)
    above = str(float(high) * 2 if "." in low or name.endswith(("MINUTES", "HOURS", "USD")) else int(high) + 1)
    assert name in refusal({name: above})


def test_the_timers_get_finite_durations_from_any_accepted_setting() -> None:
    """Was: `inf`/`1e308` minutes passed the check and raised OverflowError in every timer run."""
    from datetime import timedelta

    env = {name: high for name, (_, high) in NUMERIC.items()}
    settings = Settings.from_env({"ML_BACKEND": "none", **env})
    assert settings.submission_problems == ()
    timedelta(minutes=settings.janitor_idle_minutes) + timedelta(minutes=settings.job_poll_quiet_minutes)
    timedelta(minutes=settings.deploy_deadline_minutes) + timedelta(seconds=settings.claim_timeout_seconds)
    assert settings.janitor_max_age is not None


@pytest.mark.parametrize("fractions", ["nan,0,0", "0.9,nan,0.1", "inf,0,0", "1e308,0,0", "0.5,0.5,-0", "a,b,c"])
def test_split_fractions_must_be_finite(fractions: str) -> None:
    said = refusal({"SPLIT_FRACTIONS": fractions})
    if fractions == "0.5,0.5,-0":  # -0 is 0: a valid split
        assert said == ""
        return
    assert "SPLIT_FRACTIONS" in said, fractions


@pytest.mark.parametrize("setting", ["DEPLOY_RECONCILE_SCHEDULE", "JANITOR_SCHEDULE"])
@pytest.mark.parametrize(
    "schedule",
    [
        "a b c d e f",
        "99 * * * * *",
        "0 0 0 31 2 *",  # Feb 31: never
        "0 0 0 30,31 2 *",
        "0 0 0 31 4,6,9,11 *",
        "0 0 0 31 Feb-Apr/2 *",
        "* * * * *",  # five fields: the host wants seconds first
        "0 */0 * * * *",
        "0 0 24 * * *",
        "0 0 0 0 * *",
        "0 0 0 * 13 *",
        "0 0 0 * * 7",
        "0 0 0 * J *",  # NCrontab would silently read January
        "0,,5 * * * * *",
        "/5 * * * * *",
        "1-2-3 * * * * *",
        "*-5 * * * * *",
        "0 */2 * * * *\n",
        "0\t*/2 * * * *",
        "99999999999 * * * * *",
        "",
    ],
)
def test_a_schedule_the_host_cannot_run_is_refused_naming_the_setting(setting: str, schedule: str) -> None:
    """The host parses schedules with NCrontab, seconds first (Azure/azure-webjobs-sdk-extensions
    .../Timers/Scheduling/CronSchedule.cs `TryCreate`; learn.microsoft.com/azure/azure-functions/
    functions-bindings-timer#ncrontab-expressions), and an expression that never fires has no next run."""
    said = refusal({setting: schedule})
    assert setting in said and "\n" not in said.strip(), said


@pytest.mark.parametrize(
    "schedule",
    [
        "0 */2 * * * *",
        "0 */15 * * * *",
        "*/1 * * * * *",
        "0 0 0 1 1 *",
        "0 30 9 * Jan Mon",
        "0 30 9 * * mon-FRI",
        "0 0 0 29 2 *",  # leap days exist
        "0 0 9-17 * * 1-5",
        "0 0 0 31 1-12/2 *",
        "5/15 * * * * *",
        "  0 0 */2 * * *  ",
        "0 0 0 13 * 5",
    ],
)
def test_valid_schedules_pass_and_croniter_can_run_them_too(schedule: str) -> None:
    """The local host (shared/local/host.py) runs timers with croniter, seconds first: whatever Settings
    accepts, it can schedule too."""
    from datetime import datetime, timezone

    croniter = pytest.importorskip("croniter").croniter  # a CLI dependency: absent from the deployed runtime

    settings = Settings.from_env({"ML_BACKEND": "none", "JANITOR_SCHEDULE": schedule})
    assert settings.janitor_schedule == " ".join(schedule.split())
    croniter(settings.janitor_schedule, datetime(2026, 1, 1, tzinfo=timezone.utc), second_at_beginning=True).get_next()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CHATFT_STORAGE": "garbage"}, "CHATFT_STORAGE"),
        ({"CHATFT_STORAGE": "AccountName=x"}, "CHATFT_STORAGE"),  # no key or SAS
        ({"CHATFT_STORAGE": "UseDevelopmentStorage=yes"}, "CHATFT_STORAGE"),
        ({"CHATFT_STORAGE": "AccountName=x;AccountKey=k;BlobEndpoint=ftp://x"}, "CHATFT_STORAGE"),
        ({"CHATFT_STORAGE__blobServiceUri": "not a url"}, "CHATFT_STORAGE__blobServiceUri"),
        ({"CHATFT_STORAGE__accountName": "Bad Name!"}, "CHATFT_STORAGE__accountName"),
        ({"LOCAL_STATE_DIR": "/dev/null"}, "LOCAL_STATE_DIR"),
        ({"LOCAL_STATE_DIR": "/dev/null/state"}, "LOCAL_STATE_DIR"),
    ],
)
def test_storage_and_the_local_state_folder_are_checked_naming_the_setting(env: dict[str, str], named: str) -> None:
    said = refusal(env)
    assert said.startswith("invalid settings: ") and f"{named}:" in said, said


@pytest.mark.parametrize(
    "connection",
    [
        "UseDevelopmentStorage=true",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        "BlobEndpoint=https://acct.blob.core.windows.net;TableEndpoint=https://acct.table.core.windows.net;"
        "SharedAccessSignature=sv=2024&sig=x;",
    ],
)
def test_working_connection_strings_pass(connection: str, tmp_path) -> None:
    assert refusal({"CHATFT_STORAGE": connection, "LOCAL_STATE_DIR": str(tmp_path / "new" / "state")}) == ""
