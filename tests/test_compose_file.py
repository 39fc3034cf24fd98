"""docker-compose.yaml is valid against the Compose specification schema.

No Docker engine runs on the test machines, so the file is checked
statically: schema, the services the stack needs, their wiring, and that
the ``python -m include.localstack`` commands it runs exist.
"""

import json
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from include.localstack.__main__ import parse_arguments
from include.localstack.aws_bootstrap import BOOTSTRAP_CALLS

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
SCHEMA_FILE = REPO_ROOT.parent / "shared" / "schemas" / "compose-spec.json"
LOCALSTACK_MODULE = "include.localstack"
SHELL_SEPARATORS = {";", "&&", "||", "|"}

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


def _localstack_commands(compose) -> list[tuple[str, list[str]]]:
    """Return (service, arguments) for each ``python -m include.localstack`` command."""
    found = []
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if isinstance(command, str):
            command = [command]
        # An item may be a whole shell command line, as in ["bash", "-c", "..."].
        words = [word for item in command for word in shlex.split(item.replace(";", " ; "))]
        for index, word in enumerate(words[:-1]):
            if word == "-m" and words[index + 1] == LOCALSTACK_MODULE:
                arguments = []
                for argument in words[index + 2 :]:
                    if argument in SHELL_SEPARATORS:
                        break
                    arguments.append(argument)
                found.append((name, arguments))
    return found


def test_compose_localstack_commands_parse(compose):
    commands = _localstack_commands(compose)

    subcommands = {arguments[0] for _, arguments in commands if arguments}
    assert "bootstrap" in subcommands
    assert "serve-sftp" in subcommands
    for name, arguments in commands:
        try:
            parse_arguments(arguments)
        except SystemExit as exc:
            pytest.fail(
                f"{name}: python -m {LOCALSTACK_MODULE} {shlex.join(arguments)} is rejected ({exc})"
            )


def test_compose_moto_free_calls_match_bootstrap(compose):
    moto_env = compose["services"]["moto"]["environment"]

    assert int(moto_env["INITIAL_NO_AUTH_ACTION_COUNT"]) == BOOTSTRAP_CALLS
