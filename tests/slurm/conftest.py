"""Fixtures for the Slurm tests: one real two-node Slurm cluster per test session, jobs and their records.

The cluster (slurm/testing/cluster.py) starts the first time a test asks for it and is stopped by
PID at the end of the session, by the fixture finalizer and, should pytest die before that, by
atexit. Without the Slurm programs the tests skip with a hint to run `make install`; under
CI=true they fail instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTING_DIR = REPO / "slurm" / "testing"
sys.path.insert(0, str(TESTING_DIR))

from cluster import LocalSlurmCluster, missing_binaries, reap_stale_clusters  # noqa: E402


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurmCluster]:
    missing = missing_binaries()
    if missing:
        message = f"Slurm programs missing ({', '.join(missing)}): run `make install`"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the Slurm tests", pytrace=False)
        pytest.skip(message)
    reap_stale_clusters()
    state_dir = Path(tempfile.mkdtemp(prefix="ganforge-slurm-", dir="/tmp"))
    cluster = LocalSlurmCluster(state_dir)

    def stop() -> None:
        cluster.stop()
        shutil.rmtree(state_dir, ignore_errors=True)

    atexit.register(stop)
    try:
        cluster.start()
        yield cluster
    finally:
        stop()
        atexit.unregister(stop)
