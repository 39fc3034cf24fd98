"""Every DAG file imports cleanly, fast, and carries the metadata ops rely on."""

import time
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parent.parent / "dags"
DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))

# The dag-processor parses every file every few seconds, so heavy imports or
# I/O at parse time slow the whole deployment. They show up here first.
PARSE_BUDGET_SECONDS = 5.0


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_dag_files_exist():
    assert DAG_FILES, f"no DAG files found in {DAGS_FOLDER}"


def test_dag_files_import_without_errors(dag_bag):
    assert dag_bag.import_errors == {}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parse_time(dag_file):
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(dag_file))
    elapsed = time.perf_counter() - started

    assert bag.import_errors == {}
    assert bag.dags, f"{dag_file.name} defines no DAG"
    assert elapsed < PARSE_BUDGET_SECONDS, f"{dag_file.name} took {elapsed:.2f} s to parse"


def test_dags_have_tags_owner_retries_doc(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.default_args.get("retries", 0) >= 1, f"{dag_id} sets no default retries"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
