"""Client-side encryption of one-time secrets (scheme ``cdx-secret/v1``).

The Python client and the reveal page (``static/reveal.js``, WebCrypto) must
derive the same values, so the scheme is defined once here:

- ``key``: 32 random bytes, carried base64url-encoded without padding in the
  link's fragment (43 characters). The server never receives it.
- ``access_token = HKDF-SHA256(ikm=key, salt="", info="cdx-secret/v1 access-token")``,
  32 bytes. The server stores only SHA-256 of it (hex) and hands the ciphertext
  out only to a request that presents the token.
- Without a passphrase:
  ``encryption_key = HKDF-SHA256(ikm=key, salt="", info="cdx-secret/v1 encryption")``.
- With a passphrase: ``stretched = PBKDF2-HMAC-SHA256(NFC(passphrase) as UTF-8,
  salt, iterations)``, 32 bytes, with a random 16-byte ``salt`` stored on the
  server. Then ``encryption_key = HKDF-SHA256(ikm=key || stretched, salt=salt,
  info="cdx-secret/v1 passphrase encryption")`` and ``passphrase_verifier =
  HKDF-SHA256(ikm=key || stretched, salt=salt, info="cdx-secret/v1 passphrase
  verifier")``. The server stores SHA-256 of the verifier. Because the verifier
  depends on the fragment key too, the server cannot brute-force the passphrase.
- Ciphertext: AES-256-GCM with a random 96-bit nonce, 128-bit tag and the
  associated data ``cdx-secret/v1``.

The associated data does not name the secret id, because the server assigns
the id after encryption. That binding is not needed: every secret has its own
random key, so a ciphertext moved to another id does not decrypt with that
id's link.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from include.secret_service.limits import (
    PBKDF2_MAX_ITERATIONS,
    PBKDF2_MIN_ITERATIONS,
    PLAINTEXT_MAX_BYTES,
    PLAINTEXT_MAX_CHARS,
)

SCHEME = "cdx-secret/v1"
KEY_BYTES = 32
NONCE_BYTES = 12
SALT_BYTES = 16
DERIVED_BYTES = 32
KEY_TEXT_LENGTH = 43
PASSPHRASE_MAX_CHARS = 1024
ASSOCIATED_DATA = SCHEME.encode()

_INFO_ACCESS_TOKEN = f"{SCHEME} access-token".encode()
_INFO_ENCRYPTION = f"{SCHEME} encryption".encode()
_INFO_PASSPHRASE_ENCRYPTION = f"{SCHEME} passphrase encryption".encode()
_INFO_PASSPHRASE_VERIFIER = f"{SCHEME} passphrase verifier".encode()
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class DecryptionError(Exception):
    """The ciphertext does not decrypt with the given key and passphrase."""


@dataclass(frozen=True)
class PassphraseParameters:
    """PBKDF2 parameters stored next to a passphrase-protected ciphertext."""

    salt: bytes
    iterations: int


@dataclass(frozen=True)
class EncryptedSecret:
    """Ciphertext and hashes that the client sends; nothing here can decrypt the secret."""

    ciphertext: bytes
    nonce: bytes
    access_token_hash: str
    passphrase: PassphraseParameters | None = None
    passphrase_verifier_hash: str | None = None


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as base64url without padding (RFC 4648, section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url, raising ValueError on any other spelling.

    Non-canonical text (stray characters, padding, unused trailing bits) is
    rejected, so one value has exactly one spelling.
    """
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("invalid base64url text")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise ValueError("non-canonical base64url text")
    return data


