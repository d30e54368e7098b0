"""The Dagster UI, served by `dagster dev`, loads our code location and draws the asset graph in chromium.

Slow (a webserver start and a browser, about a minute) and needs Debian's /usr/bin/chromium, so it is
marked `slow` and skips with a reason when the browser is absent. Run it with
`.venv/bin/pytest -m slow tests/test_ui_browser.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.check_ui_in_browser import CHROMIUM, run_check


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} missing: `apt-get install -y chromium` (or check_ui_in_browser.py --install)",
)
def test_ui_loads_location_and_renders_asset_graph(tmp_path: Path) -> None:
    shots = run_check(screenshots=tmp_path / "screenshots")
    assert [p.name for p in shots] == [
        "1-lineage-groups.png",
        "2-group-public_security_bureau.png",
        "2-group-e_government_service_centre.png",
        "2-group-pool.png",
        "3-asset-catalog.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in shots)
