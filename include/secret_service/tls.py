"""Development TLS certificate for the local stack.

Production passes a certificate and key through ``SECRET_SERVICE_TLS_CERT``
and ``SECRET_SERVICE_TLS_KEY``. Without them the service creates a self-signed
EC P-256 certificate for ``localhost``, ``127.0.0.1`` and ``::1`` and reuses it
while it stays valid. Clients trust it through ``SECRET_SERVICE_CA_FILE``, and
Chromium through ``--ignore-certificate-errors-spki-list`` with
:func:`spki_sha256_base64`. In the container stack, ``python -m
include.localstack bootstrap`` creates the pair beforehand with the service's
host name added, and the service reuses it.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CERT_FILE_NAME = "dev-cert.pem"
KEY_FILE_NAME = "dev-key.pem"
DEV_CERT_VALIDITY = timedelta(days=90)
# A certificate this close to its end is replaced, so a long-running local
# stack does not start with a certificate that expires the same day.
RENEW_BEFORE = timedelta(days=1)
DNS_NAMES = ("localhost",)
IP_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def spki_sha256_base64(cert_path: Path) -> str:
    """Return base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate.

    This is the pin format of Chromium's ``--ignore-certificate-errors-spki-list``.
    """
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def _subject_alt_names(extra_names: Sequence[str]) -> list[x509.GeneralName]:
    """Return the local names plus ``extra_names`` (host names or IP addresses)."""
    alt_names: list[x509.GeneralName] = [x509.DNSName(dns) for dns in DNS_NAMES]
    alt_names += [x509.IPAddress(ip) for ip in IP_ADDRESSES]
    for name in extra_names:
        try:
            alt_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            alt_name = x509.DNSName(name)
        if alt_name not in alt_names:
            alt_names.append(alt_name)
    return alt_names


def _covers_names(cert: x509.Certificate, extra_names: Sequence[str]) -> bool:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(_subject_alt_names(extra_names)) <= set(names)


def _reusable(
    cert_path: Path, key_path: Path, now: datetime, extra_names: Sequence[str] = ()
) -> datetime | None:
    """Return the end of validity when the existing pair can be reused, else None."""
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError as exc:
        log.warning("development TLS certificate in %s is unreadable (%s)", cert_path.parent, exc)
        return None

    same_key = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    valid = cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc
    if same_key and valid and _covers_names(cert, extra_names):
        return cert.not_valid_after_utc
    return None


def _build_certificate(
    key: ec.EllipticCurvePrivateKey, now: datetime, extra_names: Sequence[str] = ()
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "client data exchange development"),
        ]
    )
    alt_names = _subject_alt_names(extra_names)
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Backdated a little so clocks that run slightly behind accept it.
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + DEV_CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file that only the owner can read (mode 600)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ensure_dev_certificate(
    cert_dir: Path, now: datetime | None = None, extra_names: Sequence[str] = ()
) -> tuple[Path, Path]:
    """Return ``(cert_path, key_path)`` in ``cert_dir``, creating the pair when needed.

    An existing pair is reused when the key matches, it covers localhost,
    127.0.0.1, ::1 and ``extra_names``, and it stays valid for more than a
    day. Otherwise both files are replaced. Either way the log states which
    happened.

    :param extra_names: further host names or IP addresses the certificate
        must cover, such as a container's service name.
    """
    now = now or datetime.now(UTC)
    cert_path = cert_dir / CERT_FILE_NAME
    key_path = cert_dir / KEY_FILE_NAME

    valid_until = _reusable(cert_path, key_path, now, extra_names)
    if valid_until is not None:
        if key_path.stat().st_mode & 0o077:
            key_path.chmod(0o600)
            log.warning("development TLS key %s was readable by others; set mode 600", key_path)
        log.info(
            "reusing development TLS certificate %s (valid until %s)",
            cert_path,
            valid_until.isoformat(),
        )
        return cert_path, key_path

    cert_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_certificate(key, now, extra_names)
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info(
        "created self-signed development TLS certificate %s for %s "
        "(valid until %s); clients must trust it through SECRET_SERVICE_CA_FILE",
        cert_path,
        ", ".join([*DNS_NAMES, *(str(ip) for ip in IP_ADDRESSES), *extra_names]),
        cert.not_valid_after_utc.isoformat(),
    )
    return cert_path, key_path
