"""A SQLite store serves one master: a second one on the same file refuses to start with a
clear message (several masters share a PostgreSQL store instead)."""
from __future__ import annotations

import subprocess

from tests.integration.conftest import FAST_MASTER_ENV
from tests.integration.platform import Platform
from titus.cli.local_cluster import titus_command


def test_a_second_master_on_one_sqlite_file_refuses_to_start(tmp_path):
    with Platform(tmp_path / "one", master_env=FAST_MASTER_ENV) as first:
        first.start_master()
        out = subprocess.run(
            titus_command("master", "--store", first.store_url, "--port", "0", "--insecure"),
            capture_output=True, text=True, timeout=60)
        assert out.returncode != 0
        assert "holds the SQLite store" in out.stderr and "PostgreSQL" in out.stderr
        assert first.api.get("/health").json()["role"] == "leader"  # the first one is unharmed
