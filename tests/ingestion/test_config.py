"""Settings from INGESTION_* environment variables."""

import os

import pytest

from include.ingestion.config import (
    DEFAULT_SCHEDULE,
    IngestionSettings,
    schedule_from_env,
)


def test_defaults_without_variables():
    settings = IngestionSettings.from_env({})
    assert settings.batch_size == 1000
    assert settings.max_bad_share == 0.01
    assert settings.max_record_bytes == 16 * 1024 * 1024
    assert settings.key_columns["patients"] == ("Id",)
    assert "conditions" not in settings.key_columns
    assert settings.parse_processes == max(1, min(4, len(os.sched_getaffinity(0))))


def test_values_from_variables():
    settings = IngestionSettings.from_env(
        {
            "INGESTION_BATCH_SIZE": "250",
            "INGESTION_MAX_BAD_SHARE": "0.2",
            "INGESTION_LEASE_SECONDS": "30",
            "INGESTION_SPOOL_DIR": "/var/tmp",
            "INGESTION_PARSE_PROCESSES": "3",
            "INGESTION_KEY_COLUMNS": '{"Conditions": ["PATIENT", "CODE"], "patients": []}',
        }
    )
    assert settings.batch_size == 250
    assert settings.max_bad_share == 0.2
    assert settings.lease_seconds == 30
    assert settings.spool_dir == "/var/tmp"
    assert settings.parse_processes == 3
    assert settings.key_columns["conditions"] == ("PATIENT", "CODE")
    assert settings.key_columns["patients"] == ()
    assert settings.key_columns["payers"] == ("Id",)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INGESTION_BATCH_SIZE", "many", "not an integer"),
        ("INGESTION_BATCH_SIZE", "0", "below the minimum"),
        ("INGESTION_MAX_BAD_SHARE", "5%", "not a number"),
        ("INGESTION_MAX_BAD_SHARE", "1.5", "between 0 and 1"),
        ("INGESTION_PARSE_PROCESSES", "0", "below the minimum"),
        ("INGESTION_PARSE_PROCESSES", "two", "not an integer"),
        ("INGESTION_KEY_COLUMNS", "{", "not valid JSON"),
        ("INGESTION_KEY_COLUMNS", '["Id"]', "JSON object"),
        ("INGESTION_KEY_COLUMNS", '{"patients": "Id"}', "list of column names"),
    ],
)
def test_invalid_values_name_the_variable(name, value, message):
    with pytest.raises(ValueError, match=message) as raised:
        IngestionSettings.from_env({name: value})
    assert name in str(raised.value)


def test_schedule_default_custom_and_off():
    assert schedule_from_env({}) == DEFAULT_SCHEDULE
    assert schedule_from_env({"INGESTION_SCHEDULE": "@hourly"}) == "@hourly"
    assert schedule_from_env({"INGESTION_SCHEDULE": "None"}) is None
