"""The sharing portal (共享门户): server-rendered pages on the sharing API's FastAPI app.

``mount_portal`` adds the pages (``routes``) under ``/portal``, their local stylesheet under
``/portal/static`` and the handlers that turn a missing session into the login page and a refused form or
action into an error page. Nothing is loaded from another host: the pages render offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from citybrain.sharing.config import SharingConfig
from citybrain.sharing.portal.catalog_view import CatalogMissing, CatalogSource
from citybrain.sharing.portal.forms import BadForm
from citybrain.sharing.portal.routes import (
    PREFIX,
    LoginRequired,
    PortalError,
    build_templates,
    error_page,
    login_redirect,
    portal_router,
)
from citybrain.sharing.portal.session import CsrfRefused
from citybrain.sharing.store import Store

STATIC_DIR = Path(__file__).with_name("static")


def mount_portal(
    app: FastAPI,
    store: Store,
    config: SharingConfig,
    pool_directory: Path | None = None,
    catalog_path: Path | None = None,
) -> None:
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="portal-static")
    app.include_router(portal_router(store, config, pool_directory, CatalogSource(catalog_path)))
    templates = build_templates()

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, error: LoginRequired):
        return login_redirect(error.next_path)

    @app.exception_handler(PortalError)
    async def _refused(request: Request, error: PortalError):
        return error_page(templates, request, error.status, error.zh, error.en)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, error: CsrfRefused):
        return error_page(templates, request, 403, "表单校验失败，请刷新页面后重试", str(error))

    @app.exception_handler(BadForm)
    async def _bad_form(request: Request, error: BadForm):
        return error_page(templates, request, 400, "无法读取表单", str(error))

    @app.exception_handler(CatalogMissing)
    async def _no_catalog(request: Request, error: CatalogMissing):
        return error_page(templates, request, 503, "尚无资源目录", str(error))
