"""Reading dbt's manifest while dbt rewrites it: dbt writes ``target/manifest.json`` in place, so another
process can read it half-written (CI saw the quality gate fail so beside a ``dbt parse``)."""

from __future__ import annotations

import json
import threading

import pytest

from citybrain.dbt_paths import read_manifest

MANIFEST = {"metadata": {"dbt_version": "1.11.16"}, "nodes": {"model.x.a": {"name": "a", "columns": {}}}}


def test_a_manifest_caught_half_written_is_read_again_once_dbt_has_finished(tmp_path):
    path = tmp_path / "manifest.json"
    text = json.dumps(MANIFEST)
    path.write_text(text[: len(text) // 2], encoding="utf-8")  # what a reader finds mid-write
    finished = threading.Timer(0.5, lambda: path.write_text(text, encoding="utf-8"))
    finished.start()
    try:
        assert read_manifest(path, wait_seconds=10) == MANIFEST
    finally:
        finished.join()


def test_a_manifest_that_never_parses_raises_after_the_wait(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{"nodes": {', encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        read_manifest(path, wait_seconds=0.5)
