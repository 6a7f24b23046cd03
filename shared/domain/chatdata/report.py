"""The verdict on one upload: a JSON document for machines and Markdown for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain.evaluation import render_evaluation
from shared.domain.training import render_training

from .issues import FILE_LEVEL, FindingLog, LineRanges
from .split import SPLITS
from .stats import TOKEN_ESTIMATE_DOC, Stats

REPORT_VERSION = 1


@dataclass(slots=True)
class Report:
    source: str
    valid: bool
    errors: FindingLog
    warnings: FindingLog
    stats: Stats
    split_counts: list[int]
    strict: bool
    drop_invalid: bool
    dropped: LineRanges = field(default_factory=LineRanges)
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conversations(self) -> int:
        return sum(self.split_counts)

    def as_dict(self) -> dict[str, Any]:
        def findings(log: FindingLog) -> list[dict[str, object]]:
            return [f.as_dict() for f in log.sorted_examples()]

        return {
            "report_version": REPORT_VERSION,
            "source": self.source,
            "sha256": self.sha256,
            "valid": self.valid,
            "conversations": self.conversations,
            "splits": dict(zip(SPLITS, self.split_counts, strict=True)),
            "mode": {"strict": self.strict, "drop_invalid": self.drop_invalid},
            "errors": findings(self.errors),
            "error_totals": {c.value: n for c, n in sorted(self.errors.totals.items())},
            "warnings": findings(self.warnings),
            "warning_totals": {c.value: n for c, n in sorted(self.warnings.totals.items())},
            "dropped_lines": self.dropped.count,
            "dropped_line_ranges": self.dropped.as_text(),
            "dropped_line_ranges_omitted": self.dropped.omitted,
            "stats": self.stats.summary(),
            "token_estimate": TOKEN_ESTIMATE_DOC,
            **self.extra,
        }

    def to_markdown(self) -> str:
        return render_markdown(self.as_dict())


def render_markdown(d: dict[str, Any]) -> str:
    """A report a person reads next to the data (e.g. in Storage Explorer), from report.json alone.

    Later steps (job finished, model registered, endpoint live) update report.json and re-render.
    """
    stats = d["stats"]
    out = [f"# chatft validation report: {'ACCEPTED' if d['valid'] else 'REJECTED'}", "", f"- Source: `{d['source']}`"]
    if d.get("sha256"):
        out.append(f"- SHA-256: `{d['sha256']}`")
    out += [
        accepted_line(d),
        f"- Lines read: {stats['lines']} ({stats['blank_lines']} blank), bytes read: {stats['bytes_read']}",
        f"- Errors: {sum(d['error_totals'].values())}, warnings: {sum(d['warning_totals'].values())}",
    ]
    if d.get("dropped_lines"):
        out.append(f"- Dropped lines ({d['dropped_lines']}): {dropped_text(d)}")
    for title, examples, totals in (
        ("Errors", d["errors"], d["error_totals"]),
        ("Warnings", d["warnings"], d["warning_totals"]),
    ):
        if not totals:
            continue
        out += ["", f"## {title}", "", "| code | total | shown |", "|---|---:|---:|"]
        for code, total in totals.items():
            out.append(f"| {code} | {total} | {sum(1 for f in examples if f['code'] == code)} |")
        out += ["", "| line | code | JSON path | message |", "|---:|---|---|---|"]
        out += [_finding_row(f) for f in examples]
    out += _section("Fine-tuning submission", d.get("submission"))
    out += _section("Training job", d.get("job"))
    if d.get("training"):
        out += render_training(d["training"])
    out += _section("Model and endpoint", d.get("deployment"))
    if d.get("evaluation"):
        out += render_evaluation(d["evaluation"])
    heading = "## Statistics" if d["valid"] else f"## Statistics (of the {d['conversations']} valid conversations)"
    out += ["", heading, "", *(f"- {line}" for line in stats_lines(stats)), ""]
    return "\n".join(out)


def accepted_line(d: dict[str, Any]) -> str:
    """What was accepted: a rejected file accepts nothing, however many of its conversations were valid."""
    splits = d["splits"]
    if d["valid"]:
        return (
            f"- Conversations accepted: {d['conversations']} "
            f"(train {splits['train']}, validation {splits['validation']}, test {splits['test']})"
        )
    errors = sum(d["error_totals"].values())
    return (
        f"- Conversations accepted: none (rejected; {d['conversations']} valid conversations read, "
        f"{errors} error{'s' if errors != 1 else ''})"
    )


def dropped_text(d: dict[str, Any]) -> str:
    """'2, 4-9, 12 and 4,211 more ranges': bounded however many lines were dropped."""
    text = ", ".join(d.get("dropped_line_ranges") or [])
    omitted = d.get("dropped_line_ranges_omitted") or 0
    return f"{text} and {omitted:,} more range(s)" if omitted else text


def stats_lines(stats: dict[str, Any]) -> list[str]:
    """The statistics a person reads; a file with no accepted conversation says just that."""
    if not stats.get("conversations"):
        return ["No accepted conversations, so no statistics."]
    mpc, tok = stats["messages_per_conversation"], stats["estimated_tokens"]
    return [
        f"Messages per conversation: min {mpc['min']}, median {mpc['median']}, max {mpc['max']}",
        f"Estimated tokens: min {tok['min']}, median {tok['median']}, p95 {tok['p95']}, max {tok['max']}",
        f"Roles: {', '.join(f'{k} {v}' for k, v in stats['roles'].items())}",
        f"Token estimate: {TOKEN_ESTIMATE_DOC}.",
    ]


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _section(title: str, data: dict[str, Any] | None) -> list[str]:
    """A later step's outcome as a bullet list; status first, nested values inline."""
    if not data:
        return []
    out = ["", f"## {title}", "", f"- Status: **{data.get('status')}**"]
    for key, value in data.items():
        if key == "status" or value in (None, "", [], {}):
            continue
        if key == "parameters" and isinstance(value, dict):
            out.append("- Parameters: " + ", ".join(f"`{k}={v}`" for k, v in sorted(value.items())))
            out.append(f"- DeepSpeed: {deepspeed_text(value)}")
        elif key == "dropped_parameters":
            out += [f"- Not passed: `{x['key']}` from {x['source']} ({x['reason']})" for x in value]
        elif key == "warnings":
            out += [f"- Warning: {w}" for w in value]
        elif key == "history" and isinstance(value, list):
            out += ["- History:", *(f"  - {line}" for line in value)]
        elif isinstance(value, dict):
            out.append(f"- {_label(key)}: " + ", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            out.append(f"- {_label(key)}: {value}")
    return out


def deepspeed_text(parameters: dict[str, Any]) -> str:
    """What the parameters sent say about DeepSpeed, in one phrase (the component applies it only when
    apply_deepspeed is "true", at deepspeed_stage)."""
    flag = str(parameters.get("apply_deepspeed", "")).lower()
    if flag != "true":
        return f"off (apply_deepspeed={flag or 'not sent'})"
    stage = parameters.get("deepspeed_stage")
    if stage in (None, ""):
        return "on, the component's default stage (apply_deepspeed=true, no deepspeed_stage sent)"
    return f"stage {stage} (apply_deepspeed=true, deepspeed_stage={stage})"


def _finding_row(f: dict[str, Any]) -> str:
    line = "file" if f["line"] == FILE_LEVEL else str(f["line"])
    message = str(f["message"]).replace("|", "\\|").replace("\n", " ")
    return f"| {line} | {f['code']} | `{f['path']}` | {message} |"
