"""One client's run end to end on moto (in process) and the MongoDB stand-in."""

import json

import pytest

from include.ingestion import ledger, pipeline
from include.ingestion.config import IngestionSettings
from include.ingestion.pipeline import IngestionFailedError, RunContext
from include.sample_data import fhir_export
from tests.ingestion.conftest import BUCKET, CLIENT_ID
from tests.ingestion.expected import distinct_keys
from tests.ingestion.inputs import bad_files, good_files


def _upload(s3, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"incoming/{name}", Body=data)


def _run(s3, db, run_id: str, settings: IngestionSettings | None = None):
    context = RunContext(CLIENT_ID, BUCKET, run_id, settings or IngestionSettings())
    versions = pipeline.find_new_versions(s3, db, CLIENT_ID, BUCKET, context.settings)
    return pipeline.process_versions(s3, db, context, versions)


def _keys(s3, prefix: str) -> set[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for item in listed.get("Contents", [])}


def test_good_files_loaded_and_moved(s3, bucket, kms_key_arn, mongo_db):
    files = good_files()
    _upload(s3, files)

    summary = _run(s3, mongo_db, "run-1")

    assert summary.counts == {
        "loaded": 6,
        "quarantined": 0,
        "ignored": 1,
        "skipped": 0,
        "failed": 0,
    }
    for collection, keys in distinct_keys(files, CLIENT_ID).items():
        assert mongo_db[collection].count_documents({}) == len(keys), collection
        assert set(mongo_db[collection].distinct("_id")) == keys
    assert _keys(s3, "incoming/") == set()
    assert _keys(s3, "processed/") == {f"processed/{name}" for name in files}
    copied = s3.head_object(Bucket=BUCKET, Key="processed/Patient.000.ndjson")
    assert copied["SSEKMSKeyId"] == kms_key_arn
    entries = list(mongo_db[ledger.LEDGER].find())
    assert {entry["state"] for entry in entries} == {ledger.LOADED, ledger.IGNORED}
    log_entry = next(entry for entry in entries if entry["key"] == "incoming/log.ndjson")
    assert log_entry["state"] == ledger.IGNORED
    assert "fhir_log" not in mongo_db.list_collection_names()


def test_second_run_finds_nothing(s3, bucket, mongo_db):
    _upload(s3, good_files())
    _run(s3, mongo_db, "run-1")
    counts = {name: mongo_db[name].count_documents({}) for name in mongo_db.list_collection_names()}

    assert pipeline.find_new_versions(s3, mongo_db, CLIENT_ID, BUCKET, IngestionSettings()) == []
    summary = _run(s3, mongo_db, "run-2")

    assert summary.files == []
    after = {name: mongo_db[name].count_documents({}) for name in mongo_db.list_collection_names()}
    assert after == counts


def test_resent_file_with_one_change_updates_one_document(s3, bucket, mongo_db):
    export = fhir_export(patients=5, seed=11)
    _upload(s3, {"Patient.000.ndjson": export["Patient.000.ndjson"]})
    _run(s3, mongo_db, "run-1")

    lines = export["Patient.000.ndjson"].splitlines()
    changed = json.loads(lines[2])
    changed["gender"] = "other"
    lines[2] = json.dumps(changed, separators=(",", ":")).encode()
    _upload(s3, {"Patient.000.ndjson": b"\n".join(lines) + b"\n"})
    summary = _run(s3, mongo_db, "run-2")

    (entry,) = summary.files
    assert (entry["inserted"], entry["updated"], entry["unchanged"]) == (0, 1, len(lines) - 1)
    stored = mongo_db.fhir_Patient.find_one({"_id": f"{CLIENT_ID}/Patient/{changed['id']}"})
    assert stored["gender"] == "other"
    assert stored["_provenance"]["dag_run_id"] == "run-2"


def test_bad_inputs_quarantined_good_files_loaded(s3, bucket, mongo_db):
    bad = bad_files()
    _upload(s3, {name: data for name, (data, _) in bad.items()})
    _upload(s3, good_files())

    summary = _run(s3, mongo_db, "run-1")

    assert summary.counts["quarantined"] == len(bad)
    assert summary.counts["loaded"] == 6
    for name, (_, reason) in bad.items():
        report_key = f"quarantine/{name}.error.json"
        assert f"quarantine/{name}" in _keys(s3, "quarantine/"), name
        report = json.loads(s3.get_object(Bucket=BUCKET, Key=report_key)["Body"].read())
        assert report["reason"] == reason, name
        assert report["decision"] == "quarantine"
        assert report["message"]
        entry = mongo_db[ledger.LEDGER].find_one({"key": f"incoming/{name}"})
        assert entry["state"] == ledger.QUARANTINED
        assert entry["reason"] == reason
    assert _keys(s3, "incoming/") == set()


