"""Local stack lifecycle: health, idempotent start, clean stop, clear errors."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import psutil
import pytest

from include.localstack import stack
from include.localstack.parts import PART_ORDER, PORT_VARIABLES
from include.localstack.process import read_pid
from include.localstack.state import REPO_ROOT, StackError, StateDir

pytestmark = pytest.mark.integration


def _pids(state_dir) -> dict[str, int]:
    state = StateDir.open(state_dir)
    return {name: pid for name in PART_ORDER if (pid := read_pid(state, name)) is not None}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def isolated_env(monkeypatch):
    """Clear the session stack's port and MongoDB variables for a second stack."""
    for variable in (*PORT_VARIABLES.values(), "MONGO_URI"):
        monkeypatch.delenv(variable, raising=False)
    return os.environ.get("TEST_MONGO_URI") or None


def test_status_healthy_after_up(local_stack, local_stack_state_dir):
    statuses = stack.status(local_stack_state_dir)

    names = {part.name for part in statuses}
    assert {"moto", "sftp"} <= names
    for part in statuses:
        assert part.healthy, f"{part.name} unhealthy: {part.detail}"


def test_status_command_exit_code(local_stack, local_stack_state_dir):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "include.localstack",
            "status",
            "--state-dir",
            str(local_stack_state_dir),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "moto" in result.stdout
    assert "unhealthy" not in result.stdout


def test_up_again_keeps_same_pids(local_stack, local_stack_state_dir):
    before = _pids(local_stack_state_dir)

    env = stack.start(
        local_stack_state_dir, airflow=False, mongo_uri=os.environ.get("TEST_MONGO_URI") or None
    )

    assert _pids(local_stack_state_dir) == before
    assert env["AWS_ACCESS_KEY_ID"] == local_stack["AWS_ACCESS_KEY_ID"]
    assert env["SFTP_PORT"] == local_stack["SFTP_PORT"]


def test_stack_env_file_is_private(local_stack, local_stack_state_dir):
    state = StateDir.open(local_stack_state_dir)
    text = state.env_file.read_text()

    assert stat.S_IMODE(state.env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.operator_keys_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.gateway_keys_file.stat().st_mode) == 0o600
    assert text.startswith("# Local development values only")
    for key in (
        "AWS_ENDPOINT_URL",
        "SFTP_PORT",
        "MONGO_URI",
        "AIRFLOW_HOME",
        "AIRFLOW_CONN_AWS_DEFAULT",
    ):
        assert f"export {key}=" in text
    # The gateway's keys reach only the rclone process, never stack.env.
    gateway = stack.gateway_env(local_stack_state_dir)
    assert gateway["AWS_ACCESS_KEY_ID"] not in text
    assert gateway["AWS_SECRET_ACCESS_KEY"] not in text


def test_stack_env_file_reads_back(local_stack, local_stack_state_dir):
    state = StateDir.open(local_stack_state_dir)

    assert stack.read_env_file(state.env_file) == local_stack


def test_down_leaves_no_process(tmp_path, isolated_env):
    try:
        stack.start(tmp_path, airflow=False, mongo_uri=isolated_env)
        pids = _pids(tmp_path)
        family = set(pids.values())
        for pid in pids.values():
            family.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    finally:
        stopped = stack.stop(tmp_path)

    assert {"moto", "sftp"} <= set(pids)
    assert set(stopped) == set(pids)
    assert [pid for pid in family if _alive(pid)] == []
    assert _pids(tmp_path) == {}
    assert stack.status(tmp_path) == []


def test_down_removes_sftp_upload_cache(tmp_path, isolated_env):
    try:
        stack.start(tmp_path, airflow=False, mongo_uri=isolated_env)
        cached = StateDir.open(tmp_path).sftp_dir / "cache" / "vfs" / "upload.ndjson"
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text("{}\n")
    finally:
        stack.stop(tmp_path)

    assert not cached.exists()
    assert not (StateDir.open(tmp_path).sftp_dir / "cache").exists()


def test_taken_port_names_it(tmp_path, isolated_env, monkeypatch):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        monkeypatch.setenv("MOTO_PORT", str(port))

        try:
            with pytest.raises(StackError) as error:
                stack.start(tmp_path, airflow=False, mongo_uri=isolated_env)
        finally:
            stack.stop(tmp_path)

    message = str(error.value)
    assert str(port) in message
    assert "MOTO_PORT" in message
    assert "already in use" in message


def test_invalid_port_variable(tmp_path, isolated_env, monkeypatch):
    monkeypatch.setenv("MOTO_PORT", "http")

    try:
        with pytest.raises(StackError, match="MOTO_PORT"):
            stack.start(tmp_path, airflow=False, mongo_uri=isolated_env)
    finally:
        stack.stop(tmp_path)


def test_missing_binary_names_it(tmp_path, isolated_env, monkeypatch):
    missing = tmp_path / "no-such-rclone"
    monkeypatch.setenv("RCLONE_BIN", str(missing))

    try:
        with pytest.raises(StackError) as error:
            stack.start(tmp_path, airflow=False, mongo_uri=isolated_env)
        # The check runs before anything starts.
        assert _pids(tmp_path) == {}
    finally:
        stack.stop(tmp_path)

    assert str(missing) in str(error.value)


def test_stale_pid_file_is_cleaned(tmp_path):
    state = StateDir.open(tmp_path)
    # A live pid that is not the emulator: the test process itself.
    state.pid_file("moto").write_text(f"{os.getpid()}\n")

    assert stack.stop(tmp_path) == []
    assert not state.pid_file("moto").exists()


def test_admin_password_file_written_once(tmp_path):
    path = tmp_path / "passwords.json.generated"

    stack._ensure_admin_password(path)
    first = path.read_text()
    stack._ensure_admin_password(path)

    assert path.read_text() == first
    assert len(json.loads(first)["admin"]) >= 24
    assert path.stat().st_mode & 0o777 == 0o600
