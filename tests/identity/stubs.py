"""A Secrets Manager stand-in for unit tests of the identity lookup."""

from __future__ import annotations

from botocore.exceptions import ClientError

from include.identity.lookup import build_login_secret

SERVER_ID = "s-0000000000000000a"
ROLE_ARN = "arn:aws:iam::123456789012:role/cdx-acme-health-sftp"
KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PASSWORD = "correct-horse-battery-staple-7f3a"


class StubSecretsClient:
    """Return secrets from a dict through ``get_secret_value``, as Secrets Manager does."""

    def __init__(self, secrets: dict[str, str] | None = None, error_code: str | None = None):
        self.secrets = secrets or {}
        self.error_code = error_code
        self.requested: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict:  # noqa: N803 - boto3's parameter name
        self.requested.append(SecretId)
        if self.error_code:
            raise _client_error(self.error_code)
        if SecretId not in self.secrets:
            raise _client_error("ResourceNotFoundException")
        return {"Name": SecretId, "SecretString": self.secrets[SecretId]}


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "GetSecretValue")


def secret_name(username: str) -> str:
    return f"aws/transfer/{SERVER_ID}/{username}"


def client_with_login(username: str = "acme-health", **overrides) -> StubSecretsClient:
    """Return a stub holding one valid login secret for ``username``."""
    fields = {
        "password": PASSWORD,
        "role_arn": ROLE_ARN,
        "bucket": f"cdx-{username}",
        "client_id": username,
        "kms_key_arn": KMS_KEY_ARN,
    }
    fields.update(overrides)
    return StubSecretsClient({secret_name(username): build_login_secret(**fields)})
