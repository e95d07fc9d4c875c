"""``create_app``: the FastAPI application of ``sam3kit serve``.

    import sam3kit, uvicorn
    from sam3kit.server import ServerSettings, create_app

    app = create_app(sam3kit.load("facebook/sam3"), ServerSettings(max_images=8))
    uvicorn.run(app, host="127.0.0.1", port=8000)

Layers, outside in: ``security.Guard`` (Host, Origin, token, body size), CORS when origins are given, the routes
(``routes_images``, ``routes_videos``, ``/v1/health``, ``/v1/info``, the page), and the JSON error handlers
(``errors.py``). The interactive API browser FastAPI offers (``/docs``) is off: it loads its scripts from a CDN,
and the server's pages must not reach any other host. The schema is at ``/openapi.json``.
"""

from __future__ import annotations

import contextlib
from typing import Optional

from ..model.sam3 import Sam3Model
from .settings import ServerSettings

API_DESCRIPTION = """Interactive SAM 3 segmentation of images and videos on a local server.

Masks are COCO RLE `{"size": [height, width], "counts": str}` at the original size; coordinates are pixels of the
original image or frame (points `[x, y]`, boxes `[x1, y1, x2, y2]`); errors are `{"error": code, "message": text}`
with a 4xx status."""


def create_app(model: Sam3Model, settings: ServerSettings = ServerSettings(), *, model_source: Optional[str] = None):
    """The FastAPI app serving ``model`` with ``settings``; ``app.state.service`` is its ``Sam3Service``, closed
    when the app shuts down (its lifespan)."""
    from .extra import require_server_extra

    require_server_extra()
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware

    from .. import __version__
    from . import routes_images, routes_service, routes_videos
    from .errors import install_error_handlers
    from .page import mount_page
    from .security import Guard
    from .service import Sam3Service

    service = Sam3Service(model, settings, model_source=model_source)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            service.close()

    app = FastAPI(title="sam3kit", version=__version__, description=API_DESCRIPTION, docs_url=None,
                  redoc_url=None, lifespan=lifespan)
    app.state.service = service
    install_error_handlers(app)
    app.include_router(routes_service.router(service))
    app.include_router(routes_images.router(service))
    app.include_router(routes_videos.router(service))
    mount_page(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["authorization", "content-type"],
                           max_age=600)
    app.add_middleware(Guard, settings=settings)  # added last: the outermost layer
    return app
