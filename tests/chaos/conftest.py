"""The chaos suite's PostgreSQL: one throwaway cluster for the session (``pgcluster.py``),
each trial in a database of its own. Without PostgreSQL server binaries the suite is skipped
with how to get them, unless ``TITUS_REQUIRE_POSTGRES=1``: then it fails."""
from __future__ import annotations

import os

import pytest

from tests.chaos.pgcluster import PgCluster, find_bin_dir

HOWTO = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL "
         "(apt-get install postgresql) or set TITUS_PG_BIN to their directory. Set "
         "TITUS_REQUIRE_POSTGRES=1 to make this a failure instead of a skip.")


@pytest.fixture(scope="session")
def pg_cluster():
    """A private PostgreSQL server on its own port, removed after the session."""
    if find_bin_dir() is None:
        if os.environ.get("TITUS_REQUIRE_POSTGRES") == "1":
            pytest.fail(HOWTO)
        pytest.skip(HOWTO)
    with PgCluster() as cluster:
        yield cluster
