"""The parse pass: counts, error reports with line numbers, decisions."""

import gzip
import hashlib
import io
import json
import math
from datetime import UTC, datetime

import bson
import pytest

from include.ingestion import report
from include.ingestion.config import IngestionSettings
from include.ingestion.documents import DocumentEncoder, Provenance
from include.ingestion.formats import Kind
from include.ingestion.prepare import IGNORE, LOAD, QUARANTINE, prepare_object
from include.ingestion.spool import Spool
from include.sample_data import csv_export, fhir_export, fhir_resources
from tests.ingestion.inputs import bad_files

INGESTED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _prepare(name: str, data: bytes, settings: IngestionSettings | None = None):
    settings = settings or IngestionSettings()
    provenance = Provenance(
        "acme-health", "cdx-acme-health", f"incoming/{name}", "v1", '"etag"', INGESTED_AT, "run-1"
    )
    spool = Spool(settings.batch_size)
    prepared = prepare_object(
        io.BytesIO(data),
        f"incoming/{name}",
        DocumentEncoder(provenance),
        spool,
        settings,
        "acme-health/",
    )
    statements = [statement for batch in spool.read_batches() for statement in batch.statements]
    documents = [bson.decode(statement)["u"] for statement in statements]
    spool.close()
    return prepared, documents


def _prepare_condition_lines(lines: list[bytes]):
    """Parse ``lines`` as Condition NDJSON, accepting any share of bad records.

    Return the prepared file, the stored documents and ``{line: reason}``.
    """
    settings = IngestionSettings(max_bad_share=1.0)
    prepared, documents = _prepare("Condition.000.ndjson", b"\n".join(lines), settings)
    errors = {error["line"]: error["reason"] for error in prepared.report.errors}
    return prepared, documents, errors


def test_fhir_file_documents_and_provenance():
    data = fhir_export()["Patient.000.ndjson"]
    prepared, documents = _prepare("Patient.000.ndjson", data)
    source = [json.loads(line) for line in data.splitlines()]
    assert prepared.decision == LOAD
    assert prepared.valid_records == len(source) == len(documents)
    first = documents[0]
    assert first["_id"] == f"acme-health/Patient/{source[0]['id']}"
    assert first["client_id"] == "acme-health"
    assert {k: first[k] for k in source[0]} == source[0]
    provenance = first["_provenance"]
    assert provenance["bucket"] == "cdx-acme-health"
    assert provenance["key"] == "incoming/Patient.000.ndjson"
    assert provenance["version_id"] == "v1"
    assert provenance["etag"] == '"etag"'
    assert provenance["line"] == 1
    assert provenance["dag_run_id"] == "run-1"
    assert provenance["ingested_at"] == INGESTED_AT.replace(tzinfo=None)
    assert provenance["record_hash"] == hashlib.sha256(data.splitlines()[0]).hexdigest()
    assert prepared.sha256 == hashlib.sha256(data).hexdigest()
    assert prepared.size == len(data)


def test_bad_records_listed_with_lines():
    lines = [
        b'{"resourceType": "Condition", "id": "c1"}',
        b"",
        b'{"resourceType": "Condition", "id": "c2"',
        b'{"resourceType": "Patient", "id": "p1"}',
        b'["array"]',
        b'{"resourceType": "Condition"}',
        b'{"resourceType": "Condition", "id": "c3", "n": 123456789012345678901234567890}',
        b'{"resourceType": "Condition", "id": "c4"}',
    ]
    prepared, documents, errors = _prepare_condition_lines(lines)
    assert errors == {
        3: report.INVALID_JSON,
        4: report.WRONG_RESOURCE_TYPE,
        5: report.NOT_AN_OBJECT,
        6: report.INVALID_ID,
        7: report.UNSTORABLE,
    }
    assert [doc["id"] for doc in documents] == ["c1", "c4"]
    assert prepared.decision == LOAD


def test_bad_share_above_threshold_quarantines():
    good = b'{"resourceType": "Condition", "id": "c%d"}\n'
    data = b"".join(good % n for n in range(98)) + b"{broken\n" * 2
    below, _ = _prepare("Condition.000.ndjson", data, IngestionSettings(max_bad_share=0.02))
    above, _ = _prepare("Condition.000.ndjson", data, IngestionSettings(max_bad_share=0.01))
    assert below.decision == LOAD
    assert above.decision == QUARANTINE
    assert above.reason == report.TOO_MANY_BAD_RECORDS
    assert "2 of 100 records" in above.message


@pytest.mark.parametrize("name", sorted(bad_files()))
def test_bad_input_quarantined_with_reason(name):
    data, reason = bad_files()[name]
    prepared, _ = _prepare(name, data)
    assert prepared.decision == QUARANTINE
    assert prepared.reason == reason
    assert prepared.message


