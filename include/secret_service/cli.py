"""Command line of the secret service: ``python -m include.secret_service ...``.

``create``, ``receipt`` and ``burn`` read ``SECRET_SERVICE_URL``,
``SECRET_SERVICE_TOKEN`` and, optionally, ``SECRET_SERVICE_CA_FILE``;
``reveal`` reads only ``SECRET_SERVICE_CA_FILE``. Exit status: 0 on success,
1 when the service rejects the request, 2 for invalid input or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from include.secret_service.client import SecretServiceClient, parse_link
from include.secret_service.errors import (
    ConfigurationError,
    InvalidSecretRequest,
    SecretServiceError,
    SecretUnavailable,
)
from include.secret_service.limits import PLAINTEXT_MAX_BYTES, PLAINTEXT_MAX_CHARS

EXIT_REJECTED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Invalid input on the command line or stdin."""


def read_passphrase_file(path: str | None) -> str | None:
    """Return the passphrase in ``path`` without one trailing line break, or None."""
    if path is None:
        return None
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the passphrase file {path}: {exc}") from exc
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)]
    return text


def _argument_or_stdin(value: str, name: str) -> str:
    """Return ``value``, or the first line of stdin when ``value`` is ``-``."""
    if value != "-":
        return value
    line = sys.stdin.readline().strip()
    if not line:
        raise UsageError(f"expected the {name} on stdin, got nothing")
    return line


def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def command_create(args: argparse.Namespace) -> int:
    passphrase = read_passphrase_file(args.passphrase_file)
    try:
        plaintext = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not valid UTF-8 (byte {exc.start})") from exc
    with SecretServiceClient.from_env() as client:
        created = client.create(plaintext, args.ttl, passphrase=passphrase)
    print(created.link)
    print(created.receipt_token)
    print(
        f"receipt id {created.receipt_id}, expires at {created.expires_at.isoformat()}",
        file=sys.stderr,
    )
    return 0


def command_reveal(args: argparse.Namespace) -> int:
    link = _argument_or_stdin(args.link, "link")
    passphrase = read_passphrase_file(args.passphrase_file)
    ca_file = os.environ.get("SECRET_SERVICE_CA_FILE") or None
    with SecretServiceClient(parse_link(link).api_base, None, ca_file=ca_file) as client:
        plaintext = client.reveal(link, passphrase=passphrase)
    # Bytes, so the text round-trips exactly: no newline translation, none added.
    sys.stdout.buffer.write(plaintext.encode("utf-8"))
    sys.stdout.flush()
    return 0


def command_receipt(args: argparse.Namespace) -> int:
    token = _argument_or_stdin(args.token, "receipt token")
    with SecretServiceClient.from_env() as client:
        _print_json(client.receipt(token))
    return 0


def command_burn(args: argparse.Namespace) -> int:
    token = _argument_or_stdin(args.token, "receipt token")
    with SecretServiceClient.from_env() as client:
        try:
            receipt = client.burn(token)
        except SecretUnavailable as exc:
            if exc.receipt is not None:
                _print_json(exc.receipt)
            raise
    _print_json(receipt)
    return 0


def command_serve(args: argparse.Namespace) -> int:
    from include.secret_service.server import configure_logging, serve
    from include.secret_service.settings import SettingsError, load_settings

    configure_logging()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: the secret service cannot start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    serve(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.secret_service",
        description="One-time secret service: run it, or create, reveal, inspect and burn secrets.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("serve", help="run the HTTPS service (configured by environment)")

    create = commands.add_parser(
        "create",
        help="encrypt stdin into a one-time secret; print the link, then the receipt token",
        description=(
            f"Reads the plaintext from stdin as UTF-8, byte for byte: a trailing newline is "
            f"part of the secret. At most {PLAINTEXT_MAX_CHARS} characters "
            f"({PLAINTEXT_MAX_BYTES} bytes)."
        ),
    )
    create.add_argument(
        "--ttl",
        type=int,
        required=True,
        metavar="SECONDS",
        help="lifetime in seconds, 300 to 604800 (5 minutes to 7 days)",
    )
    create.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="file with a passphrase the reader must also type (one trailing newline is dropped)",
    )

    reveal = commands.add_parser(
        "reveal", help="claim and decrypt a secret, print the plaintext (it is then gone)"
    )
    reveal.add_argument("link", metavar="LINK", help="the whole link including '#'; - reads stdin")
    reveal.add_argument("--passphrase-file", metavar="FILE", help="file with the passphrase")

    receipt = commands.add_parser("receipt", help="print the receipt of a secret as JSON")
    receipt.add_argument("token", metavar="TOKEN", help="receipt token; - reads it from stdin")

    burn = commands.add_parser("burn", help="delete a pending secret and print its receipt")
    burn.add_argument("token", metavar="TOKEN", help="receipt token; - reads it from stdin")
    return parser


COMMANDS = {
    "serve": command_serve,
    "create": command_create,
    "reveal": command_reveal,
    "receipt": command_receipt,
    "burn": command_burn,
}


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ConfigurationError, InvalidSecretRequest) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SecretServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REJECTED
