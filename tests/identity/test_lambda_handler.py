"""The Transfer Family custom identity provider Lambda handler."""

from __future__ import annotations

import json
import logging

import pytest

from include.identity import lambda_handler
from tests.identity.stubs import PASSWORD, ROLE_ARN, SERVER_ID, client_with_login

USER = "acme-health"


def _event(**overrides) -> dict:
    event = {
        "username": USER,
        "password": PASSWORD,
        "protocol": "SFTP",
        "serverId": SERVER_ID,
        "sourceIp": "192.0.2.10",
    }
    event.update(overrides)
    return event


def test_handler_success():
    response = lambda_handler.handle(_event(), client_with_login(USER))

    assert response["Role"] == ROLE_ARN
    assert response["HomeDirectoryType"] == "LOGICAL"
    assert json.loads(response["HomeDirectoryDetails"])[0]["Target"] == f"/cdx-{USER}"


def test_handler_wrong_password():
    assert lambda_handler.handle(_event(password="nope"), client_with_login(USER)) == {}


def test_handler_missing_password():
    event = _event()
    del event["password"]

    assert lambda_handler.handle(event, client_with_login(USER)) == {}


@pytest.mark.parametrize("protocol", ["FTP", "FTPS", None])
def test_handler_rejects_other_protocols(protocol, caplog):
    caplog.set_level(logging.INFO)
    client = client_with_login(USER)

    assert lambda_handler.handle(_event(protocol=protocol), client) == {}
    assert "not supported" in caplog.text
    assert client.requested == []


@pytest.mark.parametrize("event", [None, [], "acme"])
def test_handler_rejects_malformed_event(event):
    assert lambda_handler.handle(event, client_with_login(USER)) == {}


def test_lambda_entry_point_uses_shared_client(monkeypatch):
    stub = client_with_login(USER)
    monkeypatch.setattr(lambda_handler, "_secrets_client", lambda: stub)

    response = lambda_handler.lambda_handler(_event(), context=None)

    assert response["Role"] == ROLE_ARN
    assert stub.requested == [f"aws/transfer/{SERVER_ID}/{USER}"]


def test_handler_never_logs_password(caplog):
    caplog.set_level(logging.DEBUG)

    lambda_handler.handle(_event(), client_with_login(USER))
    lambda_handler.handle(_event(password=PASSWORD + "x"), client_with_login(USER))
    lambda_handler.handle(_event(protocol="FTP"), client_with_login(USER))

    assert PASSWORD not in caplog.text