def test_long_line_reported_as_too_large():
    data, _ = bad_files()["Patient.002.ndjson"]
    prepared, _ = _prepare("Patient.002.ndjson", data)
    assert prepared.report.counts == {report.RECORD_TOO_LARGE: 1}


def test_ragged_rows_reported_per_line():
    data, _ = bad_files()["ragged.csv"]
    prepared, documents = _prepare("ragged.csv", data)
    assert [e["line"] for e in prepared.report.errors] == [3, 4, 5]
    assert len(documents) == 1


def test_export_log_ignored():
    prepared, documents = _prepare("log.ndjson", fhir_export()["log.ndjson"])
    assert prepared.decision == IGNORE
    assert documents == []
    assert prepared.size > 0


def test_gzip_bom_and_crlf_fhir_loads():
    data = fhir_export()["Condition.000.ndjson"]
    stored = gzip.compress(b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n"))
    prepared, documents = _prepare("Condition.000.ndjson.gz", stored)
    assert prepared.decision == LOAD
    assert prepared.fmt.compressed
    assert prepared.utf8_bom
    assert len(documents) == len(data.splitlines())
    assert prepared.sha256 == hashlib.sha256(stored).hexdigest()


def test_csv_keyed_and_row_hash_tables():
    tables = csv_export()
    patients, patient_docs = _prepare("patients.csv", tables["patients.csv"])
    conditions, condition_docs = _prepare("conditions.csv", tables["conditions.csv"])
    assert patients.fmt.collection == "csv_patients"
    first_patient = fhir_resources()["Patient"][0]["id"]
    assert patient_docs[0]["_id"] == f"acme-health/patients/{first_patient}"
    assert patient_docs[0]["_provenance"]["line"] == 2
    assert all(len(doc["_id"].rsplit("/", 1)[1]) == 64 for doc in condition_docs)
    assert conditions.decision == LOAD


def test_tsv_and_json_array():
    tsv, tsv_docs = _prepare("visits.tsv", b"Id\tWHEN\nv1\t2020\nv2\t2021\n")
    array, array_docs = _prepare("codes.json", b'[{"code": "a"}, {"code": "b"}, {"code": "a"}]')
    assert tsv.fmt.kind is Kind.TSV
    assert [doc["WHEN"] for doc in tsv_docs] == ["2020", "2021"]
    assert array.fmt.kind is Kind.JSON
    assert sorted(doc["code"] for doc in array_docs) == ["a", "b"]


def test_configured_key_columns_used_for_csv():
    settings = IngestionSettings(key_columns={"visits": ("PATIENT", "DAY")})
    data = b"PATIENT,DAY,NOTE\np1,2020-01-01,first\np1,2020-01-01,second\n"
    prepared, documents = _prepare("visits.csv", data, settings)
    assert [doc["_id"] for doc in documents] == ["acme-health/visits/p1/2020-01-01"]
    assert documents[0]["NOTE"] == "second"
    assert prepared.valid_records == 2


def test_header_only_csv_has_no_records():
    prepared, _ = _prepare("patients.csv", b"Id,NAME\n")
    assert prepared.decision == QUARANTINE
    assert prepared.reason == report.NO_RECORDS


def test_fhir_lines_keep_json_semantics():
    lines = [
        b'{"resourceType": "Condition", "id": "big", "n": 18446744073709551616}',
        b'{"resourceType": "Condition", "id": "neg", "n": -9223372036854775809}',
        b'{"resourceType": "Condition", "id": "nan", "n": NaN, "m": Infinity}',
        b'{"resourceType": "Condition", "id": "dup", "n": 1, "n": 2}',
        b'{"resourceType": "Condition", "id": "u64", "n": 9223372036854775807}',
        b"   ",
        b'{"resourceType": "Condition", "id": "bad", }',
        b'{"resourceType": "Condition", "id": "sur", "text": "\\ud800"}',
    ]
    prepared, documents, errors = _prepare_condition_lines(lines)
    assert errors == {
        1: report.UNSTORABLE,
        2: report.UNSTORABLE,
        7: report.INVALID_JSON,
        8: report.UNSTORABLE,
    }
    stored = {doc["id"]: doc for doc in documents}
    assert sorted(stored) == ["dup", "nan", "u64"]
    assert math.isnan(stored["nan"]["n"])
    assert stored["nan"]["m"] == math.inf
    assert stored["dup"]["n"] == 2
    assert stored["u64"]["n"] == 9223372036854775807
    message = next(error["message"] for error in prepared.report.errors if error["line"] == 7)
    assert message.startswith("invalid JSON: Expecting property name")
