"""The leader's lease and the fence on writes (titus.master.lease), on both stores.

A lease is taken once it ran out, with a new epoch; a write of an old epoch is refused in its
own transaction and leaves nothing behind; on PostgreSQL a takeover waits for a write that
already passed the fence, so no write of epoch N lands after epoch N+1 began."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from tests.master.conftest import postgres_empty
from titus.master.errors import StoreUnavailable
from titus.master.lease import Fence, Fenced, Lease, NotLeader, session_name
from titus.master.store import Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lease.db'}"
    return postgres_empty()


def fenced_store(url: str, holder: str) -> Store:
    store = Store(url)
    store.fence = Fence(holder)
    return store


def a_leads(url: str, lease_a: float, lease_b: float, named: str = ""):
    """Masters "a" and "b" on one store, each with its fence and lease, "a" leading in epoch 1;
    the stores of the masters in ``named`` carry their sessions' names. Returns (store_a,
    store_b, lease_a, lease_b)."""
    store_a, store_b = fenced_store(url, "a"), fenced_store(url, "b")
    for holder, store in (("a", store_a), ("b", store_b)):
        if holder in named:
            store.name_sessions(holder)
    a = Lease(store_a, "a", "http://a", lease_sec=lease_a)
    b = Lease(store_b, "b", "http://b", lease_sec=lease_b)
    store_a.fence.epoch = a.try_acquire().epoch
    return store_a, store_b, a, b


def epochs(store: Store) -> list[tuple]:
    with store.unfenced() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT epoch, holder FROM leader_epochs ORDER BY epoch"))]


def test_the_first_master_takes_epoch_one_and_renews_it(url):
    store = Store(url)
    lease = Lease(store, "m1", "http://m1", lease_sec=5)
    first = lease.try_acquire()
    assert (first.holder, first.epoch, first.url) == ("m1", 1, "http://m1")
    assert first.held_by("m1") and lease.epoch == 1
    again = lease.try_acquire()  # a renewal: the same epoch
    assert again.epoch == 1 and lease.read().remaining > 4
    assert epochs(store) == [(1, "m1")]


def test_a_write_without_the_lease_is_refused_and_keeps_nothing(url):
    store = fenced_store(url, "m1")
    with pytest.raises(NotLeader, match="standby"):
        with store.transaction() as tx:
            tx.probe(1.0)
    lease = Lease(store, "m1", "http://m1", lease_sec=5)
    store.fence.epoch = lease.try_acquire().epoch
    with store.transaction() as tx:  # now it leads
        tx.probe(2.0)
    assert store.meta_get("ready_probe") == "2.0"


def test_a_released_lease_is_taken_at_once_with_the_next_epoch(url):
    store = Store(url)
    one = Lease(store, "m1", "http://m1", lease_sec=60)
    one.try_acquire()
    one.release()
    two = Lease(store, "m2", "http://m2", lease_sec=60)
    view = two.try_acquire()
    assert (view.holder, view.epoch) == ("m2", 2) and two.epoch == 2
    assert epochs(store) == [(1, "m1"), (2, "m2")]


@pytest.mark.postgres
def test_postgres_a_valid_lease_is_not_taken_and_a_run_out_one_is():
    url = postgres_empty()
    store_a, store_b, a, b = a_leads(url, 1.0, 1.0)
    seen = b.try_acquire()
    assert (seen.holder, seen.url, seen.epoch, b.epoch) == ("a", "http://a", 1, 0)
    time.sleep(1.2)  # a stops renewing (paused): its lease runs out
    store_b.fence.epoch = b.try_acquire().epoch
    assert store_b.fence.epoch == 2
    # a wakes and writes: refused in the same transaction, nothing kept
    with pytest.raises(Fenced, match="epoch 1 is over"):
        with store_a.transaction() as tx:
            tx.probe(111.0)
    assert store_a.fence.epoch == 0
    assert store_a.meta_get("ready_probe") is None
    # and its next renewal does not win the lease back
    assert a.try_acquire().holder == "b" and a.epoch == 0
    with store_b.transaction() as tx:
        tx.probe(222.0)
    assert store_b.meta_get("ready_probe") == "222.0"


@pytest.mark.postgres
def test_postgres_a_takeover_waits_for_a_write_already_past_the_fence():
    url = postgres_empty()
    store_a, store_b, a, b = a_leads(url, 0.5, 5)
    inside, release = threading.Event(), threading.Event()

    def slow_write():
        with store_a.transaction() as tx:  # the fence's shared lock is held until commit
            inside.set()
            release.wait(10)
            tx.probe(333.0)

    writer = threading.Thread(target=slow_write)
    writer.start()
    assert inside.wait(10)
    time.sleep(0.7)  # a's lease has run out while its write is open
    with pytest.raises(StoreUnavailable):  # the takeover cannot get the row's lock
        b.try_acquire()
    assert b.epoch == 0
    release.set()
    writer.join(10)
    assert store_a.meta_get("ready_probe") == "333.0"  # epoch 1's write landed first...
    assert b.try_acquire().epoch == 2  # ...then epoch 2 began
    assert epochs(store_b) == [(1, "a"), (2, "b")]


def test_sqlite_takes_a_killed_masters_lease_at_once(tmp_path):
    """One process holds a SQLite file: a lease left by a killed master is not waited for."""
    url = f"sqlite:///{tmp_path / 'lease.db'}"
    store = Store(url)
    Lease(store, "dead", "http://dead", lease_sec=300).try_acquire()
    store.close()
    store = Store(url)
    view = Lease(store, "new", "http://new", lease_sec=300).try_acquire()
    assert (view.holder, view.epoch) == ("new", 2)


@pytest.mark.postgres
def test_postgres_a_restarted_master_takes_its_predecessors_lease_at_once():
    """A master restarted after kill -9 at the same URL (it could bind the address, so the
    old process is gone) does not wait for the old lease; anyone else still does."""
    url = postgres_empty()
    store = Store(url)
    Lease(store, "old", "http://m1:7001", lease_sec=300).try_acquire()
    other = Lease(store, "other", "http://m2:7001", lease_sec=300)
    assert other.try_acquire(predecessor_gone=True).holder == "old"  # not its URL
    same_url = Lease(store, "new", "http://m1:7001", lease_sec=300)
    assert same_url.try_acquire().holder == "old"  # the address not proven free
    view = same_url.try_acquire(predecessor_gone=True)
    assert (view.holder, view.epoch) == ("new", 2)


@pytest.mark.postgres
def test_postgres_a_stalled_leaders_busy_session_does_not_block_the_takeover_for_ever():
    """A leader stopped while its session is busy (a statement running, a result it does not
    read, a pipeline it never finished) is not "idle in transaction", so PostgreSQL's own
    timeout never ends it and its fence lock holds the lease row. Once the lease has run out
    for longer than that timeout, a standby ends the old holder's sessions and takes over."""
    url = postgres_empty()
    store_a, store_b, a, b = a_leads(url, 0.5, 5, named="ab")
    inside, outcome = threading.Event(), {}

    def stuck_write():
        try:
            with store_a.transaction() as tx:  # past the fence: the lease row is share-locked
                inside.set()
                tx.conn.exec_driver_sql("SELECT pg_sleep(60)")  # busy, never idle
                tx.probe(444.0)
        except StoreUnavailable as exc:
            outcome["error"] = exc

    writer = threading.Thread(target=stuck_write)
    writer.start()
    assert inside.wait(10)
    started = time.monotonic()
    view = None
    while time.monotonic() - started < 20:
        try:
            view = b.try_acquire()
        except StoreUnavailable:
            view = None
        if b.epoch:
            break
        time.sleep(0.2)
    took = time.monotonic() - started
    writer.join(10)
    assert b.epoch == 2 and view.holder == "b", "the standby never took the lease"
    assert took < 12  # lease 0.5 s + the 5 s idle bound + lock waits, not the 60 s statement
    assert "error" in outcome  # the stalled write was ended, not committed
    assert store_b.meta_get("ready_probe") is None
    with pytest.raises(NotLeader):  # a's later writes are fenced
        with store_a.transaction() as tx:
            tx.probe(555.0)
    assert epochs(store_b) == [(1, "a"), (2, "b")]


