"""The sharing API with its portal on a real uvicorn server (loopback, own thread) over the access lake,
with a resource catalog and one account per role, for the portal's route and browser tests."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
import uvicorn

from citybrain.sharing import accounts
from citybrain.sharing.api import create_app
from citybrain.sharing.config import Limits, SharingConfig
from citybrain.sharing.store import Store
from tests.access_lake import access_lake
from tests.sharing_lake import write_catalog

PASSWORD = "correct horse battery"
CONFIG = SharingConfig(limits=Limits(requests_per_minute=1000, login_failures=3))
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]*)"')
# name -> (department, role). WJW is the health commission (provides fct_visit), SJJ the data bureau
# (provides dim_area and runs the data office).
PEOPLE = {
    "li_analyst": ("CJJ", "consumer"),
    "zhao_other": ("ZJJ", "consumer"),
    "chen_office": ("SJJ", "data_office"),
    "wang_wjw": ("WJW", "provider_approver"),
    "sun_sjj": ("SJJ", "provider_approver"),
}


@dataclass
class Portal:
    base: str
    store: Store
    home: Path
    resources: dict
    accounts: dict

    def session(self, name: str | None = None) -> requests.Session:
        """A browser-like client (cookie jar), logged in as ``name`` when given."""
        client = requests.Session()
        if name:
            page = client.get(f"{self.base}/portal/login")
            response = client.post(
                f"{self.base}/portal/login",
                data={"csrf_token": csrf_of(page.text), "name": name, "password": PASSWORD, "next": ""},
                allow_redirects=False,
            )
            assert response.status_code == 303, response.text
        return client

    def post(self, client: requests.Session, path: str, page_path: str, data: dict) -> requests.Response:
        """Submit a form the way a browser does: read the CSRF token from the page that shows the form."""
        page = client.get(f"{self.base}{page_path}")
        return client.post(f"{self.base}{path}", data={"csrf_token": csrf_of(page.text), **data},
                           allow_redirects=False)  # fmt: skip


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match and match.group(1), "the page has no CSRF token"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def portal_service(home: Path) -> Iterator[Portal]:
    with access_lake(home):
        store = Store(f"sqlite:///{home / 'sharing.db'}").create_all()
        catalog_path = home / "catalog.json"
        resources = write_catalog(catalog_path)
        people = {n: accounts.create_account(store, n, d, r, PASSWORD) for n, (d, r) in PEOPLE.items()}
        port = free_port()
        app = create_app(store, CONFIG, catalog_path=catalog_path)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the portal server did not start"
            time.sleep(0.05)
        try:
            yield Portal(f"http://127.0.0.1:{port}", store, home, resources, people)
        finally:
            server.should_exit = True
            thread.join(10)
            store.engine.dispose()
