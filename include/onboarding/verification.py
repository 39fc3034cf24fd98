"""Run every verification check of one credential generation and build the report.

SDK and SFTP checks use the client's own credentials, fetched here from
Secrets Manager and masked; the baseline read-back uses the operator's.
"""

from __future__ import annotations

import logging
from typing import Any

from include.naming import ClientNames, ExchangeNames
from include.onboarding import secrets_store, verify_baseline, verify_sdk, verify_sftp
from include.onboarding.params import OnboardingRequest
from include.onboarding.report import VerificationReport
from include.onboarding.verify_sftp import SftpEndpoint

log = logging.getLogger(__name__)


def sftp_endpoint_or_none() -> SftpEndpoint | None:
    """Return the SFTP endpoint from the environment, or None when SFTP_HOST is unset."""
    try:
        return SftpEndpoint.from_env()
    except RuntimeError:
        return None


def _check_generation(
    report: VerificationReport, check: str, stored: dict, generation: int
) -> None:
    report.add_equal(check, generation, stored.get("Generation"))


def verify_client(
    request: OnboardingRequest,
    names: ClientNames,
    exchange: ExchangeNames,
    resources: dict[str, Any],
    issued: dict[str, Any],
    generation: int,
    other_bucket: str,
    gateway_principal_arn: str | None,
) -> VerificationReport:
    """Run the SDK, SFTP and baseline checks and return the report."""
    report = VerificationReport(client_id=request.client_id, generation=generation)
    key_arn = resources["kms_key_arn"]

    if "sdk" in request.access_methods:
        sdk = secrets_store.read_json(issued["sdk_secret_arn"]) or {}
        _check_generation(report, "secret: SDK access key generation", sdk, generation)
        verify_sdk.verify_sdk(
            report,
            names,
            exchange,
            sdk,
            key_arn,
            other_bucket,
            resources["exchange_kms_key_arn"],
        )

    if "sftp" in request.access_methods:
        login = secrets_store.read_json(issued["sftp_login_secret_arn"]) or {}
        _check_generation(report, "secret: SFTP login generation", login, generation)
        endpoint = sftp_endpoint_or_none()
        if endpoint is None:
            report.add("sftp: server configured", "SFTP_HOST set", "SFTP_HOST not set", False)
        else:
            verify_sftp.verify_sftp(report, endpoint, login, names.sftp_user, names.bucket, key_arn)

    verify_baseline.verify_baseline(
        report,
        names,
        key_arn,
        request.noncurrent_version_retention_days,
        resources["log_bucket"],
        resources["policy_mode"],
        request.access_methods,
        gateway_principal_arn,
    )
    log.info(
        "verification of client %s generation %d: %d checks, %d failed",
        request.client_id,
        generation,
        len(report.rows),
        len(report.failed),
    )
    return report