@pytest.mark.postgres
def test_postgres_a_live_leaders_long_write_is_left_alone():
    """Ending sessions is for a lease that ran out: while the lease is valid a standby reads
    it (without waiting for the leader's write) and leaves it, however long the write takes."""
    url = postgres_empty()
    store_a, store_b, a, b = a_leads(url, 30, 5, named="a")
    inside = threading.Event()

    def long_write():
        with store_a.transaction() as tx:
            inside.set()
            tx.conn.exec_driver_sql("SELECT pg_sleep(3)")
            tx.probe(666.0)

    writer = threading.Thread(target=long_write)
    writer.start()
    assert inside.wait(10)
    for _ in range(2):
        assert b.try_acquire().holder == "a" and b.epoch == 0
    writer.join(10)
    assert store_a.meta_get("ready_probe") == "666.0"
    assert b.try_acquire().holder == "a" and b.epoch == 0


def _run_out_long_ago(store: Store) -> None:
    """Move the lease's end far into the past, as if its holder had stalled long ago."""
    with store.unfenced() as conn:
        conn.execute(text("UPDATE leader_lease SET expires_at = expires_at - 600"))


def _named_sessions(store: Store, holder: str) -> int:
    with store.unfenced() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"),
                            {"a": session_name(holder)}).scalar()


