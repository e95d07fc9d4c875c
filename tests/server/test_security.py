"""Who may call the server: loopback by default, a token for any other host, the Host check against DNS
rebinding, cross-origin requests refused unless their origin is allowed (CORS off by default), and the page's
Content Security Policy (it talks to this server only)."""

from __future__ import annotations

import re

import pytest

from sam3kit.errors import InputError
from sam3kit.server import ServerSettings
from sam3kit.server.page import STATIC
from sam3kit.server.security import host_allowed, host_name
from sam3kit.server.settings import is_loopback

TOKEN = "s3cret-token-1234"


def test_settings_refuse_an_open_host_without_a_token():
    with pytest.raises(InputError, match="--token"):
        ServerSettings(host="0.0.0.0")
    with pytest.raises(InputError, match="--token"):
        ServerSettings(host="192.168.1.5")
    assert ServerSettings(host="0.0.0.0", token=TOKEN).token == TOKEN
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert is_loopback(host) and ServerSettings(host=host).host == host
    with pytest.raises(InputError, match="at least 8"):
        ServerSettings(token="short")
    with pytest.raises(InputError, match="max_images"):
        ServerSettings(max_images=0)
    with pytest.raises(InputError, match="CORS origin"):
        ServerSettings(cors_origins=("localhost:3000",))
    assert "s3cret" not in str(ServerSettings(token=TOKEN).public())


def test_host_header_check(client):
    assert client.get("/v1/health").status_code == 200  # Host: localhost
    for host in ("localhost:8000", "127.0.0.1:9", "[::1]:8000", "192.168.1.20", "app.localhost"):
        assert client.get("/v1/health", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.nip.io", ""):
        r = client.get("/v1/health", headers={"host": host})
        assert r.status_code == 403 and r.json()["error"] == "host_not_allowed", host
    assert client.get("/", headers={"host": "rebound.example"}).status_code == 403  # the page too
    assert host_name("[::1]:80") == "::1" and host_name("Example.COM:80") == "example.com"
    assert host_allowed("tool.lan", ("tool.lan",)) and not host_allowed("tool.lan", ())


def test_allowed_host(make_client):
    client = make_client(allowed_hosts=("Workstation.lan",))
    assert client.get("/v1/health", headers={"host": "workstation.lan:8000"}).status_code == 200
    assert client.get("/v1/health", headers={"host": "other.lan"}).status_code == 403


def test_token(make_client):
    client = make_client(host="0.0.0.0", token=TOKEN)
    r = client.get("/v1/health")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    assert "no Authorization header" in r.json()["message"]
    for auth in ("Bearer wrong-token-0000", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"):
        assert client.get("/v1/health", headers={"authorization": auth}).status_code == 401, auth
    ok = {"authorization": f"Bearer {TOKEN}"}
    assert client.get("/v1/health", headers=ok).status_code == 200
    assert client.post("/v1/images", content=b"x", headers=ok).status_code == 415  # past the guard
    assert client.post("/v1/images", content=b"x").status_code == 401
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/openapi.json", headers=ok).status_code == 200
    assert client.get("/").status_code == 200 and client.get("/static/main.js").status_code == 200  # no data there
    assert client.get("/v1/info", headers=ok).json()["limits"]["token"] is True


def test_cross_origin_requests_are_refused(client):
    r = client.post("/v1/images", content=b"x", headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "origin_not_allowed"
    assert "--cors-origin https://evil.example" in r.json()["message"]
    assert client.get("/v1/health", headers={"origin": "http://localhost:3000"}).status_code == 403  # another port
    assert client.get("/v1/health", headers={"origin": "null"}).status_code == 403
    assert client.get("/v1/health", headers={"origin": "http://localhost"}).status_code == 200  # the page itself
    r = client.options("/v1/health", headers={"origin": "https://evil.example", "access-control-request-method": "GET"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in client.get("/v1/health").headers  # CORS is off


def test_cors_when_asked(make_client):
    tool = "http://localhost:3000"
    client = make_client(cors_origins=(tool,))
    r = client.get("/v1/health", headers={"origin": tool})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == tool
    pre = client.options("/v1/images/abc/segment", headers={
        "origin": tool, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, authorization"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == tool
    assert client.get("/v1/health", headers={"origin": "http://localhost:4000"}).status_code == 403


def test_the_page_reaches_no_other_host(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
    assert client.get("/static/style.css").headers["content-security-policy"] == csp
    for f in STATIC.iterdir():  # no absolute URL anywhere in the page's files (SVG namespaces aside)
        text = f.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/)", text), f.name
        assert not re.search(r"""(?:src|href)=["'](?!/static/|data:)""", text), f.name
    for name in ("main.js", "api.js", "masks.js", "stage.js", "image.js", "video.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200, name
    assert client.get("/docs").status_code == 404  # FastAPI's API browser would load scripts from a CDN
