"""The page at ``/``: plain HTML, JavaScript and CSS files in ``static/`` (no build step), served with a Content
Security Policy that lets the page talk to this server only (no script, style, font, image or request from any
other host)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
           "cache-control": "no-cache"}


class _StaticFiles(StaticFiles):
    """The page's files, with the same headers as the page."""

    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def mount_page(app) -> None:
    r = APIRouter(include_in_schema=False)

    @r.get("/")
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)

    @r.get("/index.html")
    def index_html():
        return RedirectResponse("/")

    app.include_router(r)
    app.mount("/static", _StaticFiles(directory=str(STATIC)), name="static")