def _other_database_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


@pytest.mark.parametrize("holder", ["\u00e9", "a" * 70, "x y'\\\"?", "\ud800"], ids=["non-ascii", "long", "odd", "surrogate"])
def test_session_names_are_printable_ascii_bounded_and_told_apart(holder):
    """PostgreSQL keeps 63 bytes of an application name and turns every other byte than
    printable ASCII into '?': the name a standby looks for must be the name PostgreSQL shows,
    and two holders must never share one (ending one's sessions would end the other's)."""
    name = session_name(holder)
    assert name.isascii() and name.isprintable() and len(name) <= 63
    assert session_name(holder) == name  # stable
    others = ["?", "??", "\u00fc", "a" * 69, "a" * 71, "a" * 50 + "b" * 20, "x y'\\\"!"]
    assert name not in {session_name(o) for o in others if o != holder}
    assert session_name("0123456789abcdef0123456789abcdef") == "titus-master:0123456789abcdef0123456789abcdef"


@pytest.mark.postgres
@pytest.mark.parametrize("prefix", ["plain", "\u00e9t\u00e9", "x" * 50], ids=["plain", "non-ascii", "long"])
def test_postgres_a_stalled_holders_sessions_are_found_whatever_its_id(prefix):
    """The standby ends the run-out holder's sessions by the name PostgreSQL shows for them,
    for an id with characters PostgreSQL rewrites or longer than it keeps (the holder column
    takes 64), and no others: not those of a master whose id starts alike."""
    url = postgres_empty()
    holder, bystander = f"{prefix}-{uuid.uuid4().hex[:13]}", f"{prefix}-{uuid.uuid4().hex[:13]}"
    store_a, store_b, store_c = fenced_store(url, holder), fenced_store(url, "b"), fenced_store(url, bystander)
    store_a.name_sessions(holder)
    store_c.name_sessions(bystander)
    Lease(store_a, holder, "http://a", lease_sec=5).try_acquire()
    _run_out_long_ago(store_b)
    with store_a.engine.connect() as a_conn, store_c.engine.connect() as c_conn:
        assert _named_sessions(store_b, holder) == 1 and _named_sessions(store_b, bystander) == 1
        Lease(store_b, "b", "http://b", lease_sec=5)._end_stalled_holder()
        assert _named_sessions(store_b, holder) == 0, "the stalled holder's session was not ended"
        assert _named_sessions(store_b, bystander) == 1
        c_conn.exec_driver_sql("SELECT 1")
        with pytest.raises(Exception):
            a_conn.exec_driver_sql("SELECT 1")


@pytest.mark.postgres
def test_postgres_ending_a_stalled_holder_spares_its_namesakes_in_other_databases():
    """pg_stat_activity lists the sessions of every database of the server: another
    deployment (or test run) whose master has the same instance name is no concern of this
    store's standby."""
    url = postgres_empty()
    holder = f"a-{uuid.uuid4().hex}"
    store_a, store_b = fenced_store(url, holder), fenced_store(url, "b")
    Lease(store_a, holder, "http://a", lease_sec=5).try_acquire()
    _run_out_long_ago(store_b)
    elsewhere = create_engine(_other_database_url(url),
                              connect_args={"application_name": session_name(holder)})
    try:
        with elsewhere.connect() as other:
            Lease(store_b, "b", "http://b", lease_sec=5)._end_stalled_holder()
            assert other.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        elsewhere.dispose()


@pytest.mark.postgres
def test_postgres_a_holder_that_renewed_meanwhile_is_left_alone(monkeypatch):
    """The standby read the lease as run out long ago, then its holder woke and renewed it
    before the sessions were ended: a valid leader's sessions are not ended."""
    import titus.master.lease as lease_mod

    url = postgres_empty()
    holder = f"a-{uuid.uuid4().hex}"
    store_a, store_b = fenced_store(url, holder), fenced_store(url, "b")
    store_a.name_sessions(holder)
    a = Lease(store_a, holder, "http://a", lease_sec=30)
    a.try_acquire()
    _run_out_long_ago(store_b)
    real = lease_mod.session_name

    def renew_first(h):  # called between the standby's read of the lease and the ending
        a.try_acquire()
        return real(h)

    monkeypatch.setattr(lease_mod, "session_name", renew_first)
    with store_a.engine.connect() as a_conn:
        assert _named_sessions(store_b, holder) == 1
        Lease(store_b, "b", "http://b", lease_sec=5)._end_stalled_holder()
        assert a.read().held_by(holder)
        assert a_conn.exec_driver_sql("SELECT 1").scalar() == 1


