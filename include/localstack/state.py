"""The local stack's state directory: pid files, logs, ports and local secrets.

Layout under the state directory (``.local/`` in the repository root by
default)::

    stack.json              ports and parts of the last ``up`` (no secrets)
    stack.env               the environment for local runs (mode 600)
    run/<part>.pid          pid of each running part
    logs/<part>.log         stdout and stderr of each part
    aws-operator.json       the operator's access key (mode 600)
    sftp-gateway.json       the SFTP gateway's access key (mode 600)
    secret-service-token    the secret service's bearer token (mode 600)
    airflow-jwt-secret      Airflow's JWT signing secret, containers only (mode 600)
    airflow-fernet-key      Airflow's Fernet key, containers only (mode 600)
    sftp/host_ed25519       the SFTP host key (mode 600) and its .pub
    tls/                    the secret service's development certificate
    airflow/                AIRFLOW_HOME
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".local"


class StackError(RuntimeError):
    """A part of the local stack could not be started, checked or stopped."""


@dataclass(frozen=True)
class StateDir:
    """Paths inside one local stack's state directory."""

    root: Path

    @classmethod
    def open(cls, root: Path | str | None = None) -> StateDir:
        """Return the state directory ``root`` (default ``.local/``), created mode 700."""
        path = Path(root).resolve() if root else DEFAULT_STATE_DIR
        for directory in (path, path / "run", path / "logs"):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
        return cls(path)

    def pid_file(self, part: str) -> Path:
        return self.root / "run" / f"{part}.pid"

    def log_file(self, part: str) -> Path:
        return self.root / "logs" / f"{part}.log"

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def env_file(self) -> Path:
        return self.root / "stack.env"

    @property
    def operator_keys_file(self) -> Path:
        return self.root / "aws-operator.json"

    @property
    def gateway_keys_file(self) -> Path:
        return self.root / "sftp-gateway.json"

    @property
    def token_file(self) -> Path:
        return self.root / "secret-service-token"

    @property
    def jwt_secret_file(self) -> Path:
        return self.root / "airflow-jwt-secret"

    @property
    def fernet_key_file(self) -> Path:
        return self.root / "airflow-fernet-key"

    @property
    def sftp_dir(self) -> Path:
        return self.root / "sftp"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def mongo_snapshot(self) -> Path:
        return self.root / "mongo.bson"

    def load_stack(self) -> dict[str, Any]:
        """Return the record of the last ``up``: ``{"ports": {...}, "parts": [...]}``."""
        record = read_json(self.stack_file) or {}
        record.setdefault("ports", {})
        record.setdefault("parts", [])
        return record

    def save_stack(self, record: dict[str, Any]) -> None:
        write_private(self.stack_file, json.dumps(record, indent=2, sort_keys=True) + "\n")

    def secret_service_token(self) -> str:
        """Return the secret service token, generated on first use."""
        # 32 random bytes as URL-safe base64 give 43 characters; the
        # service requires at least 32.
        return _stored_secret(self.token_file, lambda: secrets.token_urlsafe(32))

    def airflow_jwt_secret(self) -> str:
        """Return the secret that signs Airflow's JWTs, generated on first use.

        Every Airflow component must use the same one: the scheduler signs
        task tokens that the API server checks.
        """
        # Airflow signs with HS512, and PyJWT warns about HMAC keys shorter
        # than the 64-byte digest. 64 random bytes give 86 characters.
        return _stored_secret(self.jwt_secret_file, lambda: secrets.token_urlsafe(64))

    def airflow_fernet_key(self) -> str:
        """Return the Fernet key that encrypts Airflow's stored connections and variables.

        Every Airflow component must use the same one, or a value stored by
        one cannot be read by another.
        """
        return _stored_secret(self.fernet_key_file, lambda: Fernet.generate_key().decode("ascii"))


def _stored_secret(path: Path, generate: Callable[[], str]) -> str:
    """Return the secret in ``path``, storing ``generate()`` first when it is missing or empty."""
    secret = path.read_text().strip() if path.exists() else ""
    if not secret:
        secret = generate()
        write_private(path, secret + "\n")
    return secret


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (mode 600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        # The mode argument applies only to new files; an older file may be wider.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


def read_json(path: Path) -> Any:
    """Return the JSON content of ``path``, or None when it is missing or invalid."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def shell_quote(value: str) -> str:
    """Quote ``value`` for a POSIX shell, in single quotes."""
    return "'" + value.replace("'", "'\\''") + "'"


def write_env_file(path: Path, env: dict[str, str], header: str) -> None:
    """Write ``env`` as ``export KEY='value'`` lines after ``header`` (mode 600)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"export {key}={shell_quote(value)}" for key, value in sorted(env.items())]
    write_private(path, "\n".join(lines) + "\n")
