"""The 12345 hotline centre's ticket API: a real HTTP server over the demo ticket store.

GET /api/v1/tickets?date=YYYY-MM-DD&page=N&page_size=M[&updated_since=YYYY-MM-DD HH:MM:SS]
answers {"date", "page", "page_size", "total", "total_pages", "data": [...]}: the tickets received on
``date`` whose served version was updated after ``updated_since``, ordered by (updated_at, ticket_id).
Each ticket is served in its latest version, or, with ``as_of`` set, its latest version no later than
that moment — so a test can replay "yesterday's" API and then the one with late updates.

Failure knobs for ingestion tests: ``fail_next`` (HTTP errors with an HTML body), ``delay_next``
(slow answers, to provoke client timeouts); ``request_count`` counts every request answered.
Run standalone: ``python -m demo_city.hotline_api --store DIR --port 8765``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from demo_city.hotline import COLUMNS

PATH = "/api/v1/tickets"
URL_ENV = "CITYBRAIN_HOTLINE_API_URL"  # where the pipeline reads the hotline (catalog/sources.yaml)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000
TIMESTAMP = "%Y-%m-%d %H:%M:%S"


class BadRequest(ValueError):
    pass


class HotlineApiServer:
    """Serves a ticket store directory over HTTP on a background thread."""

    def __init__(
        self, store_dir: Path | str, host: str = "127.0.0.1", port: int = 0, as_of: datetime | None = None
    ):
        self.store_dir = Path(store_dir)
        self.host, self.port = host, port
        self.as_of = as_of
        self.request_count = 0
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._delays: list[float] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reload()

    # -- store ---------------------------------------------------------------------------------------
    def reload(self) -> None:
        """(Re)read the store: every version of every ticket, grouped by received day."""
        by_day: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for path in sorted(self.store_dir.glob("tickets_*.jsonl")):
            with path.open(encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        v = json.loads(line)
                        by_day[v["received_at"][:10]][v["ticket_id"]].append(v)
        for tickets in by_day.values():
            for versions in tickets.values():
                versions.sort(key=lambda v: (v["updated_at"], v.get("version", 0)))
        self._store = by_day

    def tickets(self, day: str, updated_since: str | None = None) -> list[dict]:
        """The served version of each ticket received on ``day``, filtered and ordered like the API."""
        as_of = self.as_of.strftime(TIMESTAMP) if self.as_of else None
        served = []
        for versions in self._store.get(day, {}).values():
            visible = [v for v in versions if as_of is None or v["updated_at"] <= as_of]
            if not visible:
                continue
            latest = visible[-1]
            if updated_since is not None and not latest["updated_at"] > updated_since:
                continue
            served.append({c: _text(latest.get(c)) for c in COLUMNS})
        served.sort(key=lambda r: (r["updated_at"], r["ticket_id"]))
        return served

    # -- knobs ---------------------------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def delay_next(self, n: int, seconds: float) -> None:
        with self._lock:
            self._delays.extend([seconds] * n)

    def _take_knobs(self) -> tuple[float, int | None]:
        with self._lock:
            self.request_count += 1
            delay = self._delays.pop(0) if self._delays else 0.0
            status = self._failures.pop(0) if self._failures else None
        return delay, status

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        if self._httpd is None:
            self._httpd = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
            self._httpd.daemon_threads = True
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="hotline-api",
                daemon=True,
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> HotlineApiServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests ------------------------------------------------------------------------------------
    def answer(self, target: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request target such as '/api/v1/tickets?date=...'."""
        url = urlsplit(target)
        if url.path.rstrip("/") != PATH:
            return _json(404, {"error": "not found", "path": url.path})
        try:
            q = parse_qs(url.query, keep_blank_values=True)
            day = _date_param(q)
            page = _int_param(q, "page", 1, 1, 10**9)
            size = _int_param(q, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
            since = _since_param(q)
        except BadRequest as exc:
            return _json(400, {"error": str(exc)})
        rows = self.tickets(day, since)
        total = len(rows)
        body = {
            "date": day,
            "page": page,
            "page_size": size,
            "total": total,
            "total_pages": math.ceil(total / size),
            "data": rows[(page - 1) * size : page * size],
        }
        return _json(200, body)


@contextlib.contextmanager
def served_env(store_dir: Path | str) -> Iterator[dict[str, str]]:
    """The demo ticket store's API served on loopback while the block runs; yields the environment a
    ``citybrain run`` (another process, or this one) needs to read it. The product's commands start no
    demo service: the demo commands, scripts and benchmarks on a demo lake serve it with this."""
    with HotlineApiServer(store_dir) as server:
        yield {URL_ENV: server.base_url}


def _text(value) -> str | None:
    return None if value is None else str(value)


def _json(status: int, body: dict) -> tuple[int, str, bytes]:
    return status, "application/json; charset=utf-8", json.dumps(body, ensure_ascii=False).encode("utf-8")


def _one(q: dict[str, list[str]], name: str) -> str | None:
    values = q.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} given {len(values)} times")
    return values[0]


def _date_param(q) -> str:
    value = _one(q, "date")
    if value is None:
        raise BadRequest("date is required (YYYY-MM-DD)")
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadRequest(f"date must be YYYY-MM-DD, got {value!r}") from None


def _int_param(q, name: str, default: int, lo: int, hi: int) -> int:
    value = _one(q, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {value!r}") from None
    if not lo <= number <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}, got {number}")
    return number


def _since_param(q) -> str | None:
    value = _one(q, "updated_since")
    if value is None or value == "":
        return None
    try:
        return datetime.fromisoformat(value.strip()).strftime(TIMESTAMP)
    except ValueError:
        raise BadRequest(f"updated_since must be 'YYYY-MM-DD HH:MM:SS', got {value!r}") from None


def _handler_for(api: HotlineApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "HotlineDemo/1.0"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            delay, fail = api._take_knobs()
            if delay:
                time.sleep(delay)
            if fail is not None:
                body = f"<html><body><h1>{fail} Server Error</h1><p>upstream unavailable</p></body></html>"
                self._send(fail, "text/html; charset=utf-8", body.encode("utf-8"))
                return
            self._send(*api.answer(self.path))

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. a timeout)
                pass

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

    return Handler


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the demo 12345 hotline ticket store over HTTP.")
    parser.add_argument("--store", required=True, type=Path, help="the hotline_store directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    # Stop cleanly on SIGTERM even when started from a process that ignores it (Dagster maps SIGTERM to
    # the SIGINT handler, which is "ignore" in a shell's background job; children inherit that).
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    server = HotlineApiServer(args.store, args.host, args.port)
    print(f"hotline API on {server.start()}{PATH} (store {args.store}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
