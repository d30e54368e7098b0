"""The ground-truth manifest: every injected defect, where it is and how the lake should treat it.

``defects.csv`` has one row per defect: feed, file (path relative to the landing zone, or
``api:hotline_tickets`` / ``db:<table>`` for non-file feeds), row_number (1-based data-record ordinal in
that file, header excluded; the line number for JSON Lines; blank where not applicable), record_key
(the key as delivered), layer (``raw``: ingestion must quarantine the record with reason ``defect``;
``content``: the record loads but is wrong in a way later validation must catch), defect, detail.
``summary.json`` holds the configuration, counts per feed/file/layer/defect, records written per file,
suppressed operator cells per file, redeliveries and the generation time.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

COLUMNS = ["feed", "file", "row_number", "record_key", "layer", "defect", "detail"]
RAW, CONTENT = "raw", "content"


@dataclass
class Manifest:
    frames: list[pd.DataFrame] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    redeliveries: list[dict] = field(default_factory=list)

    def add(
        self, feed: str, file: str, layer: str, defect: str, row_numbers=None, keys=None, details=None
    ) -> None:
        """Record defects of one kind in one file; the list arguments are aligned (scalars broadcast)."""
        given = (row_numbers, keys, details)
        n = next((len(v) for v in given if v is not None and not isinstance(v, str | int | float)), 1)
        if n == 0:
            return
        frame = pd.DataFrame(
            {
                "feed": feed,
                "file": file,
                "row_number": _col(row_numbers, n),
                "record_key": _col(keys, n),
                "layer": layer,
                "defect": defect,
                "detail": _col(details, n),
            },
            index=range(n),
        )
        self.frames.append(frame)

    def table(self) -> pd.DataFrame:
        if not self.frames:
            return pd.DataFrame(columns=COLUMNS)
        df = pd.concat(self.frames, ignore_index=True)[COLUMNS]
        df["row_number"] = df["row_number"].map(lambda v: "" if v is None or v == "" else str(int(v)))
        df["record_key"] = df["record_key"].fillna("").astype(str)
        df["detail"] = df["detail"].fillna("").astype(str)
        return df.sort_values(["feed", "file", "layer", "defect"], kind="stable", ignore_index=True)

    def counts(self) -> dict:
        df = self.table()
        by_file: dict = defaultdict(lambda: defaultdict(Counter))
        for (file, layer, defect), n in df.groupby(["file", "layer", "defect"]).size().items():
            by_file[file][layer][defect] = int(n)
        by_feed: dict = defaultdict(lambda: defaultdict(Counter))
        for (feed, layer, defect), n in df.groupby(["feed", "layer", "defect"]).size().items():
            by_feed[feed][layer][defect] = int(n)
        return {
            "total": len(df),
            "by_layer": {k: int(v) for k, v in df.groupby("layer").size().items()},
            "by_feed": _plain(by_feed),
            "by_file": _plain(by_file),
        }

    def write(self, ground_truth: Path, config: dict, seconds: float) -> dict:
        ground_truth.mkdir(parents=True, exist_ok=True)
        self.table().to_csv(ground_truth / "defects.csv", index=False, encoding="utf-8", lineterminator="\n")
        summary = {
            "config": config,
            "generation_seconds": round(seconds, 3),
            "rows_written": dict(sorted(self.rows_written.items())),
            "defects": self.counts(),
            "suppressed_cells": dict(sorted(self.suppressed.items())),
            "redeliveries": self.redeliveries,
        }
        (ground_truth / "summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8"
        )
        return summary


def _col(values, n: int) -> list:
    if values is None:
        return [""] * n
    if isinstance(values, str | int | float):
        return [values] * n
    values = list(values)
    return values if len(values) == n else values * n


def _plain(d) -> dict:
    return {k: _plain(v) if isinstance(v, dict) else v for k, v in sorted(d.items())}
