"""ASGI middleware: security headers, access log and request body cap.

They wrap the whole FastAPI app (see :func:`wrap_app`), outside Starlette's
own error handling, so every response gets the headers, including 404, 405,
413, 500 and responses that the app never reached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from include.secret_service.limits import REQUEST_BODY_MAX_BYTES

log = logging.getLogger(__name__)
access_log = logging.getLogger("include.secret_service.access")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    # Two years, the minimum that browsers' HSTS preload lists accept.
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_SECURITY_HEADER_NAMES = {name for name, _ in SECURITY_HEADERS}
# A client that sends its body slower than this is cut off, so slow senders
# cannot hold worker threads.
BODY_READ_TIMEOUT_SECONDS = 10.0


async def send_error(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    """Send a JSON error response ``{"error": code, "message": message}``."""
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeadersMiddleware:
    """Set the security headers on every response and turn crashes into a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in _SECURITY_HEADER_NAMES
                ]
                message = {**message, "headers": headers + SECURITY_HEADERS}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            route = _route_template(scope)
            log.error(
                "unhandled %s in %s %s", type(exc).__name__, scope["method"], route, exc_info=exc
            )
            if not started:
                await send_error(send_with_headers, 500, "internal_error", "internal server error")


def _route_template(scope: Scope) -> str:
    """Return the matched route's path template (never the request path), or "-"."""
    route: Any = scope.get("route")
    return getattr(route, "path", None) or "-"


class AccessLogMiddleware:
    """Log method, route template, status and duration of each request.

    This replaces uvicorn's access log, which prints the request path and so
    would print secret ids. The client address is not logged either.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Stays None when the client went away before any response was sent.
        status: int | None = None
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            access_log.info(
                "%s %s %s %.1fms",
                scope["method"],
                _route_template(scope),
                status,
                (time.perf_counter() - started) * 1000,
            )


class _ClientDisconnected(Exception):
    pass


class BodyLimitMiddleware:
    """Reject request bodies above ``max_bytes`` before the app parses them.

    A declared ``Content-Length`` above the cap is rejected at once. Otherwise
    the body is read and counted chunk by chunk, because chunked uploads
    declare no length, and it reaches the app only when it fits.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = REQUEST_BODY_MAX_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        too_large = f"the request body exceeds the limit of {self.max_bytes} bytes"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_error(send, 400, "invalid_request", "invalid Content-Length header")
                return
            if int(declared) > self.max_bytes:
                await send_error(send, 413, "body_too_large", too_large)
                return

        try:
            async with asyncio.timeout(BODY_READ_TIMEOUT_SECONDS):
                body = await self._read_body(receive)
        except TimeoutError:
            await send_error(send, 408, "timeout", "timed out reading the request body")
            return
        except _ClientDisconnected:
            return
        if body is None:
            await send_error(send, 413, "body_too_large", too_large)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """Return the whole body, or None as soon as it exceeds the cap."""
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientDisconnected
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def wrap_app(app: ASGIApp, max_body_bytes: int = REQUEST_BODY_MAX_BYTES) -> ASGIApp:
    """Wrap ``app``: headers outermost, then the access log, then the body cap."""
    return SecurityHeadersMiddleware(AccessLogMiddleware(BodyLimitMiddleware(app, max_body_bytes)))
