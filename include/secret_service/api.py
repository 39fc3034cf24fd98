"""HTTP API and reveal page of the one-time secret service (FastAPI).

Routes:

- ``POST /api/secrets`` (service token): store a ciphertext, return id and receipt.
- ``POST /api/secrets/status``: check the access token without changing anything.
- ``POST /api/secrets/reveal``: claim the ciphertext once.
- ``POST /api/receipts/lookup`` and ``/api/receipts/burn`` (service token).
- ``GET /s/{secret_id}``: the static reveal page; it never reads storage.
- ``GET /static/reveal.js``, ``/static/reveal.css``, ``/robots.txt``, ``/healthz``.

Secret ids and tokens travel in JSON bodies, so request paths carry an id only
on the page route, whose access log line shows the template ``/s/{secret_id}``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pymongo.database import Database
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from include.secret_service.crypto import b64url_encode, sha256_hex
from include.secret_service.limits import PASSPHRASE_MAX_FAILURES
from include.secret_service.middleware import wrap_app
from include.secret_service.ratelimit import TokenBucketLimiter
from include.secret_service.schemas import (
    AccessRequest,
    CreateRequest,
    InvalidField,
    ReceiptRequest,
    decode_token,
    public_passphrase_parameters,
    validate_create,
)
from include.secret_service.settings import Settings
from include.secret_service.store import Clock, SecretStore, State, iso_time, utc_now

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
_STATIC_FILES = {
    "reveal.js": "text/javascript; charset=utf-8",
    "reveal.css": "text/css; charset=utf-8",
}
UNAVAILABLE_MESSAGE = "This secret was already viewed, has expired or was burned."


class ApiError(Exception):
    """An error response: HTTP status, error code, message and extra JSON fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers


def _unavailable(message: str = UNAVAILABLE_MESSAGE, **extra: Any) -> ApiError:
    return ApiError(410, "unavailable", message, extra)


def _rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"too many requests from this address; retry in {retry_after} seconds",
        {"retry_after_seconds": retry_after},
        {"Retry-After": str(retry_after)},
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _same_hash(presented_hex: str, stored_hex: str | None) -> bool:
    if stored_hex is None:
        return False
    return hmac.compare_digest(presented_hex.encode(), stored_hex.encode())


