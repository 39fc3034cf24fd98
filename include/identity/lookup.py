"""SFTP identity lookup: one login secret in, a Transfer Family response out.

Each SFTP login is one Secrets Manager secret named
``aws/transfer/<server_id>/<username>`` whose ``SecretString`` is a JSON
object. Onboarding writes it with :func:`build_login_secret`; the fields are:

``Password``
    The login password, compared in constant time. Required, non-empty.
``Role``
    ARN of the client's bucket-scoped IAM role. Transfer Family (or the local
    gateway) assumes it for every file operation of the session.
``HomeDirectoryType``
    Always ``"LOGICAL"``, so the client sees ``/`` and never a bucket name.
``HomeDirectoryDetails``
    A JSON *string* (as Transfer Family expects) holding
    ``[{"Entry": "/", "Target": "/<bucket>"}]``, optionally with a key prefix
    after the bucket.
``Policy``
    Optional session policy (JSON string) applied on top of the role.
``ClientId``
    The client id the login belongs to, for logs and audit.
``Disabled``
    ``true`` rejects every login without deleting the secret.
``KmsKeyArn``
    Optional ARN of the client's KMS key. The local gateway sends it as the
    SSE-KMS key of uploads, which the bucket policy requires.

:func:`lookup_identity` returns the response shape of a Transfer Family
custom identity provider, or ``{}`` to reject the login.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from include.naming import InvalidNameError, sftp_login_secret_name, validate_server_id

log = logging.getLogger(__name__)

HOME_DIRECTORY_TYPE = "LOGICAL"

# Transfer Family user names, as in its API reference ([\w][\w@.-]{2,99}),
# limited to ASCII: 3 to 100 characters, starting with a letter, digit or "_".
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{2,99}$")
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
KMS_KEY_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# A home directory target is "/<bucket>" or "/<bucket>/<key prefix>".
TARGET_PATTERN = re.compile(r"^/(?P<bucket>[^/]+)(?P<prefix>(/[^/]+)*)/?$")

# Longer passwords are rejected before any comparison, so a request cannot
# make the lookup hash or compare arbitrarily large inputs.
MAX_PASSWORD_LENGTH = 1024


class InvalidLoginSecretError(ValueError):
    """A login secret whose JSON does not follow the format above."""


@dataclass(frozen=True)
class Login:
    """An authenticated SFTP login, parsed from its secret."""

    username: str
    client_id: str
    role_arn: str
    bucket: str
    key_prefix: str
    home_directory_details: str
    policy: str | None
    kms_key_arn: str | None


def build_login_secret(
    *,
    password: str,
    role_arn: str,
    bucket: str,
    client_id: str,
    kms_key_arn: str | None = None,
    policy: str | None = None,
    disabled: bool = False,
) -> str:
    """Build the ``SecretString`` of one SFTP login in the format above.

    :param password: the login password, stored as given.
    :param role_arn: the client's bucket-scoped SFTP role.
    :param bucket: the client's bucket; the login's ``/`` maps to its root.
    :param client_id: the client the login belongs to.
    :param kms_key_arn: the client's KMS key for SSE-KMS uploads, if any.
    :param policy: an optional session policy as a JSON string.
    :param disabled: whether the login is rejected.
    :return: the JSON text to store as the secret's ``SecretString``.
    :raises InvalidLoginSecretError: when a value does not fit the format.
    """
    secret: dict[str, Any] = {
        "Password": password,
        "Role": role_arn,
        "HomeDirectoryType": HOME_DIRECTORY_TYPE,
        "HomeDirectoryDetails": json.dumps([{"Entry": "/", "Target": f"/{bucket}"}]),
        "ClientId": client_id,
        "Disabled": disabled,
    }
    if policy is not None:
        secret["Policy"] = policy
    if kms_key_arn is not None:
        secret["KmsKeyArn"] = kms_key_arn

    # Parse what was built, so onboarding cannot store a secret that every
    # later login would reject as malformed.
    parse_login_secret("<new>", json.dumps(secret))
    return json.dumps(secret)


def parse_login_secret(username: str, secret_string: object) -> tuple[str, bool, Login]:
    """Parse a login secret into (stored password, disabled flag, login).

    :raises InvalidLoginSecretError: naming the field that is missing or invalid.
    """
    if not isinstance(secret_string, str):
        raise InvalidLoginSecretError("SecretString is missing")
    try:
        secret = json.loads(secret_string)
    except json.JSONDecodeError as exc:
        raise InvalidLoginSecretError("SecretString is not valid JSON") from exc
    if not isinstance(secret, dict):
        raise InvalidLoginSecretError("SecretString is not a JSON object")

    password = secret.get("Password")
    if not isinstance(password, str) or not password:
        raise InvalidLoginSecretError("Password is missing or empty")
    role_arn = _required_match(secret, "Role", ROLE_ARN_PATTERN)
    if secret.get("HomeDirectoryType") != HOME_DIRECTORY_TYPE:
        raise InvalidLoginSecretError("HomeDirectoryType is not LOGICAL")
    details, bucket, key_prefix = _parse_home_directory(secret.get("HomeDirectoryDetails"))
    client_id = secret.get("ClientId")
    if not isinstance(client_id, str) or not client_id:
        raise InvalidLoginSecretError("ClientId is missing")
    disabled = secret.get("Disabled", False)
    if not isinstance(disabled, bool):
        raise InvalidLoginSecretError("Disabled is not a boolean")
    policy = secret.get("Policy")
    if policy is not None and not _is_json_object_text(policy):
        raise InvalidLoginSecretError("Policy is not a JSON object string")
    kms_key_arn = secret.get("KmsKeyArn")
    if kms_key_arn is not None:
        kms_key_arn = _required_match(secret, "KmsKeyArn", KMS_KEY_ARN_PATTERN)

    login = Login(
        username=username,
        client_id=client_id,
        role_arn=role_arn,
        bucket=bucket,
        key_prefix=key_prefix,
        home_directory_details=details,
        policy=policy,
        kms_key_arn=kms_key_arn,
    )
    return password, disabled, login


def authenticate(
    secrets_client: Any,
    server_id: object,
    username: object,
    password: object,
    source_ip: object = None,
) -> Login | None:
    """Check one SFTP login against its secret and return it, or None.

    Reads the secret with ``secretsmanager:GetSecretValue``. Every rejection
    logs one line with the username and the reason, never the password.

    :param secrets_client: a boto3 Secrets Manager client (or a stub of it).
    :param server_id: the Transfer Family server id, ``s-`` and 17 hex digits.
    :param username: the name the SFTP client logged in with.
    :param password: the password it sent; empty means key-based, rejected.
    :param source_ip: the client's address, logged when valid.
    :return: the login, or None when the login is rejected.
    """
    shown_name = username[:100] if isinstance(username, str) else repr(username)[:100]
    if not isinstance(username, str) or not USERNAME_PATTERN.fullmatch(username):
        return _reject(shown_name, server_id, source_ip, "invalid username")
    try:
        validate_server_id(server_id)
    except InvalidNameError:
        return _reject(username, server_id, source_ip, "invalid server id")
    if source_ip is not None and not _is_ip_address(source_ip):
        return _reject(username, server_id, source_ip, "invalid source IP")
    if not isinstance(password, str) or not password:
        return _reject(username, server_id, source_ip, "empty password")
    if len(password) > MAX_PASSWORD_LENGTH:
        return _reject(username, server_id, source_ip, "password too long")

    secret_name = sftp_login_secret_name(server_id, username)
    try:
        response = secrets_client.get_secret_value(SecretId=secret_name)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        if code == "ResourceNotFoundException":
            return _reject(username, server_id, source_ip, "unknown user")
        log.error("reading login secret %s failed: %s", secret_name, code)
        return _reject(username, server_id, source_ip, f"secret not readable ({code})")
    except BotoCoreError as exc:
        log.error("reading login secret %s failed: %s", secret_name, type(exc).__name__)
        return _reject(username, server_id, source_ip, "secret not readable")

    try:
        stored_password, disabled, login = parse_login_secret(
            username, response.get("SecretString")
        )
    except InvalidLoginSecretError as exc:
        return _reject(username, server_id, source_ip, f"malformed secret: {exc}")

    if not hmac.compare_digest(password.encode("utf-8"), stored_password.encode("utf-8")):
        return _reject(username, server_id, source_ip, "wrong password")
    if disabled:
        return _reject(username, server_id, source_ip, f"client {login.client_id} is disabled")

    log.info(
        "SFTP login accepted: user %s, client %s, server %s, source %s, role %s",
        username,
        login.client_id,
        server_id,
        source_ip,
        login.role_arn,
    )
    return login


def transfer_response(login: Login) -> dict[str, str]:
    """Return the Transfer Family identity provider response for ``login``."""
    response = {
        "Role": login.role_arn,
        "HomeDirectoryType": HOME_DIRECTORY_TYPE,
        "HomeDirectoryDetails": login.home_directory_details,
    }
    if login.policy:
        response["Policy"] = login.policy
    return response


def lookup_identity(
    secrets_client: Any,
    server_id: object,
    username: object,
    password: object,
    source_ip: object = None,
) -> dict[str, str]:
    """Authenticate an SFTP login and return the Transfer Family response.

    See :func:`authenticate` for the parameters.

    :return: ``Role``, ``HomeDirectoryType``, ``HomeDirectoryDetails`` and
        ``Policy`` when the secret has one; ``{}`` rejects the login.
    """
    login = authenticate(secrets_client, server_id, username, password, source_ip)
    if login is None:
        return {}
    return transfer_response(login)


def _reject(username: str, server_id: object, source_ip: object, reason: str) -> None:
    log.warning(
        "SFTP login rejected: user %s, server %s, source %s: %s",
        username,
        str(server_id)[:40],
        str(source_ip)[:64],
        reason,
    )
    return None


def _required_match(secret: dict[str, Any], field: str, pattern: re.Pattern[str]) -> str:
    value = secret.get(field)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidLoginSecretError(f"{field} is missing or invalid")
    return value


def _parse_home_directory(details: object) -> tuple[str, str, str]:
    """Return (details text, bucket, key prefix) from the ``/`` mapping."""
    if not isinstance(details, str):
        raise InvalidLoginSecretError("HomeDirectoryDetails is not a JSON string")
    try:
        mappings = json.loads(details)
    except json.JSONDecodeError as exc:
        raise InvalidLoginSecretError("HomeDirectoryDetails is not valid JSON") from exc
    if not isinstance(mappings, list) or not all(isinstance(m, dict) for m in mappings):
        raise InvalidLoginSecretError("HomeDirectoryDetails is not a list of mappings")

    roots = [m for m in mappings if m.get("Entry") == "/"]
    if len(roots) != 1 or not isinstance(roots[0].get("Target"), str):
        raise InvalidLoginSecretError("HomeDirectoryDetails has no single '/' entry")
    target = roots[0]["Target"]
    match = TARGET_PATTERN.fullmatch(target)
    if not match or not BUCKET_PATTERN.fullmatch(match["bucket"]) or ".." in target:
        raise InvalidLoginSecretError("HomeDirectoryDetails target is not /<bucket>[/prefix]")
    return details, match["bucket"], match["prefix"].strip("/")


def _is_json_object_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return isinstance(json.loads(value), dict)
    except json.JSONDecodeError:
        return False


def _is_ip_address(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
