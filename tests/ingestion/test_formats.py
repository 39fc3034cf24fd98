"""Format detection by name and content."""

import pytest

from include.ingestion import report
from include.ingestion.formats import (
    FileFormat,
    Kind,
    dataset_name,
    format_from_name,
    resolve_with_content,
)
from include.ingestion.report import FileRejected


@pytest.mark.parametrize(
    ("key", "kind", "dataset", "compressed"),
    [
        ("incoming/Patient.000.ndjson", Kind.FHIR_NDJSON, "Patient", False),
        ("incoming/2024/Condition.12.ndjson.gz", Kind.FHIR_NDJSON, "Condition", True),
        ("incoming/log.ndjson", Kind.FHIR_EXPORT_LOG, "log", False),
        ("incoming/events.jsonl", Kind.NDJSON, "events", False),
        ("incoming/claims.ndjson.GZ", Kind.NDJSON, "claims", True),
        ("incoming/export.json", Kind.JSON, "export", False),
        ("incoming/Lab Results.CSV", Kind.CSV, "lab_results", False),
        ("incoming/visits.tsv.gz", Kind.TSV, "visits", True),
        ("incoming/README", Kind.UNKNOWN, "readme", False),
    ],
)
def test_format_from_name(key, kind, dataset, compressed):
    assert format_from_name(key) == FileFormat(kind, dataset, compressed)


def test_collection_per_dataset():
    assert FileFormat(Kind.FHIR_NDJSON, "Patient").collection == "fhir_Patient"
    assert FileFormat(Kind.CSV, "patients").collection == "csv_patients"
    assert FileFormat(Kind.TSV, "visits").collection == "csv_visits"
    assert FileFormat(Kind.JSON, "export").collection == "json_export"
    assert not FileFormat(Kind.FHIR_EXPORT_LOG, "log").loads_records


def test_dataset_name_is_collection_safe():
    assert dataset_name("Lab-Results 2024.v2.csv") == "lab_results_2024"
    assert dataset_name("%%%.csv") == "data"


def test_json_array_named_ndjson_rejected():
    with pytest.raises(FileRejected) as raised:
        resolve_with_content(format_from_name("Patient.000.ndjson"), b' \n[{"id": "1"}]')
    assert raised.value.reason == report.JSON_ARRAY_IN_NDJSON


@pytest.mark.parametrize(
    ("head", "encoding"),
    [
        (b"\xff\xfe{\x00", "UTF-16 LE"),
        (b"\xfe\xff\x00{", "UTF-16 BE"),
        (b"\xff\xfe\x00\x00", "UTF-32 LE"),
    ],
)
def test_other_byte_order_marks_rejected(head, encoding):
    with pytest.raises(FileRejected) as raised:
        resolve_with_content(format_from_name("a.csv"), head)
    assert raised.value.reason == report.INVALID_ENCODING
    assert encoding in raised.value.message


def test_nul_bytes_mean_binary():
    with pytest.raises(FileRejected) as raised:
        resolve_with_content(format_from_name("a.csv"), b"a,b\n1,\x002\n")
    assert raised.value.reason == report.BINARY_CONTENT
    assert raised.value.line == 2


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b'{"a": 1}\n{"a": 2}\n', Kind.NDJSON),
        (b'[{"a": 1}]', Kind.JSON),
        (b"a\tb\n1\t2\n", Kind.TSV),
        (b"a,b\n1,2\n", Kind.CSV),
    ],
)
def test_unknown_name_settled_by_content(head, kind):
    assert resolve_with_content(format_from_name("upload.dat"), head).kind is kind


def test_unknown_name_and_content_rejected():
    with pytest.raises(FileRejected) as raised:
        resolve_with_content(format_from_name("notes.txt"), b"just some words\n")
    assert raised.value.reason == report.UNSUPPORTED_FORMAT


def test_ndjson_with_fhir_content_becomes_fhir():
    head = b'{"resourceType": "Observation", "id": "o1"}\n'
    fmt = resolve_with_content(format_from_name("vitals.ndjson"), head)
    assert fmt.kind is Kind.FHIR_NDJSON
    assert fmt.dataset == "Observation"


def test_ndjson_without_fhir_content_stays_generic():
    fmt = resolve_with_content(format_from_name("events.ndjson"), b'{"event": "login"}\n')
    assert fmt == FileFormat(Kind.NDJSON, "events")
