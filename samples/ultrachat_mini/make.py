"""Rebuild this folder from ../chat_sample.jsonl: a tiny stand-in for HuggingFaceH4/ultrachat_200k in the
Hub's own layout (data/<split>-00000-of-00001.parquet, columns prompt, prompt_id, messages), so
`chatft dataset samples/ultrachat_mini ...` works with no network. Run: .venv/bin/python samples/ultrachat_mini/make.py
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets

HERE = Path(__file__).resolve().parent
SPLITS = {"train_sft": (0, 600), "test_sft": (600, 700)}

rows = [json.loads(line) for line in (HERE.parent / "chat_sample.jsonl").read_text(encoding="utf-8").splitlines()]
for split, (start, end) in SPLITS.items():
    part = rows[start:end]
    columns = {key: [row[key] for row in part] for key in ("prompt", "prompt_id", "messages")}
    datasets.Dataset.from_dict(columns).to_parquet(str(HERE / "data" / f"{split}-00000-of-00001.parquet"))
