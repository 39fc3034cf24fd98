"""The parse pass: read one object once, validate and key every record, spool upsert batches.

Nothing is written to MongoDB here. The caller looks at the result, then
either loads the spool or quarantines the object, so a file that fails the
bad-record threshold leaves no partial load behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from include.ingestion.chunks import FhirChunkParser
from include.ingestion.config import IngestionSettings
from include.ingestion.documents import DocumentEncoder
from include.ingestion.formats import FileFormat, Kind, format_from_name, resolve_with_content
from include.ingestion.readers import (
    Content,
    HashingReader,
    drain,
    gzip_errors,
    is_blank,
    iter_csv_rows,
    iter_json_values,
    iter_lines,
    loads_line,
)
from include.ingestion.records import (
    BadRecord,
    CsvTable,
    check_json_record,
    json_record_key,
)
from include.ingestion.report import (
    INVALID_JSON,
    NO_RECORDS,
    RECORD_TOO_LARGE,
    TOO_MANY_BAD_RECORDS,
    ErrorReport,
    FileRejected,
    bad_share_exceeded,
)
from include.ingestion.spool import Spool
from include.ingestion.workers import parse_chunks

LOAD = "load"
QUARANTINE = "quarantine"
IGNORE = "ignore"


@dataclass
class PreparedFile:
    """Outcome of the parse pass over one object version."""

    fmt: FileFormat
    report: ErrorReport
    valid_records: int = 0
    duplicate_keys: int = 0
    rejection: FileRejected | None = None
    sha256: str = ""
    size: int = 0
    utf8_bom: bool = False
    parse_processes: int = 1
    decision: str = LOAD
    reason: str | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def bad_records(self) -> int:
        """Number of records that failed validation."""
        return self.report.total

    def summary(self) -> dict[str, Any]:
        """Return the counts and the decision, for the ledger and the error report."""
        return {
            "format": self.fmt.kind.value,
            "dataset": self.fmt.dataset,
            "gzip": self.fmt.compressed,
            "utf8_bom": self.utf8_bom,
            "valid_records": self.valid_records,
            "bad_records": self.bad_records,
            "duplicate_keys": self.duplicate_keys,
            "parse_processes": self.parse_processes,
            "decision": self.decision,
            "reason": self.reason,
            "message": self.message,
        }


def prepare_object(
    body: Any,
    key: str,
    encoder: DocumentEncoder,
    spool: Spool,
    settings: IngestionSettings,
    id_prefix: str,
) -> PreparedFile:
    """Parse the object ``body`` (anything with ``read``) named ``key`` into ``spool``.

    ``id_prefix`` is ``<client_id>/``; the dataset name is appended to it.
    The returned decision is LOAD, QUARANTINE (with a reason) or IGNORE for
    the FHIR exporter's ``log.ndjson``.
    """
    fmt = format_from_name(key)
    prepared = PreparedFile(fmt=fmt, report=ErrorReport(max_listed=settings.max_listed_errors))
    raw = HashingReader(body)
    try:
        with gzip_errors():
            content = Content(raw, fmt.compressed)
            prepared.utf8_bom = content.bom
            fmt = resolve_with_content(fmt, content.head)
            fmt = FileFormat(fmt.kind, fmt.dataset, content.compressed)
            prepared.fmt = fmt
            if fmt.loads_records:
                prefix = f"{id_prefix}{fmt.dataset}/"
                prepared.valid_records = _parse_records(
                    content.stream, fmt, prefix, encoder, spool, prepared, settings
                )
    except FileRejected as rejection:
        prepared.rejection = rejection
    prepared.duplicate_keys = spool.duplicates

    drain(raw)
    prepared.sha256 = raw.sha256
    prepared.size = raw.size
    _decide(prepared, settings)
    return prepared


def _decide(prepared: PreparedFile, settings: IngestionSettings) -> None:
    if prepared.rejection is None and not prepared.fmt.loads_records:
        prepared.decision = IGNORE
        prepared.message = "FHIR Bulk Data exporter log: kept in processed/, not loaded"
        return
    if prepared.rejection is None and prepared.valid_records + prepared.bad_records == 0:
        prepared.rejection = FileRejected(NO_RECORDS, "the file contains no records")
    if prepared.rejection is not None:
        prepared.decision = QUARANTINE
        prepared.reason = prepared.rejection.reason
        prepared.message = prepared.rejection.message
        prepared.details = prepared.rejection.to_dict()
        return
    if bad_share_exceeded(prepared.valid_records, prepared.bad_records, settings.max_bad_share):
        total = prepared.valid_records + prepared.bad_records
        prepared.decision = QUARANTINE
        prepared.reason = TOO_MANY_BAD_RECORDS
        prepared.message = (
            f"{prepared.bad_records} of {total} records are invalid, above the "
            f"allowed share of {settings.max_bad_share:.2%} (INGESTION_MAX_BAD_SHARE)"
        )


def _parse_records(
    stream: IO[bytes],
    fmt: FileFormat,
    prefix: str,
    encoder: DocumentEncoder,
    spool: Spool,
    prepared: PreparedFile,
    settings: IngestionSettings,
) -> int:
    max_bytes = settings.max_record_bytes
    if fmt.kind is Kind.FHIR_NDJSON:
        return _parse_fhir_lines(stream, fmt.dataset, prefix, encoder, spool, prepared, settings)
    report = prepared.report
    key_fields = settings.key_columns.get(fmt.dataset, ())
    if fmt.kind is Kind.NDJSON:
        records = _json_lines(stream, max_bytes, report)
        return _parse_json_records(records, key_fields, prefix, encoder, spool, report)
    if fmt.kind is Kind.JSON:
        records = iter_json_values(stream, max_bytes)
        return _parse_json_records(records, key_fields, prefix, encoder, spool, report)
    delimiter = "\t" if fmt.kind is Kind.TSV else ","
    return _parse_csv(stream, delimiter, key_fields, prefix, encoder, spool, report, max_bytes)


def _parse_fhir_lines(
    stream: IO[bytes],
    resource_type: str,
    prefix: str,
    encoder: DocumentEncoder,
    spool: Spool,
    prepared: PreparedFile,
    settings: IngestionSettings,
) -> int:
    """Parse FHIR NDJSON in chunks, in worker processes when it has more than one chunk."""
    parser = FhirChunkParser(resource_type, prefix, encoder.provenance, settings.max_record_bytes)
    valid = 0
    for result in parse_chunks(stream, parser, spool, settings.parse_processes):
        prepared.parse_processes = result.processes
        for line_no, reason, message in result.bad:
            prepared.report.add(line_no, reason, message)
        spool.add_written(result.file_number, result.batches, result.documents, result.duplicates)
        valid += result.valid
        if result.rejection is not None:
            raise FileRejected(*result.rejection)
    return valid


def _json_lines(
    stream: IO[bytes], max_bytes: int, report: ErrorReport
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, record)`` of generic NDJSON, reporting unparsable lines."""
    for line_no, line in iter_lines(stream, max_bytes):
        if line is None:
            report.add(line_no, RECORD_TOO_LARGE, f"the line is longer than {max_bytes} bytes")
            continue
        try:
            record = loads_line(line, line_no)
        except ValueError as exc:
            if not is_blank(line):
                report.add(line_no, INVALID_JSON, f"invalid JSON: {exc}")
            continue
        yield line_no, record


