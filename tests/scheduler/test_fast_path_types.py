"""A field the fast path reads as "empty" is refused when it is no mapping, exactly as the full
check refuses it; a str subclass is accepted wherever a string is; and a subclass of a
constraint never borrows the verdict of an equal one whose values are of another type. All of
them hold for a batch added in parts: a refusal leaves nothing behind."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from titus._codec import Codec
from titus.constraints import BalancedHostAttr, HostAttrValue, UniqueHostAttr, plain_constraint
from titus.scheduler import validation as v
from titus.scheduler.model import Host, Task, TaskClass

from tests.scheduler.helpers import LyingInt, LyingStr

NOT_MAPPINGS = [None, [], (), "", 0]


class Name(str):
    """A str subclass, as a caller's own id type might be."""


class ZoneIs(HostAttrValue):
    """A caller's own subclass of a constraint."""


@pytest.mark.parametrize("field", ["scalars", "resource_sets"])
@pytest.mark.parametrize("value", NOT_MAPPINGS, ids=repr)
def test_a_host_with_an_empty_non_mapping_is_refused_and_a_large_batch_adds_nothing(make_scheduler, field, value):
    s = make_scheduler()
    hosts = [Host(f"h{i}", cpus=1) for i in range(9000)] + [Host("bad", cpus=1, **{field: value})]
    with pytest.raises(v.InputTypeError, match=rf"hosts\[9000\]\.{field}: must be a mapping"):
        s.add_hosts(hosts)
    assert len(s) == 0 and s.host_ids == []
    s.add_hosts(hosts[:9000])  # nothing of the refused call stayed behind
    assert len(s) == 9000


@pytest.mark.parametrize("field", ["scalars", "resource_sets"])
@pytest.mark.parametrize("value", NOT_MAPPINGS, ids=repr)
def test_a_task_with_an_empty_non_mapping_is_refused(make_scheduler, field, value):
    s = make_scheduler([Host("h", cpus=4, memory_mb=100)])
    with pytest.raises(v.InputTypeError, match=rf"tasks\[1\]\.{field}: must be a mapping"):
        s.schedule([Task("ok", cpus=1), Task("bad", cpus=1, **{field: value})])
    assert s.held_tasks() == {} and s.host_usage("h")["cpus"] == 0.0
    with pytest.raises(v.InputTypeError, match=rf"add_running: task\.{field}: must be a mapping"):
        s.add_running(Task("bad", cpus=1, **{field: value}), "h")
    assert s.held_tasks() == {}


@pytest.mark.parametrize("value", NOT_MAPPINGS, ids=repr)
def test_a_class_with_empty_non_mapping_sets_is_refused(make_scheduler, value):
    s = make_scheduler([Host("h", cpus=4, memory_mb=100)])
    with pytest.raises(v.InputTypeError, match=r"classes\[0\]\.resource_sets: must be a mapping"):
        s.schedule_arrays(np.ones((1, 4)) * [1, 1, 0, 0], np.zeros(1, np.int32), [TaskClass(resource_sets=value)])
    assert s.host_usage("h")["cpus"] == 0.0


def test_hosts_with_str_subclass_ids_are_added_found_and_placed_on(make_scheduler):
    s = make_scheduler()
    hosts = [Host(f"h{i}", cpus=1) for i in range(9000)] + [Host(Name("mine"), cpus=8, memory_mb=100)]
    s.add_hosts(hosts)
    assert len(s) == 9001 and s.host_ids[-1] == "mine"
    assert s.schedule([Task("t", cpus=4)]).assignments == {"t": "mine"}
    assert s.host_usage("mine")["cpus"] == 4.0 and s.host_usage(Name("mine"))["cpus"] == 4.0
    assert s.remove_host(Name("mine")) == ["t"] and len(s) == 9000


