"""SDK checks made with the client's own access key, never the operator's.

A canary object goes through put, list, get and delete under ``incoming/``.
Then the same key must be denied on another client's bucket and on the
exchange's own resources.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from include.naming import ClientNames, ExchangeNames
from include.onboarding import aws
from include.onboarding.report import VerificationReport

log = logging.getLogger(__name__)

CANARY_PREFIX = "incoming/.onboarding-canary-"
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403", "Forbidden"})


def canary_key(tag: str) -> str:
    """Return a canary object key under ``incoming/``."""
    return f"{CANARY_PREFIX}{tag}-{uuid.uuid4().hex[:12]}.txt"


def _attempt(call) -> tuple[Any, str | None]:
    """Run ``call`` and return (result, None) or (None, error code)."""
    try:
        return call(), None
    except ClientError as exc:
        return None, aws.error_code(exc)
    except BotoCoreError as exc:
        return None, type(exc).__name__


def check_object_round_trip(
    report: VerificationReport, s3: Any, bucket: str, kms_key_arn: str
) -> str:
    """Put, list, get, inspect and delete a canary object; return its key."""
    key = canary_key("sdk")
    body = f"onboarding canary for {report.client_id}\n".encode()

    _, error = _attempt(
        lambda: s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_arn,
        )
    )
    report.add("sdk: put canary under incoming/", "stored", error or "stored", error is None)

    listing, error = _attempt(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=key))
    listed = [item["Key"] for item in (listing or {}).get("Contents", [])]
    report.add("sdk: list canary", key, error or listed, key in listed)

    obtained, error = _attempt(lambda: s3.get_object(Bucket=bucket, Key=key))
    content = obtained["Body"].read() if obtained else None
    report.add(
        "sdk: get canary content",
        "same bytes as uploaded",
        error or ("same bytes" if content == body else "different bytes"),
        content == body,
    )

    encryption = {
        "ServerSideEncryption": (obtained or {}).get("ServerSideEncryption"),
        "SSEKMSKeyId": (obtained or {}).get("SSEKMSKeyId"),
    }
    report.add_equal(
        "sdk: canary stored with SSE-KMS and the client key",
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn},
        encryption,
    )

    _, error = _attempt(lambda: s3.delete_object(Bucket=bucket, Key=key))
    report.add("sdk: delete canary", "deleted", error or "deleted", error is None)
    listing, error = _attempt(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=key))
    still_listed = bool((listing or {}).get("Contents"))
    report.add(
        "sdk: canary gone after delete",
        "not listed",
        error or ("still listed" if still_listed else "not listed"),
        error is None and not still_listed,
    )
    return key


def _expect_denied(report: VerificationReport, check: str, call) -> None:
    _, error = _attempt(call)
    observed = "allowed" if error is None else error
    report.add(check, "AccessDenied", observed, error in DENIED_CODES)


def check_denials(
    report: VerificationReport,
    session: Any,
    names: ClientNames,
    exchange: ExchangeNames,
    other_bucket: str,
    exchange_key_arn: str,
) -> None:
    """Prove the client's credentials are refused outside the client's own bucket."""
    s3 = aws.session_client(session, "s3")
    probe = canary_key("denied")
    _expect_denied(
        report,
        f"sdk: denied listing another client's bucket {other_bucket}",
        lambda: s3.list_objects_v2(Bucket=other_bucket),
    )
    _expect_denied(
        report,
        f"sdk: denied writing to another client's bucket {other_bucket}",
        lambda: s3.put_object(Bucket=other_bucket, Key=probe, Body=b"x"),
    )
    _expect_denied(
        report,
        f"sdk: denied reading the log bucket {exchange.log_bucket}",
        lambda: s3.list_objects_v2(Bucket=exchange.log_bucket),
    )

    secrets = aws.session_client(session, "secretsmanager")
    _expect_denied(
        report,
        f"sdk: denied reading secret {names.sdk_secret}",
        lambda: secrets.get_secret_value(SecretId=names.sdk_secret),
    )
    kms = aws.session_client(session, "kms")
    _expect_denied(
        report,
        f"sdk: denied using the exchange key {exchange.exchange_kms_alias}",
        lambda: kms.encrypt(KeyId=exchange_key_arn, Plaintext=b"probe"),
    )
    iam = aws.session_client(session, "iam")
    _expect_denied(
        report,
        f"sdk: denied creating access keys for {names.sdk_user}",
        lambda: iam.create_access_key(UserName=names.sdk_user),
    )


def verify_sdk(
    report: VerificationReport,
    names: ClientNames,
    exchange: ExchangeNames,
    credentials: dict[str, Any],
    kms_key_arn: str,
    other_bucket: str,
    exchange_key_arn: str,
) -> None:
    """Run every SDK check with the client's access key from its secret."""
    session = aws.client_session(credentials["AccessKeyId"], credentials["SecretAccessKey"])
    sts = aws.session_client(session, "sts")
    identity, error = _attempt(sts.get_caller_identity)
    expected_arn = f"arn:aws:iam::{aws.account_id()}:user/{names.sdk_user}"
    report.add_equal(
        "sdk: credentials act as the client's IAM user",
        expected_arn,
        error or (identity or {}).get("Arn"),
    )

    s3 = aws.session_client(session, "s3")
    key = check_object_round_trip(report, s3, names.bucket, kms_key_arn)
    purge_versions(names.bucket, key)
    check_denials(report, session, names, exchange, other_bucket, exchange_key_arn)
    log.info(
        "SDK checks done for client %s on bucket %s: %d failed so far",
        names.client_id,
        names.bucket,
        len(report.failed),
    )


def purge_versions(bucket: str, key: str) -> None:
    """Delete every version and delete marker of a canary key, as the operator."""
    s3 = aws.s3_client()
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        if entry["Key"] == key:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=entry["VersionId"])
