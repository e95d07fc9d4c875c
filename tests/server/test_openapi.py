"""The API's schema: ``/openapi.json`` equals the committed ``docs/openapi.json`` (regenerate it with
``SAM3KIT_UPDATE_DOCS=1 python -m pytest tests/server/test_openapi.py`` after changing the API), and it lists
every route of the API."""

from __future__ import annotations

import json
import os
from pathlib import Path

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"

ROUTES = {
    "/v1/health": {"get"}, "/v1/info": {"get"},
    "/v1/images": {"post"}, "/v1/images/{image_id}": {"get", "delete"},
    "/v1/images/{image_id}/segment": {"post"}, "/v1/images/{image_id}/predict": {"post"},
    "/v1/videos": {"post"}, "/v1/videos/{session_id}": {"get", "delete"},
    "/v1/videos/{session_id}/prompts": {"post"}, "/v1/videos/{session_id}/concepts": {"post"},
    "/v1/videos/{session_id}/propagate": {"get"}, "/v1/videos/{session_id}/frames/{index}": {"get"},
    "/v1/videos/{session_id}/frames/{index}/result": {"get"},
    "/v1/videos/{session_id}/objects/{obj_id}": {"delete"}, "/v1/videos/{session_id}/reset": {"post"},
}


def test_committed_schema_is_current(client):
    served = client.get("/openapi.json").json()
    if os.environ.get("SAM3KIT_UPDATE_DOCS"):
        COMMITTED.parent.mkdir(exist_ok=True)
        COMMITTED.write_text(json.dumps(served, indent=1, sort_keys=True) + "\n")
    assert COMMITTED.is_file(), f"{COMMITTED} is missing: run SAM3KIT_UPDATE_DOCS=1 pytest {__file__}"
    committed = json.loads(COMMITTED.read_text())
    assert served == committed, (f"the API changed: regenerate {COMMITTED.name} with SAM3KIT_UPDATE_DOCS=1 python -m "
                                 "pytest tests/server/test_openapi.py, and review the diff")


def test_schema_lists_the_api(client):
    schema = client.get("/openapi.json").json()
    paths = {p: set(ops) for p, ops in schema["paths"].items()}
    assert paths == ROUTES
    upload = schema["paths"]["/v1/images"]["post"]["requestBody"]["content"]
    assert {"image/*", "multipart/form-data", "application/octet-stream"} <= set(upload)
    comps = schema["components"]["schemas"]
    assert set(comps["Rle"]["properties"]) == {"size", "counts"}
    assert set(comps["SegmentAnswer"]["properties"]) == {"segment_id", "objects", "presence"}
    assert set(comps["PredictAnswer"]["properties"]) == {"masks", "iou_scores", "object_score", "best"}
    assert set(comps["FrameObject"]["properties"]) == {"id", "score", "box", "mask", "concept"}
    assert "application/x-ndjson" in schema["paths"]["/v1/videos/{session_id}/propagate"]["get"]["responses"]["200"][
        "content"]
