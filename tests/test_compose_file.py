"""docker-compose.yaml is valid against the Compose specification schema.

No Docker engine runs on the test machines, so the file is checked
statically: schema, the services the stack needs, and their wiring.
"""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
SCHEMA_FILE = REPO_ROOT.parent / "shared" / "schemas" / "compose-spec.json"

EXPECTED_SERVICES = {
    "postgres",
    "mongodb",
    "moto",
    "stack-init",
    "sftp-gateway",
    "secret-service",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_matches_schema(compose):
    if not SCHEMA_FILE.exists():
        pytest.skip(f"Compose schema not found at {SCHEMA_FILE}")
    schema = json.loads(SCHEMA_FILE.read_text())
    # The schema declares draft-07 under an address jsonschema does not map.
    jsonschema.Draft7Validator(schema).validate(compose)


def test_compose_has_every_service(compose):
    assert set(compose["services"]) == EXPECTED_SERVICES


def test_compose_depends_on_known_services(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_compose_services_have_healthchecks(compose):
    one_shot = {"stack-init", "airflow-init"}
    for name, service in compose["services"].items():
        if name not in one_shot:
            assert "healthcheck" in service, f"{name} has no healthcheck"
