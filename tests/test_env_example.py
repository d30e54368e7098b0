"""Every environment variable the product reads is listed in .env.example (issue 19: a user finds every
setting in one file). Found by reading the source for "CITYBRAIN_*" names, not from a list kept in the code."""

from __future__ import annotations

import re

from citybrain.settings import REPO_ROOT

PACKAGES = ("citybrain", "assets", "orchestration")


def test_every_variable_the_code_reads_is_in_env_example():
    pattern = re.compile(r"[\"'](CITYBRAIN_[A-Z0-9_]+)[\"']")
    used = {
        name
        for package in PACKAGES
        for path in (REPO_ROOT / package).rglob("*.py")
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    }
    listed = set(
        re.findall(r"CITYBRAIN_[A-Z0-9_]+", (REPO_ROOT / ".env.example").read_text(encoding="utf-8"))
    )
    assert len(used) > 30, "the source was read"
    assert used <= listed, sorted(used - listed)
