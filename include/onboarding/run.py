"""The steps of one onboarding run, one function per DAG task.

Each step takes and returns small JSON values (ids, names, ARNs, counts),
reads secret values itself when it needs them, and appends one audit event.
The DAG file only wires these functions together.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from include import registry
from include.mongo import get_client, get_database
from include.naming import client_names, exchange_names
from include.onboarding import (
    aws,
    credentials,
    provisioning,
    secrets_store,
    share,
    verification,
)
from include.onboarding.notify import AccessDetails, build_email, s3_endpoint, send_email
from include.onboarding.params import OnboardingRequest, request_from_dict, validate_request

log = logging.getLogger(__name__)


class ClientAlreadyActiveError(RuntimeError):
    """A run on an active client without the reissue flag."""


class ReissueNotPossibleError(RuntimeError):
    """A reissue run on a client that was never onboarded."""


class VerificationFailedError(RuntimeError):
    """At least one verification check failed; nothing may be shared."""


@contextmanager
def registry_db():
    """Yield the registry database and close the client afterwards."""
    client = get_client()
    try:
        db = get_database(client)
        registry.ensure_indexes(db)
        yield db
    finally:
        client.close()


def gateway_principal_arn() -> str | None:
    """Return the SFTP gateway's IAM principal, or None for Transfer Family."""
    return os.environ.get("SFTP_GATEWAY_PRINCIPAL_ARN") or None


