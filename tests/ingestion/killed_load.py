"""Run one client's load and kill the process with SIGKILL between two batches.

Usage: ``python -m tests.ingestion.killed_load CLIENT_ID BUCKET BATCHES``.
The interruption test starts this in a subprocess with the local stack's
environment; ``BATCHES`` bulk writes complete before the kill.
"""

from __future__ import annotations

import os
import signal
import sys

from include.ingestion import loader, tasks


def main(client_id: str, bucket: str, batches: int) -> None:
    real_write_batch = loader.write_batch
    written = 0

    def write_then_maybe_die(collection, batch):
        nonlocal written
        result = real_write_batch(collection, batch)
        written += 1
        if written == batches:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    loader.write_batch = write_then_maybe_die
    client = {"client_id": client_id, "bucket": bucket}
    versions = tasks.find_new_objects(client)
    tasks.load_objects(client, versions, "manual__killed-between-batches")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
