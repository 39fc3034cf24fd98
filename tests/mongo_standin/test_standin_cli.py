"""Stand-in-only: the command line, run as a separate process.

Skipped when TEST_MONGO_URI points the suite at a real MongoDB.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_MONGO_URI")), reason="tests the stand-in itself, not a real MongoDB"
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")

# A separate client process: prints the document "from-test" and inserts "from-child".
CHILD_CLIENT = """
import json, sys
from pymongo import MongoClient
client = MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
items = client.exchange.items
print(json.dumps(items.find_one({"_id": "from-test"})))
items.insert_one({"_id": "from-child", "writer": "child"})
"""


def environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def start_cli(log_path, *arguments):
    """Start the CLI with its output going to ``log_path``."""
    with open(log_path, "w") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "include.mongo_standin", "--host", "127.0.0.1", *arguments],
            cwd=REPO_ROOT,
            env=environment(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def wait_for_port(process, log_path, timeout=15.0):
    """Return the port from the "listening on" log line, failing if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text())
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            pytest.fail(f"stand-in exited with {process.returncode}: {log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"stand-in did not log 'listening on' within {timeout} s: {log_path.read_text()}")


def stop_cli(process):
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_cli_shares_data_and_saves_snapshot(tmp_path):
    snapshot = tmp_path / "mongo.bson"
    log_path = tmp_path / "standin.log"
    process = start_cli(log_path, "--port", "0", "--snapshot", str(snapshot))
    try:
        port = wait_for_port(process, log_path)
        uri = f"mongodb://127.0.0.1:{port}/"
        with MongoClient(uri, serverSelectionTimeoutMS=5_000) as client:
            assert client.admin.command("ping")["ok"] == 1.0
            client.exchange.items.insert_one({"_id": "from-test", "writer": "test"})

            child = subprocess.run(
                [sys.executable, "-c", CHILD_CLIENT, uri],
                cwd=REPO_ROOT, env=environment(), capture_output=True, text=True, timeout=30,
            )
            from_child = client.exchange.items.find_one({"_id": "from-child"})
    finally:
        return_code = stop_cli(process)

    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == {"_id": "from-test", "writer": "test"}
    assert from_child == {"_id": "from-child", "writer": "child"}
    assert return_code == 0
    assert snapshot.exists()
    assert "snapshot saved" in log_path.read_text()

    restarted = start_cli(tmp_path / "restart.log", "--port", "0", "--snapshot", str(snapshot))
    try:
        port = wait_for_port(restarted, tmp_path / "restart.log")
        with MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=5_000) as client:
            assert sorted(client.exchange.items.distinct("_id")) == ["from-child", "from-test"]
    finally:
        assert stop_cli(restarted) == 0


def test_cli_port_in_use_exits_with_message(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        log_path = tmp_path / "standin.log"
        process = start_cli(log_path, "--port", str(port))
        return_code = process.wait(timeout=30)

    assert return_code != 0
    assert f"port {port} on 127.0.0.1 is already in use" in log_path.read_text()
