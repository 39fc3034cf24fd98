"""Settings from the environment and the development TLS certificate."""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from include.secret_service.settings import SettingsError, load_settings
from include.secret_service.tls import (
    CERT_FILE_NAME,
    KEY_FILE_NAME,
    ensure_dev_certificate,
    spki_sha256_base64,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD_TOKEN = "t" * 32


def test_settings_defaults():
    settings = load_settings({"SECRET_SERVICE_TOKEN": GOOD_TOKEN})

    assert settings.host == "127.0.0.1"
    assert settings.port == 8443
    assert settings.database == "secret_service"
    assert settings.dev_cert_dir == Path(".local/tls")
    assert settings.link_base() == "https://127.0.0.1:8443"
    assert settings.receipt_retention_seconds == 30 * 24 * 3600
    assert settings.tls_cert is None


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "is not set"), ("", "is not set"), ("t" * 31, "has 31 characters")],
)
def test_settings_reject_missing_or_short_token(token, message):
    env = {} if token is None else {"SECRET_SERVICE_TOKEN": token}

    with pytest.raises(SettingsError) as raised:
        load_settings(env)

    assert message in str(raised.value)
    assert "at least 32 characters" in str(raised.value)


def test_settings_read_overrides(tmp_path):
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")

    settings = load_settings(
        {
            "SECRET_SERVICE_TOKEN": GOOD_TOKEN,
            "SECRET_SERVICE_HOST": "localhost",
            "SECRET_SERVICE_PORT": "9443",
            "SECRET_SERVICE_PUBLIC_URL": "https://secrets.example.test/",
            "SECRET_SERVICE_TLS_CERT": str(cert),
            "SECRET_SERVICE_TLS_KEY": str(key),
            "SECRET_SERVICE_DB": "other_db",
        }
    )

    assert settings.port == 9443
    assert settings.link_base() == "https://secrets.example.test"
    assert settings.tls_cert == cert
    assert settings.database == "other_db"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"SECRET_SERVICE_PORT": "x"}, "must be an integer"),
        ({"SECRET_SERVICE_PORT": "70000"}, "between 1 and 65535"),
        ({"SECRET_SERVICE_PUBLIC_URL": "http://host"}, "https://"),
        ({"SECRET_SERVICE_TLS_CERT": "/nonexistent/cert.pem"}, "or neither"),
        (
            {
                "SECRET_SERVICE_TLS_CERT": "/nonexistent/c.pem",
                "SECRET_SERVICE_TLS_KEY": "/nonexistent/k.pem",
            },
            "not a file",
        ),
    ],
    ids=["port-text", "port-range", "public-url", "half-tls", "missing-tls-files"],
)
def test_settings_reject_invalid_values(extra, message):
    with pytest.raises(SettingsError, match=message):
        load_settings({"SECRET_SERVICE_TOKEN": GOOD_TOKEN, **extra})


def test_serve_rejects_missing_token(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("SECRET_SERVICE")}
    env["PYTHONPATH"] = str(REPO_ROOT)

    result = subprocess.run(
        [sys.executable, "-m", "include.secret_service", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "SECRET_SERVICE_TOKEN is not set" in result.stderr
    assert not (tmp_path / ".local").exists()


def test_dev_certificate_covers_local_names(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="include.secret_service.tls")

    cert_path, key_path = ensure_dev_certificate(tmp_path / "tls")

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert cert_path.name == CERT_FILE_NAME
    assert key_path.name == KEY_FILE_NAME
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert "created self-signed development TLS certificate" in caplog.text


def test_dev_certificate_is_reused_while_valid(tmp_path, caplog):
    cert_path, key_path = ensure_dev_certificate(tmp_path)
    first = cert_path.read_bytes()
    caplog.set_level(logging.INFO, logger="include.secret_service.tls")

    ensure_dev_certificate(tmp_path)

    assert cert_path.read_bytes() == first
    assert "reusing development TLS certificate" in caplog.text


def test_dev_certificate_extra_names(tmp_path):
    cert_path, _ = ensure_dev_certificate(tmp_path, extra_names=("secret-service", "10.0.0.7"))
    first = cert_path.read_bytes()

    # The service itself requests the local names only and reuses the pair.
    ensure_dev_certificate(tmp_path)

    names = x509.load_pem_x509_certificate(first).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert cert_path.read_bytes() == first
    assert names.value.get_values_for_type(x509.DNSName) == ["localhost", "secret-service"]
    assert ipaddress.ip_address("10.0.0.7") in names.value.get_values_for_type(x509.IPAddress)


def test_dev_certificate_replaced_for_new_name(tmp_path):
    cert_path, _ = ensure_dev_certificate(tmp_path)
    first_pin = spki_sha256_base64(cert_path)

    ensure_dev_certificate(tmp_path, extra_names=("secret-service",))

    names = x509.load_pem_x509_certificate(cert_path.read_bytes()).extensions
    dns_names = names.get_extension_for_class(x509.SubjectAlternativeName).value
    assert spki_sha256_base64(cert_path) != first_pin
    assert "secret-service" in dns_names.get_values_for_type(x509.DNSName)


def test_dev_certificate_is_replaced_near_expiry(tmp_path):
    cert_path, _ = ensure_dev_certificate(tmp_path)
    first_pin = spki_sha256_base64(cert_path)

    ensure_dev_certificate(tmp_path, now=datetime.now(UTC) + timedelta(days=89, hours=12))

    assert spki_sha256_base64(cert_path) != first_pin


def test_dev_certificate_replaced_on_key_mismatch(tmp_path):
    cert_path, key_path = ensure_dev_certificate(tmp_path / "a")
    _, other_key = ensure_dev_certificate(tmp_path / "b")
    key_path.write_bytes(other_key.read_bytes())
    first_pin = spki_sha256_base64(cert_path)

    ensure_dev_certificate(tmp_path / "a")

    assert spki_sha256_base64(cert_path) != first_pin
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
