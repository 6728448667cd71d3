"""The native parts are built and answer: titus._engine places a task, titus._codec packs hosts."""
import math

import numpy as np

from titus import _codec, _engine
from titus.scheduler.tiekey import tiekey


def test_engine_module_places_one_task_on_the_only_host_that_fits():
    engine = _engine.Engine(4, 0, [3], [1.0], 0.5, 0.35, math.nan, True)
    caps = np.array([[2.0, 1024, 0, 0], [8.0, 4096, 0, 0]])
    fnv = np.array([_codec.fnv1a64("small"), _codec.fnv1a64("big")], dtype=np.uint64)
    none3 = np.zeros((0, 3), np.int32)
    assert engine.add_hosts(caps, fnv, none3, none3, np.zeros((0, 4), np.int32)) == 0
    cls = np.array([[-1, -1, 0, 0, 0, 0, 0, 0, 0]], dtype=np.int32)
    hosts, slots, fail_rows, fail_counts, *_ = engine.schedule(
        np.array([[4.0, 512, 0, 0], [16.0, 512, 0, 0]]), np.zeros(2, np.int32), cls,
        np.zeros((0, 5), np.int32), np.zeros(0, np.int32), np.zeros((0, 2), np.int32),
        np.zeros(0, np.int32), np.zeros((0, 4)), False, True)
    assert hosts.tolist() == [1, -1]          # 4 cpus fit only the big host; 16 fit none
    assert fail_rows.tolist() == [1]
    assert fail_counts[0, 3] == 2              # both hosts rejected it for cpus (slot 3)
    assert engine.used(1).tolist() == [4.0, 512.0, 0.0, 0.0]
    engine.release(int(slots[0]))
    assert engine.used(1).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_engine_tiekey_matches_the_documented_formula():
    for host_id, seed in [("h1", 0), ("host-ü", 7), ("", 2**64 - 1)]:
        assert _engine.tiekey(host_id, seed) == tiekey(host_id, seed)


def test_codec_fnv_matches_python():
    from titus.scheduler.tiekey import fnv1a64

    assert _codec.fnv1a64("zone-a/ü") == fnv1a64("zone-a/ü".encode())
