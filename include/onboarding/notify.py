"""The email to the client's contacts (sent with the SesHook) and the alert to ops."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from html import escape
from typing import Any

from include.onboarding import aws

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessDetails:
    """The non-secret access details that the email lists."""

    bucket: str
    region: str
    s3_endpoint: str
    kms_key_arn: str
    sftp_host: str | None
    sftp_port: int | None
    sftp_user: str


def s3_endpoint(region: str) -> str:
    """Return the S3 endpoint clients use: the connection's one, or AWS's regional one."""
    return aws.endpoint_url() or f"https://s3.{region}.amazonaws.com"


def sender() -> str:
    """Return the verified SES sender address from ``SES_SENDER``."""
    address = os.environ.get("SES_SENDER")
    if not address:
        raise RuntimeError("SES_SENDER is not set: set it to a verified SES sender address")
    return address


def _sdk_section(details: AccessDetails, link: str, expires_at: str) -> str:
    return f"""
<h2>AWS SDK and CLI access</h2>
<p>One-time link to your access key (opens once, expires {escape(expires_at)} UTC):<br>
<a href="{escape(link)}">{escape(link)}</a></p>
<ul>
<li>S3 endpoint: {escape(details.s3_endpoint)} (region {escape(details.region)})</li>
<li>Bucket: <code>{escape(details.bucket)}</code>; upload into <code>incoming/</code></li>
<li>Uploads must use SSE-KMS with your key:
<code>aws s3 cp FILE s3://{escape(details.bucket)}/incoming/ --sse aws:kms
--sse-kms-key-id {escape(details.kms_key_arn)}</code></li>
</ul>"""


def _sftp_section(details: AccessDetails, link: str, expires_at: str) -> str:
    return f"""
<h2>SFTP access</h2>
<p>One-time link to your SFTP password (opens once, expires {escape(expires_at)} UTC):<br>
<a href="{escape(link)}">{escape(link)}</a></p>
<ul>
<li>Host: <code>{escape(details.sftp_host or "")}</code>, port {details.sftp_port}</li>
<li>User name: <code>{escape(details.sftp_user)}</code></li>
<li>Upload files into the <code>incoming/</code> folder.</li>
</ul>"""


def build_email(
    display_name: str,
    details: AccessDetails,
    links: dict[str, dict[str, str]],
) -> tuple[str, str]:
    """Build the subject and HTML body of the credentials email.

    :param links: access method to ``{"link": ..., "expires_at": ...}``.
    """
    sections = []
    if "sdk" in links:
        sections.append(_sdk_section(details, links["sdk"]["link"], links["sdk"]["expires_at"]))
    if "sftp" in links:
        sections.append(_sftp_section(details, links["sftp"]["link"], links["sftp"]["expires_at"]))
    body = f"""<html><body>
<p>Hello {escape(display_name)} team,</p>
<p>Your data exchange bucket is ready and your credentials were tested before this
email was sent. Each link below shows its credential exactly once; after it is opened
or after it expires it cannot be used again. If a link has expired or was opened by
someone else, reply to this email and we will issue new credentials.</p>
{"".join(sections)}
<p>Keep the credentials in your own secret store; do not forward this email.</p>
</body></html>"""
    return f"Your data exchange credentials for {display_name}", body


def send_email(recipients: list[str], subject: str, html: str, client_id: str) -> str:
    """Send one email to ``recipients`` through SES and return the SES message id."""
    response = aws.ses_hook().send_email(
        mail_from=sender(),
        to=recipients,
        subject=subject,
        html_content=html,
    )
    message_id = response["MessageId"]
    log.info(
        "email sent to %d contact(s) of client %s, SES message %s",
        len(recipients),
        client_id,
        message_id,
    )
    return message_id


def alert_ops(client_id: str, task_id: str, run_id: str, error: str) -> str | None:
    """Email ops (``OPS_ALERT_EMAIL``) that an onboarding task failed; return the message id."""
    recipient = os.environ.get("OPS_ALERT_EMAIL")
    if not recipient:
        log.warning(
            "OPS_ALERT_EMAIL is not set: no ops email for failed task %s of client %s",
            task_id,
            client_id,
        )
        return None
    body = (
        f"<p>Onboarding of client <code>{escape(client_id)}</code> failed in task "
        f"<code>{escape(task_id)}</code> (run <code>{escape(run_id)}</code>).</p>"
        f"<p>Error: {escape(error)}</p>"
        "<p>Resources are kept for inspection and nothing was sent to the client. "
        "See the verification report in the client registry.</p>"
    )
    response: dict[str, Any] = aws.ses_hook().send_email(
        mail_from=sender(),
        to=[recipient],
        subject=f"Onboarding failed: {client_id} ({task_id})",
        html_content=body,
    )
    log.info(
        "ops alerted about failed task %s of client %s, SES message %s",
        task_id,
        client_id,
        response["MessageId"],
    )
    return response["MessageId"]
