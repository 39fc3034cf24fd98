"""The main job end to end on the local stack: ``python -m include.demo`` (``make demo``).

1. Start the local stack with the Airflow UI (or reuse the running one).
2. Onboard a demo client with the ``client_onboarding`` DAG through Airflow's
   API; an already active demo client gets its credentials reissued.
3. Act as the client's IT staff: read the email, open both one-time links,
   upload synthetic FHIR NDJSON over SFTP and synthetic CSV over the SDK.
4. Run ``exchange_ingestion`` for the client and print a summary.

The stack keeps running afterwards; ``make down`` stops it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from include.demo.summary import format_summary, link_states, verification_counts

log = logging.getLogger("include.demo")

DEFAULT_CLIENT_ID = "demo-clinic"
DEFAULT_CONTACT = "it@demo-clinic.example"
ONBOARDING_DAG = "client_onboarding"
INGESTION_DAG = "exchange_ingestion"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m include.demo",
        description="Onboard a demo client, upload as that client, ingest, and print a summary.",
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="client id to onboard")
    parser.add_argument("--contact", default=DEFAULT_CONTACT, help="contact email address")
    parser.add_argument("--state-dir", metavar="DIR", help="local stack state directory")
    return parser.parse_args(argv)


def run_dag(api, dag_id: str, conf: dict) -> str:
    """Unpause ``dag_id``, trigger it with ``conf``, wait, and return the run's state."""
    api.wait_for_dag(dag_id)
    api.unpause(dag_id)
    run_id = api.trigger(dag_id, conf)
    state = api.wait_for_run(dag_id, run_id)
    if state != "success":
        failed = {task: s for task, s in api.task_states(dag_id, run_id).items() if s != "success"}
        log.error("DAG %s run %s ended %s; tasks not successful: %s", dag_id, run_id, state, failed)
    return state


def onboarding_conf(client_id: str, contact: str, reissue: bool) -> dict:
    """Return the trigger form values for the demo client."""
    return {
        "client_id": client_id,
        "display_name": "Demo Clinic",
        "contact_emails": [contact],
        "access_methods": ["sdk", "sftp"],
        "link_lifetime_seconds": 86_400,
        "noncurrent_version_retention_days": 30,
        "reissue": reissue,
    }


def act_as_client(env: dict[str, str], record: dict, contact: str) -> None:
    """Open the links from the email and upload sample data by SFTP and by SDK."""
    import boto3

    from include.demo import client_side
    from include.sample_data import write_sample_export
    from include.secret_service.client import SecretServiceClient

    html = client_side.latest_email_to(env["AWS_ENDPOINT_URL"], contact)
    links = client_side.links_by_method(html)
    with SecretServiceClient.from_env() as service:
        sdk = client_side.parse_sdk_credentials(service.reveal(links["sdk"]))
        sftp = client_side.parse_sftp_login(service.reveal(links["sftp"]))
    log.info("opened the one-time links of client %s: %s", record["_id"], sorted(links))

    with tempfile.TemporaryDirectory(prefix="cdx-demo-") as folder:
        files = write_sample_export(Path(folder))
        fhir = [path for path in files if path.parent.name == "fhir"]
        tables = [path for path in files if path.parent.name == "csv"]
        client_side.upload_over_sftp(sftp, env["SFTP_HOST_PUBLIC_KEY"], fhir)
        keys = client_side.upload_over_sdk(sdk, record["bucket"], record["kms_key_arn"], tables)

    keys += [f"incoming/{path.name}" for path in fhir]
    operator_s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    client_side.wait_for_objects(operator_s3, record["bucket"], keys)


def print_summary(env: dict[str, str], client_id: str) -> None:
    """Print verification, link, file and document counts of the demo client."""
    import boto3

    from include import registry
    from include.ingestion.status import client_status
    from include.mongo import get_client, get_database

    with get_client() as mongo:
        db = get_database(mongo)
        record = registry.get_client_record(db, client_id) or {}
        ingested = client_status(db, client_id)
    secretsmanager = boto3.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"])
    links = link_states(secretsmanager, client_id)
    print()
    print(
        format_summary(
            client_id,
            verification_counts(record),
            links,
            ingested["files"],
            ingested["documents"],
        )
    )
    for key, reason in ingested["quarantined"].items():
        print(f"  quarantined {key}: {reason}")


def print_next_steps(env: dict[str, str], state_dir: str | None) -> None:
    """Print where the Airflow UI is and how to stop the stack."""
    from include.localstack import stack
    from include.localstack.state import StateDir

    print()
    print(f"The stack keeps running. Airflow UI: {env['AIRFLOW__API__BASE_URL']} (user admin,")
    print(f"password in {stack.airflow_password_file(state_dir)}).")
    print(f"Shell settings: source {StateDir.open(state_dir).env_file}")
    print("Stop everything: make down")


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per HTTP request would bury the demo's own steps.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from include.localstack import stack

    env = stack.start(arguments.state_dir, airflow=True)
    os.environ.update(env)

    from include import registry
    from include.demo.airflow_api import AirflowApi
    from include.mongo import get_client, get_database

    client_id = arguments.client_id
    with get_client() as mongo:
        record = registry.get_client_record(get_database(mongo), client_id) or {}
    reissue = record.get("status") == registry.STATUS_ACTIVE

    password_file = stack.airflow_password_file(arguments.state_dir)
    with AirflowApi(env["AIRFLOW__API__BASE_URL"], password_file) as api:
        conf = onboarding_conf(client_id, arguments.contact, reissue)
        if run_dag(api, ONBOARDING_DAG, conf) != "success":
            return 1
        with get_client() as mongo:
            record = registry.get_client_record(get_database(mongo), client_id)
        act_as_client(env, record, arguments.contact)
        if run_dag(api, INGESTION_DAG, {"client_id": client_id}) != "success":
            return 1

    print_summary(env, client_id)
    print_next_steps(env, arguments.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