def test_equal_ids_hash_the_same_whatever_their_str_type(scheduler_cls):
    # The tie key comes from the id's text: a subclass must not move a host in the order.
    a, b = scheduler_cls(seed=3), scheduler_cls(seed=3)
    a.add_hosts([Host(f"h{i}", cpus=2) for i in range(40)])
    b.add_hosts([Host(Name(f"h{i}"), cpus=2) for i in range(40)])
    tasks = [Task(f"t{i}", cpus=1) for i in range(30)]
    assert a.schedule(tasks).assignments == b.schedule(tasks).assignments


@pytest.mark.parametrize("bad", [True, 1.0, np.float64(1.0)], ids=repr)
def test_a_constraint_subclass_does_not_borrow_a_verdict_across_value_types(make_scheduler, bad):
    s = make_scheduler([Host("h", cpus=4, memory_mb=100, attributes={"zone": "1"})])
    assert s.schedule([Task("good", cpus=1, hard=[ZoneIs("zone", 1)])]).assignments == {"good": "h"}
    assert ZoneIs("zone", bad) == ZoneIs("zone", 1)  # equal, and hashed alike: one cache entry
    with pytest.raises(v.InputTypeError, match=r"tasks\[0\]\.hard\[0\] ZoneIs\.values\[0\]"):
        s.schedule([Task("bad", cpus=1, hard=[ZoneIs("zone", bad)])])
    with pytest.raises(v.InputTypeError, match=r"classes\[0\]\.soft\[0\] ZoneIs\.values\[0\]"):
        s.schedule_arrays(np.ones((1, 4)) * [1, 1, 0, 0], np.zeros(1, np.int32), [TaskClass(soft=[ZoneIs("zone", bad)])])
    assert list(s.held_tasks()) == ["good"]


def test_a_balanced_subclass_does_not_borrow_a_verdict_across_types():
    class Spread(BalancedHostAttr):
        pass

    v._VALID_CONSTRAINTS.clear()
    # a caller's subclass never takes the fast path (its fields are read once by the full check)
    assert not any(v._plain_constraints([Spread("zone", k)]) for k in (1, True, 1.0))
    assert type(v.check_tasks([Task("t", soft=[Spread("zone", 1)])], set())[0].soft[0]) is BalancedHostAttr
    for bad in (True, 1.0):
        with pytest.raises(v.InputTypeError, match=r"tasks\[0\]\.soft\[0\] Spread\.expected_values"):
            v.check_tasks([Task("t", soft=[Spread("zone", bad)])], set())


def _smuggled(values) -> HostAttrValue:
    """A HostAttrValue whose values were set past its constructor (which makes a tuple)."""
    c = HostAttrValue("zone", "a")
    object.__setattr__(c, "values", values)
    return c


# Hostile field values: a fast path must say "valid" only where the full check does.
_NAMES = [None, "j", "", "\u00e9", "\ud800", Name("j"), 1, b"j", np.str_("j"), " ", "\x00"]
_INTS = [0, 1, -1, True, np.int64(1), 1.0, 2**31, -2**31 - 1, None, "1", np.bool_(True)]
_MAPS = [{}, None, [], "", 0, {"eni": "x"}, {"eni": 1}, {"gpu": 1}, {"gpu": True}, {"cpus": 1}]
_CONS = [(), [], None, "", [HostAttrValue("zone", "a")], (HostAttrValue("zone", 1),), [HostAttrValue("zone", True)],
         [ZoneIs("zone", 1)], [ZoneIs("zone", True)], [ZoneIs("zone", 1.0)], [BalancedHostAttr("zone", 2)],
         [BalancedHostAttr("zone", True)], [BalancedHostAttr("zone", 0)], {HostAttrValue("zone", "a")},
         [HostAttrValue("zone", values=[["a"]])], [HostAttrValue("zone", "\ud800")], [1],
         # what the compiled constraint check must leave to the full one
         [HostAttrValue("", "a")], [HostAttrValue("\ud800", "a")], [HostAttrValue("zone", "")],
         [HostAttrValue("zone", Name("a"))], [HostAttrValue(Name("zone"), "a")], [HostAttrValue("zone")], [_smuggled(["a"])], [_smuggled(("a", 1))],
         [BalancedHostAttr("zone", 2**31)], [BalancedHostAttr("zone", v.MAX_COUNT)],
         [BalancedHostAttr("zone", v.MAX_COUNT + 1)], [BalancedHostAttr("", 2)], [BalancedHostAttr("\ud800", 2)],
         [BalancedHostAttr(Name("zone"), 2)], [BalancedHostAttr("zone", np.int64(2))], [BalancedHostAttr("zone", -1)]]
