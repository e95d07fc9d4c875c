"""The image API with FastAPI's test client on a tiny checkpoint: answers equal the library's
(``ImagePredictor.segment`` / ``predict``) for the same inputs; uploads, dedup, background encoding and eviction;
every mistake and limit is a JSON 4xx."""

from __future__ import annotations

import numpy as np
import pytest

import sam3kit
from sam3kit.io.rle import decode_rle, encode_rle
from sam3kit.server.answers import mask_to_mask_input

from server_support import png_bytes, smooth_image, wait_ready

H, W = 60, 80


@pytest.fixture(scope="module")
def picture():
    return smooth_image(H, W, 1)


@pytest.fixture(scope="module")
def reference(server_model, picture):
    """The library on the same pixels (the server decodes the PNG to exactly these)."""
    p = sam3kit.ImagePredictor(server_model)
    p.set_image(picture)
    return p


def upload(client, array) -> str:
    r = client.post("/v1/images", content=png_bytes(array), headers={"content-type": "image/png"})
    assert r.status_code in (200, 202), r.text
    st = wait_ready(client, r.json()["image_id"])
    assert st["status"] == "ready", st
    return st["image_id"]


def assert_error(r, status: int, code: str, words: str = ""):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message"} and body["error"] == code, body
    assert words.lower() in body["message"].lower(), body["message"]


def test_upload_status_and_dedup(client, picture, server_model):
    data = png_bytes(picture)
    calls = []
    hook = server_model.image_trunk_module().register_forward_hook(lambda *a: calls.append(1))
    try:
        first = client.post("/v1/images", content=data, headers={"content-type": "image/png"})
        assert first.status_code == 202
        st = first.json()
        assert (st["width"], st["height"]) == (W, H) and st["status"] in ("encoding", "ready")
        assert wait_ready(client, st["image_id"]) == {**st, "status": "ready", "progress": 1.0, "error": None}
        again = client.post("/v1/images", files={"file": ("same.png", data, "image/png")})  # multipart this time
        assert again.status_code == 200 and again.json()["image_id"] == st["image_id"]
        assert again.json()["status"] == "ready"
    finally:
        hook.remove()
    assert len(calls) == 1  # the same bytes share one encoding
    other = client.post("/v1/images", content=png_bytes(smooth_image(H, W, 2)))
    assert other.json()["image_id"] != st["image_id"]
    assert client.get("/v1/health").json()["images"] == 2


