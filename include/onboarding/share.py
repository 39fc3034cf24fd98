"""Share each verified credential as a one-time secret link.

One link per access method, created through the secret service's Python
client. Links and receipt tokens are capabilities, so they are kept only in
the client's share secret in Secrets Manager (encrypted with the exchange
key). The links are removed from it once the email is sent; the receipt
ids are public and go to the registry.
"""

from __future__ import annotations

import logging
from typing import Any

from include.naming import ClientNames
from include.onboarding import aws, secrets_store
from include.onboarding.provisioning import resource_tags

log = logging.getLogger(__name__)


def share_secret_name(names: ClientNames) -> str:
    """Return the name of the secret that keeps the client's receipt tokens."""
    return f"{names.secret_prefix}/one-time-links"


def sdk_plaintext(display_name: str, credentials: dict[str, Any], endpoint: str | None) -> str:
    """Return the text behind the SDK link: the access key and where to use it."""
    lines = [
        f"AWS SDK credentials for {display_name} (client data exchange)",
        "",
        f"AWS_ACCESS_KEY_ID={credentials['AccessKeyId']}",
        f"AWS_SECRET_ACCESS_KEY={credentials['SecretAccessKey']}",
        f"AWS_DEFAULT_REGION={aws.region_name()}",
    ]
    if endpoint:
        lines.append(f"AWS_ENDPOINT_URL={endpoint}")
    lines += [
        "",
        f"Bucket: {credentials['Bucket']} (upload under incoming/)",
        f"KMS key for uploads: {credentials['KmsKeyArn']}",
    ]
    return "\n".join(lines) + "\n"


def sftp_plaintext(
    display_name: str, username: str, login: dict[str, Any], host: str, port: int
) -> str:
    """Return the text behind the SFTP link: host, port, user name and password."""
    return (
        "\n".join(
            [
                f"SFTP login for {display_name} (client data exchange)",
                "",
                f"Host: {host}",
                f"Port: {port}",
                f"User name: {username}",
                f"Password: {login['Password']}",
                "",
                "Upload files into the incoming/ folder.",
            ]
        )
        + "\n"
    )


def burn_pending(client, stored: dict[str, Any], client_id: str) -> None:
    """Burn the unread links of an earlier credential generation."""
    from include.secret_service.errors import SecretServiceError

    for method, entry in stored.get("Methods", {}).items():
        token = entry.get("ReceiptToken")
        if not token:
            continue
        try:
            client.burn(token)
            log.info(
                "link of earlier generation burned for client %s (%s, receipt %s)",
                client_id,
                method,
                entry.get("ReceiptId"),
            )
        except SecretServiceError as exc:
            log.info(
                "link of earlier generation not burned for client %s (%s, receipt %s): %s",
                client_id,
                method,
                entry.get("ReceiptId"),
                type(exc).__name__,
            )


def create_links(
    names: ClientNames,
    generation: int,
    lifetime_seconds: int,
    plaintexts: dict[str, Any],
    exchange_key_arn: str,
) -> tuple[str, dict[str, dict[str, str]]]:
    """Create the missing one-time secrets of ``generation`` and store their capabilities.

    :param plaintexts: access method to a callable that returns its plaintext;
        called only for methods that have no link yet.
    :return: the share secret's ARN and, per method, the receipt id and expiry.
    """
    from include.secret_service.client import SecretServiceClient

    name = share_secret_name(names)
    stored = secrets_store.read_json(name) or {}
    tags = resource_tags(names.client_id, names.prefix)
    description = f"One-time link capabilities of client {names.client_id}"
    arn = None
    with SecretServiceClient.from_env() as client:
        if stored.get("Generation") != generation:
            burn_pending(client, stored, names.client_id)
            stored = {"Generation": generation, "Methods": {}}
        for method, build in plaintexts.items():
            if method in stored["Methods"]:
                log.info(
                    "link for client %s (%s) already created, receipt %s",
                    names.client_id,
                    method,
                    stored["Methods"][method]["ReceiptId"],
                )
                continue
            plaintext = build()
            secrets_store.mask(plaintext)
            created = client.create(plaintext, ttl_seconds=lifetime_seconds)
            secrets_store.mask(created.link)
            secrets_store.mask(created.receipt_token)
            stored["Methods"][method] = {
                "Link": created.link,
                "ReceiptToken": created.receipt_token,
                "ReceiptId": created.receipt_id,
                "ExpiresAt": created.expires_at.isoformat(),
            }
            # Stored after each link, so a retry never creates a second one.
            arn = secrets_store.write_json(name, stored, exchange_key_arn, tags, description)
            log.info(
                "link for client %s (%s) created, receipt %s, expires %s",
                names.client_id,
                method,
                created.receipt_id,
                created.expires_at.isoformat(),
            )
    if arn is None:
        arn = secrets_store.describe(name)["ARN"]
    public = {
        method: {"receipt_id": entry["ReceiptId"], "expires_at": entry["ExpiresAt"]}
        for method, entry in stored["Methods"].items()
    }
    return arn, public


def drop_links(names: ClientNames, generation: int, exchange_key_arn: str) -> None:
    """Remove the links from the share secret after the email went out; keep the tokens."""
    name = share_secret_name(names)
    stored = secrets_store.read_json(name) or {}
    if stored.get("Generation") != generation:
        return
    for entry in stored.get("Methods", {}).values():
        entry.pop("Link", None)
    secrets_store.write_json(
        name,
        stored,
        exchange_key_arn,
        resource_tags(names.client_id, names.prefix),
        f"One-time link capabilities of client {names.client_id}",
    )
    log.info("links removed from secret %s of client %s", name, names.client_id)