def sha256_hex(data: bytes) -> str:
    """Return the SHA-256 digest of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def generate_key() -> bytes:
    """Return a new random 256-bit secret key from the OS CSPRNG."""
    return os.urandom(KEY_BYTES)


def encode_key(key: bytes) -> str:
    """Return the link fragment for ``key``."""
    return b64url_encode(key)


def decode_key(fragment: str) -> bytes:
    """Decode a link fragment into a key, raising ValueError when it is damaged."""
    if len(fragment) != KEY_TEXT_LENGTH:
        raise ValueError(
            f"the key in the link has {len(fragment)} characters, expected {KEY_TEXT_LENGTH}"
        )
    return b64url_decode(fragment)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=DERIVED_BYTES, salt=salt, info=info).derive(ikm)


def derive_access_token(key: bytes) -> bytes:
    """Derive the token that the server checks before it hands out the ciphertext."""
    return _hkdf(key, b"", _INFO_ACCESS_TOKEN)


def normalize_passphrase(passphrase: str) -> bytes:
    """Return the NFC-normalized UTF-8 bytes of ``passphrase``, after checking it."""
    if not passphrase:
        raise ValueError("the passphrase is empty")
    if len(passphrase) > PASSPHRASE_MAX_CHARS:
        raise ValueError(
            f"the passphrase has {len(passphrase)} characters, "
            f"the maximum is {PASSPHRASE_MAX_CHARS}"
        )
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def derive_passphrase_keys(
    key: bytes, passphrase: str, parameters: PassphraseParameters
) -> tuple[bytes, bytes]:
    """Derive ``(encryption_key, passphrase_verifier)`` from the key and passphrase."""
    if not PBKDF2_MIN_ITERATIONS <= parameters.iterations <= PBKDF2_MAX_ITERATIONS:
        raise ValueError(
            f"PBKDF2 iterations must be between {PBKDF2_MIN_ITERATIONS} and "
            f"{PBKDF2_MAX_ITERATIONS}, got {parameters.iterations}"
        )
    stretched = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=DERIVED_BYTES,
        salt=parameters.salt,
        iterations=parameters.iterations,
    ).derive(normalize_passphrase(passphrase))

    material = key + stretched
    encryption_key = _hkdf(material, parameters.salt, _INFO_PASSPHRASE_ENCRYPTION)
    verifier = _hkdf(material, parameters.salt, _INFO_PASSPHRASE_VERIFIER)
    return encryption_key, verifier


def encode_plaintext(plaintext: str) -> bytes:
    """Return ``plaintext`` as UTF-8, raising ValueError when it breaks a limit."""
    if not isinstance(plaintext, str):
        raise TypeError(f"plaintext must be str, got {type(plaintext).__name__}")
    if not plaintext:
        raise ValueError("the plaintext is empty")
    if len(plaintext) > PLAINTEXT_MAX_CHARS:
        raise ValueError(
            f"the plaintext has {len(plaintext)} characters, the maximum is "
            f"{PLAINTEXT_MAX_CHARS} characters ({PLAINTEXT_MAX_BYTES} bytes of UTF-8)"
        )
    try:
        return plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"the plaintext is not valid Unicode text (unpaired surrogate at index {exc.start})"
        ) from exc


def encrypt(
    plaintext: str,
    key: bytes,
    passphrase: str | None = None,
    iterations: int = PBKDF2_MIN_ITERATIONS,
) -> EncryptedSecret:
    """Encrypt ``plaintext`` under ``key`` (and ``passphrase``) with AES-256-GCM."""
    data = encode_plaintext(plaintext)
    access_token_hash = sha256_hex(derive_access_token(key))

    parameters = None
    verifier_hash = None
    if passphrase is None:
        encryption_key = _hkdf(key, b"", _INFO_ENCRYPTION)
    else:
        parameters = PassphraseParameters(salt=os.urandom(SALT_BYTES), iterations=iterations)
        encryption_key, verifier = derive_passphrase_keys(key, passphrase, parameters)
        verifier_hash = sha256_hex(verifier)

    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(encryption_key).encrypt(nonce, data, ASSOCIATED_DATA)
    return EncryptedSecret(
        ciphertext=ciphertext,
        nonce=nonce,
        access_token_hash=access_token_hash,
        passphrase=parameters,
        passphrase_verifier_hash=verifier_hash,
    )


def derive_encryption_key(
    key: bytes,
    passphrase: str | None = None,
    parameters: PassphraseParameters | None = None,
) -> bytes:
    """Derive the AES key for ``key``, or for ``key`` plus ``passphrase``."""
    if parameters is None:
        return _hkdf(key, b"", _INFO_ENCRYPTION)
    if passphrase is None:
        raise ValueError("this secret is protected by a passphrase and none was given")
    return derive_passphrase_keys(key, passphrase, parameters)[0]


def decrypt(ciphertext: bytes, nonce: bytes, encryption_key: bytes) -> str:
    """Decrypt and return the plaintext, raising DecryptionError when the tag fails."""
    try:
        data = AESGCM(encryption_key).decrypt(nonce, ciphertext, ASSOCIATED_DATA)
    except InvalidTag as exc:
        raise DecryptionError(
            "decryption failed: the ciphertext does not match the key or passphrase"
        ) from exc
    return data.decode("utf-8")
