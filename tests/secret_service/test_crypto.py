"""Encryption scheme cdx-secret/v1: round trips, strict decoding, limits.

The derivations are recomputed here with hashlib and hmac only (RFC 5869 HKDF
and hashlib.pbkdf2_hmac), so a change in crypto.py that would break the
browser's WebCrypto code fails here too.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from include.secret_service import crypto
from include.secret_service.limits import PBKDF2_MIN_ITERATIONS, PLAINTEXT_MAX_CHARS
from tests.secret_service.helpers import HARD_TEXTS


def rfc5869_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 from RFC 5869, written out with hmac."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


@pytest.mark.parametrize("name", sorted(HARD_TEXTS))
def test_round_trip_without_passphrase(name):
    text = HARD_TEXTS[name]
    key = crypto.generate_key()
    encrypted = crypto.encrypt(text, key)

    decrypted = crypto.decrypt(
        encrypted.ciphertext, encrypted.nonce, crypto.derive_encryption_key(key)
    )

    assert decrypted == text
    assert encrypted.passphrase is None
    assert encrypted.passphrase_verifier_hash is None


def test_round_trip_with_passphrase():
    key = crypto.generate_key()
    encrypted = crypto.encrypt(HARD_TEXTS["emoji"], key, passphrase="correct horse")

    encryption_key = crypto.derive_encryption_key(key, "correct horse", encrypted.passphrase)

    assert (
        crypto.decrypt(encrypted.ciphertext, encrypted.nonce, encryption_key)
        == (HARD_TEXTS["emoji"])
    )
    assert encrypted.passphrase.iterations == PBKDF2_MIN_ITERATIONS
    assert len(encrypted.passphrase.salt) == crypto.SALT_BYTES


def test_wrong_passphrase_fails_decryption():
    key = crypto.generate_key()
    encrypted = crypto.encrypt("secret", key, passphrase="right")

    wrong_key = crypto.derive_encryption_key(key, "wrong", encrypted.passphrase)

    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(encrypted.ciphertext, encrypted.nonce, wrong_key)


def test_passphrase_is_nfc_normalized():
    composed = "Käse"
    decomposed = unicodedata.normalize("NFD", composed)
    key = crypto.generate_key()
    encrypted = crypto.encrypt("secret", key, passphrase=composed)

    encryption_key = crypto.derive_encryption_key(key, decomposed, encrypted.passphrase)

    assert decomposed != composed
    assert crypto.decrypt(encrypted.ciphertext, encrypted.nonce, encryption_key) == "secret"


def test_derivations_match_reference_implementation():
    key = bytes(range(32))
    salt = bytes(range(100, 116))
    passphrase = "pässwörd"
    parameters = crypto.PassphraseParameters(salt=salt, iterations=PBKDF2_MIN_ITERATIONS)

    access_token = crypto.derive_access_token(key)
    plain_key = crypto.derive_encryption_key(key)
    passphrase_key, verifier = crypto.derive_passphrase_keys(key, passphrase, parameters)

    stretched = hashlib.pbkdf2_hmac(
        "sha256", passphrase.encode("utf-8"), salt, PBKDF2_MIN_ITERATIONS, 32
    )
    material = key + stretched
    assert access_token == rfc5869_hkdf(key, b"", b"cdx-secret/v1 access-token")
    assert plain_key == rfc5869_hkdf(key, b"", b"cdx-secret/v1 encryption")
    assert passphrase_key == rfc5869_hkdf(material, salt, b"cdx-secret/v1 passphrase encryption")
    assert verifier == rfc5869_hkdf(material, salt, b"cdx-secret/v1 passphrase verifier")
    assert len({access_token, plain_key, passphrase_key, verifier}) == 4


def test_ciphertext_is_aes_gcm_with_aad():
    key = crypto.generate_key()
    encrypted = crypto.encrypt("payload", key)
    aes = AESGCM(crypto.derive_encryption_key(key))

    assert aes.decrypt(encrypted.nonce, encrypted.ciphertext, b"cdx-secret/v1") == b"payload"
    assert len(encrypted.nonce) == 12
    assert len(encrypted.ciphertext) == len(b"payload") + 16
    with pytest.raises(InvalidTag):
        aes.decrypt(encrypted.nonce, encrypted.ciphertext, b"other")


def test_access_token_hash_is_sha256_of_token():
    key = crypto.generate_key()
    encrypted = crypto.encrypt("x", key)

    expected = hashlib.sha256(crypto.derive_access_token(key)).hexdigest()

    assert encrypted.access_token_hash == expected


def test_nonces_and_keys_are_fresh():
    key = crypto.generate_key()
    first = crypto.encrypt("same", key)
    second = crypto.encrypt("same", key)

    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext
    assert crypto.generate_key() != crypto.generate_key()


@pytest.mark.parametrize(
    "text",
    ["AAA=", "AA+A", "AA/A", "A", "AB", "AAAA AAAA", "AAAA\n"],
)
def test_b64url_decode_rejects_other_spellings(text):
    with pytest.raises(ValueError):
        crypto.b64url_decode(text)


def test_b64url_round_trip():
    for length in range(0, 40):
        data = bytes(range(length))
        assert crypto.b64url_decode(crypto.b64url_encode(data)) == data


def test_decode_key_rejects_truncated_and_altered_keys():
    fragment = crypto.encode_key(crypto.generate_key())

    assert len(crypto.decode_key(fragment)) == 32
    with pytest.raises(ValueError, match="43"):
        crypto.decode_key(fragment[:-1])
    with pytest.raises(ValueError, match="43"):
        crypto.decode_key(fragment + "A")
    with pytest.raises(ValueError):
        crypto.decode_key(fragment[:-1] + "!")


@pytest.mark.parametrize(
    "unit", ["a", "é", "€", "😀"], ids=["1-byte", "2-byte", "3-byte", "4-byte"]
)
def test_plaintext_at_character_limit_is_accepted(unit):
    text = unit * PLAINTEXT_MAX_CHARS
    key = crypto.generate_key()

    encrypted = crypto.encrypt(text, key)

    assert (
        crypto.decrypt(encrypted.ciphertext, encrypted.nonce, crypto.derive_encryption_key(key))
        == text
    )


def test_plaintext_over_limit_is_rejected_with_limit():
    with pytest.raises(ValueError, match=r"10001 characters, the maximum is 10000 characters"):
        crypto.encrypt("é" * (PLAINTEXT_MAX_CHARS + 1), crypto.generate_key())


@pytest.mark.parametrize(
    ("plaintext", "message"),
    [("", "empty"), ("bad \ud800 surrogate", "unpaired surrogate")],
)
def test_invalid_plaintext_is_rejected(plaintext, message):
    with pytest.raises(ValueError, match=message):
        crypto.encrypt(plaintext, crypto.generate_key())


def test_passphrase_limits():
    key = crypto.generate_key()
    with pytest.raises(ValueError, match="empty"):
        crypto.encrypt("x", key, passphrase="")
    with pytest.raises(ValueError, match="maximum is 1024"):
        crypto.encrypt("x", key, passphrase="p" * 1025)
    with pytest.raises(ValueError, match="iterations"):
        crypto.encrypt("x", key, passphrase="p", iterations=PBKDF2_MIN_ITERATIONS - 1)
