"""The verdict on one upload: a JSON document for machines and Markdown for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .issues import FILE_LEVEL, Finding, FindingLog
from .split import SPLITS
from .stats import TOKEN_ESTIMATE_DOC, Stats

REPORT_VERSION = 1


def _line_ranges(lines: list[tuple[int, int]]) -> list[str]:
    return [str(a) if a == b else f"{a}-{b}" for a, b in lines]


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
    dropped_line_ranges: list[tuple[int, int]] = field(default_factory=list)
    dropped_lines: int = 0
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
            "dropped_lines": self.dropped_lines,
            "dropped_line_ranges": _line_ranges(self.dropped_line_ranges),
            "stats": self.stats.summary(),
            "token_estimate": TOKEN_ESTIMATE_DOC,
            **self.extra,
        }

    def to_markdown(self) -> str:
        """A report a person reads next to the data, e.g. in Storage Explorer."""
        d = self.as_dict()
        stats = d["stats"]
        verdict = "ACCEPTED" if self.valid else "REJECTED"
        out = [
            f"# chatft validation report: {verdict}",
            "",
            f"- Source: `{self.source}`",
        ]
        if self.sha256:
            out.append(f"- SHA-256: `{self.sha256}`")
        out += [
            f"- Conversations accepted: {self.conversations} "
            f"(train {self.split_counts[0]}, validation {self.split_counts[1]}, test {self.split_counts[2]})",
            f"- Lines read: {stats['lines']} ({stats['blank_lines']} blank), bytes read: {stats['bytes_read']}",
            f"- Errors: {self.errors.total}, warnings: {self.warnings.total}",
        ]
        if self.dropped_lines:
            out.append(f"- Dropped lines ({self.dropped_lines}): {', '.join(d['dropped_line_ranges'])}")
        for title, log in (("Errors", self.errors), ("Warnings", self.warnings)):
            if not log:
                continue
            out += ["", f"## {title}", "", "| code | total | shown |", "|---|---:|---:|"]
            shown: dict[str, int] = {}
            for f in log.examples:
                shown[f.code.value] = shown.get(f.code.value, 0) + 1
            for code, total in sorted(log.totals.items()):
                out.append(f"| {code.value} | {total} | {shown.get(code.value, 0)} |")
            out += ["", "| line | code | JSON path | message |", "|---:|---|---|---|"]
            out += [_finding_row(f) for f in log.sorted_examples()]
        out += _submission_lines(self.extra.get("submission"))
        mpc, tok = stats["messages_per_conversation"], stats["estimated_tokens"]
        out += [
            "",
            "## Statistics",
            "",
            f"- Messages per conversation: min {mpc['min']}, median {mpc['median']}, max {mpc['max']}",
            f"- Estimated tokens: min {tok['min']}, median {tok['median']}, p95 {tok['p95']}, max {tok['max']}",
            f"- Roles: {', '.join(f'{k} {v}' for k, v in stats['roles'].items())}",
            f"- Token estimate: {TOKEN_ESTIMATE_DOC}.",
            "",
        ]
        return "\n".join(out)


def _submission_lines(submission: dict[str, Any] | None) -> list[str]:
    """The fine-tuning outcome, when the ingest function got that far."""
    if not submission:
        return []
    out = ["", "## Fine-tuning", "", f"- Status: **{submission.get('status')}**"]
    labels = (
        ("job", "Job"),
        ("display_name", "Display name"),
        ("experiment", "Experiment"),
        ("studio_url", "Studio"),
        ("foundation_model", "Foundation model"),
        ("compute", "Compute"),
        ("gpus_per_node", "GPUs per node"),
        ("reason", "Reason"),
        ("error", "Error"),
        ("setting", "Setting to change"),
        ("retry", "To retry"),
    )
    out += [f"- {label}: {submission[key]}" for key, label in labels if submission.get(key) not in (None, "")]
    if submission.get("parameters"):
        out.append("- Parameters: " + ", ".join(f"`{k}={v}`" for k, v in sorted(submission["parameters"].items())))
    for dropped in submission.get("dropped_parameters", []):
        out.append(f"- Not passed: `{dropped['key']}` from {dropped['source']} ({dropped['reason']})")
    out += [f"- Warning: {w}" for w in submission.get("warnings", [])]
    return out


def _finding_row(f: Finding) -> str:
    line = "file" if f.line == FILE_LEVEL else str(f.line)
    message = f.message.replace("|", "\\|").replace("\n", " ")
    return f"| {line} | {f.code.value} | `{f.path}` | {message} |"
