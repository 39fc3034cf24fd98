"""Bootstrap the identities of the local AWS emulator (moto with IAM authentication).

moto starts with ``INITIAL_NO_AUTH_ACTION_COUNT`` set to
:data:`BOOTSTRAP_CALLS`: it serves that many AWS API calls without checking
credentials (its own ``/moto-api/`` routes do not count) and checks the
signature and IAM policies of every later call. The bootstrap spends
exactly those calls on the operator: create the user, attach an inline
admin policy and create its access key. Everything after that, the SFTP
gateway identity and the SES sender included, is done with the operator's
keys.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from include.localstack.state import StackError, read_json, write_private

log = logging.getLogger(__name__)

# CreateUser, PutUserPolicy and CreateAccessKey of the operator.
BOOTSTRAP_CALLS = 3
REGION = "us-east-1"
OPERATOR_POLICY_NAME = "local-admin"
GATEWAY_POLICY_NAME = "sftp-gateway"
# Placeholder keys for the unauthenticated bootstrap calls; moto ignores them
# until the free calls are used up, and rejects them afterwards.
BOOTSTRAP_KEY = "bootstrap"
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})


@dataclass(frozen=True)
class AccessKey:
    """An IAM user's access key pair and the user's ARN."""

    access_key_id: str
    secret_access_key: str
    arn: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"


def client(service: str, endpoint: str, key_id: str, secret: str) -> Any:
    """Build a boto3 client with explicit keys and endpoint (never instance metadata)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=CLIENT_CONFIG,
    )


def operator_user(prefix: str) -> str:
    return f"{prefix}-operator"


def gateway_user(prefix: str) -> str:
    return f"{prefix}-sftp-gateway"


def gateway_policy(prefix: str) -> dict[str, Any]:
    """Return the SFTP gateway's policy: read login secrets, assume client SFTP roles.

    In production these two statements belong to the identity provider
    Lambda's execution role and Transfer Family's logging role.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadLoginSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                # NOTE: moto 5.2 checks Secrets Manager calls against the
                # resource "*" only, so this ARN pattern never matches there
                # and the local gateway may read every secret. The lookup
                # itself only ever requests aws/transfer/<server>/<user>.
                "Resource": ["arn:aws:secretsmanager:*:*:secret:aws/transfer/*", "*"],
            },
            {
                "Sid": "AssumeClientSftpRoles",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"arn:aws:iam::*:role/{prefix}-*-sftp",
            },
        ],
    }


def caller_arn(endpoint: str, key: AccessKey | None) -> str | None:
    """Return the ARN the emulator resolves ``key`` to, or None when it rejects it."""
    if key is None:
        return None
    sts = client("sts", endpoint, key.access_key_id, key.secret_access_key)
    try:
        return sts.get_caller_identity()["Arn"]
    except (ClientError, BotoCoreError):
        return None


def load_key(path) -> AccessKey | None:
    """Return the access key stored in ``path``, or None."""
    data = read_json(path)
    if not isinstance(data, dict):
        return None
    try:
        return AccessKey(data["access_key_id"], data["secret_access_key"], data["arn"])
    except KeyError:
        return None


def bootstrap_operator(endpoint: str, prefix: str) -> AccessKey:
    """Create the operator with the emulator's free calls and return its key.

    :raises StackError: when a call fails, or when unsigned calls still
        succeed afterwards (IAM authentication is off).
    """
    user = operator_user(prefix)
    iam = client("iam", endpoint, BOOTSTRAP_KEY, BOOTSTRAP_KEY)
    admin_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    try:
        arn = iam.create_user(UserName=user)["User"]["Arn"]
        iam.put_user_policy(
            UserName=user, PolicyName=OPERATOR_POLICY_NAME, PolicyDocument=json.dumps(admin_policy)
        )
        created = iam.create_access_key(UserName=user)["AccessKey"]
    except (ClientError, BotoCoreError) as exc:
        raise StackError(
            f"bootstrapping the operator {user} at {endpoint} failed: {exc}. The emulator "
            "allows only the first few calls without credentials, so start it afresh "
            "(`down` and `up`, or restart its container) and bootstrap again"
        ) from exc
    key = AccessKey(created["AccessKeyId"], created["SecretAccessKey"], arn)

    if caller_arn(endpoint, key) != arn:
        raise StackError(f"the emulator at {endpoint} rejects the new operator key of {user}")
    if caller_arn(endpoint, AccessKey(BOOTSTRAP_KEY, BOOTSTRAP_KEY, "")) is not None:
        raise StackError(
            f"the emulator at {endpoint} accepts unknown keys: IAM authentication is off "
            "(INITIAL_NO_AUTH_ACTION_COUNT not applied)"
        )
    log.info("operator %s bootstrapped with access key %s", arn, key.access_key_id)
    return key


def emulator_access_keys(endpoint: str) -> dict[str, set[str]]:
    """Return each IAM user name in the emulator with the ids of its access keys.

    Reads moto's ``/moto-api/data.json``, which IAM authentication does not
    check or count, so this spends none of the unauthenticated calls that the
    operator's bootstrap needs. Any AWS call, even a signed one with stale
    keys, would spend one while they last.

    :raises StackError: when the request fails or returns no JSON.
    """
    url = f"{endpoint.rstrip('/')}/moto-api/data.json"
    try:
        # NOTE: the route returns the emulator's whole state, secret values
        # included. Only user names and access key ids are kept here.
        with urllib.request.urlopen(url, timeout=CLIENT_CONFIG.read_timeout) as response:  # noqa: S310
            state = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StackError(f"reading the emulator's state from {url} failed: {exc}") from exc

    iam = state.get("iam", {})
    users: dict[str, set[str]] = {user["name"]: set() for user in iam.get("User", [])}
    for key in iam.get("AccessKey", []):
        users.setdefault(key["user_name"], set()).add(key["access_key_id"])
    return users


def ensure_gateway(endpoint: str, operator: AccessKey, prefix: str, stored: AccessKey | None):
    """Create or update the SFTP gateway user and return its access key.

    A stored key that the emulator still accepts is kept; otherwise the
    user's old keys are deleted and a new one is created.
    """
    user = gateway_user(prefix)
    iam = client("iam", endpoint, operator.access_key_id, operator.secret_access_key)
    try:
        arn = iam.get_user(UserName=user)["User"]["Arn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
        arn = iam.create_user(UserName=user)["User"]["Arn"]
        log.info("SFTP gateway user %s created", arn)
    iam.put_user_policy(
        UserName=user,
        PolicyName=GATEWAY_POLICY_NAME,
        PolicyDocument=json.dumps(gateway_policy(prefix)),
    )

    if stored is not None and stored.arn == arn and caller_arn(endpoint, stored) == arn:
        return stored
    for old in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user, AccessKeyId=old["AccessKeyId"])
    created = iam.create_access_key(UserName=user)["AccessKey"]
    log.info("SFTP gateway %s has a new access key %s", arn, created["AccessKeyId"])
    return AccessKey(created["AccessKeyId"], created["SecretAccessKey"], arn)


def verify_ses_sender(endpoint: str, operator: AccessKey, sender: str) -> None:
    """Verify ``sender`` as an SES email identity so the exchange can send from it."""
    ses = client("ses", endpoint, operator.access_key_id, operator.secret_access_key)
    ses.verify_email_identity(EmailAddress=sender)
    log.info("SES sender identity %s verified", sender)


def account_id(arn: str) -> str:
    """Return the account id field of an IAM ARN."""
    return arn.split(":")[4]


def save_key(path, key: AccessKey) -> None:
    write_private(path, key.to_json())
