"""Issue a client's credentials: the SDK user's access key and the SFTP login.

Each credential carries a generation number. A run targets one generation
(the registry's current one plus one), so a retried task finds the secret of
its generation and reuses it, while a reissue run creates the next one.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from botocore.exceptions import ClientError

from include.identity.lookup import build_login_secret
from include.naming import ClientNames
from include.onboarding import aws, policies, secrets_store
from include.onboarding.provisioning import as_tag_list, resource_tags

log = logging.getLogger(__name__)

CLIENT_POLICY_NAME = "client-bucket-access"
# 32 random bytes from the secrets module, URL-safe base64: 43 characters
# with 256 bits of entropy.
PASSWORD_BYTES = 32


def generate_password() -> str:
    """Return a new SFTP password with 256 bits of entropy."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def ensure_sdk_user(names: ClientNames, kms_key_arn: str) -> str:
    """Create the client's IAM user when missing, set its inline policy, return its ARN."""
    iam = aws.iam_client()
    tags = as_tag_list(resource_tags(names.client_id, names.prefix))
    try:
        arn = iam.get_user(UserName=names.sdk_user)["User"]["Arn"]
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchEntity":
            raise
        arn = iam.create_user(UserName=names.sdk_user, Tags=tags)["User"]["Arn"]
        log.info("IAM user %s created for client %s", names.sdk_user, names.client_id)

    iam.tag_user(UserName=names.sdk_user, Tags=tags)
    iam.put_user_policy(
        UserName=names.sdk_user,
        PolicyName=CLIENT_POLICY_NAME,
        PolicyDocument=json.dumps(policies.client_access_policy(names.bucket, kms_key_arn)),
    )
    return arn


def _prune_access_keys(names: ClientNames, keep: set[str]) -> list[dict[str, Any]]:
    """Delete access keys that the SDK secret does not reference, and inactive ones.

    An unreferenced key was created by a task that failed before storing it,
    so no one has its secret. IAM allows two keys per user, so disabled
    keys from an earlier reissue go too. Returns the keys left.
    """
    iam = aws.iam_client()
    remaining = []
    for key in iam.list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]:
        key_id = key["AccessKeyId"]
        if key_id in keep and key["Status"] == "Active":
            remaining.append(key)
            continue
        iam.delete_access_key(UserName=names.sdk_user, AccessKeyId=key_id)
        log.info(
            "access key %s of user %s deleted (client %s): %s",
            key_id,
            names.sdk_user,
            names.client_id,
            "inactive" if key["Status"] != "Active" else "not stored in any secret",
        )
    return remaining


def ensure_sdk_access_key(
    names: ClientNames, generation: int, kms_key_arn: str, exchange_key_arn: str
) -> str:
    """Ensure the SDK secret contains an active access key of ``generation``; return its ARN."""
    stored = secrets_store.read_json(names.sdk_secret) or {}
    current_id = stored.get("AccessKeyId")
    # The previous key stays usable until the new one has verified.
    keep = {k for k in (current_id, stored.get("PreviousAccessKeyId")) if k}
    remaining = _prune_access_keys(names, keep)

    if stored.get("Generation", 0) >= generation and any(
        key["AccessKeyId"] == current_id for key in remaining
    ):
        log.info(
            "access key %s of user %s already issued for generation %d (client %s)",
            current_id,
            names.sdk_user,
            generation,
            names.client_id,
        )
        return secrets_store.describe(names.sdk_secret)["ARN"]

    created = aws.iam_client().create_access_key(UserName=names.sdk_user)["AccessKey"]
    secrets_store.mask(created["SecretAccessKey"])
    value = {
        "AccessKeyId": created["AccessKeyId"],
        "SecretAccessKey": created["SecretAccessKey"],
        "UserName": names.sdk_user,
        "ClientId": names.client_id,
        "Bucket": names.bucket,
        "KmsKeyArn": kms_key_arn,
        "Generation": generation,
        "PreviousAccessKeyId": current_id,
    }
    arn = secrets_store.write_json(
        names.sdk_secret,
        value,
        exchange_key_arn,
        resource_tags(names.client_id, names.prefix),
        f"AWS SDK access key of client {names.client_id}",
    )
    log.info(
        "access key %s issued to user %s for generation %d (client %s), stored in %s",
        created["AccessKeyId"],
        names.sdk_user,
        generation,
        names.client_id,
        names.sdk_secret,
    )
    return arn


