"""Fixtures for the Slurm tests: one real two-node Slurm cluster per test session, jobs and their records.

The cluster (slurm/testing/cluster.py) starts the first time a test asks for it and is stopped by
PID at the end of the session, by the fixture finalizer and, should pytest die before that, by
atexit. Without the Slurm programs the tests skip with a hint to run `make install`; under
CI=true they fail instead.
"""

from __future__ import annotations

import atexit
import fcntl
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


@pytest.fixture(autouse=True)
def one_slurm_test_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Serialise the Slurm tests across xdist workers.

    Their `xdist_group("slurm")` mark should keep them on one worker, but `--dist loadgroup` ignores
    groups on pytest 9.2 (pytest-xdist #1386). With this lock, taken in the directory all workers of
    one run share, two workers never run Slurm jobs at the same time.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    with open(tmp_path_factory.getbasetemp().parent / "slurm-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
