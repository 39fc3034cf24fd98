"""Body cap middleware on plain ASGI calls: slow, oversized and abandoned bodies."""

from __future__ import annotations

import asyncio
import json

from include.secret_service import middleware
from include.secret_service.middleware import BodyLimitMiddleware


async def _echo_length(scope, receive, send):
    message = await receive()
    body = json.dumps({"length": len(message["body"])}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(app, messages, headers=()):
    """Run one HTTP request through ``app``; return the sent messages."""
    scope = {"type": "http", "method": "POST", "path": "/", "headers": list(headers)}
    pending = list(messages)
    sent = []

    async def receive():
        if pending:
            item = pending.pop(0)
            if item == "hang":
                await asyncio.sleep(3600)
            return item
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _chunk(size: int, more: bool) -> dict:
    return {"type": "http.request", "body": b"x" * size, "more_body": more}


def test_body_at_cap_reaches_app():
    app = BodyLimitMiddleware(_echo_length, max_bytes=100)

    sent = _call(app, [_chunk(60, True), _chunk(40, False)])

    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"length": 100}


def test_streamed_body_over_cap_gets_413():
    app = BodyLimitMiddleware(_echo_length, max_bytes=100)

    sent = _call(app, [_chunk(60, True), _chunk(41, True), "hang"])

    assert sent[0]["status"] == 413


def test_declared_length_over_cap_gets_413_unread():
    app = BodyLimitMiddleware(_echo_length, max_bytes=100)

    sent = _call(app, ["hang"], headers=[(b"content-length", b"101")])

    assert sent[0]["status"] == 413


def test_invalid_content_length_gets_400():
    app = BodyLimitMiddleware(_echo_length, max_bytes=100)

    sent = _call(app, ["hang"], headers=[(b"content-length", b"-1")])

    assert sent[0]["status"] == 400


def test_slow_body_times_out(monkeypatch):
    monkeypatch.setattr(middleware, "BODY_READ_TIMEOUT_SECONDS", 0.1)
    app = BodyLimitMiddleware(_echo_length, max_bytes=100)

    sent = _call(app, [_chunk(10, True), "hang"])

    assert sent[0]["status"] == 408


def test_disconnect_during_body_sends_nothing():
    app = BodyLimitMiddleware(_echo_length, max_bytes=100)

    sent = _call(app, [_chunk(10, True), {"type": "http.disconnect"}])

    assert sent == []
