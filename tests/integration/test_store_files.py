"""A ``titus master`` process on SQLite survives what is done to its files while it writes.

The shared-memory file of WAL mode (``-shm``) is mapped into every process using the database;
truncated by someone else it kills the process with SIGBUS. The master keeps its WAL index in
its own heap (SQLite's ``unix-excl`` VFS), so there is no ``-shm`` file to harm: creating,
truncating, removing or locking one changes nothing. A database file moved away makes writes
answer 503 (SQLite would go on writing to the unlinked file and lose it all) until it is back.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import FAST_MASTER_ENV
from tests.integration.platform import Platform, batch_job
from titus.cli.local_cluster import titus_command


@pytest.fixture
def plat(tmp_path):
    with Platform(tmp_path / "cluster", store_url=f"sqlite:///{tmp_path / 'titus.db'}",
                  master_env=FAST_MASTER_ENV) as platform:
        platform.start_master()
        yield platform


class Submitter(threading.Thread):
    """Submits jobs one after the other and records every answer's status."""

    def __init__(self, plat: Platform):
        super().__init__(daemon=True)
        self.client = plat.client(timeout=30)
        self.answers: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.answers.append(self.client.post("/api/v3/jobs", json=batch_job(1)).status_code)

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        self.client.close()


def alive_and_answering(plat: Platform) -> None:
    assert plat.master.poll() is None, f"the master died ({plat.master.returncode}):\n" \
                                       f"{plat.log_tail('master.log')}"
    assert plat.api.get("/health").status_code == 200
    assert plat.api.post("/api/v3/jobs", json=batch_job(1)).status_code == 202


def test_nothing_done_to_the_shm_file_harms_the_master(plat, tmp_path):
    shm = Path(f"{tmp_path / 'titus.db'}-shm")
    submitter = Submitter(plat)
    submitter.start()
    try:
        plat.wait_for(lambda: len(submitter.answers) >= 20, 30, "submissions")
        assert not shm.exists()  # no mapped WAL index to truncate
        shm.write_bytes(b"\xff" * 32768)  # a stray -shm, as another SQLite would make it ...
        time.sleep(0.3)
        os.truncate(shm, 0)  # ... truncated under a writer: the SIGBUS of a mapped one
        time.sleep(0.3)
        alive_and_answering(plat)
        os.chmod(shm, 0)
        time.sleep(0.3)
        alive_and_answering(plat)
        shm.unlink()
        time.sleep(0.3)
        alive_and_answering(plat)
    finally:
        submitter.stop()
    assert len(submitter.answers) >= 20 and set(submitter.answers) == {202}
    assert plat.api.get("/health/ready").status_code == 200


def test_a_moved_database_file_is_refused_loudly_until_it_is_back(plat, tmp_path):
    db = tmp_path / "titus.db"
    assert plat.api.post("/api/v3/jobs", json=batch_job(1)).status_code == 202
    os.rename(db, f"{db}.moved")
    try:
        r = plat.api.post("/api/v3/jobs", json=batch_job(1))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "deleted or replaced" in r.json()["problems"][0]["message"]
        assert plat.api.get("/health/ready").status_code == 503
        live = plat.api.get("/health")
        assert live.status_code == 200 and live.json()["store"]["writable"] is False
        assert plat.master.poll() is None
    finally:
        os.rename(f"{db}.moved", db)
    alive_and_answering(plat)
    assert plat.api.get("/health/ready").status_code == 200
    assert "the store is unavailable" in plat.log_tail("master.log", 200)


def test_store_current_reads_a_store_a_master_holds(plat):
    out = subprocess.run(titus_command("store", "current", "--store", plat.store_url),
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "(head)" in out.stdout and "running master holds" in out.stderr
    refused = subprocess.run(titus_command("store", "upgrade", "--store", plat.store_url),
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "in use by a running master" in refused.stderr
