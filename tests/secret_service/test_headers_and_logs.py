"""Security headers on every response, the reveal page's markup, and log hygiene."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import urllib.request

import httpx
import pytest
from pymongo import MongoClient

from include.secret_service import crypto
from include.secret_service.api import STATIC_DIR, create_app
from include.secret_service.errors import SecretUnavailable
from include.secret_service.middleware import SecurityHeadersMiddleware
from include.secret_service.settings import RateLimits, Settings
from tests.secret_service.conftest import SERVICE_TOKEN
from tests.secret_service.helpers import AUTH, access_body, create_body, key_from_link

EXPECTED_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get(name) == value, f"{name} on {response.request.url.path}"
    assert "server" not in response.headers


def test_headers_on_every_response(start_service):
    # Two failures allowed: the wrong service token and the wrong access token
    # below, so the request after them is rate limited.
    service = start_service(rate_limits=RateLimits(failure_capacity=2, failure_per_minute=1.0))
    client = service.client()
    created = client.create("secret", 300)
    key = key_from_link(created.link)
    http = service.http()
    body, _ = create_body()

    responses = {
        "page": http.get(f"/s/{created.secret_id}"),
        "script": http.get("/static/reveal.js"),
        "stylesheet": http.get("/static/reveal.css"),
        "robots": http.get("/robots.txt"),
        "healthz": http.get("/healthz"),
        "status": http.post("/api/secrets/status", json=access_body(created.secret_id, key)),
        "created": http.post("/api/secrets", json=body, headers=AUTH),
        "not-found": http.get("/nothing-here"),
        "static-not-found": http.get("/static/reveal.html"),
        "method-not-allowed": http.delete("/api/secrets"),
        "invalid": http.post("/api/secrets", json={"ttl_seconds": 300}, headers=AUTH),
        "too-large": http.post("/api/secrets", content=b"x" * 70_000, headers=AUTH),
        "unauthorized": http.post("/api/secrets", json=body),
        "wrong-token": http.post(
            "/api/secrets/status", json=access_body(created.secret_id, crypto.generate_key())
        ),
        "rate-limited": http.post("/api/secrets/status", json=access_body(created.secret_id, key)),
    }
    service.clock.advance(3600)
    responses["gone"] = http.post("/api/secrets/status", json=access_body(created.secret_id, key))

    expected_status = {
        "page": 200,
        "script": 200,
        "stylesheet": 200,
        "robots": 200,
        "healthz": 200,
        "status": 200,
        "created": 201,
        "not-found": 404,
        "static-not-found": 404,
        "method-not-allowed": 405,
        "unauthorized": 401,
        "invalid": 422,
        "too-large": 413,
        "wrong-token": 403,
        "rate-limited": 429,
        "gone": 410,
    }
    for name, response in responses.items():
        assert response.status_code == expected_status[name], name
        assert_security_headers(response)


def test_content_types_of_page_and_assets(service):
    http = service.http()

    assert http.get("/s/" + "A" * 22).headers["content-type"] == "text/html; charset=utf-8"
    assert http.get("/static/reveal.js").headers["content-type"].startswith("text/javascript")
    assert http.get("/static/reveal.css").headers["content-type"].startswith("text/css")
    assert http.get("/docs").status_code == 404
    assert http.get("/openapi.json").status_code == 404


def test_page_has_no_inline_script_or_style():
    html = (STATIC_DIR / "reveal.html").read_text()

    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts == [""]
    assert re.search(r'<script src="\.\./static/reveal\.js"', html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert "style=" not in html
    assert "<style" not in html
    assert "http://" not in html
    assert "https://" not in html


def test_page_script_calls_only_api():
    script = (STATIC_DIR / "reveal.js").read_text()

    assert set(re.findall(r'post\("([^"]+)"', script)) == {
        "../api/secrets/status",
        "../api/secrets/reveal",
    }
    assert script.count("fetch(") == 1
    for forbidden in ("location.href", "localStorage", "sessionStorage", "sendBeacon", "console."):
        assert forbidden not in script


def test_crash_gets_headers_and_json_500():
    async def crashing_app(scope, receive, send):
        raise RuntimeError("boom")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=SecurityHeadersMiddleware(crashing_app))
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
            return await client.get("/anything")

    response = asyncio.run(call())

    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert_security_headers(response)


def test_healthz_reports_unreachable_mongo():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    mongo = MongoClient(f"mongodb://127.0.0.1:{closed_port}", serverSelectionTimeoutMS=200)
    app = create_app(Settings(token=SERVICE_TOKEN), mongo["unreachable"])

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
            return await client.get("/healthz")

    try:
        response = asyncio.run(call())
    finally:
        mongo.close()

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "mongo": "unreachable"}
    assert_security_headers(response)


@pytest.mark.parametrize("passphrase", [None, "open sesame"], ids=["plain", "passphrase"])
def test_cycle_logs_hide_ids_and_tokens(service, caplog, passphrase):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="include.secret_service")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    client = service.client()
    plaintext = "log-canary-plaintext"

    created = client.create(plaintext, 300, passphrase=passphrase)
    page_context = ssl.create_default_context(cafile=str(service.ca_file))
    with urllib.request.urlopen(  # noqa: S310 - fixed https:// URL of the test server
        created.link.rsplit("#", 1)[0], context=page_context
    ) as page:
        assert page.status == 200
    revealed = client.reveal(created.link, passphrase=passphrase)
    receipt = client.receipt(created.receipt_token)
    with pytest.raises(SecretUnavailable):
        client.burn(created.receipt_token)

    key = key_from_link(created.link)
    secrets_to_hide = {
        "secret id": created.secret_id,
        "key": crypto.encode_key(key),
        "access token": crypto.b64url_encode(crypto.derive_access_token(key)),
        "access token hash": crypto.sha256_hex(crypto.derive_access_token(key)),
        "receipt token": created.receipt_token,
        "plaintext": plaintext,
        "service token": SERVICE_TOKEN,
    }
    log_text = "\n".join(record.getMessage() for record in caplog.records)
    assert revealed == plaintext
    assert receipt["state"] == "viewed"
    for name, value in secrets_to_hide.items():
        assert value not in log_text, f"{name} appears in the log"
    assert "GET /s/{secret_id} 200" in log_text
    assert "POST /api/secrets/reveal 200" in log_text
    assert f"receipt {created.receipt_id}" in log_text