def test_segment_equals_library(client, picture, reference):
    image_id = upload(client, picture)
    for body in ({"text": "a red disc"}, {"text": "dog", "threshold": 0.3, "mask_threshold": 0.4},
                 {"boxes": [[5, 5, 40, 30]], "threshold": 0.0},
                 {"text": "cat", "boxes": [[5, 5, 40, 30], [50, 20, 70, 50]], "box_labels": [1, 0]}):
        r = client.post(f"/v1/images/{image_id}/segment", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        kw = dict(body)
        ref = reference.segment(text=kw.pop("text", None), boxes=kw.pop("boxes", None),
                                box_labels=kw.pop("box_labels", None), **kw)
        assert len(got["objects"]) == len(ref) > 0
        assert got["presence"] == float(ref.presence)
        for k, o in enumerate(got["objects"]):
            assert o["score"] == float(ref.scores[k])
            assert o["box"] == [float(v) for v in ref.boxes[k]]
            np.testing.assert_array_equal(decode_rle(o["mask"]), ref.masks[k])
            assert o["mask"] == encode_rle(ref.masks[k])


def test_some_but_not_all_instances_at_the_default_threshold(client, picture):
    """The tiny model is biased to find things (conftest): most of its ten queries, not all."""
    image_id = upload(client, picture)
    n = len(client.post(f"/v1/images/{image_id}/segment", json={"text": "a red disc"}).json()["objects"])
    assert 0 < n < 10


def _same_prediction(got: dict, ref) -> None:
    assert got["iou_scores"] == [float(v) for v in ref.iou_scores]
    assert got["object_score"] == float(ref.object_score) and got["best"] == int(ref.best)
    assert len(got["masks"]) == len(ref.masks)
    for rle, m in zip(got["masks"], ref.masks):
        assert rle["size"] == [H, W]
        np.testing.assert_array_equal(decode_rle(rle), m)


def test_predict_equals_library(client, picture, reference):
    image_id = upload(client, picture)
    cases = [({"points": [[30, 20]]}, dict(points=[[30, 20]])),
             ({"points": [[30, 20], [60, 40]], "point_labels": [1, 0]},
              dict(points=[[30, 20], [60, 40]], point_labels=[1, 0])),
             ({"box": [10, 10, 50, 40], "multimask": False}, dict(box=[10, 10, 50, 40], multimask=False)),
             ({"box": [10, 10, 50, 40], "points": [[20, 20]]}, dict(box=[10, 10, 50, 40], points=[[20, 20]]))]
    for body, kw in cases:
        r = client.post(f"/v1/images/{image_id}/predict", json=body)
        assert r.status_code == 200, r.text
        _same_prediction(r.json(), reference.predict(**kw))


def test_predict_refines_a_segment_object(client, picture, reference, server_model):
    """mask_input {"object": k} is object k's mask of the latest (or the named) segment answer, as logits on the
    low-resolution grid: the answer equals the library's predict with that mask_input."""
    image_id = upload(client, picture)
    size = 4 * server_model.config.tracker.grid_size
    first = client.post(f"/v1/images/{image_id}/segment", json={"text": "a red disc"}).json()
    second = client.post(f"/v1/images/{image_id}/segment", json={"text": "dog", "threshold": 0.0}).json()
    for mask_input, masks in (({"object": 1}, second["objects"]),
                              ({"object": 0, "segment_id": first["segment_id"]}, first["objects"])):
        k = mask_input["object"]
        r = client.post(f"/v1/images/{image_id}/predict", json={"points": [[30, 20]], "mask_input": mask_input})
        assert r.status_code == 200, r.text
        low = mask_to_mask_input(decode_rle(masks[k]["mask"]), size)
        _same_prediction(r.json(), reference.predict(points=[[30, 20]], mask_input=low))
    # any mask of the image's size, as RLE
    blob = np.zeros((H, W), bool)
    blob[10:40, 20:60] = True
    r = client.post(f"/v1/images/{image_id}/predict", json={"mask_input": {"mask": encode_rle(blob)}})
    _same_prediction(r.json(), reference.predict(mask_input=mask_to_mask_input(blob, size)))


def test_mask_to_mask_input():
    blob = np.zeros((60, 90), bool)
    blob[10:50, 20:70] = True
    low = mask_to_mask_input(blob, 32)
    assert low.shape == (32, 32) and low.dtype == np.float32
    assert low.max() == pytest.approx(10.0) and low.min() == pytest.approx(-10.0)
    # the grid covers the whole image stretched to a square: the blob's rows 10..50 of 60, columns 20..70 of 90
    inside = low > 0
    rows, cols = np.nonzero(inside.any(1))[0], np.nonzero(inside.any(0))[0]
    assert (rows[0], rows[-1]) == (5, 26) and (cols[0], cols[-1]) == (7, 24)
    assert (mask_to_mask_input(np.ones((5, 7), bool), 32) == 10.0).all()


def test_prompt_mistakes_are_4xx(client, picture):
    image_id = upload(client, picture)
    seg, pred = f"/v1/images/{image_id}/segment", f"/v1/images/{image_id}/predict"
    assert_error(client.post(pred, content=b'{"points": [[1, 2]', headers={"content-type": "application/json"}),
                 400, "malformed_json")
    assert_error(client.post(pred, content=b'{"points": [[NaN, 2]]}', headers={"content-type": "application/json"}),
                 422, "invalid_request", "finite")
    assert_error(client.post(pred, json={"points": [["10", 20]]}), 422, "invalid_request", "points.0.0")
    assert_error(client.post(pred, json={"points": [[10, 20, 3]]}), 422, "invalid_request", "points.0")
    assert_error(client.post(pred, json={"points": [[10, 20]], "point_labels": [2]}), 422, "invalid_request")
    assert_error(client.post(pred, json={"points": [[10, 20]], "point_labels": [True]}), 422, "invalid_request")
    assert_error(client.post(pred, json={"points": [[10, 20]], "multimask": "yes"}), 422, "invalid_request")
    assert_error(client.post(pred, json={"point": [[10, 20]]}), 422, "invalid_request", "point")
    assert_error(client.post(pred, json=[1, 2]), 422, "invalid_request")
    assert_error(client.post(pred, json={}), 422, "invalid_input", "points, a box or a mask_input")
    assert_error(client.post(pred, json={"points": [[W + 5, 20]]}), 422, "invalid_input", "outside")
    assert_error(client.post(pred, json={"points": [[-1, 20]]}), 422, "invalid_input", "outside")
    assert_error(client.post(pred, json={"box": [50, 10, 10, 40]}), 422, "invalid_input")
    assert_error(client.post(pred, json={"points": [[1, 2]], "point_labels": [1, 0]}), 422, "invalid_input")
    assert_error(client.post(pred, json={"mask_input": {"object": 0}}), 409, "no_segment_answer")
    assert_error(client.post(pred, json={"mask_input": {"object": 0, "mask": {"size": [H, W], "counts": ""}}}),
                 422, "invalid_request", "either")
    assert_error(client.post(pred, json={"mask_input": {"mask": {"size": [H + 1, W], "counts": "0"}}}),
                 422, "invalid_input", "size")
    assert_error(client.post(pred, content=b"points=1", headers={"content-type": "application/x-www-form-urlencoded"}),
                 415, "unsupported_media_type", "json")
    assert_error(client.post(seg, json={}), 422, "invalid_input", "text, exemplar boxes, or both")
    assert_error(client.post(seg, json={"text": 5}), 422, "invalid_request", "text")
    assert_error(client.post(seg, json={"text": "dog", "threshold": 1.5}), 422, "invalid_request", "threshold")
    assert_error(client.post(seg, json={"boxes": [[0, 0, 10]]}), 422, "invalid_request", "boxes.0")
    assert_error(client.post(seg, json={"boxes": [[0, 0, 10, W + 100]]}), 422, "invalid_input", "outside")
    assert_error(client.post(seg, json={"text": "word " * 40}), 422, "invalid_input")
    n = len(client.post(seg, json={"text": "dog"}).json()["objects"])
    assert_error(client.post(pred, json={"mask_input": {"object": n}}), 422, "invalid_input", "out of range")
    assert_error(client.post(pred, json={"mask_input": {"object": 0, "segment_id": "feed"}}), 409,
                 "segment_answer_gone")


def test_upload_mistakes_and_limits_are_4xx(make_client, picture):
    client = make_client(max_image_pixels=W * H - 1, max_body_bytes=50_000)
    assert_error(client.post("/v1/images", content=b""), 400, "empty_body")
    assert_error(client.post("/v1/images", content=b"GIF89a but not really"), 415, "not_an_image")
    assert_error(client.post("/v1/images", content=b"not an image at all"), 415, "not_an_image")
    small = png_bytes(smooth_image(40, 50, 3))
    assert_error(client.post("/v1/images", content=small[: len(small) // 2]), 422, "invalid_image", "truncated")
    data = png_bytes(picture)  # one pixel over the limit: refused from its header
    assert_error(client.post("/v1/images", content=data), 413, "image_too_large", "--max-image-pixels")
    assert_error(client.post("/v1/images", files={"other": ("a.png", data)}), 400, "no_file", "file")
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    big = png_bytes(noise)
    assert len(big) > 50_000
    assert_error(client.post("/v1/images", content=big), 413, "body_too_large", "--max-body-bytes")
    # no Content-Length (chunked): refused while the body arrives
    assert_error(client.post("/v1/images", content=iter([big[:30_000], big[30_000:]])), 413, "body_too_large")
    assert_error(client.get("/v1/images/0123abcd"), 404, "image_not_found")
    assert_error(client.get("/v1/images/not-hex"), 422, "invalid_request", "image_id")
    assert_error(client.get("/v1/nothing"), 404, "not_found", "/v1/nothing")
    assert_error(client.put("/v1/images"), 405, "method_not_allowed")


def test_delete_and_eviction(make_client):
    client = make_client(max_images=2)
    a, b, c = (upload(client, smooth_image(H, W, s)) for s in (11, 12, 13))  # c evicts a
    assert client.get(f"/v1/images/{b}").json()["status"] == "ready"
    assert_error(client.get(f"/v1/images/{a}"), 410, "image_evicted", "--max-images 2")
    assert_error(client.post(f"/v1/images/{a}/segment", json={"text": "dog"}), 410, "image_evicted")
    client.post(f"/v1/images/{b}/segment", json={"text": "dog"})  # b is now the most recently used
    upload(client, smooth_image(H, W, 14))  # evicts c, not b
    assert_error(client.get(f"/v1/images/{c}"), 410, "image_evicted")
    assert client.get(f"/v1/images/{b}").status_code == 200
    assert client.delete(f"/v1/images/{b}").json() == {"image_id": b, "deleted": True}
    assert_error(client.get(f"/v1/images/{b}"), 404, "image_not_found")
    assert upload(client, smooth_image(H, W, 11)) == a  # uploaded again: back


def test_cache_bytes_limit(make_client):
    """Encodings are counted in bytes with the necks they grow: when they no longer fit, the least recently used
    image is evicted; an image whose own encoding is larger than the limit fails with the reason."""
    probe = make_client()
    image_id = upload(probe, smooth_image(H, W, 21))
    probe.post(f"/v1/images/{image_id}/segment", json={"text": "dog"})
    probe.post(f"/v1/images/{image_id}/predict", json={"points": [[3, 3]]})
    service = probe.app.state.service
    one = service.images.cache_bytes  # one image with both necks
    trunk = service.images.get(image_id).state.trunk
    trunk_bytes = trunk.untyped_storage().nbytes()
    assert one > 3 * trunk_bytes

    client = make_client(max_cache_bytes=2 * one)
    ids = [upload(client, smooth_image(H, W, s)) for s in (22, 23, 24)]  # trunks only: all three fit
    for i in ids[:2]:  # two whole encodings and a trunk do not fit: the least recently used goes, ids[2]
        client.post(f"/v1/images/{i}/segment", json={"text": "dog"})
        client.post(f"/v1/images/{i}/predict", json={"points": [[3, 3]]})
    assert_error(client.get(f"/v1/images/{ids[2]}"), 410, "image_evicted", "--max-cache-bytes")
    assert [client.get(f"/v1/images/{i}").status_code for i in ids[:2]] == [200, 200]
    assert client.app.state.service.images.cache_bytes == 2 * one

    tight = make_client(max_cache_bytes=trunk_bytes // 2)
    r = tight.post("/v1/images", content=png_bytes(smooth_image(H, W, 25)))
    st = wait_ready(tight, r.json()["image_id"])
    assert st["status"] == "failed" and "--max-cache-bytes" in st["error"]
    assert_error(tight.post(f"/v1/images/{st['image_id']}/segment", json={"text": "dog"}), 409, "image_failed")


def test_prompt_waits_for_encoding_then_409(make_client, picture):
    client = make_client(encoding_wait_s=0.05)
    service = client.app.state.service
    with service.runner.hold("a test"):  # the encoder cannot start
        r = client.post("/v1/images", content=png_bytes(picture))
        image_id = r.json()["image_id"]
        st = client.get(f"/v1/images/{image_id}").json()
        assert st["status"] == "encoding" and st["progress"] == 0.0
        assert_error(client.post(f"/v1/images/{image_id}/predict", json={"points": [[1, 1]]}), 409,
                     "image_encoding", "still encoding")
    assert wait_ready(client, image_id)["status"] == "ready"
    assert client.post(f"/v1/images/{image_id}/predict", json={"points": [[1, 1]]}).status_code == 200


def test_model_busy_is_429(make_client, picture):
    client = make_client(model_wait_s=0.05)
    image_id = upload(client, picture)
    with client.app.state.service.runner.hold("a test"):
        r = client.post(f"/v1/images/{image_id}/segment", json={"text": "dog"})
    assert_error(r, 429, "model_busy", "retry")
    assert r.headers["retry-after"] == "5"


def test_encoding_progress_counts_vit_layers(server_model, picture):
    from sam3kit.server.images import _layer_progress

    seen = []
    encoder = sam3kit.ImageEncoder(server_model, sam3kit.EncodingCache(max_items=0))
    with _layer_progress(encoder, seen.append):
        encoder.encode_arrays([picture])
    n = len(server_model.image_trunk_module().layers)
    assert seen == [(i + 1) / n for i in range(n)]
    encoder.encode_arrays([picture])  # the hooks are gone
    assert len(seen) == n


def test_health_and_info(client):
    h = client.get("/v1/health").json()
    assert h == {"status": "ok", "model_busy": False, "images": 0, "sessions": 0}
    info = client.get("/v1/info").json()
    assert info["sam3kit"] == sam3kit.__version__
    assert info["model"]["source"] == "tiny" and info["model"]["image_size"] == 112
    assert info["model"]["device"] == "cpu" and info["model"]["mask_input_size"] == 32
    assert info["limits"]["max_images"] == 32 and info["limits"]["token"] is False
    assert info["features"]["video_files"] is True
