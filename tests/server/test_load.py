"""A load test against ``sam3kit serve`` itself (a subprocess on a free loopback port): 16 concurrent clients,
each uploading its own image and running a fixed number of segment and predict requests. Bounded in count
(16 x 9 requests) and in time (every request has a timeout, the whole run a deadline): no request fails and the
server's resident memory stays bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from server_support import png_bytes, smooth_image

CLIENTS = 16
ROUNDS = 3  # each: one segment, one predict
REQUEST_TIMEOUT = 60.0
RSS_GROWTH_LIMIT = 200 << 20  # the tiny model's encodings are kilobytes: growth beyond this is a leak


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture
def served(server_checkpoint):
    """``sam3kit serve`` on port 0; yields (base URL, process)."""
    script = Path(sys.executable).with_name("sam3kit")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "sam3kit.cli"]
    proc = subprocess.Popen(cmd + ["serve", "--model", str(server_checkpoint), "--port", "0", "--quiet",
                                   "--max-images", "64", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning"))
    try:
        line = proc.stdout.readline()  # printed once the model is loaded and the port bound
        assert "serving" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split(" at ", 1)[1].split(" ", 1)[0].rstrip("/")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def client_session(url: str, k: int, errors: list) -> None:
    import httpx

    try:
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as http:
            image = smooth_image(48 + k, 64, 100 + k)
            r = http.post("/v1/images", content=png_bytes(image), headers={"content-type": "image/png"})
            r.raise_for_status()
            image_id = r.json()["image_id"]
            for i in range(ROUNDS):  # prompts wait for the encoding on the server
                r = http.post(f"/v1/images/{image_id}/segment", json={"text": f"thing {i}"})
                r.raise_for_status()
                r = http.post(f"/v1/images/{image_id}/predict", json={"points": [[5 + i, 10]], "point_labels": [1]})
                r.raise_for_status()
                assert len(r.json()["masks"]) == 3
            http.get(f"/v1/images/{image_id}").raise_for_status()
            http.delete(f"/v1/images/{image_id}").raise_for_status()
    except Exception as e:  # noqa: BLE001 - collected and reported by the test
        errors.append(f"client {k}: {type(e).__name__}: {e}")


def test_sixteen_concurrent_clients(served):
    url, proc = served
    warm: list = []
    client_session(url, 99, warm)  # first requests: lazy imports, allocator pools
    assert not warm, warm
    before = rss_bytes(proc.pid)
    errors: list = []
    threads = [threading.Thread(target=client_session, args=(url, k, errors)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=4 * REQUEST_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a client did not finish within its time bound"
    assert not errors, "\n".join(errors)
    after = rss_bytes(proc.pid)
    assert after - before < RSS_GROWTH_LIMIT, f"resident memory grew by {(after - before) >> 20} MiB"
    assert proc.poll() is None  # still serving
    import httpx

    assert httpx.get(f"{url}/v1/health").json()["images"] == 0  # every client deleted its image
