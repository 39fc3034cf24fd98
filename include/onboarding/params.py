"""The onboarding trigger form and the validation of a request.

:data:`PARAM_SCHEMAS` feeds the Airflow trigger form (JSON schema per field).
:func:`validate_request` applies the same rules again inside the first task,
with checks the schema cannot express (no consecutive hyphens, no duplicate
addresses), so they hold however the run was triggered.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from include.naming import InvalidNameError, validate_client_id

ACCESS_METHOD_SDK = "sdk"
ACCESS_METHOD_SFTP = "sftp"
ACCESS_METHODS = (ACCESS_METHOD_SDK, ACCESS_METHOD_SFTP)

# The secret service accepts lifetimes from 5 minutes to 7 days.
MIN_LINK_LIFETIME_SECONDS = 300
MAX_LINK_LIFETIME_SECONDS = 604_800
LINK_LIFETIME_PRESETS = {
    300: "5 minutes",
    3_600: "1 hour",
    86_400: "1 day",
    259_200: "3 days",
    604_800: "7 days",
}
DEFAULT_LINK_LIFETIME_SECONDS = 86_400

# S3 lifecycle rules take NoncurrentDays as a positive whole number of days.
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3_650
DEFAULT_RETENTION_DAYS = 30

MAX_DISPLAY_NAME_LENGTH = 120
MAX_CONTACTS = 10
# A pragmatic address check (one @, a dot in the domain, no spaces). SES
# rejects what this lets through at send time.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL_RE = re.compile(EMAIL_PATTERN)

PARAM_SCHEMAS: dict[str, dict[str, Any]] = {
    "client_id": {
        "type": "string",
        "title": "Client id",
        "description": "Lowercase slug, 4 to 42 characters: letters, digits and single "
        "hyphens, starting with a letter. Every AWS name derives from it.",
        "pattern": r"^[a-z][a-z0-9-]{2,40}[a-z0-9]$",
        "minLength": 4,
        "maxLength": 42,
    },
    "display_name": {
        "type": "string",
        "title": "Display name",
        "description": "The client's name as the contacts know it; used in the email.",
        "minLength": 1,
        "maxLength": MAX_DISPLAY_NAME_LENGTH,
    },
    "contact_emails": {
        "type": "array",
        "title": "Contact emails",
        "description": "One address per line. Each contact receives the one-time links.",
        "items": {"type": "string", "format": "email", "pattern": EMAIL_PATTERN},
        "minItems": 1,
        "maxItems": MAX_CONTACTS,
        "uniqueItems": True,
    },
    "access_methods": {
        "type": "array",
        "title": "Access methods",
        "description": "SDK issues an IAM access key; SFTP issues a login for the SFTP server.",
        "items": {"type": "string", "enum": list(ACCESS_METHODS)},
        "minItems": 1,
        "uniqueItems": True,
    },
    "link_lifetime_seconds": {
        "type": "integer",
        "title": "Link lifetime",
        "description": "How long each one-time link stays valid before it expires unread.",
        "enum": list(LINK_LIFETIME_PRESETS),
        "values_display": {str(k): v for k, v in LINK_LIFETIME_PRESETS.items()},
    },
    "noncurrent_version_retention_days": {
        "type": "integer",
        "title": "Retention of old object versions (days)",
        "description": "Days a replaced or deleted object version is kept before S3 expires it.",
        "minimum": MIN_RETENTION_DAYS,
        "maximum": MAX_RETENTION_DAYS,
    },
    "reissue": {
        "type": "boolean",
        "title": "Reissue credentials",
        "description": "Set for a client that is already active: issues, verifies and "
        "shares new credentials, then disables the previous ones.",
    },
}

PARAM_DEFAULTS: dict[str, Any] = {
    "client_id": None,
    "display_name": None,
    "contact_emails": None,
    "access_methods": list(ACCESS_METHODS),
    "link_lifetime_seconds": DEFAULT_LINK_LIFETIME_SECONDS,
    "noncurrent_version_retention_days": DEFAULT_RETENTION_DAYS,
    "reissue": False,
}


class InvalidRequestError(ValueError):
    """An onboarding request with a field that breaks its rule."""


@dataclass(frozen=True)
class OnboardingRequest:
    """A validated onboarding request; contains no secret values."""

    client_id: str
    display_name: str
    contact_emails: tuple[str, ...]
    access_methods: tuple[str, ...]
    link_lifetime_seconds: int
    noncurrent_version_retention_days: int
    reissue: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the request as JSON-ready values, for XCom and the registry."""
        data = asdict(self)
        data["contact_emails"] = list(self.contact_emails)
        data["access_methods"] = list(self.access_methods)
        return data


