"""What a local fine-tuning job writes to its log (log.txt, which `chatft logs` prints): one timestamped line per
step of the job, as an Azure ML job's std_log.txt has the trainer's lines, so a person following the job sees it
move. Plain stdout lines, flushed at once: the runner redirects the job process's output to the file."""

from __future__ import annotations

import time
from collections.abc import Mapping


def say(text: str) -> None:
    """One line in the job's log, with the local time it was written."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", flush=True)


def epoch_line(epoch: int, total: int, values: Mapping[str, float], **extra: str) -> str:
    """`epoch 2/3: train_loss 0.4100, eval_loss 0.5200 (4.1 s)`: the metrics under the names the tracking store
    keeps them, then anything else worth a glance."""
    shown = ", ".join(f"{key} {value:.4f}" for key, value in values.items())
    tail = ", ".join(f"{value}" for value in extra.values())
    return f"epoch {epoch}/{total}: {shown}" + (f" ({tail})" if tail else "")