def _audit(
    db,
    request: OnboardingRequest,
    action: str,
    outcome: str,
    run_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    registry.append_audit_event(db, request.client_id, action, outcome, details, run_id)


def step_validate(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Validate the params, check the client's state and pick the credential generation."""
    request = validate_request(params)
    with registry_db() as db:
        record = registry.get_client_record(db, request.client_id) or {}
        status = record.get("status")
        if status == registry.STATUS_ACTIVE and not request.reissue:
            raise ClientAlreadyActiveError(
                f"client {request.client_id!r} is already active: trigger again with "
                "reissue set to issue new credentials"
            )
        if request.reissue and not record.get("credential_generation"):
            raise ReissueNotPossibleError(
                f"client {request.client_id!r} has no issued credentials to reissue: "
                "trigger without reissue to onboard it"
            )
        generation = int(record.get("credential_generation") or 0) + 1
        _audit(
            db,
            request,
            "validate",
            "succeeded",
            run_id,
            {"generation": generation, "reissue": request.reissue},
        )
    log.info(
        "request for client %s valid: generation %d, methods %s",
        request.client_id,
        generation,
        ",".join(request.access_methods),
    )
    return {"request": request.to_dict(), "generation": generation, "run_id": run_id}


def step_provision(ctx: dict[str, Any]) -> dict[str, Any]:
    """Provision the exchange resources, the client's KMS key and bucket."""
    request = request_from_dict(ctx["request"])
    names = client_names(request.client_id)
    with registry_db() as db:
        record = registry.get_client_record(db, request.client_id) or {}
        fields: dict[str, Any] = {"display_name": request.display_name, "bucket": names.bucket}
        if record.get("status") != registry.STATUS_ACTIVE:
            fields["status"] = registry.STATUS_PROVISIONING
        registry.upsert_client(db, request.client_id, fields)

        resources = provisioning.provision_client(
            names, exchange_names(), request.noncurrent_version_retention_days
        )
        registry.upsert_client(
            db,
            request.client_id,
            {
                "bucket": names.bucket,
                "kms_key_arn": resources["kms_key_arn"],
                "kms_alias": names.kms_alias,
                "policy_mode": resources["policy_mode"],
            },
        )
        _audit(db, request, "provision", "succeeded", ctx["run_id"], resources)
    return resources


def step_credential(ctx: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    """Issue the credentials of every requested access method; return their ARNs."""
    request = request_from_dict(ctx["request"])
    names = client_names(request.client_id)
    generation = ctx["generation"]
    key_arn = resources["kms_key_arn"]
    exchange_key = resources["exchange_kms_key_arn"]
    issued: dict[str, Any] = {"generation": generation}

    if "sdk" in request.access_methods:
        issued["sdk_user_arn"] = credentials.ensure_sdk_user(names, key_arn)
        issued["sdk_secret_arn"] = credentials.ensure_sdk_access_key(
            names, generation, key_arn, exchange_key
        )
    if "sftp" in request.access_methods:
        role_arn = credentials.ensure_sftp_role(names, key_arn, gateway_principal_arn())
        issued["sftp_role_arn"] = role_arn
        issued["sftp_login_secret_arn"] = credentials.ensure_sftp_login(
            names, generation, role_arn, key_arn, exchange_key
        )
    with registry_db() as db:
        _audit(db, request, "credential", "succeeded", ctx["run_id"], issued)
    return issued


def step_verify(
    ctx: dict[str, Any], resources: dict[str, Any], issued: dict[str, Any]
) -> dict[str, Any]:
    """Verify with the client's credentials and record the report; raise if any check failed."""
    request = request_from_dict(ctx["request"])
    names = client_names(request.client_id)
    with registry_db() as db:
        others = [
            c["bucket"]
            for c in registry.list_active_clients(db)
            if c["_id"] != request.client_id and c.get("bucket")
        ]
        report = verification.verify_client(
            request,
            names,
            exchange_names(),
            resources,
            issued,
            ctx["generation"],
            other_bucket=others[0] if others else provisioning.isolation_probe_bucket(),
            gateway_principal_arn=gateway_principal_arn(),
        )
        stored = report.to_dict()
        fields: dict[str, Any] = {"verification": stored}
        if not report.all_passed:
            fields["status"] = registry.STATUS_VERIFICATION_FAILED
        registry.upsert_client(db, request.client_id, fields)
        outcome = "succeeded" if report.all_passed else "failed"
        _audit(
            db,
            request,
            "verify",
            outcome,
            ctx["run_id"],
            {
                "generation": ctx["generation"],
                "counts": stored["counts"],
                "failed_checks": [row.check for row in report.failed],
            },
        )

    if not report.all_passed:
        raise VerificationFailedError(
            f"verification of client {request.client_id!r} failed "
            f"{len(report.failed)} check(s): {', '.join(r.check for r in report.failed)}; "
            "resources are kept for inspection and nothing was shared"
        )
    return {"all_passed": True, "counts": stored["counts"]}


def require_passed_verification(db, client_id: str, generation: int) -> None:
    """Raise unless the registry contains a passed report for ``generation``."""
    record = registry.get_client_record(db, client_id) or {}
    report = record.get("verification") or {}
    if report.get("generation") != generation or report.get("all_passed") is not True:
        raise VerificationFailedError(
            f"client {client_id!r} has no passed verification for credential generation "
            f"{generation}: sharing is refused"
        )


def step_share(
    ctx: dict[str, Any], resources: dict[str, Any], issued: dict[str, Any]
) -> dict[str, Any]:
    """Create one one-time link per access method, only after a passed verification."""
    request = request_from_dict(ctx["request"])
    names = client_names(request.client_id)
    with registry_db() as db:
        require_passed_verification(db, request.client_id, ctx["generation"])

    endpoint = verification.sftp_endpoint_or_none()
    builders: dict[str, Any] = {}
    if "sdk" in request.access_methods:
        builders["sdk"] = lambda: share.sdk_plaintext(
            request.display_name,
            secrets_store.read_json(issued["sdk_secret_arn"]),
            aws.endpoint_url(),
        )
    if "sftp" in request.access_methods:
        builders["sftp"] = lambda: share.sftp_plaintext(
            request.display_name,
            names.sftp_user,
            secrets_store.read_json(issued["sftp_login_secret_arn"]),
            endpoint.host,
            endpoint.port,
        )
    arn, public = share.create_links(
        names,
        ctx["generation"],
        request.link_lifetime_seconds,
        builders,
        resources["exchange_kms_key_arn"],
    )
    with registry_db() as db:
        _audit(
            db,
            request,
            "share",
            "succeeded",
            ctx["run_id"],
            {"generation": ctx["generation"], "receipts": public},
        )
    return {"share_secret_arn": arn, "links": public}


def step_notify(
    ctx: dict[str, Any], resources: dict[str, Any], shared: dict[str, Any]
) -> dict[str, Any]:
    """Email the links to the contacts once per credential generation."""
    request = request_from_dict(ctx["request"])
    names = client_names(request.client_id)
    generation = ctx["generation"]
    with registry_db() as db:
        record = registry.get_client_record(db, request.client_id) or {}
        if record.get("notified_generation") == generation:
            log.info(
                "client %s already notified for generation %d (SES message %s)",
                request.client_id,
                generation,
                record.get("notification_message_id"),
            )
            return {"message_id": record.get("notification_message_id"), "sent": False}
        require_passed_verification(db, request.client_id, generation)

        stored = secrets_store.read_json(shared["share_secret_arn"]) or {}
        links = {
            method: {"link": entry["Link"], "expires_at": entry["ExpiresAt"]}
            for method, entry in stored.get("Methods", {}).items()
        }
        endpoint = verification.sftp_endpoint_or_none()
        details = AccessDetails(
            bucket=names.bucket,
            region=aws.region_name(),
            s3_endpoint=s3_endpoint(aws.region_name()),
            kms_key_arn=resources["kms_key_arn"],
            sftp_host=endpoint.host if endpoint else None,
            sftp_port=endpoint.port if endpoint else None,
            sftp_user=names.sftp_user,
        )
        subject, html = build_email(request.display_name, details, links)
        message_id = send_email(list(request.contact_emails), subject, html, request.client_id)
        registry.upsert_client(
            db,
            request.client_id,
            {
                "notified_generation": generation,
                "notification_message_id": message_id,
            },
        )
        _audit(
            db,
            request,
            "notify",
            "succeeded",
            ctx["run_id"],
            {
                "generation": generation,
                "message_id": message_id,
                "recipients": len(request.contact_emails),
            },
        )
    share.drop_links(names, generation, resources["exchange_kms_key_arn"])
    return {"message_id": message_id, "sent": True}


def step_record(
    ctx: dict[str, Any],
    resources: dict[str, Any],
    issued: dict[str, Any],
    shared: dict[str, Any],
    notified: dict[str, Any],
) -> dict[str, Any]:
    """Disable replaced credentials and mark the client active in the registry."""
    request = request_from_dict(ctx["request"])
    names = client_names(request.client_id)
    retired = None
    if "sdk" in request.access_methods:
        retired = credentials.retire_previous_access_key(names)
    now = datetime.now(UTC)
    fields = {
        "status": registry.STATUS_ACTIVE,
        "display_name": request.display_name,
        "contact_emails": list(request.contact_emails),
        "access_methods": list(request.access_methods),
        "bucket": names.bucket,
        "kms_key_arn": resources["kms_key_arn"],
        "log_bucket": resources["log_bucket"],
        "resources": {k: v for k, v in issued.items() if k.endswith("_arn")},
        "credential_generation": ctx["generation"],
        "receipt_ids": {m: e["receipt_id"] for m, e in shared["links"].items()},
        "links_expire_at": {m: e["expires_at"] for m, e in shared["links"].items()},
        "noncurrent_version_retention_days": request.noncurrent_version_retention_days,
        "last_run_id": ctx["run_id"],
        "credentials_issued_at": now,
    }
    with registry_db() as db:
        record = registry.get_client_record(db, request.client_id) or {}
        if not record.get("onboarded_at"):
            fields["onboarded_at"] = now
        registry.upsert_client(db, request.client_id, fields)
        _audit(
            db,
            request,
            "record",
            "succeeded",
            ctx["run_id"],
            {
                "generation": ctx["generation"],
                "retired_access_key": retired,
                "message_id": notified.get("message_id"),
            },
        )
    log.info(
        "client %s recorded active with credential generation %d",
        request.client_id,
        ctx["generation"],
    )
    return {
        "client_id": request.client_id,
        "status": registry.STATUS_ACTIVE,
        "generation": ctx["generation"],
    }
