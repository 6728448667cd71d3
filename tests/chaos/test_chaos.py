"""The short chaos run: one seeded trial per fault kind on real processes, real signals and
a real PostgreSQL, each followed by every invariant (tests/chaos/invariants.py).

Masters: three when the master supports standbys (``lease_sec`` among its settings), else
one (the faults on "the leader" then hit the only master). ``TITUS_CHAOS_SEED`` changes the
seed; logs and journals of a failing trial are kept under pytest's temporary directory.
"""
from __future__ import annotations

import json
import os

import pytest

from tests.chaos.faults import KINDS
from tests.chaos.trial import TrialConfig, run_trial
from titus.master.config import MasterSettings

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]

MULTI_MASTER = "lease_sec" in MasterSettings.model_fields
SEED = int(os.environ.get("TITUS_CHAOS_SEED", "13"))


@pytest.mark.parametrize("number,kind", list(enumerate(KINDS)), ids=list(KINDS))
def test_trial_keeps_every_invariant(pg_cluster, tmp_path_factory, number, kind):
    config = TrialConfig(masters=3 if MULTI_MASTER else 1, batch_jobs=3, service_jobs=2)
    keep = tmp_path_factory.mktemp("chaos-failed")
    result = run_trial(pg_cluster, number, kind, SEED * 1000 + number, config, keep_dir=keep)
    assert not result.violations, (
        f"{kind} (seed {result.seed}) broke {len(result.violations)} invariant(s); logs and "
        f"journals in {result.workdir}:\n"
        + json.dumps(result.as_dict(), indent=1, default=str)[:6000])
    if kind in ("leader_kill", "leader_pause") and MULTI_MASTER:
        assert result.fault.get("failover_sec") is not None
