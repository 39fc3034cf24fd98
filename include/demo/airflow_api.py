"""A small client of Airflow's REST API (v2) for the demo.

The demo triggers DAGs through the running API server, so the runs go
through the real scheduler and show up in the UI like runs started there.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

TERMINAL_STATES = {"success", "failed"}


class AirflowApiError(RuntimeError):
    """The Airflow API rejected a request or a run did not finish in time."""


class AirflowApi:
    """Calls to one Airflow API server as the simple auth manager's admin user."""

    def __init__(self, base_url: str, password_file: Path, timeout: float = 30.0):
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._http.headers["Authorization"] = f"Bearer {self._token(password_file)}"

    def __enter__(self) -> AirflowApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def _token(self, password_file: Path) -> str:
        users = json.loads(password_file.read_text())
        response = self._http.post(
            "/auth/token", json={"username": "admin", "password": users["admin"]}
        )
        self._check(response, "log in as admin")
        return response.json()["access_token"]

    @staticmethod
    def _check(response: httpx.Response, action: str) -> None:
        if response.is_error:
            raise AirflowApiError(
                f"Airflow API request to {action} failed: HTTP {response.status_code} "
                f"{response.text[:300]}"
            )

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._http.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                return
            time.sleep(2)
        raise AirflowApiError(f"DAG {dag_id} was not parsed within {timeout:.0f} s")

    def unpause(self, dag_id: str) -> None:
        """Unpause ``dag_id``, because new DAGs start paused."""
        response = self._http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        self._check(response, f"unpause {dag_id}")

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        """Start a run of ``dag_id`` with ``conf`` and return its run id."""
        response = self._http.post(
            f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )
        self._check(response, f"trigger {dag_id}")
        run_id = response.json()["dag_run_id"]
        log.info("triggered DAG %s: run %s", dag_id, run_id)
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900.0) -> str:
        """Wait until the run finishes and return its state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self._http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            self._check(response, f"read run {run_id} of {dag_id}")
            state = response.json()["state"]
            if state in TERMINAL_STATES:
                log.info("DAG %s run %s finished: %s", dag_id, run_id, state)
                return state
            time.sleep(3)
        raise AirflowApiError(f"run {run_id} of DAG {dag_id} did not finish within {timeout:.0f} s")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Return each task's state in a run. A mapped task shows the state of its last instance."""
        response = self._http.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )
        self._check(response, f"list task instances of run {run_id}")
        return {
            instance["task_id"]: instance["state"]
            for instance in response.json()["task_instances"]
        }
