"""The ledger: atomic claims, leases, final states."""

import threading

import pytest

from include.ingestion import ledger
from include.ingestion.objects import ObjectVersion

VERSION = ObjectVersion(
    "cdx-acme-health",
    "incoming/Patient.000.ndjson",
    "v1",
    '"etag"',
    120,
    "2025-01-01T00:00:00+00:00",
)


def test_claim_creates_entry(mongo_db):
    claim = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 60)
    assert claim is not None
    entry = ledger.get_entry(mongo_db, VERSION)
    assert entry["_id"] == "s3://cdx-acme-health/incoming/Patient.000.ndjson?versionId=v1"
    assert entry["state"] == ledger.CLAIMED
    assert entry["client_id"] == "acme-health"
    assert entry["size"] == 120
    assert entry["attempts"] == 1
    assert entry["token"] == claim.token


def test_live_claim_blocks_other_owner(mongo_db):
    assert ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 60)
    assert ledger.claim_version(mongo_db, VERSION, "acme-health", "run-2/acme-health", 60) is None


def test_same_owner_retry_takes_over(mongo_db):
    first = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 60)
    retry = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 60)
    assert retry is not None
    assert retry.attempt == 2
    with pytest.raises(ledger.ClaimLostError):
        ledger.renew(mongo_db, first, 60)
    ledger.renew(mongo_db, retry, 60)


def test_expired_lease_can_be_claimed(mongo_db):
    stale = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 0)
    fresh = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-2/acme-health", 60)
    assert fresh is not None
    with pytest.raises(ledger.ClaimLostError):
        ledger.finish(mongo_db, stale, ledger.LOADED, {})


def test_finished_entry_never_claimed_again(mongo_db):
    claim = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 60)
    ledger.finish(mongo_db, claim, ledger.LOADED, {"valid_records": 13})
    entry = ledger.get_entry(mongo_db, VERSION)
    assert entry["state"] == ledger.LOADED
    assert entry["valid_records"] == 13
    assert "token" not in entry
    assert ledger.finished_entry_ids(mongo_db, [entry["_id"], "other"]) == {entry["_id"]}
    assert ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 60) is None


def test_failed_entry_claimed_by_next_run(mongo_db):
    claim = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 60)
    ledger.fail(mongo_db, claim, "ConnectionError: reset")
    entry = ledger.get_entry(mongo_db, VERSION)
    assert entry["state"] == ledger.FAILED
    assert entry["error"] == "ConnectionError: reset"
    again = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-2/acme-health", 60)
    assert again.attempt == 2


def test_finish_rejects_non_final_state(mongo_db):
    claim = ledger.claim_version(mongo_db, VERSION, "acme-health", "run-1/acme-health", 60)
    with pytest.raises(ValueError, match="final ledger state"):
        ledger.finish(mongo_db, claim, ledger.CLAIMED, {})


def test_concurrent_claims_one_winner(mongo_db):
    ledger.ensure_indexes(mongo_db)
    results = []
    barrier = threading.Barrier(8)

    def contend(number: int) -> None:
        barrier.wait()
        results.append(
            ledger.claim_version(mongo_db, VERSION, "acme-health", f"run-{number}/acme-health", 60)
        )

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([claim for claim in results if claim is not None]) == 1


def test_ensure_indexes_idempotent(mongo_db):
    ledger.ensure_indexes(mongo_db)
    ledger.ensure_indexes(mongo_db)
    indexes = mongo_db[ledger.LEDGER].index_information()
    assert indexes["object_version"]["unique"]
    assert "client_state" in indexes