_GANGS = [True, False, np.bool_(True), 1, None, "g", Name("g"), ""]
_QUANTITIES = [0, 0.5, True, np.float32(1), float("nan"), float("inf"), -1, 10**400, "1", None]


def _verdict(check) -> str:
    try:
        check()
    except ValueError as exc:  # every refusal is a ValueError (InputTypeError too)
        return type(exc).__name__
    return "ok"


def _full_class(c) -> None:
    v._check_demand_shape(c, "c")
    if not isinstance(c.gang, (bool, np.bool_)):
        raise v.InputTypeError("gang")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_NAMES), st.sampled_from(_NAMES), st.sampled_from(_CONS), st.sampled_from(_CONS),
       st.sampled_from(_INTS), st.sampled_from(_MAPS), st.sampled_from(_GANGS), st.sampled_from(_INTS),
       st.sampled_from(_MAPS), st.sampled_from(_QUANTITIES), st.booleans())
def test_fast_paths_agree_with_the_full_checks(job, group, hard, soft, ports, sets, gang, priority, scalars, cpus,
                                               forget):
    if forget:
        v._VALID_CONSTRAINTS.clear()
    c = TaskClass(job=job, group=group, hard=hard, soft=soft, ports=ports, resource_sets=sets,
                  gang=gang if not isinstance(gang, str) else False, priority=priority)
    assert _verdict(lambda: v.check_classes([c])) == _verdict(lambda: _full_class(c))
    assert _verdict(lambda: v.check_keyed_classes([c])) == _verdict(lambda: _full_class(c))
    t = Task("t", cpus=cpus, job=job, group=group, hard=hard, soft=soft, ports=ports, resource_sets=sets,
             scalars=scalars, gang=gang if not isinstance(gang, (bool, np.bool_)) else None, priority=priority)
    assert _verdict(lambda: v.check_tasks([t], set())) == _verdict(lambda: v.check_task(t, "t"))
    h = Host(job if isinstance(job, str) else "h", cpus=cpus, scalars=scalars, resource_sets={} if sets == {} else sets)
    assert _verdict(lambda: v.check_hosts([h], set())) == _verdict(lambda: v.check_host(h, "h"))


def test_a_task_missing_an_instance_field_takes_the_full_check():
    """The fast path reads an exact Task's fields from its instance dict: a field deleted from
    there (the class default shows through) is no fast path, and the full check decides."""
    t = Task("t", cpus=1.0)
    object.__delattr__(t, "gang")  # t.gang is the class default, None, again
    assert v._plain_tasks([t]) == 0
    v.check_tasks([t], {})  # valid all the same
    bad = Task("b", cpus=1.0)
    object.__delattr__(bad, "cpus")
    assert v._plain_tasks([bad]) == 0


def test_a_shared_constraint_tuple_is_judged_once_per_call_and_a_bad_one_everywhere(make_scheduler):
    """Tasks sharing one constraint tuple: a bad constraint in it is named at its first task,
    and one good tuple shared by many tasks places them all."""
    s = make_scheduler([Host("h", cpus=64, memory_mb=1000, attributes={"zone": "a"})])
    bad = (HostAttrValue("zone", float("nan")),)
    with pytest.raises(ValueError, match=r"tasks\[1\]\.hard\[0\]"):
        s.schedule([Task("t0", cpus=1), Task("t1", cpus=1, hard=bad), Task("t2", cpus=1, hard=bad)])
    assert s.held_tasks() == {}
    good = (HostAttrValue("zone", "a"),)
    r = s.schedule([Task(f"t{i}", cpus=1, hard=good, job="j") for i in range(40)])
    assert len(r.assignments) == 40