def ensure_sftp_role(
    names: ClientNames, kms_key_arn: str, gateway_principal_arn: str | None
) -> str:
    """Create the client's SFTP role when missing, set its trust and access policies."""
    iam = aws.iam_client()
    trust = json.dumps(policies.sftp_trust_policy(gateway_principal_arn, aws.account_id()))
    tags = as_tag_list(resource_tags(names.client_id, names.prefix))
    try:
        arn = iam.get_role(RoleName=names.sftp_role)["Role"]["Arn"]
        iam.update_assume_role_policy(RoleName=names.sftp_role, PolicyDocument=trust)
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchEntity":
            raise
        arn = iam.create_role(
            RoleName=names.sftp_role,
            AssumeRolePolicyDocument=trust,
            Description=f"SFTP access of client {names.client_id} to its bucket",
            Tags=tags,
        )["Role"]["Arn"]
        log.info("IAM role %s created for client %s", names.sftp_role, names.client_id)

    iam.tag_role(RoleName=names.sftp_role, Tags=tags)
    iam.put_role_policy(
        RoleName=names.sftp_role,
        PolicyName=CLIENT_POLICY_NAME,
        PolicyDocument=json.dumps(policies.client_access_policy(names.bucket, kms_key_arn)),
    )
    return arn


def ensure_sftp_login(
    names: ClientNames,
    generation: int,
    role_arn: str,
    kms_key_arn: str,
    exchange_key_arn: str,
) -> str:
    """Ensure the login secret contains a password of ``generation``; return its ARN.

    NOTE: the Transfer convention has one login secret per user, so a reissued
    password replaces the old one as soon as it is stored, not after the new
    one verifies as the access key does.
    """
    name = names.sftp_login_secret
    stored = secrets_store.read_json(name) or {}
    if stored.get("Generation", 0) >= generation and stored.get("Role") == role_arn:
        log.info(
            "SFTP login %s already issued for generation %d (client %s)",
            name,
            generation,
            names.client_id,
        )
        return secrets_store.describe(name)["ARN"]

    password = generate_password()
    secrets_store.mask(password)
    value = json.loads(
        build_login_secret(
            password=password,
            role_arn=role_arn,
            bucket=names.bucket,
            client_id=names.client_id,
            kms_key_arn=kms_key_arn,
        )
    )
    # The identity lookup ignores fields it does not know, such as this one.
    value["Generation"] = generation
    arn = secrets_store.write_json(
        name,
        value,
        exchange_key_arn,
        resource_tags(names.client_id, names.prefix),
        f"SFTP login of client {names.client_id} (Transfer Family identity secret)",
    )
    log.info(
        "SFTP login %s issued for generation %d (client %s, role %s)",
        name,
        generation,
        names.client_id,
        names.sftp_role,
    )
    return arn


def retire_previous_access_key(names: ClientNames) -> str | None:
    """Disable the access key that the current one replaced; return its id or None."""
    stored = secrets_store.read_json(names.sdk_secret) or {}
    previous = stored.get("PreviousAccessKeyId")
    if not previous or previous == stored.get("AccessKeyId"):
        return None
    iam = aws.iam_client()
    try:
        iam.update_access_key(UserName=names.sdk_user, AccessKeyId=previous, Status="Inactive")
    except ClientError as exc:
        if aws.error_code(exc) != "NoSuchEntity":
            raise
        return None
    log.info(
        "previous access key %s of user %s disabled (client %s)",
        previous,
        names.sdk_user,
        names.client_id,
    )
    return previous
