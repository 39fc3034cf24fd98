"""Onboard a demo client on the local stack: ``python -m include.onboarding.demo``.

Starts the local stack (or reuses the running one), migrates the Airflow
database of the stack and runs the ``client_onboarding`` DAG once with
``dag.test()``. A client that is already active gets its credentials
reissued. The links are only in the email, which moto keeps in its SES store.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CLIENT_ID = "demo-clinic"
DEFAULT_CONTACT = "it@demo-clinic.example"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m include.onboarding.demo",
        description="Onboard one demo client on the local stack with the onboarding DAG.",
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="client id to onboard")
    parser.add_argument("--contact", default=DEFAULT_CONTACT, help="contact email address")
    parser.add_argument("--state-dir", metavar="DIR", help="local stack state directory")
    return parser.parse_args(argv)


def start_stack(state_dir: str | None) -> dict[str, str]:
    """Start the local stack, export its environment and migrate its Airflow database."""
    from include.localstack import stack

    env = stack.start(state_dir, airflow=False)
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=600,
    )
    return env


def onboard(client_id: str, contact: str) -> int:
    """Run the onboarding DAG once and print the outcome; return the exit code."""
    # Airflow reads AIRFLOW_HOME on import, so it is imported after start_stack.
    from airflow.dag_processing.dagbag import DagBag

    from include import registry
    from include.onboarding.run import registry_db

    with registry_db() as db:
        record = registry.get_client_record(db, client_id) or {}
    conf = {
        "client_id": client_id,
        "display_name": "Demo Clinic",
        "contact_emails": [contact],
        "access_methods": ["sdk", "sftp"],
        "link_lifetime_seconds": 86_400,
        "noncurrent_version_retention_days": 30,
        "reissue": record.get("status") == registry.STATUS_ACTIVE,
    }
    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "client_onboarding.py")).dags[
        "client_onboarding"
    ]
    dag_run = dag.test(run_conf=conf)

    with registry_db() as db:
        record = registry.get_client_record(db, client_id) or {}
    print(f"\nrun {dag_run.run_id}: {dag_run.state}")
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: t.start_date or t.end_date):
        print(f"  {ti.task_id:<11} {ti.state}")
    report = record.get("verification") or {}
    print(f"client {client_id}: status {record.get('status')}, bucket {record.get('bucket')}")
    print(f"verification: {report.get('counts')}")
    print(
        f"the email to {contact} is in moto's SES store: "
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/data.json (ses.RawMessage)"
    )
    return 0 if record.get("status") == registry.STATUS_ACTIVE else 1


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING)
    start_stack(arguments.state_dir)
    return onboard(arguments.client_id, arguments.contact)


if __name__ == "__main__":
    sys.exit(main())
