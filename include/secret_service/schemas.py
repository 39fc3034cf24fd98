"""Request bodies of the HTTP API and the checks that pydantic cannot express."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StrictInt, StringConstraints

from include.secret_service import crypto
from include.secret_service.limits import (
    CIPHERTEXT_MAX_BYTES,
    CIPHERTEXT_MIN_BYTES,
    PBKDF2_MAX_ITERATIONS,
    PBKDF2_MIN_ITERATIONS,
    TTL_MAX_SECONDS,
    TTL_MIN_SECONDS,
    ttl_range_text,
)

Base64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]*$", max_length=60_000)]
HexDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
SecretId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{22}$")]
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


class InvalidField(ValueError):
    """A field is syntactically valid JSON but breaks a limit; the message names it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PassphraseIn(_Strict):
    """PBKDF2 parameters and the SHA-256 of the passphrase verifier."""

    kdf: Literal["pbkdf2-sha256"]
    salt: Base64Url
    iterations: StrictInt
    verifier_hash: HexDigest


class CreateRequest(_Strict):
    """Body of ``POST /api/secrets``: ciphertext and hashes only, never a key."""

    ciphertext: Base64Url
    nonce: Base64Url
    ttl_seconds: StrictInt
    access_token_hash: HexDigest
    passphrase: PassphraseIn | None = None


class AccessRequest(_Strict):
    """Body of ``POST /api/secrets/status`` and ``/reveal``."""

    secret_id: SecretId
    access_token: Token
    passphrase_verifier: Token | None = None


class ReceiptRequest(_Strict):
    """Body of ``POST /api/receipts/lookup`` and ``/burn``."""

    receipt_token: Token


def _decode(name: str, text: str) -> bytes:
    try:
        return crypto.b64url_decode(text)
    except ValueError as exc:
        raise InvalidField(f"{name} is not canonical unpadded base64url") from exc


def validate_create(body: CreateRequest) -> dict[str, Any]:
    """Decode and range-check a create request; raise InvalidField naming the field."""
    if not TTL_MIN_SECONDS <= body.ttl_seconds <= TTL_MAX_SECONDS:
        raise InvalidField(f"ttl_seconds must be {ttl_range_text()}; got {body.ttl_seconds}")

    ciphertext = _decode("ciphertext", body.ciphertext)
    if not CIPHERTEXT_MIN_BYTES <= len(ciphertext) <= CIPHERTEXT_MAX_BYTES:
        raise InvalidField(
            f"ciphertext must be {CIPHERTEXT_MIN_BYTES} to {CIPHERTEXT_MAX_BYTES} bytes "
            f"(plaintext plus the 16-byte GCM tag); got {len(ciphertext)}"
        )
    nonce = _decode("nonce", body.nonce)
    if len(nonce) != crypto.NONCE_BYTES:
        raise InvalidField(f"nonce must be {crypto.NONCE_BYTES} bytes; got {len(nonce)}")

    passphrase = None
    if body.passphrase is not None:
        salt = _decode("passphrase.salt", body.passphrase.salt)
        if len(salt) != crypto.SALT_BYTES:
            raise InvalidField(
                f"passphrase.salt must be {crypto.SALT_BYTES} bytes; got {len(salt)}"
            )
        iterations = body.passphrase.iterations
        if not PBKDF2_MIN_ITERATIONS <= iterations <= PBKDF2_MAX_ITERATIONS:
            raise InvalidField(
                f"passphrase.iterations must be between {PBKDF2_MIN_ITERATIONS} and "
                f"{PBKDF2_MAX_ITERATIONS}; got {iterations}"
            )
        passphrase = {
            "kdf": body.passphrase.kdf,
            "salt": body.passphrase.salt,
            "iterations": iterations,
            "verifier_hash": body.passphrase.verifier_hash,
        }

    return {
        "ciphertext": ciphertext,
        "nonce": nonce,
        "ttl_seconds": body.ttl_seconds,
        "access_token_hash": body.access_token_hash,
        "passphrase": passphrase,
    }


def decode_token(name: str, text: str) -> bytes:
    """Decode a 43-character base64url token into its 32 bytes."""
    data = _decode(name, text)
    if len(data) != crypto.DERIVED_BYTES:
        raise InvalidField(f"{name} must be {crypto.DERIVED_BYTES} bytes; got {len(data)}")
    return data


def public_passphrase_parameters(passphrase: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return what the reveal page needs to derive its keys, without the verifier hash."""
    if not passphrase:
        return None
    return {
        "kdf": passphrase["kdf"],
        "salt": passphrase["salt"],
        "iterations": passphrase["iterations"],
    }