@pytest.mark.postgres
def test_postgres_a_leader_renews_its_lease_while_its_own_long_write_is_open():
    """The fence's lock (FOR KEY SHARE) does not block the holder's renewal (FOR NO KEY
    UPDATE): a write longer than the lease neither lets the lease run out nor is ended as a
    stall, and a standby keeps seeing a valid lease until the write commits."""
    url = postgres_empty()
    store_a, store_b, a, b = a_leads(url, 1.0, 1.0, named="ab")
    inside, done = threading.Event(), threading.Event()

    def long_write():
        with store_a.transaction() as tx:
            inside.set()
            tx.conn.exec_driver_sql("SELECT pg_sleep(3)")  # three leases long
            tx.probe(777.0)
        done.set()

    writer = threading.Thread(target=long_write)
    writer.start()
    assert inside.wait(10)
    while not done.is_set():
        assert a.try_acquire().held_by("a")  # renewed beside the open write
        assert b.try_acquire().holder == "a" and b.epoch == 0
        time.sleep(0.2)
    writer.join(10)
    assert store_a.meta_get("ready_probe") == "777.0"
    assert epochs(store_b) == [(1, "a")]


def _gate_the_fence(url: str, store: Store) -> None:
    """Hold ``store``'s sessions' reads of the lease row between the statement's snapshot and
    its row lock while the test holds advisory lock 4242 (a row-level-security policy whose
    check waits for it): the few microseconds a busy server may take anyway, stretched."""
    with Store(url).unfenced() as conn:
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION lease_gate() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$ "
            "BEGIN IF current_setting('titus_test.gate', true) = 'on' THEN "
            "PERFORM pg_advisory_xact_lock_shared(4242); END IF; RETURN true; END $$")
        conn.exec_driver_sql("ALTER TABLE leader_lease ENABLE ROW LEVEL SECURITY")
        conn.exec_driver_sql("ALTER TABLE leader_lease FORCE ROW LEVEL SECURITY")
        conn.exec_driver_sql("CREATE POLICY gate ON leader_lease USING (lease_gate())")

    @event.listens_for(store.engine, "connect")
    def _gated(dbapi_conn, _rec):
        with dbapi_conn.cursor() as cur:
            cur.execute("SET titus_test.gate = 'on'")
        dbapi_conn.commit()

    store.engine.dispose()  # sessions opened from now on are gated


def _wait_until_gated(conn) -> None:
    for _ in range(200):
        waiting = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 "
            "AND NOT granted").scalar()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the write never reached the fence")


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["release", "renewal"])
def test_postgres_a_fence_read_straddling_a_release_or_renewal_sees_a_later_takeover(how):
    """A write's fence reads the lease row with the snapshot its statement took; if a
    renewal or a release of the lease commits after that snapshot and a takeover follows
    before the row is locked, the row it locks is still the one naming the old epoch, and
    FOR KEY SHARE (which a renewal's or a takeover's no-key update does not conflict with)
    returns it as it was. The write must be refused all the same: no write of epoch N lands
    after epoch N+1 began."""
    url = postgres_empty()
    store_a, store_b = fenced_store(url, "a"), fenced_store(url, "b")
    store_w = fenced_store(url, "a")  # a's writes, on sessions of their own
    a = Lease(store_a, "a", "http://a", lease_sec=0.3 if how == "renewal" else 30)
    b = Lease(store_b, "b", "http://b", lease_sec=30)
    store_w.fence.epoch = a.try_acquire().epoch
    _gate_the_fence(url, store_w)
    outcome = {}

    def write():
        try:
            with store_w.transaction() as tx:
                tx.probe(888.0)
            outcome["committed"] = True
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            outcome["error"] = exc

    with store_b.engine.connect() as gatekeeper:
        gatekeeper.exec_driver_sql("SELECT pg_advisory_lock(4242)")
        writer = threading.Thread(target=write)
        writer.start()
        _wait_until_gated(gatekeeper)  # the fence's snapshot is taken, its lock not yet
        if how == "release":
            a.release()
        else:
            a.try_acquire()  # renewed...
            time.sleep(0.5)  # ...and run out again
        assert b.try_acquire().epoch == 2  # epoch 2 began
        gatekeeper.exec_driver_sql("SELECT pg_advisory_unlock(4242)")
        writer.join(20)
    with store_b.unfenced() as conn:  # the policy goes with it; the table with the next test
        conn.exec_driver_sql("DROP FUNCTION lease_gate() CASCADE")
    assert isinstance(outcome.get("error"), Fenced), outcome
    assert store_b.meta_get("ready_probe") is None, "a write of epoch 1 landed in epoch 2"