def test_tasks_sharing_constraint_tuples_share_a_class_only_when_every_key_field_is_equal():
    """The codec's class of a task (the native engine's) does not depend on which objects hold
    its constraints: a tuple seen before short-cuts only an identical key."""
    from titus.scheduler.scheduler import Scheduler
    s = Scheduler(fitness="cpu_mem_binpack")
    hard = (HostAttrValue("zone", "a"),)
    soft = (BalancedHostAttr("zone", 2),)
    tasks = [Task("a", hard=hard, soft=soft, job="j"), Task("b", hard=hard, soft=soft, job="j"),
             Task("c", hard=hard, soft=soft, job="k"), Task("d", hard=hard, soft=soft, job="j", ports=1),
             Task("e", hard=(HostAttrValue("zone", "a"),), soft=(BalancedHostAttr("zone", 2),), job="j"),
             Task("f", hard=hard, soft=soft, job="j", group="g"),
             Task("g", hard=list(hard), soft=soft, job="j")]
    _, task_class, keys = s._codec.encode_tasks(tasks)
    tc = task_class.tolist()
    assert tc[0] == tc[1] == tc[4] == tc[6]  # equal values: one class, whatever the objects
    assert len({tc[0], tc[2], tc[3], tc[5]}) == 4  # another job, ports or group: another class
    assert len(keys) == 4


@pytest.mark.parametrize("second", ["x", Name("x")], ids=["str", "str-subclass"])
def test_a_duplicate_id_among_plain_items_is_named_with_both_places(make_scheduler, second):
    s = make_scheduler([Host("h", cpus=64, memory_mb=1000)])
    with pytest.raises(ValueError, match=r"tasks\[2\]\.id: duplicate task id 'x' \(tasks\[0\] has it\)"):
        s.schedule([Task("x", cpus=1), Task("y", cpus=1), Task(second, cpus=1)])
    assert s.held_tasks() == {}
    s.schedule([Task("x", cpus=1)])
    with pytest.raises(ValueError, match=r"tasks\[1\]\.id: duplicate task id 'x' \(already held\)"):
        s.schedule([Task("z", cpus=1), Task(second, cpus=1)])
    assert set(s.held_tasks()) == {"x"}
    with pytest.raises(ValueError, match=r"hosts\[1\]\.id: duplicate host id 'h' \(already added\)"):
        s.add_hosts([Host("h2", cpus=1), Host(Name("h") if isinstance(second, Name) else "h", cpus=1)])
    assert s.host_ids == ["h"]


def test_a_class_missing_an_instance_field_takes_the_full_check():
    """As for tasks: the class fast path reads an exact TaskClass's instance dict, and a field
    deleted from there (the class default shows through) is left to the full check."""
    c = TaskClass(job="j")
    object.__delattr__(c, "group")
    assert not v._plain_classes([c])
    v.check_classes([c])  # valid all the same: group is the default, None
    shared = (HostAttrValue("zone", "a"),)
    assert v._plain_classes([TaskClass(job=f"j{i}", hard=shared) for i in range(50)])
    bad = (HostAttrValue("zone", 1.5),)
    with pytest.raises((TypeError, ValueError), match=r"classes\[2\]\.hard\[0\]"):
        v.check_classes([TaskClass(hard=shared), TaskClass(hard=shared), TaskClass(hard=bad), TaskClass(hard=bad)])


class FreshTuples(Task):
    """A Task subclass that hands out a new (equal) constraint tuple on every read."""

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        return tuple(list(value)) if name in ("hard", "soft") else value


def test_a_constraint_tuple_freed_in_the_call_does_not_lend_its_class_to_a_new_one(scheduler_cls):
    """The codec keys a class by its tuples' identity: a tuple read, classed and dropped must
    not pass its class on to a later tuple that happens to get its address."""
    s = scheduler_cls(seed=0)
    s.add_hosts([Host("ha", cpus=8, memory_mb=100, attributes={"zone": "a"}),
                 Host("hb", cpus=8, memory_mb=100, attributes={"zone": "b"})])
    zone = {z: (HostAttrValue("zone", z),) for z in "ab"}
    tasks = [FreshTuples("t0", cpus=1, hard=zone["a"]), FreshTuples("t1", cpus=1, hard=zone["a"])]
    tasks += [FreshTuples(f"u{i}", cpus=1, hard=zone["ab"[i % 2]]) for i in range(10)]
    r = s.schedule(tasks)
    assert r.failures == {}
    for t in tasks:
        assert r.assignments[t.id] == {"a": "ha", "b": "hb"}[t.hard[0].values[0]], t.id


