"""The event log keeps its newest ``events_keep`` entries; the reconciler trims the rest."""
from tests.master.conftest import make_master


def _log(store, n):
    with store.transaction() as tx:
        for i in range(n):
            tx.event(float(i), "test", f"e{i}", {"i": i})


def test_trim_keeps_the_newest_entries_in_short_steps(store):
    _log(store, 25)
    assert store.trim_events(keep=10, at_most=6) == 6      # a backlog goes a few rows at a time
    assert store.trim_events(keep=10, at_most=100) == 9
    assert store.trim_events(keep=10) == 0
    kept = store.events(limit=100)
    assert [e["entity_id"] for e in kept] == [f"e{i}" for i in range(15, 25)]


def test_the_reconciler_trims_on_its_interval(settings, clock, tmp_path):
    s = settings.model_copy(update={"store_url": f"sqlite:///{tmp_path / 'ev.db'}",
                                    "events_keep": 5, "events_trim_interval_sec": 60.0})
    master = make_master(s, clock)
    try:
        _log(master.store, 12)
        master.reconciler.reconcile()
        assert len(master.store.events(limit=100)) == 5
        _log(master.store, 3)
        master.reconciler.reconcile()                      # within the interval: nothing trimmed
        assert len(master.store.events(limit=100)) == 8
        clock.advance(61)
        master.reconciler.reconcile()
        assert len(master.store.events(limit=100)) == 5
    finally:
        master.store.close()
