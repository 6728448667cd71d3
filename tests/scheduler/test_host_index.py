"""The codec's host index (id <-> engine index) behaves as the dict it replaces, through any mix
of adds and removals, and the scheduler's lookups through it stay right."""
import pytest
from hypothesis import given, settings, strategies as st

from titus._codec import HostIndex
from titus.scheduler.model import Host


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 40), st.integers(1, 30)),
                max_size=40))
def test_matches_a_dict_through_adds_and_removals(ops):
    index, model, ids = HostIndex(), {}, []
    n = 0
    for op, pick, count in ops:
        if op == "add":
            fresh = [f"h{n + i}" for i in range(count)]
            index.add(fresh)
            for i, hid in enumerate(fresh):
                model[hid] = len(ids) + i
            ids += fresh
            n += count
        elif model:
            hid = sorted(model)[pick % len(model)]
            del index[hid]
            ids[model.pop(hid)] = None
        assert len(index) == len(model)
        assert index.ids == ids
        for hid in ids[-5:] + [x for x in ids[:5] if x]:
            if hid is not None:
                assert hid in index and index[hid] == model[hid] and index.get(hid) == model[hid]
        assert "never" not in index and index.get("never", -1) == -1


def test_a_removed_id_is_gone_and_can_come_back_under_a_new_index():
    index = HostIndex()
    index.add(["a", "b"])
    del index["a"]
    assert "a" not in index and index.ids == [None, "b"]
    with pytest.raises(KeyError):
        index["a"]
    with pytest.raises(KeyError):
        del index["a"]
    index.add(["a"])
    assert index["a"] == 2 and index["b"] == 1


def test_keys_of_other_types_are_simply_absent_and_unhashable_ones_refused_like_a_dict():
    index = HostIndex()
    index.add(["1", "None"])
    for key in (1, None, 1.0, b"1", ("1",)):
        assert key not in index and index.get(key) is None
    with pytest.raises(TypeError):
        [] in index  # noqa: B015 -- a dict refuses it the same way


def test_many_removals_keep_lookups_right():
    index = HostIndex()
    index.add([f"h{i}" for i in range(5000)])
    for i in range(0, 5000, 2):
        del index[f"h{i}"]
    index.add([f"x{i}" for i in range(100)])
    assert len(index) == 2600
    assert all(index[f"h{i}"] == i for i in range(1, 5000, 2))
    assert all(f"h{i}" not in index for i in range(0, 5000, 2))
    assert index["x99"] == 5099


def test_scheduler_adds_a_large_batch_in_parts_and_knows_every_host(make_scheduler):
    hosts = [Host(f"host-{i}", cpus=1, attributes={"zone": f"z{i % 3}"}) for i in range(20_000)]
    s = make_scheduler(hosts)
    assert len(s) == 20_000 and s.host_ids[19_999] == "host-19999"
    r = s.schedule([])
    assert r.assignments == {}
    with pytest.raises(ValueError, match="duplicate host id"):
        s.add_hosts([Host("host-123", cpus=1)])
    s.remove_host("host-5")
    assert s.host_ids[5] is None and len(s) == 19_999