def _without(obj, name):
    object.__delattr__(obj, name)  # past the frozen dataclass's guard
    return obj


@pytest.mark.parametrize("field", ["id", "scalars", "resource_sets"])
def test_a_task_missing_a_field_without_default_is_refused_by_name(make_scheduler, field):
    s = make_scheduler([Host("h", cpus=4, memory_mb=100)])
    with pytest.raises(v.InputTypeError, match=rf"tasks\[1\]\.{field}: missing"):
        s.schedule([Task("ok", cpus=1), _without(Task("t", cpus=1), field)])
    with pytest.raises(v.InputTypeError, match=rf"add_running: task\.{field}: missing"):
        s.add_running(_without(Task("t", cpus=1), field), "h")
    assert s.held_tasks() == {} and s.host_usage("h")["cpus"] == 0.0


@pytest.mark.parametrize("field", ["id", "scalars", "attributes", "resource_sets"])
def test_a_host_missing_a_field_without_default_is_refused_by_name(make_scheduler, field):
    s = make_scheduler()
    with pytest.raises(v.InputTypeError, match=rf"hosts\[1\]\.{field}: missing"):
        s.add_hosts([Host("ok", cpus=1), _without(Host("h", cpus=1), field)])
    assert len(s) == 0


@pytest.mark.parametrize("make, field", [(lambda: HostAttrValue("zone", "a"), "attr"),
                                         (lambda: BalancedHostAttr("zone", 2), "attr"),
                                         (lambda: BalancedHostAttr("zone", 2), "expected_values")])
def test_a_constraint_missing_a_field_is_refused_by_name(make_scheduler, make, field):
    s = make_scheduler([Host("h", cpus=4, memory_mb=100)])
    kind = type(make()).__name__
    with pytest.raises(v.InputTypeError, match=rf"tasks\[0\]\.hard\[0\] {kind}\.{field}: missing"):
        s.schedule([Task("t", cpus=1, hard=[_without(make(), field)])])
    with pytest.raises(v.InputTypeError, match=rf"classes\[0\]\.soft\[0\] {kind}\.{field}: missing"):
        s.schedule_arrays(np.ones((1, 4)) * [1, 1, 0, 0], np.zeros(1, np.int32), [TaskClass(soft=[_without(make(), field)])])
    assert s.held_tasks() == {} and s.host_usage("h")["cpus"] == 0.0


def test_a_class_missing_its_resource_sets_is_refused_by_name(make_scheduler):
    s = make_scheduler([Host("h", cpus=4, memory_mb=100)])
    with pytest.raises(v.InputTypeError, match=r"classes\[0\]\.resource_sets: missing"):
        s.schedule_arrays(np.ones((1, 4)) * [1, 1, 0, 0], np.zeros(1, np.int32), [_without(TaskClass(), "resource_sets")])
    assert s.host_usage("h")["cpus"] == 0.0


def test_keys_read_with_the_fast_check_are_the_codecs_keys():
    """The array path reads each class once (check and keys in one pass): its keys, gang flags
    and priorities are those ``Codec.class_keys`` gives, for every shape the fast path takes."""
    classes = [TaskClass(job="j", hard=[HostAttrValue("zone", ["a", "b"])], soft=(BalancedHostAttr("zone", 3),),
                         ports=2, gang=True, priority=-5),
               TaskClass(group="g", hard=(HostAttrValue("zone", 1), UniqueHostAttr("zone")), soft=[]),
               TaskClass(job="j2", priority=2**31 - 1), TaskClass()]
    codec = Codec()  # the native scheduler's (the twin has none)
    checked, keyed = v.check_keyed_classes(classes)
    assert keyed is not None and checked == classes
    keys, gang, prio = keyed
    want_keys, want_gang, want_prio = codec.class_keys(classes)
    assert keys == want_keys and [type(k[2]) for k in keys] == [tuple] * 4
    assert gang.tolist() == want_gang.tolist() == [True, False, False, False]
    assert prio.dtype == want_prio.dtype and prio.tolist() == want_prio.tolist() == [-5, 0, 2**31 - 1, 0]


