"""S3 calls of the ingestion: list incoming versions, read one, copy it on, remove it.

A thin layer over a boto3 S3 client (in Airflow, ``S3Hook.get_conn()``);
each function names the S3 API it calls. Objects are always addressed by
version id, so a client overwriting a key while a run reads it changes
nothing for that run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from include.ingestion.config import INCOMING_PREFIX

log = logging.getLogger(__name__)

# NOTE: CopyObject copies at most 5 GiB per request. Larger objects fail
# here and stay in incoming/, because multipart copy is not implemented.
MAX_SINGLE_COPY_BYTES = 5 * 1024**3


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object under ``incoming/``, as ListObjectVersions returns it."""

    bucket: str
    key: str
    version_id: str
    etag: str
    size: int
    last_modified: str

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict (what travels through XCom)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectVersion:
        """Rebuild a version from :meth:`to_dict` output."""
        return cls(**data)


def list_incoming_versions(
    s3: Any, bucket: str, prefix: str = INCOMING_PREFIX
) -> list[ObjectVersion]:
    """List every object version under ``prefix``, oldest first (ListObjectVersions).

    Noncurrent versions are included: a version hidden by a later upload or
    by our own delete marker is still data that must be processed once.
    Delete markers and zero-byte folder placeholders (keys ending in '/')
    are left out.
    """
    versions = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []):
            if item["Key"].endswith("/"):
                continue
            versions.append(
                ObjectVersion(
                    bucket=bucket,
                    key=item["Key"],
                    version_id=item.get("VersionId") or "null",
                    etag=item.get("ETag", ""),
                    size=int(item.get("Size", 0)),
                    last_modified=item["LastModified"].isoformat(),
                )
            )
    # S3 lists the versions of a key newest first. Reversing before the
    # stable sort keeps older versions first when timestamps tie (S3 stores
    # them to the millisecond, uploads can share one).
    versions.reverse()
    versions.sort(key=lambda version: (version.last_modified, version.key))
    return versions


def open_version(s3: Any, version: ObjectVersion) -> Any:
    """Return the streaming body of one object version (GetObject with VersionId)."""
    response = s3.get_object(Bucket=version.bucket, Key=version.key, VersionId=version.version_id)
    return response["Body"]


def bucket_kms_key(s3: Any, bucket: str) -> str | None:
    """Return the KMS key of the bucket's default encryption (GetBucketEncryption), or None."""
    try:
        response = s3.get_bucket_encryption(Bucket=bucket)
    except ClientError as exc:
        if (
            exc.response.get("Error", {}).get("Code")
            == "ServerSideEncryptionConfigurationNotFoundError"
        ):
            return None
        raise
    for rule in response["ServerSideEncryptionConfiguration"].get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
            return default["KMSMasterKeyID"]
    return None


def target_key(key: str, prefix: str) -> str:
    """Map ``incoming/<path>`` to ``<prefix><path>`` (for example ``processed/<path>``)."""
    relative = key[len(INCOMING_PREFIX) :] if key.startswith(INCOMING_PREFIX) else key
    return prefix + relative


def _encryption_args(kms_key_id: str | None) -> dict[str, Any]:
    # The client bucket policy rejects writes without SSE-KMS and the
    # client's own key id, so every write names both.
    args: dict[str, Any] = {"ServerSideEncryption": "aws:kms", "BucketKeyEnabled": True}
    if kms_key_id:
        args["SSEKMSKeyId"] = kms_key_id
    return args


def copy_version(
    s3: Any, version: ObjectVersion, destination_key: str, kms_key_id: str | None
) -> str | None:
    """Copy one version server-side to ``destination_key`` (CopyObject); return the new version id.

    The copy is checked by size (HeadObject), because ETags of SSE-KMS
    objects are not content hashes and cannot be compared.
    """
    if version.size > MAX_SINGLE_COPY_BYTES:
        raise ValueError(
            f"s3://{version.bucket}/{version.key} is {version.size} bytes, above the "
            f"{MAX_SINGLE_COPY_BYTES}-byte CopyObject limit; move it by hand"
        )
    response = s3.copy_object(
        Bucket=version.bucket,
        Key=destination_key,
        CopySource={"Bucket": version.bucket, "Key": version.key, "VersionId": version.version_id},
        MetadataDirective="COPY",
        **_encryption_args(kms_key_id),
    )
    new_version = response.get("VersionId")
    head_args = {"Bucket": version.bucket, "Key": destination_key}
    if new_version:
        head_args["VersionId"] = new_version
    copied_size = s3.head_object(**head_args)["ContentLength"]
    if copied_size != version.size:
        raise RuntimeError(
            f"copy of s3://{version.bucket}/{version.key} (version {version.version_id}) to "
            f"{destination_key} has {copied_size} bytes, expected {version.size}"
        )
    log.info(
        "copied s3://%s/%s version %s to %s version %s",
        version.bucket,
        version.key,
        version.version_id,
        destination_key,
        new_version,
    )
    return new_version


def put_json(
    s3: Any, bucket: str, key: str, body: dict[str, Any], kms_key_id: str | None
) -> str | None:
    """Write ``body`` as a JSON object (PutObject); return the new version id."""
    response = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(body, indent=2, default=str).encode("utf-8"),
        ContentType="application/json",
        **_encryption_args(kms_key_id),
    )
    log.info("wrote s3://%s/%s version %s", bucket, key, response.get("VersionId"))
    return response.get("VersionId")


def remove_from_incoming(s3: Any, version: ObjectVersion) -> bool:
    """Hide the key from ``incoming/`` with a delete marker if ``version`` is still the current one.

    DeleteObject without a version id keeps every version (bucket
    versioning), so the original stays retrievable. When the client has
    uploaded a newer version meanwhile, nothing is deleted: that version is
    processed on its own and removed then. Return whether a marker was added.
    """
    try:
        current = s3.head_object(Bucket=version.bucket, Key=version.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    if current.get("VersionId", "null") != version.version_id:
        log.info(
            "kept s3://%s/%s in incoming/: version %s is newer than processed version %s",
            version.bucket,
            version.key,
            current.get("VersionId"),
            version.version_id,
        )
        return False
    # A client upload landing between HeadObject and DeleteObject becomes
    # noncurrent under the marker; it is still listed and processed later.
    s3.delete_object(Bucket=version.bucket, Key=version.key)
    log.info(
        "removed s3://%s/%s version %s from incoming/",
        version.bucket,
        version.key,
        version.version_id,
    )
    return True


def error_report_key(destination_key: str) -> str:
    """Return the key of the error report written beside ``destination_key``."""
    return destination_key + ".error.json"