class Limiters:
    """Per-IP token buckets of one app instance."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        limits = settings.rate_limits

        def seconds() -> float:
            return clock().timestamp()

        self.reveal = TokenBucketLimiter(limits.reveal_capacity, limits.reveal_per_minute, seconds)
        self.receipt = TokenBucketLimiter(
            limits.receipt_capacity, limits.receipt_per_minute, seconds
        )
        self.failure = TokenBucketLimiter(
            limits.failure_capacity, limits.failure_per_minute, seconds
        )

    def admit(self, bucket: TokenBucketLimiter, address: str) -> None:
        """Raise 429 when ``address`` used up ``bucket`` or its failure allowance."""
        wait = self.failure.retry_after(address) or bucket.take(address)
        if wait:
            raise _rate_limited(wait)


async def _purge_periodically(store: SecretStore, interval_seconds: float) -> None:
    while True:
        try:
            await asyncio.to_thread(store.purge)
        # A failed purge must not end the loop, so every error is logged and
        # the next run covers what this one missed.
        except Exception:
            log.exception("purge failed, retrying in %.0f seconds", interval_seconds)
        await asyncio.sleep(interval_seconds)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        content = {"error": exc.code, "message": exc.message, **exc.extra}
        return JSONResponse(content, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only location and message: pydantic's "input" would echo request values.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:]) or 'body'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        content = {"error": "invalid_request", "message": f"invalid request: {problems}"}
        return JSONResponse(content, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        content = {"error": code, "message": str(exc.detail).lower()}
        return JSONResponse(content, status_code=exc.status_code, headers=exc.headers)


def create_app(settings: Settings, database: Database, clock: Clock = utc_now) -> ASGIApp:
    """Build the service's ASGI app, wrapped in its security middleware.

    ``clock`` is injectable so tests can move time past an expiry; the store,
    the purge task and the rate limiters all read it.
    """
    store = SecretStore(database, timedelta(seconds=settings.receipt_retention_seconds), clock)
    limiters = Limiters(settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await asyncio.to_thread(store.ensure_indexes)
        except PyMongoError as exc:
            log.error("cannot create indexes in MongoDB database %s: %s", database.name, exc)
            raise
        purge = asyncio.create_task(_purge_periodically(store, settings.purge_interval_seconds))
        log.info("purge task started, every %s seconds", settings.purge_interval_seconds)
        try:
            yield
        finally:
            purge.cancel()
            with suppress(asyncio.CancelledError):
                await purge

    app = FastAPI(
        title="One-time secret service",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.store = store
    _install_error_handlers(app)
    _add_creator_routes(app, settings, store, limiters)
    _add_reader_routes(app, store, limiters)
    _add_page_routes(app, database)
    return wrap_app(app)


def _service_token_check(settings: Settings, limiters: Limiters) -> Callable[[Request], None]:
    """Return a dependency that rejects requests without the service bearer token."""
    expected_token_hash = sha256_hex(settings.token.encode())

    def require_service_token(request: Request) -> None:
        address = _client_ip(request)
        wait = limiters.failure.retry_after(address)
        if wait:
            raise _rate_limited(wait)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # Comparing digests keeps the comparison constant-time for any length.
        if scheme.lower() != "bearer" or not _same_hash(
            sha256_hex(token.encode()), expected_token_hash
        ):
            limiters.failure.take(address)
            log.warning(
                "rejected %s without a valid service token from %s", request.url.path, address
            )
            raise ApiError(
                401,
                "unauthorized",
                "missing or invalid service token in the Authorization header",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_service_token


def _add_creator_routes(
    app: FastAPI, settings: Settings, store: SecretStore, limiters: Limiters
) -> None:
    authenticated = [Depends(_service_token_check(settings, limiters))]

    @app.post("/api/secrets", status_code=201, dependencies=authenticated)
    def create_secret(body: CreateRequest) -> dict[str, Any]:
        try:
            fields = validate_create(body)
        except InvalidField as exc:
            raise ApiError(422, "invalid_request", str(exc)) from exc
        created = store.create(**fields)
        return {
            "secret_id": created.secret_id,
            "url": f"{settings.link_base()}/s/{created.secret_id}",
            "receipt_id": created.receipt_id,
            "receipt_token": created.receipt_token,
            "expires_at": iso_time(created.expires_at),
        }

    @app.post("/api/receipts/lookup", dependencies=authenticated)
    def lookup_receipt(body: ReceiptRequest, request: Request) -> dict[str, Any]:
        address = _client_ip(request)
        limiters.admit(limiters.receipt, address)
        receipt = store.receipt(body.receipt_token)
        if receipt is None:
            limiters.failure.take(address)
            log.warning("unknown receipt token in a lookup from %s", address)
            raise ApiError(404, "unknown_receipt", "no receipt matches this receipt token")
        return receipt

    @app.post("/api/receipts/burn", dependencies=authenticated)
    def burn_secret(body: ReceiptRequest, request: Request) -> dict[str, Any]:
        address = _client_ip(request)
        limiters.admit(limiters.receipt, address)
        receipt = store.burn(body.receipt_token)
        if receipt is None:
            limiters.failure.take(address)
            log.warning("unknown receipt token in a burn from %s", address)
            raise ApiError(404, "unknown_receipt", "no receipt matches this receipt token")
        if receipt["state"] != State.BURNED.value:
            raise _unavailable(
                f"the secret is {receipt['state']}, so there is nothing to burn", receipt=receipt
            )
        return receipt


def _add_reader_routes(app: FastAPI, store: SecretStore, limiters: Limiters) -> None:
    def authorize(body: AccessRequest, request: Request) -> tuple[dict[str, Any], str]:
        """Return the pending document and the presented token's hash, or raise."""
        address = _client_ip(request)
        limiters.admit(limiters.reveal, address)
        try:
            token_hash = sha256_hex(decode_token("access_token", body.access_token))
        except InvalidField as exc:
            raise ApiError(422, "invalid_request", str(exc)) from exc

        document = store.find_pending(body.secret_id)
        if document is None:
            raise _unavailable()
        if not _same_hash(token_hash, document.get("access_token_hash")):
            # A wrong key never burns the secret. It only spends this
            # address's failure allowance.
            limiters.failure.take(address)
            log.info(
                "wrong access token for secret with receipt %s from %s",
                document["receipt_id"],
                address,
            )
            raise ApiError(
                403,
                "invalid_access_token",
                "the key in the link does not match this secret; copy the whole link",
            )
        return document, token_hash

    @app.post("/api/secrets/status")
    def secret_status(body: AccessRequest, request: Request) -> dict[str, Any]:
        document, _ = authorize(body, request)
        return {
            "state": State.PENDING.value,
            "expires_at": iso_time(document["expires_at"]),
            "passphrase": public_passphrase_parameters(document.get("passphrase")),
        }

    @app.post("/api/secrets/reveal")
    def reveal_secret(body: AccessRequest, request: Request) -> dict[str, Any]:
        document, token_hash = authorize(body, request)
        if document.get("passphrase"):
            _check_passphrase(store, document, body, token_hash)

        claimed = store.claim(body.secret_id, token_hash)
        if claimed is None:
            raise _unavailable()
        return {
            "ciphertext": b64url_encode(claimed["ciphertext"]),
            "nonce": b64url_encode(claimed["nonce"]),
        }