def _paused_after_write(lease: Lease):
    """Make ``lease``'s next write of the lease row stop before its transaction commits
    (holding whatever locks it took) until the returned event is set; the other event is
    set once it stopped there."""
    stopped, resume = threading.Event(), threading.Event()
    real = lease._write

    def write(conn, epoch, now):
        real(conn, epoch, now)
        stopped.set()
        assert resume.wait(20)

    lease._write = write
    return stopped, resume


def _in_thread(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - asserted by the caller
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


@pytest.mark.postgres
def test_postgres_a_write_begun_during_a_takeover_waits_for_it_and_is_refused():
    """A write that reaches the fence after the takeover locked and updated the row but
    before it committed waits for it (the takeover's FOR UPDATE outlives its own no-key
    update), then reads the new epoch and is refused."""
    url = postgres_empty()
    store_a, store_b, a, b = a_leads(url, 0.3, 30)
    time.sleep(0.4)
    stopped, resume = _paused_after_write(b)
    taker, took = _in_thread(b.try_acquire)
    assert stopped.wait(10)
    passed, go = threading.Event(), threading.Event()

    def write():
        with store_a.transaction() as tx:
            passed.set()
            go.wait(10)
            tx.probe(999.0)

    writer, wrote = _in_thread(write)
    time.sleep(0.5)
    blocked = not passed.is_set()
    resume.set()
    taker.join(10)
    go.set()
    writer.join(10)
    assert took["value"].epoch == 2
    assert blocked, "a write passed the fence while a takeover held the row"
    assert isinstance(wrote.get("error"), Fenced), wrote
    assert store_b.meta_get("ready_probe") is None


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["release", "renewal"])
def test_postgres_a_release_or_renewal_keeps_the_takeover_waiting_for_open_writes(how):
    """A renewal or a release updates the lease row beside the holder's open writes (it does
    not wait for them); their lock follows the row to its new version, so a takeover after
    it still waits for them."""
    url = postgres_empty()
    store_a, store_b, a, b = a_leads(url, 0.3, 30)
    inside, release = threading.Event(), threading.Event()

    def slow_write():
        with store_a.transaction() as tx:
            inside.set()
            assert release.wait(20)
            tx.probe(121.0)

    writer, wrote = _in_thread(slow_write)
    assert inside.wait(10)
    if how == "release":
        a.release()
    else:
        assert a.try_acquire().held_by("a")
        time.sleep(0.4)
    with pytest.raises(StoreUnavailable):
        b.try_acquire()
    assert b.epoch == 0
    release.set()
    writer.join(10)
    assert "error" not in wrote
    assert b.try_acquire().epoch == 2
    assert store_b.meta_get("ready_probe") == "121.0"


@pytest.mark.postgres
@pytest.mark.parametrize("rival", ["standby", "old holder"])
def test_postgres_a_lease_attempt_during_a_takeover_waits_and_sees_the_new_epoch(rival):
    """Two standbys racing, or the old holder renewing while a standby takes over: the
    attempts are ordered by the row's lock; the later one sees the new epoch, takes nothing
    and (the old holder) stops leading."""
    url = postgres_empty()
    store_a, store_b, store_c = (fenced_store(url, h) for h in "abc")
    a = Lease(store_a, "a", "http://a", lease_sec=0.3)
    b = Lease(store_b, "b", "http://b", lease_sec=30)
    c = Lease(store_c, "c", "http://c", lease_sec=30)
    a.try_acquire()
    time.sleep(0.4)
    stopped, resume = _paused_after_write(b)
    taker, took = _in_thread(b.try_acquire)
    assert stopped.wait(10)
    other = c if rival == "standby" else a
    late, seen = _in_thread(other.try_acquire)
    time.sleep(0.3)
    resume.set()
    taker.join(10)
    late.join(10)
    assert took["value"].epoch == 2
    assert seen["value"].holder == "b" and seen["value"].epoch == 2 and other.epoch == 0
    assert epochs(store_a) == [(1, "a"), (2, "b")]
