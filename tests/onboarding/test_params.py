"""Validation of onboarding requests and the trigger form's JSON schema."""

from __future__ import annotations

import jsonschema
import pytest

from include.onboarding.params import (
    LINK_LIFETIME_PRESETS,
    PARAM_DEFAULTS,
    PARAM_SCHEMAS,
    InvalidRequestError,
    validate_request,
)

VALID = {
    "client_id": "acme-health",
    "display_name": "Acme Health",
    "contact_emails": ["it@acme.example", "sec@acme.example"],
    "access_methods": ["sftp", "sdk"],
    "link_lifetime_seconds": 86_400,
    "noncurrent_version_retention_days": 30,
    "reissue": False,
}


def test_valid_request_accepted():
    request = validate_request(VALID)

    assert request.client_id == "acme-health"
    assert request.access_methods == ("sdk", "sftp")
    assert request.contact_emails == ("it@acme.example", "sec@acme.example")
    assert request.to_dict()["access_methods"] == ["sdk", "sftp"]


def test_defaults_fill_optional_fields():
    request = validate_request(
        {"client_id": "acme-min", "display_name": "Acme", "contact_emails": ["a@b.example"]}
    )

    assert request.access_methods == ("sdk", "sftp")
    assert request.link_lifetime_seconds == 86_400
    assert request.noncurrent_version_retention_days == 30
    assert request.reissue is False


@pytest.mark.parametrize(
    ("field", "value", "shown", "rule"),
    [
        ("client_id", "Acme", "'Acme'", "lowercase"),
        ("client_id", "ab--cd", "'ab--cd'", "consecutive hyphens"),
        ("client_id", None, "None", "4 to 42"),
        ("display_name", "", "''", "non-empty"),
        ("display_name", "two\nlines", "'two\\nlines'", "one line"),
        ("contact_emails", [], "[]", "1 to 10"),
        ("contact_emails", ["nobody"], "'nobody'", "name@example.com"),
        ("contact_emails", ["a@b.example", "A@b.example"], "'A@b.example'", "same address twice"),
        ("access_methods", [], "[]", "at least one"),
        ("access_methods", ["ftp"], "'ftp'", "'sdk' or 'sftp'"),
        ("access_methods", ["sdk", "sdk"], "['sdk', 'sdk']", "twice"),
        ("link_lifetime_seconds", 299, "299", "300 to 604800"),
        ("link_lifetime_seconds", 604_801, "604801", "300 to 604800"),
        ("link_lifetime_seconds", True, "True", "whole number"),
        ("noncurrent_version_retention_days", 0, "0", "1 to 3650"),
        ("noncurrent_version_retention_days", "30", "'30'", "whole number"),
        ("reissue", "yes", "'yes'", "true or false"),
    ],
)
def test_invalid_field_names_field_value_rule(field, value, shown, rule):
    with pytest.raises(InvalidRequestError) as raised:
        validate_request({**VALID, field: value})
    message = str(raised.value)

    assert field in message
    assert shown in message
    assert rule in message


def test_unknown_field_rejected():
    with pytest.raises(InvalidRequestError, match="unknown field"):
        validate_request({**VALID, "bucket": "someone-elses"})


def test_lifetime_bounds_accepted():
    assert validate_request({**VALID, "link_lifetime_seconds": 300}).link_lifetime_seconds == 300
    assert (
        validate_request({**VALID, "link_lifetime_seconds": 604_800}).link_lifetime_seconds
        == 604_800
    )


def _schema_errors(values: dict) -> list[str]:
    errors = []
    for name, schema in PARAM_SCHEMAS.items():
        clean = {k: v for k, v in schema.items() if k not in ("values_display", "title")}
        try:
            jsonschema.validate(values[name], clean)
        except jsonschema.ValidationError:
            errors.append(name)
    return errors


def test_form_schema_accepts_valid_request():
    assert _schema_errors(VALID) == []


def test_form_schema_rejects_what_validation_rejects():
    invalid = {
        **VALID,
        "client_id": "A",
        "contact_emails": ["nobody"],
        "access_methods": [],
        "link_lifetime_seconds": 1_000,
        "noncurrent_version_retention_days": 0,
    }

    assert sorted(_schema_errors(invalid)) == sorted(
        [
            "client_id",
            "contact_emails",
            "access_methods",
            "link_lifetime_seconds",
            "noncurrent_version_retention_days",
        ]
    )


def test_form_presets_cover_lifetime_range():
    presets = PARAM_SCHEMAS["link_lifetime_seconds"]["enum"]

    assert presets == sorted(LINK_LIFETIME_PRESETS)
    assert presets[0] == 300
    assert presets[-1] == 604_800
    assert set(PARAM_SCHEMAS["link_lifetime_seconds"]["values_display"]) == {
        str(p) for p in presets
    }
    assert PARAM_DEFAULTS["link_lifetime_seconds"] in presets