def _invalid(field: str, value: object, rule: str) -> InvalidRequestError:
    return InvalidRequestError(f"invalid {field} {value!r}: {rule}")


def _check_integer(field: str, value: object, low: int, high: int, unit: str) -> int:
    # bool is a subclass of int, so it is rejected explicitly.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(field, value, f"must be a whole number of {unit} from {low} to {high}")
    return value


def _check_display_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("display_name", value, "must be a non-empty string")
    if len(value) > MAX_DISPLAY_NAME_LENGTH or any(ch in value for ch in "\r\n"):
        raise _invalid(
            "display_name",
            value,
            f"must be one line of at most {MAX_DISPLAY_NAME_LENGTH} characters",
        )
    return value.strip()


def _check_emails(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= MAX_CONTACTS:
        raise _invalid(
            "contact_emails", value, f"must be a list of 1 to {MAX_CONTACTS} email addresses"
        )
    for address in value:
        if not isinstance(address, str) or not _EMAIL_RE.fullmatch(address):
            raise _invalid(
                "contact_emails", address, "each entry must be an address like name@example.com"
            )
    if len({address.lower() for address in value}) != len(value):
        raise _invalid("contact_emails", value, "must not list the same address twice")
    return tuple(value)


def _check_methods(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise _invalid("access_methods", value, "must list at least one of 'sdk' and 'sftp'")
    for method in value:
        if method not in ACCESS_METHODS:
            raise _invalid("access_methods", method, "each entry must be 'sdk' or 'sftp'")
    if len(set(value)) != len(value):
        raise _invalid("access_methods", value, "must not list a method twice")
    # A fixed order keeps the email and the registry stable across runs.
    return tuple(m for m in ACCESS_METHODS if m in value)


def validate_request(conf: dict[str, Any]) -> OnboardingRequest:
    """Check every field of a trigger's params and return the request.

    :param conf: the run's params (form values merged over the defaults).
    :return: the validated request.
    :raises InvalidRequestError: naming the first invalid field, its value and the rule.
    """
    unknown = sorted(set(conf) - set(PARAM_DEFAULTS))
    if unknown:
        raise InvalidRequestError(
            f"unknown field(s) {unknown}: the form accepts only {sorted(PARAM_DEFAULTS)}"
        )
    values = {**PARAM_DEFAULTS, **conf}

    try:
        client_id = validate_client_id(values["client_id"])
    except InvalidNameError as exc:
        raise InvalidRequestError(f"client_id: {exc}") from None

    reissue = values["reissue"]
    if not isinstance(reissue, bool):
        raise _invalid("reissue", reissue, "must be true or false")

    return OnboardingRequest(
        client_id=client_id,
        display_name=_check_display_name(values["display_name"]),
        contact_emails=_check_emails(values["contact_emails"]),
        access_methods=_check_methods(values["access_methods"]),
        link_lifetime_seconds=_check_integer(
            "link_lifetime_seconds",
            values["link_lifetime_seconds"],
            MIN_LINK_LIFETIME_SECONDS,
            MAX_LINK_LIFETIME_SECONDS,
            "seconds",
        ),
        noncurrent_version_retention_days=_check_integer(
            "noncurrent_version_retention_days",
            values["noncurrent_version_retention_days"],
            MIN_RETENTION_DAYS,
            MAX_RETENTION_DAYS,
            "days",
        ),
        reissue=reissue,
    )


def request_from_dict(data: dict[str, Any]) -> OnboardingRequest:
    """Rebuild a request that :meth:`OnboardingRequest.to_dict` produced."""
    return validate_request(data)
