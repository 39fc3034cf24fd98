"""Record validation and deterministic keys."""

import pytest

from include.ingestion import report
from include.ingestion.records import (
    BadRecord,
    CsvTable,
    canonical_hash,
    check_fhir_resource,
    check_header,
    check_json_record,
    json_record_key,
    key_id,
)
from include.ingestion.report import FileRejected


def test_fhir_resource_returns_id():
    assert check_fhir_resource({"resourceType": "Patient", "id": "a-1.b"}, "Patient") == "a-1.b"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (["not", "an", "object"], report.NOT_AN_OBJECT),
        ("text", report.NOT_AN_OBJECT),
        ({"id": "1"}, report.WRONG_RESOURCE_TYPE),
        ({"resourceType": "Condition", "id": "1"}, report.WRONG_RESOURCE_TYPE),
        ({"resourceType": "Patient"}, report.INVALID_ID),
        ({"resourceType": "Patient", "id": 7}, report.INVALID_ID),
        ({"resourceType": "Patient", "id": "has space"}, report.INVALID_ID),
        ({"resourceType": "Patient", "id": "x" * 65}, report.INVALID_ID),
    ],
)
def test_fhir_resource_rejections(record, reason):
    with pytest.raises(BadRecord) as raised:
        check_fhir_resource(record, "Patient")
    assert raised.value.reason == reason


def test_json_record_checks():
    assert check_json_record({"a": 1}) == {"a": 1}
    with pytest.raises(BadRecord) as raised:
        check_json_record([{"a": 1}])
    assert raised.value.reason == report.NOT_AN_OBJECT


def test_canonical_hash_ignores_key_order():
    assert canonical_hash({"a": 1, "b": [1, 2]}) == canonical_hash({"b": [1, 2], "a": 1})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": "1"})


def test_key_id_percent_encodes_values():
    assert key_id("c/t/", ["a/b", "x y"]) == "c/t/a%2Fb/x%20y"


def test_json_record_key_by_fields_and_by_hash():
    record = {"code": "A1", "n": 2}
    by_field, record_hash = json_record_key(record, ("code",), "c/events/")
    assert by_field == "c/events/A1"
    assert record_hash == canonical_hash(record)
    by_hash, _ = json_record_key(record, (), "c/events/")
    assert by_hash == "c/events/" + canonical_hash(record)
    with pytest.raises(BadRecord) as raised:
        json_record_key({"code": ""}, ("code",), "c/events/")
    assert raised.value.reason == report.EMPTY_KEY


def test_csv_table_keyed_rows():
    table = CsvTable(["Id", "NAME"], ("Id",))
    record, key, record_hash = table.row_record(["p/1", "Ana"], "c/patients/")
    assert record == {"Id": "p/1", "NAME": "Ana"}
    assert key == "c/patients/p%2F1"
    assert record_hash == canonical_hash(sorted(record.items()))


def test_csv_row_hash_content_based():
    table = CsvTable(["START", "CODE"], ())
    _, first, _ = table.row_record(["2020-01-01", "44054006"], "c/conditions/")
    _, again, _ = table.row_record(["2020-01-01", "44054006"], "c/conditions/")
    _, changed, _ = table.row_record(["2020-01-02", "44054006"], "c/conditions/")
    reordered = CsvTable(["CODE", "START"], ())
    _, same_row_other_order, _ = reordered.row_record(["44054006", "2020-01-01"], "c/conditions/")
    assert first == again == same_row_other_order
    assert first != changed
    assert first.startswith("c/conditions/")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["1"], report.COLUMN_COUNT),
        (["1", "a", "b"], report.COLUMN_COUNT),
        (["Id", "NAME"], report.REPEATED_HEADER),
        (["", "Ana"], report.EMPTY_KEY),
    ],
)
def test_csv_table_bad_rows(row, reason):
    table = CsvTable(["Id", "NAME"], ("Id",))
    with pytest.raises(BadRecord) as raised:
        table.row_record(row, "c/patients/")
    assert raised.value.reason == reason


def test_csv_table_missing_key_column_rejects_file():
    with pytest.raises(FileRejected) as raised:
        CsvTable(["ID", "NAME"], ("Id",))
    assert raised.value.reason == report.INVALID_HEADER


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (["Id", "NAME", "NAME"], report.DUPLICATE_COLUMN),
        (["Id", " "], report.INVALID_HEADER),
        (["Id", "client_id"], report.INVALID_HEADER),
        (["Id", "a.b"], report.INVALID_HEADER),
        (["$where"], report.INVALID_HEADER),
    ],
)
def test_header_rejections(header, reason):
    with pytest.raises(FileRejected) as raised:
        check_header(header)
    assert raised.value.reason == reason
