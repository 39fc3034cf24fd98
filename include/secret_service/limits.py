"""Limits of the one-time secret service, shared by the server and the client.

The client checks them before it encrypts, so a caller gets a clear error
without a round trip, and the server checks them again because it cannot trust
any client.
"""

from __future__ import annotations

# The company's policy allows a lifetime from 5 minutes to 7 days, both included.
TTL_MIN_SECONDS = 300
TTL_MAX_SECONDS = 7 * 24 * 3600

# The plaintext limit is counted in Unicode code points (Python's len()), so it
# reads the same for ASCII and for umlauts or emoji. UTF-8 needs at most 4 bytes
# per code point, so 10,000 characters are at most 40,000 bytes.
PLAINTEXT_MAX_CHARS = 10_000
PLAINTEXT_MAX_BYTES = 4 * PLAINTEXT_MAX_CHARS

# AES-GCM appends a 16-byte tag and adds no padding.
GCM_TAG_BYTES = 16
CIPHERTEXT_MIN_BYTES = 1 + GCM_TAG_BYTES
CIPHERTEXT_MAX_BYTES = PLAINTEXT_MAX_BYTES + GCM_TAG_BYTES

# A create request carries the ciphertext in base64url (4/3 of its size, so
# 53,355 characters at the maximum) plus a few short fields. 64 KiB leaves room
# for those, and every request body above it is rejected before it is parsed.
REQUEST_BODY_MAX_BYTES = 64 * 1024

# OWASP's 2023 guidance for PBKDF2-HMAC-SHA256 is 600,000 iterations. The upper
# bound keeps a hostile creator from making the reveal page hang the browser.
PBKDF2_MIN_ITERATIONS = 600_000
PBKDF2_MAX_ITERATIONS = 10_000_000

# Wrong passphrases are counted in the secret's own document, across all
# clients, and the fifth one burns the secret.
PASSPHRASE_MAX_FAILURES = 5


def ttl_range_text() -> str:
    """Return the allowed lifetime range as a sentence fragment for error messages."""
    return (
        f"between {TTL_MIN_SECONDS} and {TTL_MAX_SECONDS} seconds "
        "(5 minutes to 7 days), both included"
    )
