"""Start, find and stop the local stack's processes by pid file.

Each part runs in its own session (process group), so stopping it signals
the whole group and any children it started die with it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from include.localstack.state import StackError, StateDir

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 25
STOP_TIMEOUT_SECONDS = 10.0
# A part that was just stopped may hold its port for a moment after it exits.
PORT_RELEASE_SECONDS = 5.0

HealthCheck = Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one part of the stack."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    port_variable: str
    # A string expected in the process's command line, so that a pid file
    # whose pid was reused by an unrelated process is not mistaken for ours.
    marker: str
    cwd: Path


def read_pid(state: StateDir, name: str) -> int | None:
    """Return the pid in the part's pid file, or None."""
    try:
        return int(state.pid_file(name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _reap(pid: int) -> None:
    # Collect the exit status when the part is this process's child, so it
    # does not linger as a zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int, marker: str | None = None) -> bool:
    """Return whether ``pid`` runs and, if given, has ``marker`` in its command line."""
    _reap(pid)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return marker is None or marker in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def running_pid(state: StateDir, name: str, marker: str) -> int | None:
    """Return the part's pid when it runs; remove a stale pid file."""
    pid = read_pid(state, name)
    if pid is None:
        return None
    if is_alive(pid, marker):
        return pid
    log.info("removing stale pid file of %s (pid %s is not running)", name, pid)
    state.pid_file(name).unlink(missing_ok=True)
    return None


def port_is_free(port: int) -> bool:
    """Return whether a server could listen on ``127.0.0.1:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Servers set SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def wait_port_free(port: int, timeout: float) -> bool:
    """Return whether ``port`` is free now or becomes free within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not port_is_free(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def free_port() -> int:
    """Return a port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a log file, or a note that it is empty."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def spawn(state: StateDir, spec: ProcessSpec, port_wait: float = 0.0) -> int:
    """Start ``spec`` in a new session, logging to its log file; return the pid.

    :param port_wait: seconds to wait for the port to become free, for a
        part whose previous process was just stopped.
    """
    if not wait_port_free(spec.port, port_wait):
        raise StackError(
            f"{spec.name} cannot start: port {spec.port} on {LOOPBACK} is already in use; "
            f"stop what listens there or set {spec.port_variable} to a free port"
        )

    log_path = state.log_file(spec.name)
    with open(log_path, "a") as log_handle:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        log_handle.write(f"\n--- {started} starting {spec.name} on port {spec.port}\n")
        log_handle.flush()
        try:
            process = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(
                f"{spec.name} cannot start: running {spec.argv[0]} failed: {exc}"
            ) from exc

    state.pid_file(spec.name).write_text(f"{process.pid}\n")
    log.info("%s started: pid %s, port %s, log %s", spec.name, process.pid, spec.port, log_path)
    return process.pid


def wait_healthy(
    state: StateDir, spec: ProcessSpec, pid: int, check: HealthCheck, timeout: float
) -> None:
    """Wait until ``check`` passes; on exit or timeout stop the part and raise."""
    deadline = time.monotonic() + timeout
    detail = "not checked yet"
    while time.monotonic() < deadline:
        if not is_alive(pid):
            stop_pid(pid, spec.name)
            state.pid_file(spec.name).unlink(missing_ok=True)
            raise StackError(
                f"{spec.name} exited while starting ({spec.argv[0]}, port {spec.port}); "
                f"last lines of {state.log_file(spec.name)}:\n{log_tail(state.log_file(spec.name))}"
            )
        healthy, detail = check()
        if healthy:
            log.info("%s is healthy: pid %s, port %s", spec.name, pid, spec.port)
            return
        time.sleep(0.25)

    stop_pid(pid, spec.name)
    state.pid_file(spec.name).unlink(missing_ok=True)
    raise StackError(
        f"{spec.name} did not become healthy within {timeout:.0f} s on port {spec.port} "
        f"({detail}); last lines of {state.log_file(spec.name)}:\n"
        f"{log_tail(state.log_file(spec.name))}"
    )


def stop_pid(pid: int, name: str, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop the process group led by ``pid`` and every descendant of ``pid``.

    Sends SIGTERM, waits up to ``timeout`` seconds, then sends SIGKILL.
    """
    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    _signal_all(pid, descendants, signal.SIGTERM)

    remaining = _wait_gone(pid, descendants, timeout)
    if remaining:
        log.warning(
            "%s did not stop within %.0f s after SIGTERM; sending SIGKILL to pids %s",
            name,
            timeout,
            sorted(p.pid for p in remaining),
        )
        _signal_all(pid, remaining, signal.SIGKILL)
        remaining = _wait_gone(pid, remaining, timeout)
    if remaining:
        raise StackError(
            f"{name} is still running after SIGKILL: pids {[p.pid for p in remaining]}"
        )
    log.info("%s stopped (pid %s)", name, pid)


def _signal_all(pid: int, processes: list[psutil.Process], signum: int) -> None:
    # The part leads its own session, so its group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signum)


def _wait_gone(pid: int, processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    watched = list(processes)
    with contextlib.suppress(psutil.NoSuchProcess):
        watched.append(psutil.Process(pid))
    while time.monotonic() < deadline:
        for process in watched:
            _reap(process.pid)
        watched = [p for p in watched if _still_running(p)]
        if not watched:
            return []
        time.sleep(0.1)
    return watched


def _still_running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