@pytest.mark.parametrize("odd", [TaskClass(resource_sets={"eni": "x"}), TaskClass(gang=np.bool_(True)),
                                 TaskClass(job=Name("j")), TaskClass(hard=[ZoneIs("z", "a")])],
                         ids=["sets", "numpy-bool", "str-subclass-job", "constraint-subclass"])
def test_a_class_off_the_fast_path_is_keyed_by_the_codec_and_placed_alike(make_scheduler, odd):
    checked, keyed = v.check_keyed_classes([TaskClass(), odd])
    assert keyed is None and checked[0] == TaskClass()  # valid all the same: the codec keys them
    assert type(checked[1]) is TaskClass and checked[1] is not odd  # the copy read once ...
    plain = dataclasses.replace(odd, hard=type(odd.hard)(plain_constraint(c) for c in odd.hard))
    assert checked[1] == plain  # ... holding the same values (a constraint as its kind)
    s = make_scheduler([Host("h", cpus=4, memory_mb=100, attributes={"z": "a"}, resource_sets={"eni": (1, 2)})])
    out = s.schedule_arrays(np.array([[1.0, 1, 0, 0]] * 2), np.array([0, 1], np.int32), [TaskClass(), odd])
    assert out.tolist() == [0, 0]


def test_a_constraint_list_changed_by_its_own_check_keeps_what_was_checked():
    """A check runs a constraint's own Python code (reading its fields), which may change the
    list being checked: the keys hold the constraints that were checked, not what the list
    became."""
    hard: list = []

    class Sneaky(HostAttrValue):
        def __getattribute__(self, name):
            if name == "attr":
                hard.append(BalancedHostAttr("zone", 0))  # never checked: expected_values must be >= 1
            return object.__getattribute__(self, name)

    sneaky = Sneaky("zone", "a")
    hard.append(sneaky)
    v._VALID_CONSTRAINTS.clear()  # the check must run
    checked, keyed = v.check_keyed_classes([TaskClass(hard=hard)])
    # off the fast path (a subclass); the class as checked holds the constraint as checked, as
    # its kind (a subclass's == and hash are not the key's), and so does its key
    assert keyed is None and len(hard) > 1
    assert checked[0].hard == [plain_constraint(sneaky)] and type(checked[0].hard[0]) is HostAttrValue
    assert Codec().class_keys(checked)[0][0][2] == (plain_constraint(sneaky),)


@pytest.mark.parametrize("plain, odd", [("a", LyingStr("a")), (1, LyingInt(1))], ids=["str", "int"])
def test_equal_values_match_the_same_hosts_whatever_their_str(make_scheduler, plain, odd):
    """Equal constraints share a task class, so a value is compared as its own text (its
    characters, its digits), never as what an overridden ``__str__`` says: both tasks go to the
    host whose attribute equals the value, on both schedulers, and a host attribute given as such
    a value matches alike."""
    text = "a" if plain == "a" else "1"
    other = "b" if plain == "a" else "2"
    s = make_scheduler([Host("h-plain", cpus=4, memory_mb=100, attributes={"zone": text}),
                        Host("h-other", cpus=4, memory_mb=100, attributes={"zone": other}),
                        Host("h-odd", cpus=4, memory_mb=100, attributes={"zone": odd})])
    r = s.schedule([Task("t1", cpus=4, hard=[HostAttrValue("zone", plain)]),
                    Task("t2", cpus=4, hard=[HostAttrValue("zone", odd)])])
    assert set(r.assignments.values()) == {"h-plain", "h-odd"} and not r.failures
