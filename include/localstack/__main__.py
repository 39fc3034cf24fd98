"""Command line of the local stack: ``python -m include.localstack up|down|status``."""

from __future__ import annotations

import argparse
import logging
import sys

from include.localstack import stack
from include.localstack.state import StackError, StateDir


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
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
    parser.add_argument("command", choices=("up", "down", "status"), help="what to do")
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="directory for pid files, logs, keys and stack.env (default: .local/ in the repo)",
    )
    parser.add_argument(
        "--no-airflow", action="store_true", help="with up: do not start airflow standalone"
    )
    return parser.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if arguments.command == "up":
        return command_up(arguments.state_dir, airflow=not arguments.no_airflow)
    if arguments.command == "status":
        return command_status(arguments.state_dir)
    stopped = stack.stop(arguments.state_dir)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