def test_loaded_file_with_few_bad_records_gets_report(s3, bucket, mongo_db):
    good = b"".join(b'{"resourceType":"Condition","id":"c%d"}\n' % n for n in range(99))
    _upload(s3, {"Condition.000.ndjson": good + b"{oops\n"})

    summary = _run(s3, mongo_db, "run-1")

    assert summary.counts["loaded"] == 1
    report = json.loads(
        s3.get_object(Bucket=BUCKET, Key="processed/Condition.000.ndjson.error.json")["Body"].read()
    )
    assert report["errors"] == [
        {"line": 100, "reason": "invalid_json", "message": report["errors"][0]["message"]}
    ]
    assert mongo_db.fhir_Condition.count_documents({}) == 99


def test_version_claimed_elsewhere_skipped(s3, bucket, mongo_db):
    _upload(s3, {"Patient.000.ndjson": fhir_export()["Patient.000.ndjson"]})
    (version,) = pipeline.find_new_versions(s3, mongo_db, CLIENT_ID, BUCKET, IngestionSettings())
    ledger.claim_version(mongo_db, version, CLIENT_ID, "other-run/acme-health", 600)

    summary = _run(s3, mongo_db, "run-1")

    assert summary.counts["skipped"] == 1
    assert _keys(s3, "incoming/") == {"incoming/Patient.000.ndjson"}


def test_failure_recorded_and_retried(s3, bucket, mongo_db, monkeypatch):
    _upload(s3, good_files())
    real_copy = pipeline.copy_version

    def failing_copy(s3_client, version, destination, kms_key_id):
        if version.key.endswith("patients.csv"):
            raise ConnectionError("connection reset")
        return real_copy(s3_client, version, destination, kms_key_id)

    monkeypatch.setattr(pipeline, "copy_version", failing_copy)
    with pytest.raises(IngestionFailedError, match="1 of 7"):
        _run(s3, mongo_db, "run-1")
    entry = mongo_db[ledger.LEDGER].find_one({"key": "incoming/patients.csv"})
    assert entry["state"] == ledger.FAILED
    assert "connection reset" in entry["error"]
    assert "incoming/patients.csv" in _keys(s3, "incoming/")

    monkeypatch.setattr(pipeline, "copy_version", real_copy)
    summary = _run(s3, mongo_db, "run-2")
    assert summary.counts["loaded"] == 1
    assert _keys(s3, "incoming/") == set()


def test_new_upload_during_run_is_kept(s3, bucket, mongo_db, monkeypatch):
    export = fhir_export()
    _upload(s3, {"Patient.000.ndjson": export["Patient.000.ndjson"]})
    real_copy = pipeline.copy_version

    def copy_then_client_uploads(s3_client, version, destination, kms_key_id):
        result = real_copy(s3_client, version, destination, kms_key_id)
        s3_client.put_object(Bucket=BUCKET, Key=version.key, Body=export["Patient.000.ndjson"])
        return result

    monkeypatch.setattr(pipeline, "copy_version", copy_then_client_uploads)
    _run(s3, mongo_db, "run-1")
    monkeypatch.setattr(pipeline, "copy_version", real_copy)

    assert _keys(s3, "incoming/") == {"incoming/Patient.000.ndjson"}
    summary = _run(s3, mongo_db, "run-2")
    assert summary.counts["loaded"] == 1
    assert _keys(s3, "incoming/") == set()


def test_max_objects_per_run(s3, bucket, mongo_db):
    _upload(s3, good_files())
    settings = IngestionSettings(max_objects_per_run=3)
    first = pipeline.find_new_versions(s3, mongo_db, CLIENT_ID, BUCKET, settings)
    assert len(first) == 3


def test_client_status_summary(s3, bucket, mongo_db):
    from include.ingestion.status import client_status

    bad = bad_files()
    _upload(s3, good_files())
    _upload(s3, {"dup_header.csv": bad["dup_header.csv"][0]})
    _run(s3, mongo_db, "run-1")

    status = client_status(mongo_db, CLIENT_ID)

    assert status["files"] == {"ignored": 1, "loaded": 6, "quarantined": 1}
    assert status["quarantined"] == {"incoming/dup_header.csv": "duplicate_column"}
    expected = distinct_keys(good_files(), CLIENT_ID)
    assert status["documents"] == {name: len(keys) for name, keys in sorted(expected.items())}


def test_overlapping_runs_process_each_version_once(s3, bucket, mongo_db):
    import threading

    files = good_files()
    _upload(s3, files)
    settings = IngestionSettings()
    versions = pipeline.find_new_versions(s3, mongo_db, CLIENT_ID, BUCKET, settings)
    summaries = []
    barrier = threading.Barrier(2)

    def run(run_id: str) -> None:
        context = RunContext(CLIENT_ID, BUCKET, run_id, settings)
        barrier.wait()
        summaries.append(pipeline.process_versions(s3, mongo_db, context, versions))

    threads = [threading.Thread(target=run, args=(f"run-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    processed = sum(s.counts["loaded"] + s.counts["ignored"] for s in summaries)
    skipped = sum(s.counts["skipped"] for s in summaries)
    assert processed == len(files)
    assert skipped == len(files)
    entries = list(mongo_db[ledger.LEDGER].find())
    assert len(entries) == len(files)
    assert all(entry["attempts"] == 1 for entry in entries)
    for collection, keys in distinct_keys(files, CLIENT_ID).items():
        assert mongo_db[collection].count_documents({}) == len(keys), collection
