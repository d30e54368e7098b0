"""A scripted HTTP server for hostile API answers: each request takes the next scripted answer.

An answer is (status, headers, body) where body is bytes, or ``FOREVER`` (streams 64 KiB chunks until
the client hangs up) or ``DRIP`` (one byte every 50 ms, forever); ``delay`` seconds pass before it.
When the script is empty, requests get a valid one-page JSON answer of ``records``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FOREVER = b"<forever>"
DRIP = b"<drip>"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


class ScriptedApi:
    def __init__(self, records: list[dict], script: list[Answer] | None = None, repeat: Answer | None = None):
        self.records = records
        self.script = list(script or [])
        self.repeat = repeat  # answered to every request once the script is used up
        self.requests = 0
        self._lock = threading.Lock()

    def next_answer(self) -> Answer:
        with self._lock:
            self.requests += 1
            if self.script:
                return self.script.pop(0)
        if self.repeat is not None:
            return self.repeat
        page = {"page": 1, "total_pages": 1, "data": self.records}
        return Answer(body=json.dumps(page, ensure_ascii=False).encode())

    def __enter__(self) -> str:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes: FOREVER has no length

            def do_GET(self) -> None:  # noqa: N802
                answer = api.next_answer()
                time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    if answer.body not in (FOREVER, DRIP):
                        self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    if answer.body == FOREVER:
                        chunk = b"[" + b" " * 65535
                        while True:
                            self.wfile.write(chunk)
                    elif answer.body == DRIP:
                        self.wfile.write(b'{"data": [')
                        while True:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.05)
                    else:
                        self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
