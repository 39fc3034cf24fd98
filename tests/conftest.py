"""Session set-up shared by every test.

Airflow reads AIRFLOW_HOME when it is first imported, so the test run's own
home (SQLite, no examples, this repo's dags/) is set here, before any test
module imports Airflow. Fixtures for the MongoDB stand-in, the local stack
and Airflow live in ``tests/fixtures/`` and are loaded as plugins.
"""

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

_airflow_home = Path(tempfile.mkdtemp(prefix="cdx-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_airflow_home)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_airflow_home / 'airflow.db'}"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

pytest_plugins = [
    "tests.fixtures.mongo",
    "tests.fixtures.stack",
    "tests.fixtures.airflow",
]
