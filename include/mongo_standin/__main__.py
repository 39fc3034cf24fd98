"""Run the MongoDB stand-in in the foreground until SIGTERM or SIGINT.

    python -m include.mongo_standin --host 127.0.0.1 --port 27017 --snapshot .local/mongo.bson
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading

from include.mongo_standin.server import (
    DEFAULT_SNAPSHOT_INTERVAL_SECONDS,
    DEFAULT_TTL_INTERVAL_SECONDS,
    start_standin,
)
from include.mongo_standin.snapshot import SnapshotError

log = logging.getLogger("include.mongo_standin")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m include.mongo_standin",
        description="MongoDB wire-protocol stand-in backed by mongomock (loopback only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument(
        "--port", type=int, default=27017, help="TCP port to listen on (0 picks a free port)"
    )
    parser.add_argument(
        "--snapshot",
        metavar="FILE",
        help="BSON file to load at start, and to save on stop and whenever data changed "
        "(checked every --snapshot-interval seconds)",
    )
    parser.add_argument(
        "--ttl-interval",
        type=float,
        default=DEFAULT_TTL_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="seconds between two passes of the TTL monitor (default: %(default)s, as mongod)",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=float,
        default=DEFAULT_SNAPSHOT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="seconds between two saves of a changed snapshot (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=arguments.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    # Handlers first, so that a SIGTERM during start-up still ends in a clean stop.
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    try:
        server = start_standin(
            host=arguments.host,
            port=arguments.port,
            snapshot_path=arguments.snapshot,
            ttl_interval_seconds=arguments.ttl_interval,
            snapshot_interval_seconds=arguments.snapshot_interval,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.error("port %d on %s is already in use: stop the process that uses it "
                      "or pass another --port", arguments.port, arguments.host)
        else:
            log.error("cannot listen on %s:%d: %s", arguments.host, arguments.port, exc)
        return 1
    except (SnapshotError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1

    # Waiting in short steps lets the main thread run the signal handlers.
    while not stop_requested.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
