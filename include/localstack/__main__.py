"""Command line of the local stack: ``python -m include.localstack COMMAND``.

``up``, ``down`` and ``status`` run the stack on 127.0.0.1. ``bootstrap`` and
``serve-sftp`` are the entry points of the container stack (docker-compose.yaml).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from include.localstack import containers, stack
from include.localstack.state import StackError, StateDir


def address_argument(value: str) -> str:
    """Check a ``HOST:PORT`` argument and return it unchanged."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:2222"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m include.localstack",
        description=(
            "Run the local stack on 127.0.0.1: MongoDB stand-in, AWS emulator (moto with "
            "IAM authentication), SFTP gateway (rclone), secret service and Airflow. "
            "Ports are free ones unless MONGO_PORT, MOTO_PORT, SFTP_PORT, "
            "SECRET_SERVICE_PORT or AIRFLOW_PORT set them; MONGO_URI selects a real "
            "MongoDB server instead of the stand-in."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    state_dir = argparse.ArgumentParser(add_help=False)
    state_dir.add_argument(
        "--state-dir",
        metavar="DIR",
        help="directory for pid files, logs, keys and stack.env (default: .local/ in the repo)",
    )

    up = commands.add_parser("up", parents=[state_dir], help="start every part")
    up.add_argument("--no-airflow", action="store_true", help="do not start airflow standalone")
    commands.add_parser("down", parents=[state_dir], help="stop every part that up started")
    commands.add_parser(
        "status",
        parents=[state_dir],
        help="check each part (exit code 0 only when all are healthy)",
    )

    bootstrap = commands.add_parser(
        "bootstrap",
        help="containers: create the emulator's identities and write the environment file",
        description=(
            "Reads AWS_ENDPOINT_URL, SFTP_HOST, SFTP_PORT, MONGO_URI and optionally "
            "SECRET_SERVICE_URL, EXCHANGE_PREFIX, SFTP_SERVER_ID and SES_SENDER. Keys and "
            "secrets are kept beside the environment file; re-running is safe."
        ),
    )
    bootstrap.add_argument(
        "--env-file", required=True, type=Path, metavar="FILE", help="environment file to write"
    )

    serve_sftp = commands.add_parser(
        "serve-sftp",
        help="containers: run the SFTP gateway (rclone) in the foreground",
        description="Reads AWS_ENDPOINT_URL and optionally SFTP_SERVER_ID.",
    )
    serve_sftp.add_argument(
        "--address", required=True, type=address_argument, metavar="HOST:PORT",
        help="address to listen on",
    )  # fmt: skip
    serve_sftp.add_argument(
        "--state-dir", required=True, type=Path, metavar="DIR",
        help="directory of the bootstrap's environment file, with the gateway key",
    )  # fmt: skip
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def print_status(statuses: list[stack.PartStatus]) -> None:
    print(f"{'part':<18} {'pid':>8} {'port':>6}  state")
    for part in statuses:
        state = "healthy" if part.healthy else "unhealthy"
        pid = part.pid if part.pid is not None else "-"
        port = part.port if part.port is not None else "-"
        print(f"{part.name:<18} {pid:>8} {port:>6}  {state} ({part.detail})")


def command_up(state_dir: str | None, airflow: bool) -> int:
    try:
        env = stack.start(state_dir, airflow=airflow)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("parts that did start keep running; stop them with: make down", file=sys.stderr)
        return 1
    print_status(stack.status(state_dir))
    env_file = StateDir.open(state_dir).env_file
    print(f"\nenvironment: source {env_file}")
    if airflow:
        print(f"Airflow UI: {env['AIRFLOW__API__BASE_URL']} (user admin)")
        print(f"admin password file: {stack.airflow_password_file(state_dir)}")
    return 0


def command_status(state_dir: str | None) -> int:
    statuses = stack.status(state_dir)
    if not statuses:
        print("the local stack is not running (start it with: make up)")
        return 1
    print_status(statuses)
    return 0 if all(part.healthy for part in statuses) else 1


def command_bootstrap(env_file: Path) -> int:
    try:
        env = containers.bootstrap(env_file)
    except (StackError, ClientError, BotoCoreError) as exc:
        print(f"error: bootstrap failed: {exc}", file=sys.stderr)
        return 1
    print(f"environment written to {env_file} ({len(env)} variables)")
    return 0


def command_serve_sftp(address: str, state_dir: Path) -> int:
    try:
        containers.serve_sftp(address, state_dir)
    except StackError as exc:
        print(f"error: the SFTP gateway cannot start: {exc}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if arguments.command == "up":
        return command_up(arguments.state_dir, airflow=not arguments.no_airflow)
    if arguments.command == "status":
        return command_status(arguments.state_dir)
    if arguments.command == "bootstrap":
        return command_bootstrap(arguments.env_file)
    if arguments.command == "serve-sftp":
        return command_serve_sftp(arguments.address, arguments.state_dir)
    stopped = stack.stop(arguments.state_dir)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