def _parse_json_records(
    records: Iterator[tuple[int, Any]],
    key_fields: tuple[str, ...],
    prefix: str,
    encoder: DocumentEncoder,
    spool: Spool,
    report: ErrorReport,
) -> int:
    def keyed(value: Any) -> tuple[dict[str, Any], str, str]:
        record = check_json_record(value)
        key, record_hash = json_record_key(record, key_fields, prefix)
        return record, key, record_hash

    return _spool_records(records, keyed, encoder, spool, report)


def _parse_csv(
    stream: IO[bytes],
    delimiter: str,
    key_columns: tuple[str, ...],
    prefix: str,
    encoder: DocumentEncoder,
    spool: Spool,
    report: ErrorReport,
    max_bytes: int,
) -> int:
    rows = iter_csv_rows(stream, delimiter, max_bytes)
    first = next(rows, None)
    if first is None:
        return 0
    header_line, header = first
    table = CsvTable(header, key_columns, header_line)
    return _spool_records(rows, lambda row: table.row_record(row, prefix), encoder, spool, report)


def _spool_records(
    values: Iterator[tuple[int, Any]],
    keyed: Callable[[Any], tuple[dict[str, Any], str, str]],
    encoder: DocumentEncoder,
    spool: Spool,
    report: ErrorReport,
) -> int:
    """Spool each ``(line, value)`` as ``keyed(value)`` gives it, and report bad records.

    ``keyed`` returns ``(record, key, record_hash)`` or raises BadRecord.
    Return the number of records spooled.
    """
    valid = 0
    for line_no, value in values:
        try:
            record, key, record_hash = keyed(value)
            hash_bytes = record_hash.encode("ascii")
            spool.add(key, line_no, encoder.upsert(record, key, line_no, hash_bytes))
        except BadRecord as bad:
            report.add(line_no, bad.reason, bad.message)
            continue
        valid += 1
    return valid
