"""Check in a real headless browser that the Dagster UI loads our code location and renders the asset graph.

Unit tests prove the definitions load in-process; they cannot prove that `dagster dev` serves them and that
the web UI actually draws the lineage graph. This script starts `dagster dev` on a free port with a fresh,
empty DAGSTER_HOME and CITYBRAIN_HOME (the graph needs no data), asks the GraphQL API whether the
`citybrain_lake` location loaded, then drives Debian's chromium through Playwright: the global lineage
page (/asset-groups) must show asset nodes and the catalog (/assets) the raw assets, with no error toast.
Screenshots are kept so a human can look too.

    .venv/bin/python scripts/check_ui_in_browser.py [--screenshots DIR] [--install]

Exit code 0 on success, 1 with a message on failure. Playwright's own browser download does not work
here, so we use /usr/bin/chromium; `--install` runs `apt-get install -y chromium` when it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

REPO_ROOT = Path(__file__).resolve().parents[1]
# The dagster beside this Python, so a non-activated virtualenv works (as for dbt in the definitions).
VENV_BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCATION = "citybrain_lake"
# Two raw feeds from different providers and a pool model (the indicators are in pool/).
GROUP_ASSETS = {  # asset group -> an asset label its lineage page must show
    "public_security_bureau": "household_registry",
    "e_government_service_centre": "egov_applications",
    "pool": "ind_district_monthly",  # dbt groups are the model folders (assets/dbt/translator.py)
}
CATALOG_LABELS = ("dim_district", "dim_resident")
# Shown until the asset status queries answer; waiting for them to go also proves those queries work.
STILL_LOADING = re.compile(r"Loading\.\.\.|fetching statuses")
ERROR_TEXTS = ("Unexpected GraphQL error", "PythonError", "DagsterUserCodeLoadError")
LOCATION_QUERY = """{ workspaceOrError { __typename ... on PythonError { message }
  ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


class UICheckError(Exception):
    """The UI did not come up or did not show what it should; the message says what."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    if body.get("errors"):
        raise UICheckError(f"GraphQL errors: {body['errors']}")
    return body["data"]


@contextmanager
def dagster_dev(workdir: Path, log_path: Path, timeout: float) -> Iterator[str]:
    """Run `dagster dev` in its own process group and yield its base URL once the webserver answers.

    `dagster dev` has children (webserver, daemon, code servers) and does not reliably stop on SIGTERM,
    so the whole group gets SIGTERM and then SIGKILL, whatever happened in between.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYBRAIN_")}  # never the user's lake
    env |= {
        "DAGSTER_HOME": str(workdir / "dagster_home"),
        "CITYBRAIN_HOME": str(workdir / "citybrain_home"),
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    }
    for var in ("DAGSTER_HOME", "CITYBRAIN_HOME"):
        Path(env[var]).mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(VENV_BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_serving(base, proc, log_path, timeout)
        yield base
    finally:
        stop_process_group(proc)


def wait_until_serving(base: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UICheckError(
                f"dagster dev exited with {proc.returncode}; see {log_path}:\n{tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise UICheckError(f"dagster dev did not answer {base}/server_info within {timeout:.0f}s; see {log_path}")


def stop_process_group(proc: subprocess.Popen, grace: float = 10) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    # The leader may be gone while children linger; make sure the group is.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def check_location(base: str, timeout: float) -> None:
    """The location must be LOADED as a RepositoryLocation; a broken import shows up here as a PythonError."""
    deadline = time.monotonic() + timeout
    while True:
        workspace = graphql(base, LOCATION_QUERY)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            raise UICheckError(f"workspace failed to load: {workspace.get('message')}")
        entries = {e["name"]: e for e in workspace["locationEntries"]}
        entry = entries.get(LOCATION)
        if entry is None:
            raise UICheckError(f"no location {LOCATION!r} in the workspace, only {sorted(entries)}")
        if entry["loadStatus"] == "LOADED" or time.monotonic() > deadline:
            break
        time.sleep(1)
    result = entry["locationOrLoadError"] or {}
    if entry["loadStatus"] != "LOADED" or result.get("__typename") != "RepositoryLocation":
        raise UICheckError(
            f"location {LOCATION!r} is {entry['loadStatus']} / {result.get('__typename')}: "
            f"{result.get('message')}"
        )


def assert_no_error_shown(page: Page, problems: list[str], where: str) -> None:
    body = page.inner_text("body")
    shown = [text for text in ERROR_TEXTS if text in body]
    if shown or problems:
        raise UICheckError(f"{where}: error shown in the UI {shown or ''} {'; '.join(problems)}".strip())


def check_pages(base: str, shots: Path, timeout: float) -> list[Path]:
    """Drive the UI like a user would and keep a screenshot of every page checked."""
    show_nux = graphql(base, "{ shouldShowNux }")["shouldShowNux"]
    saved: list[Path] = []
    problems: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        # The UI logs every failed GraphQL request as "[GraphQL error]" before it toasts it.
        if msg.type == "error" and "graphql error" in msg.text.lower():
            problems.append(f"console: {msg.text}")

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            raise UICheckError(f"could not start {CHROMIUM}: {first_line(exc)}") from exc
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(timeout * 1000)
        expect.set_options(timeout=timeout * 1000)
        page.on("pageerror", lambda exc: problems.append(f"uncaught JS error: {exc}"))
        page.on("console", on_console)
        try:
            # 1. Global lineage: groups come up collapsed; a fresh DAGSTER_HOME shows a newsletter dialog.
            page.goto(f"{base}/asset-groups")
            if show_nux:
                page.get_by_role("button", name="Skip").click()
                expect(page.get_by_role("button", name="Skip")).to_have_count(0)
            graph = page.locator("svg:has(foreignObject)")  # the graph canvas; the sidebar repeats names
            expect(graph.get_by_text("staging", exact=True)).to_be_visible()
            expect(graph.get_by_text(STILL_LOADING)).to_have_count(0)
            saved.append(shot(page, shots / "1-lineage-groups.png"))

            # 2. Group pages draw their asset nodes at a readable size (the global graph of ~70 assets is
            # zoomed out too far for labels): one ingestion group per kind of department, and the dbt side.
            for group, label in GROUP_ASSETS.items():
                page.goto(f"{base}/locations/__repository__@{LOCATION}/asset-groups/{group}")
                expect(graph.get_by_text(label, exact=True).first).to_be_visible()
                expect(graph.get_by_text(STILL_LOADING)).to_have_count(0)
                assert_no_error_shown(page, problems, f"asset group {group}")
                saved.append(shot(page, shots / f"2-group-{group}.png"))

            # 3. The catalog lists the pool's models (the raw assets were seen on their group pages).
            page.set_viewport_size({"width": 1600, "height": 1000})
            page.goto(f"{base}/assets")
            for label in CATALOG_LABELS:  # the first rows of a long, virtualised, alphabetical list
                expect(page.get_by_text(label, exact=True).filter(visible=True).first).to_be_visible()
            expect(page.get_by_text(STILL_LOADING)).to_have_count(0)
            assert_no_error_shown(page, problems, "/assets")
            saved.append(shot(page, shots / "3-asset-catalog.png"))
        except (PlaywrightError, AssertionError) as exc:
            # AssertionError: Playwright's expect(); keep the page as it was for whoever debugs this.
            failed = shot(page, shots / "failure.png")
            raise UICheckError(f"{first_line(exc)} (screenshot: {failed}; url: {page.url})") from exc
        finally:
            browser.close()
    return saved


def first_line(exc: Exception) -> str:
    """Playwright messages are long call logs; the first line and the locator waited for say enough."""
    lines = [line.strip() for line in str(exc).strip().splitlines()] or [type(exc).__name__]
    waited = [line for line in lines if line.startswith("- waiting for")][:1]
    return " ".join([lines[0], *waited])


def shot(page: Page, path: Path) -> Path:
    page.screenshot(path=str(path))
    return path


def run_check(screenshots: Path | None = None, timeout: float = 120) -> list[Path]:
    """Start the UI, check the location, the lineage graph and the catalog; return the screenshot paths.

    Raises UICheckError with a readable message on any failure.
    """
    if not CHROMIUM.exists():
        raise UICheckError(
            f"{CHROMIUM} not found; install it with `apt-get install -y chromium` or use --install"
        )
    if screenshots is None:
        home = os.environ.get("CITYBRAIN_HOME")
        screenshots = Path(home) / "ui_check" if home else Path(tempfile.mkdtemp(prefix="ui_check-"))
    screenshots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="ui_check-") as workdir,
        dagster_dev(Path(workdir), screenshots / "dagster-dev.log", timeout) as base,
    ):
        print(f"dagster dev serving {base} after {time.monotonic() - started:.0f}s")
        check_location(base, timeout)
        print(f"location {LOCATION} LOADED")
        saved = check_pages(base, screenshots, timeout)
    print(f"UI check passed in {time.monotonic() - started:.0f}s")
    return saved


def ensure_chromium(install: bool) -> None:
    """Debian's chromium is the browser; Playwright's bundled download is not reachable here."""
    if CHROMIUM.exists() or not install:
        return
    sudo = [] if os.geteuid() == 0 or not shutil.which("sudo") else ["sudo"]
    print(f"installing chromium: {' '.join([*sudo, 'apt-get', 'install', '-y', 'chromium'])}")
    if subprocess.run([*sudo, "apt-get", "install", "-y", "chromium"]).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update"], check=False)  # a fresh image may have no package lists
        subprocess.run([*sudo, "apt-get", "install", "-y", "chromium"], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--screenshots", type=Path, help="where to save screenshots (default $CITYBRAIN_HOME/ui_check)"
    )
    parser.add_argument("--install", action="store_true", help="apt-get install chromium if it is missing")
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait for each step (default 120)"
    )
    args = parser.parse_args(argv)
    ensure_chromium(args.install)
    try:
        saved = run_check(args.screenshots, args.timeout)
    except UICheckError as exc:
        print(f"UI check FAILED: {exc}", file=sys.stderr)
        return 1
    for path in saved:
        print(f"screenshot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
