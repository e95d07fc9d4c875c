"""A local HTTP server and web page for interactive SAM 3 segmentation (``sam3kit serve``; the ``server`` extra).

One concept per file:

- ``app`` (``create_app``: the FastAPI application), ``settings`` (``ServerSettings``: host, token, limits),
  ``security`` (Host / Origin / token / body-size guard), ``errors`` (every error as JSON);
- ``service`` (``Sam3Service``: the model, its lock, the predictor and the stores), ``runner`` (the model lock),
  ``images`` (``ImageStore``: background encoding, eviction, dedup), ``videos`` (``VideoStore``: sessions),
  ``streaming`` (the NDJSON propagation), ``answers`` (results as JSON, masks as ``mask_input``),
  ``decoding`` (uploaded image bytes), ``uploads`` (reading request bodies), ``schemas`` (pydantic models);
- ``routes_images``, ``routes_videos``, ``routes_service`` (the ``/v1`` API) and ``page`` with ``static/`` (the
  page at ``/``).

Importing this package needs nothing beyond sam3kit; ``create_app`` needs the ``server`` extra and says so.
"""

from __future__ import annotations

__all__ = ["create_app", "ServerSettings"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServerSettings":
        from .settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'sam3kit.server' has no attribute {name!r}")
