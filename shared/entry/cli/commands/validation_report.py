"""The validator's report as a person reads it: what `chatft validate`, `prepare` and a rejected `upload` print."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from shared.domain.chatdata.issues import FILE_LEVEL
from shared.domain.chatdata.report import Report, dropped_text, stats_lines
from shared.entry.cli.commands.output import out


def print_report(report: Report) -> None:
    """A summary a person reads: bounded whatever the input (capped examples, compacted line ranges)."""
    d = report.as_dict()
    verdict = "[bold green]ACCEPTED[/]" if report.valid else "[bold red]REJECTED[/]"
    s = d["stats"]
    counts = (
        f"{report.conversations} conversations "
        f"(train {report.split_counts[0]}, validation {report.split_counts[1]}, test {report.split_counts[2]})"
        if report.valid
        else f"{report.conversations} valid conversations, none accepted"
    )
    out.print(
        f"{verdict} {escape(report.source)}: {counts}, "
        f"{report.errors.total} errors, {report.warnings.total} warnings, {s['lines']} lines, {s['bytes_read']} bytes"
    )
    for title, log, style in (("errors", report.errors, "red"), ("warnings", report.warnings, "yellow")):
        if not log:
            continue
        table = Table(
            title=f"{title} ({log.total}; first {len(log.examples)} shown)", title_style=style, show_lines=False
        )
        for column in ("line", "code", "JSON path", "message"):
            table.add_column(column, overflow="fold")
        for f in log.sorted_examples():
            table.add_row(
                "file" if f.line == FILE_LEVEL else str(f.line), f.code.value, escape(f.path), escape(f.message)
            )
        out.print(table)
        totals = ", ".join(f"{code.value} {n}" for code, n in sorted(log.totals.items()))
        out.print(f"[{style}]{title} by code:[/] {totals}")
    out.print("; ".join(line.rstrip(".") for line in stats_lines(s)[:3]))
    if report.dropped:
        out.print(f"dropped {report.dropped.count} line(s): {dropped_text(d)}")
