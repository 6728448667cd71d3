"""Score = (0.5 * mean soft + 0.35 * fitness) / 0.85; ties by tiekey; good_enough stops early.

Exact scores are observed through ``good_enough``: with threshold g the chosen host is the one
with the lowest tiekey among hosts scoring >= g, so moving g just below / above a host's
expected score flips the choice.
"""
import pytest

from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr
from titus.scheduler.model import Host, Task

from tests.scheduler.helpers import by_tiekey, score, tiekey

EPS = 1e-7


def two_hosts(seed):
    """Ids (low, high) by tiekey; ``low`` gets the bigger host so it packs worse."""
    low, high = by_tiekey(["alpha", "beta"], seed)
    return low, high


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_score_without_soft_constraints(make_scheduler, seed):
    low, high = two_hosts(seed)
    hosts = [Host(low, cpus=10), Host(high, cpus=4)]
    task = Task("t", cpus=1)
    low_score, high_score = score(1.0, 0.1), score(1.0, 0.25)
    for g, expected in [(low_score - EPS, low), (low_score + EPS, high),
                        (high_score + EPS, high), (None, high), (0.0, low)]:
        s = make_scheduler(hosts, fitness="cpu_binpack", good_enough=g, seed=seed)
        assert s.schedule([task]).assignments == {"t": expected}, g


def test_score_averages_soft_constraints(make_scheduler):
    seed = 7
    low, high = two_hosts(seed)
    hosts = [Host(low, cpus=4, attributes={"zone": "b"}),
             Host(high, cpus=10, attributes={"zone": "a"})]
    task = Task("t", cpus=1, job="j",
                soft=[HostAttrValue("zone", "a"), UniqueHostAttr("zone"), BalancedHostAttr("zone", 2)])
    # low (zone b, holding a co-task): HostAttrValue(zone=a) 0, UniqueHostAttr 0,
    # BalancedHostAttr: c[b] = 1 and only one value in use (< 2) so m = 0: 1/(1+1).
    low_score = score((0.0 + 0.0 + 0.5) / 3, 0.25)
    high_score = score(1.0, 0.1)
    assert low_score < high_score
    for g, expected in [(None, high), (low_score - EPS, low), (low_score + EPS, high), (0.0, low)]:
        s = make_scheduler(hosts, fitness="cpu_binpack", good_enough=g, seed=seed)
        s.add_running(Task("co", cpus=0, job="j"), low)
        assert s.schedule([task]).assignments == {"t": expected}, g


def test_soft_score_is_the_mean_of_the_soft_scores(make_scheduler):
    seed = 3
    low, high = two_hosts(seed)
    hosts = [Host(low, cpus=10, attributes={"zone": "a"}),
             Host(high, cpus=4, attributes={"zone": "b"})]
    task = Task("t", cpus=1, soft=[HostAttrValue("zone", "b"), HostAttrValue("zone", "a")])
    # Each host satisfies one of the two soft constraints: soft 0.5 on both.
    low_score, high_score = score(0.5, 0.1), score(0.5, 0.25)
    for g, expected in [(low_score - EPS, low), (low_score + EPS, high), (high_score + EPS, high),
                        (None, high)]:
        s = make_scheduler(hosts, fitness="cpu_binpack", good_enough=g, seed=seed)
        assert s.schedule([task]).assignments == {"t": expected}, g


def test_good_enough_takes_the_first_host_in_tiekey_order(make_scheduler):
    ids = [f"host-{i:02d}" for i in range(12)]
    hosts = [Host(h, cpus=4 + i, memory_mb=1000) for i, h in enumerate(ids)]
    order = by_tiekey(ids, 5)
    s = make_scheduler(hosts, fitness="cpu_binpack", good_enough=0.0, seed=5)
    s.disable_host(order[0])
    s.add_running(Task("full", cpus=4 + ids.index(order[1])), order[1])
    # order[0] disabled, order[1] full: the scan stops at order[2] whatever it scores.
    assert s.schedule([Task("t", cpus=1)]).assignments == {"t": order[2]}


def test_without_good_enough_the_best_host_wins(make_scheduler):
    ids = [f"host-{i:02d}" for i in range(12)]
    hosts = [Host(h, cpus=4 + i, memory_mb=1000) for i, h in enumerate(ids)]
    s = make_scheduler(hosts, fitness="cpu_binpack", seed=5)
    assert s.schedule([Task("t", cpus=1)]).assignments == {"t": "host-00"}


@pytest.mark.parametrize("seed", [0, 1, 2, 99, 2**40])
def test_ties_go_to_the_lowest_tiekey(make_scheduler, seed):
    ids = [f"n{i}" for i in range(10)]
    s = make_scheduler([Host(h, cpus=8, memory_mb=8000) for h in ids], seed=seed)
    assert s.schedule([Task("t", cpus=1, memory_mb=100)]).assignments == {"t": by_tiekey(ids, seed)[0]}


def test_same_input_and_seed_give_the_same_placement(make_scheduler):
    ids = [f"n{i}" for i in range(20)]
    tasks = [Task(f"t{i}", cpus=1 + i % 3, memory_mb=100, job=f"j{i % 4}", soft=[UniqueHostAttr()])
             for i in range(30)]
    runs = []
    for _ in range(2):
        s = make_scheduler([Host(h, cpus=8, memory_mb=8000) for h in ids], seed=11)
        runs.append(s.schedule(tasks).assignments)
    assert runs[0] == runs[1]


def test_different_seeds_may_choose_differently(make_scheduler):
    ids = [f"n{i}" for i in range(10)]
    chosen = set()
    for seed in range(8):
        s = make_scheduler([Host(h, cpus=8) for h in ids], seed=seed)
        chosen.add(s.schedule([Task("t", cpus=1)]).assignments["t"])
    assert len(chosen) > 1
    assert len({by_tiekey(ids, seed)[0] for seed in range(8)}) == len(chosen)


def test_tiekey_helper_matches_the_published_hashes():
    # Known values: splitmix64's first output from state 0, FNV-1a of "" and of "a".
    from tests.scheduler.helpers import fnv1a64, splitmix64

    assert splitmix64(0) == 0xE220A8397B1DCDAF
    assert fnv1a64("") == 0xCBF29CE484222325
    assert fnv1a64("a") == 0xAF63DC4C8601EC8C
    assert tiekey("a", 0) == splitmix64(0xAF63DC4C8601EC8C ^ 0xE220A8397B1DCDAF)