def _check_passphrase(
    store: SecretStore, document: dict[str, Any], body: AccessRequest, token_hash: str
) -> None:
    """Raise unless the passphrase verifier matches; count and burn on wrong ones."""
    passphrase = document["passphrase"]
    if body.passphrase_verifier is None:
        raise ApiError(
            403,
            "passphrase_required",
            "this secret is protected by a passphrase",
            {"passphrase": public_passphrase_parameters(passphrase)},
        )
    try:
        verifier = decode_token("passphrase_verifier", body.passphrase_verifier)
    except InvalidField as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc
    if _same_hash(sha256_hex(verifier), passphrase["verifier_hash"]):
        return

    attempts_left = store.record_wrong_passphrase(body.secret_id, token_hash)
    if attempts_left == 0:
        raise _unavailable(
            f"wrong passphrase; after {PASSPHRASE_MAX_FAILURES} wrong passphrases "
            "the secret was burned"
        )
    raise ApiError(
        403,
        "wrong_passphrase",
        f"wrong passphrase; {attempts_left} more wrong attempts burn the secret",
        {"attempts_left": attempts_left},
    )


def _add_page_routes(app: FastAPI, database: Database) -> None:
    page = (STATIC_DIR / "reveal.html").read_bytes()
    assets = {name: (STATIC_DIR / name).read_bytes() for name in _STATIC_FILES}

    @app.get("/s/{secret_id}")
    def reveal_page(secret_id: str) -> Response:
        # The page is the same for every id and reads no storage, so a GET
        # (link previews, mail scanners, prefetching) changes nothing.
        return Response(page, media_type="text/html; charset=utf-8")

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in assets:
            raise StarletteHTTPException(404, "not found")
        return Response(assets[name], media_type=_STATIC_FILES[name])

    @app.get("/robots.txt")
    def robots() -> Response:
        return Response("User-agent: *\nDisallow: /\n", media_type="text/plain")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            database.command("ping")
        except PyMongoError as exc:
            log.warning("health check failed: MongoDB ping failed: %s", exc)
            return JSONResponse({"status": "unavailable", "mongo": "unreachable"}, 503)
        return JSONResponse({"status": "ok", "mongo": "ok"})
