"""Production commands start no demo service: `citybrain run` reads the hotline at the configured URL and
says before the run when nothing answers there (citybrain/ingest/reachability.py, orchestration/cli/run.py)."""

from __future__ import annotations

import socket

import pytest

from citybrain.ingest.reachability import unreachable_http_connections
from orchestration.cli.run import warn_unreachable_apis


@pytest.fixture
def listening():
    """A real TCP listener on loopback: something answers at its port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


def test_an_api_that_accepts_connections_is_reachable(lake, catalog, listening, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_HOTLINE_API_URL", f"http://127.0.0.1:{listening}/")
    assert unreachable_http_connections(catalog) == []


def test_nothing_listening_names_the_connection_its_url_and_its_feeds(
    lake, catalog, closed_port, monkeypatch
):
    url = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("CITYBRAIN_HOTLINE_API_URL", url)
    (problem,) = unreachable_http_connections(catalog)
    assert (problem.connection, problem.url, problem.feeds) == ("hotline_api", url, ("hotline_tickets",))
    assert "refused" in problem.reason.lower()
    assert url in str(problem) and "CITYBRAIN_HOTLINE_API_URL" in str(problem)


def test_without_the_variable_the_catalogs_default_is_asked(lake, catalog):
    """catalog/sources.yaml: hotline_api defaults to http://127.0.0.1:8765."""
    problems = unreachable_http_connections(catalog, timeout=0.5)
    assert [p.url for p in problems] in ([], ["http://127.0.0.1:8765"])
    assert catalog.connections["hotline_api"].default == "http://127.0.0.1:8765"


def test_a_url_that_is_not_http_is_reported(lake, catalog, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_HOTLINE_API_URL", "ftp://hotline.example")
    (problem,) = unreachable_http_connections(catalog)
    assert "not an http(s) URL" in problem.reason


def test_run_warns_and_starts_no_demo_api_even_on_a_demo_lake(lake, closed_port, monkeypatch, capsys):
    """A demo ticket store in the lake does not make `citybrain run` serve it: the configured URL is asked
    (nothing there), the warning says so, and the environment still names the configured URL."""
    (lake / "demo" / "hotline_store").mkdir(parents=True)
    url = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("CITYBRAIN_HOTLINE_API_URL", url)
    warn_unreachable_apis()
    err = capsys.readouterr().err
    assert err.startswith(f"WARNING hotline_api: {url} unreachable")
    assert "hotline_tickets will fail" in err
