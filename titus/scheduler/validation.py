"""Checks shared by the engine wrapper and the reference twin.

Every public scheduler call validates its whole batch here before any state changes, so a
rejected call leaves the scheduler exactly as it was, and both implementations raise the same
errors with the same messages. A message starts with the path of the bad value, from the
argument down to the field: ``tasks[3].cpus: must be finite and >= 0, got nan``,
``hosts[1].id: 'b\\ud800' is not encodable as UTF-8 (lone surrogate)``.

Every refused input raises ``ValueError``: :class:`InputTypeError` (a wrong type) is also a
``TypeError`` and :class:`UnknownIdError` (an id the scheduler does not know) also a
``KeyError``, so handlers written for either keep working.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral

import numpy as np

from titus import _engine
from titus._codec import ConstraintVerdicts, plain_class_keys, plain_classes, plain_host_prefix, plain_task_prefix
from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr, value_text
from titus.readers import int_value, is_integer, quantity, text
from titus.resources import BASE_RESOURCES
from titus.scheduler.errors import InputTypeError, UnknownIdError
from titus.scheduler.model import Host, Task, TaskClass
from titus.scheduler.read_once import (class_once, constraint_once, host_once, mapping_once, snapshot_class,
                                      snapshot_host, snapshot_task, task_once)

# The named fitness functions and the slacks are the engine's (csrc/fitness.hpp, layout.hpp).
#: name -> the base resources whose utilisations it averages (binpackers only).
BINPACKERS = {name: cols for name, (_, cols) in _engine.FITNESS_KINDS.items() if name.endswith("_binpack")}
# Hosts in use first (by their cpu/memory binpack value), empty hosts largest first: for clusters
# of mixed machine shapes, where a plain binpacker fills the smallest hosts first.
FEWEST_HOSTS = "cpu_mem_fewest_hosts"
# Slack under which a used amount counts as none (releases leave rounding residues).
IN_USE_EPS = _engine.IN_USE_EPS
FITNESS_NAMES = tuple(_engine.FITNESS_KINDS)

# Slack when comparing sums of doubles against a capacity or a limit.
EPS = _engine.EPS


def over(used: float, demand: float, capacity: float) -> bool:
    """The fit test, as the engine's (csrc/feasibility.hpp): ``used + demand`` over-commits
    ``capacity`` (beyond the slack ``EPS``)."""
    return used + demand > capacity + EPS


# The native side stores counts as int32 and port numbers fit in 16 bits.
MAX_COUNT = 2**31 - 1
MIN_PRIORITY, MAX_PRIORITY = -2**31, 2**31 - 1  # a priority is kept as an int32
MAX_PORT = 65535
# Resource sets per name on one host: each set takes memory, so an absurd count is refused
# rather than allocated.
MAX_SETS = 65536
_MAX_FLOAT = sys.float_info.max


def show(value) -> str:
    """``repr(value)`` for a message, cut short (a huge int or string must not bloat it)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 -- any repr may fail (an int too long to print)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _got(value) -> str:
    return f"got {type(value).__name__} {show(value)}"


def utf8(text: str) -> bool:
    """True when UTF-8 can encode ``text`` (only a lone surrogate cannot). Read by ``str``'s own
    methods: a subclass's overrides run no code of the caller's during a check."""
    if str.isascii(text):
        return True
    try:
        str.encode(text, "utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _base_of(t: type) -> type:
    """The builtin or numpy type a value's type derives from (itself when it is one)."""
    for b in t.__mro__:
        if b.__module__ in ("builtins", "numpy"):
            return b
    return object


_EQUALITY = frozenset({"__eq__", "__ne__", "__hash__"})


def _redefines_equality(t: type, base: type) -> bool:
    """Whether a class between ``t`` and ``base`` in its MRO defines ``==``, ``!=`` or ``hash``,
    read from the class dicts themselves: ``t.__eq__`` would call a descriptor's ``__get__``
    (the caller's code, free to answer ``str.__eq__`` while instances compare otherwise)."""
    for b in t.__mro__:
        if b is base:
            return False
        if any(type(k) is str and k in _EQUALITY for k in vars(b)):
            return True
    return True


def plain_equality(value, where: str) -> None:
    """A subclass of ``str``, ``int`` or a numpy number may stand for a value, but not one that
    redefines ``==``, ``!=`` or ``hash``: ids, names and values key tables on both schedulers
    and tasks with equal fields share a task class, so equal must mean the same value
    everywhere. InputTypeError naming ``where`` otherwise."""
    t = type(value)
    if type(t) is not type:  # a metaclass could make up what its classes' attributes are
        raise InputTypeError(f"{where}: a value's class must not have its own metaclass, got {t.__name__}")
    base = _base_of(t)
    if t is base:
        return
    if _redefines_equality(t, base):
        raise InputTypeError(f"{where}: a {base.__name__} subclass that redefines ==, != or hash "
                             f"cannot stand for a value, got {t.__name__}")


def ident(value, where: str) -> str:
    """``value`` if it is a non-empty string UTF-8 can encode (an id or a name); else
    ValueError naming ``where`` (InputTypeError if it is no string, or a subclass redefining
    equality: ``plain_equality``)."""
    if not issubclass(type(value), str):  # not its __class__, which a property can make up
        raise InputTypeError(f"{where}: must be a non-empty string, {_got(value)}")
    plain_equality(value, where)
    if str.__len__(value) == 0:  # not a subclass's __len__
        raise ValueError(f"{where}: must be a non-empty string, got ''")
    if not utf8(value):
        raise ValueError(f"{where}: {show(value)} is not encodable as UTF-8 (lone surrogate)")
    return value


def attr_value(value, where: str) -> None:
    """An attribute value (of a host, or one a HostAttrValue names) is a string UTF-8 can
    encode or an integer; else ValueError naming ``where`` (InputTypeError for another type)."""
    if issubclass(type(value), str):  # not its __class__, which a property can make up
        plain_equality(value, where)
        if not utf8(value):
            raise ValueError(f"{where}: {show(value)} is not encodable as UTF-8 (lone surrogate)")
        return
    # int or a numpy integer only: another Integral type's equal values need not have equal digits
    # (and an equal constraint already checked is not checked again)
    if not is_integer(value):
        raise InputTypeError(f"{where}: must be a string or an integer, {_got(value)}")
    plain_equality(value, where)
    try:
        value_text(value)  # it is compared as text
    except ValueError:
        raise ValueError(f"{where}: integer too long to compare as text") from None


def number(value, where: str) -> float:
    """``value`` as a float that is finite and >= 0; else ValueError naming ``where``
    (InputTypeError if it is no number)."""
    try:
        f = quantity(value)  # as the engine and the twin read it: a subclass by its value
    except TypeError:  # no float, int or numpy number (or a bool, a timedelta64)
        raise InputTypeError(f"{where}: must be a number (a float, an int or a numpy number), {_got(value)}") from None
    if not math.isfinite(f) or f < 0:
        raise ValueError(f"{where}: must be finite and >= 0, got {show(value)}")
    return f


def count(value, where: str, lo: int = 0, hi: int = MAX_COUNT) -> int:
    """``value`` read as ``titus.readers.int_value`` reads it (an int's own value, a
    numpy integer's), in ``lo..hi``; else ValueError naming ``where``, or InputTypeError if it
    is no int or numpy integer (another ``numbers.Integral`` type too: equal ones need not
    read alike, and tasks with equal fields share a class)."""
    if not is_integer(value):
        raise InputTypeError(f"{where}: must be an integer (an int or a numpy integer), {_got(value)}")
    plain_equality(value, where)
    n = int_value(value)
    if not lo <= n <= hi:
        raise ValueError(f"{where}: must be an integer in {lo}..{hi}, got {show(n)}")
    return n


def sequence(value, where: str, what: str) -> Sequence:
    """``value`` if it is a sequence but not a string (a list or tuple once read by
    ``read_once``), else InputTypeError."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InputTypeError(f"{where}: must be a list of {what}, {_got(value)}")
    return value


def mapping(value, where: str, what: str) -> Mapping:
    """``value`` if it is a mapping, else InputTypeError."""
    if not isinstance(value, Mapping):
        raise InputTypeError(f"{where}: must be a mapping of {what}, {_got(value)}")
    return value


def batch(value, where: str, what: str) -> list:
    """A call's batch argument (any iterable but a string or a mapping) as a list, else
    InputTypeError."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InputTypeError(f"{where}: must be a list of {what}, {_got(value)}")
    return list(value)


def unknown_host(host_id, where: str = "") -> UnknownIdError:
    """The error for a host id not (or no longer) added."""
    return UnknownIdError(f"{where}unknown host id {show(host_id)}")


def unknown_task(task_id) -> UnknownIdError:
    """The error for a task id not held."""
    return UnknownIdError(f"unknown task id {show(task_id)}")


def normalize_fitness(spec) -> tuple[tuple[str, float], ...]:
    """``"cpu_mem_binpack"`` or ``{"cpu_binpack": 2, "memory_spread": 1}`` -> ((name, w), ...).
    Names are kept as exact strings (``text``): the engine and the twin read them alike."""
    if text(spec) is not None:
        spec = {text(spec): 1.0}
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"fitness must be a name or a non-empty {{name: weight}} mapping, got {spec!r}")
    pairs = []
    for name, weight in mapping_once(spec, "fitness").items():
        name = text(name)
        if name not in FITNESS_NAMES:
            raise ValueError(f"fitness: unknown fitness {name!r}; known: {', '.join(FITNESS_NAMES)}")
        pairs.append((name, number(weight, f"fitness weight of {name!r}")))
    if sum(w for _, w in pairs) <= 0:
        raise ValueError("fitness: the weights must not all be 0")
    return tuple(pairs)


def check_weights(soft_weight, fitness_weight) -> tuple[float, float]:
    """The soft-constraint and fitness weights of the score blend."""
    ws = number(soft_weight, "soft_weight")
    wf = number(fitness_weight, "fitness_weight")
    if ws + wf <= 0:
        raise ValueError("soft_weight and fitness_weight must not both be 0")
    return ws, wf


def check_good_enough(value) -> float | None:
    """None, or a score threshold in [0, 1]."""
    if value is None:
        return None
    g = number(value, "good_enough")
    if g > 1:
        raise ValueError(f"good_enough must be in [0, 1], got {value!r}")
    return g


def check_flag(value, where: str) -> bool:
    """A plain True or False (``explain=``): InputTypeError naming ``where`` otherwise."""
    # by its type, not ``isinstance`` (which reads a ``__class__`` property: the caller's code,
    # run after the call's objects were checked)
    if type(value) is not bool and type(value) is not np.bool_:
        raise InputTypeError(f"{where}: must be True or False, {_got(value)}")
    return bool(value)


def resource_column(name, resources) -> int:
    """The column of resource ``name`` in ``resources``; ValueError naming it if unknown."""
    if not isinstance(name, str):
        raise InputTypeError(f"resource: must be a string, {_got(name)}")
    try:
        return list(resources).index(name)
    except ValueError:
        raise ValueError(f"resource: unknown resource {name!r}; known: {', '.join(resources)}") from None


def check_eviction_quota(job, n):
    """``set_eviction_quota``'s arguments: a job name and a count in 0..2**31-1 (or None to
    take the job's quota away); ValueError naming the argument."""
    job = ident(job, "job")
    return job, (None if n is None else count(n, "n"))


def check_seed(seed) -> int:
    """The tie-break seed: any int (taken modulo 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, (Integral, np.integer)):
        raise InputTypeError(f"seed: must be an integer, {_got(seed)}")
    return int(seed) % (1 << 64)


def check_group_limits(limits) -> dict[str, dict[str, float]]:
    """``{"g1": {"cpus": 64, ...}}``: group and resource names, limits finite and >= 0; else
    ValueError naming them (``group_limits['g1']['cpus']: ...``)."""
    if limits is None:
        return {}
    mapping(limits, "group_limits", "group -> {resource: limit}")
    out = {}
    for group, lim in limits.items():
        ident(group, "group_limits key")
        where = f"group_limits[{group!r}]"
        mapping(lim, where, "resource -> limit")
        out[group] = {ident(r, f"{where} key"): number(q, f"{where}[{r!r}]") for r, q in lim.items()}
    return out


# ----------------------------------------------------------------------------- constraints
def check_constraint(c, where: str):
    """One constraint object: a known kind, well formed, hashable (it keys the class tables).
    Returns it as checked: exactly its kind, its fields read once (``read_once.constraint_once``;
    a message names the caller's own type)."""
    kind = type(c).__name__
    c = constraint_once(c, where)
    if isinstance(c, HostAttrValue):
        ident(c.attr, f"{where} {kind}.attr")
        values = sequence(c.values, f"{where} {kind}.values", "values")
        if not values:
            raise ValueError(f"{where} {kind}.values: needs a value or values")
        for k, x in enumerate(values):
            attr_value(x, f"{where} {kind}.values[{k}]")
    elif isinstance(c, (UniqueHostAttr, BalancedHostAttr)):
        ident(c.attr, f"{where} {kind}.attr")
        if isinstance(c, BalancedHostAttr):
            count(c.expected_values, f"{where} {kind}.expected_values", lo=1)
    elif not isinstance(c, ExclusiveHost):
        raise InputTypeError(f"{where}: must be a constraint (titus.constraints), {_got(c)}")
    try:
        hash(c)
    except TypeError:
        raise InputTypeError(f"{where}: {kind} must be hashable") from None
    return c


def check_constraints(constraints, where: str) -> Sequence:
    """A list of constraints (hard or soft); returns them as checked (``check_constraint``), a
    list for a list and a tuple otherwise."""
    checked = (check_constraint(c, f"{where}[{j}]")
               for j, c in enumerate(sequence(constraints, where, "constraints")))
    return list(checked) if isinstance(constraints, list) else tuple(checked)


# Constraints already checked: they are frozen, hashable values, so a check holds forever.
_VALID_CONSTRAINTS: dict = {}


# _plain_constraints(cs): a list or tuple of constraints each known valid (checked once, its
# verdict kept). Compiled: the fast paths call it twice per task or class of every call.
_plain_constraints = ConstraintVerdicts(_VALID_CONSTRAINTS, check_constraint, HostAttrValue, BalancedHostAttr,
                                       max_count=MAX_COUNT)


# ----------------------------------------------------------------------------- hosts
def _check_scalars(scalars, where: str) -> None:
    for name, q in mapping(scalars, f"{where}.scalars", "name -> quantity").items():
        ident(name, f"{where}.scalars key")
        if name in BASE_RESOURCES:
            raise ValueError(f"{where}.scalars key: {name!r} clashes with a base resource")
        number(q, f"{where}.scalars[{name!r}]")


def _check_port_ranges(ranges, where: str) -> None:
    for j, rng in enumerate(sequence(ranges, where, "(lo, hi) port ranges")):
        if (not isinstance(rng, Sequence) or isinstance(rng, (str, bytes)) or len(rng) != 2
                or not all(is_integer(p) for p in rng)):
            raise InputTypeError(f"{where}[{j}]: must be a (lo, hi) pair of integers, {_got(rng)}")
        for p in rng:
            plain_equality(p, f"{where}[{j}]")
        lo, hi = (int_value(p) for p in rng)  # compared by value, not by their own operators
        for p in (lo, hi):
            if not 0 <= p <= MAX_PORT:
                raise ValueError(f"{where}[{j}]: port {p} is outside 0..{MAX_PORT} (range {show(rng)})")
        if lo > hi:
            raise ValueError(f"{where}[{j}]: port range must have 0 <= lo <= hi <= {MAX_PORT}, got ({lo}, {hi})")


def _check_host_sets(sets, where: str) -> None:
    for name, shape in mapping(sets, where, "name -> (sets, slots)").items():
        ident(name, f"{where} key")
        at = f"{where}[{name!r}]"
        if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)) or len(shape) != 2:
            raise InputTypeError(f"{at}: must be a (sets, slots) pair of integers, {_got(shape)}")
        count(shape[0], f"{at} sets", lo=1, hi=MAX_SETS)
        count(shape[1], f"{at} slots", lo=1)


def check_host(h, where: str) -> Host:
    """One host: id, quantities, scalars, port ranges, resource sets, attributes. Returns the
    host as checked: its fields read once (``read_once.host_once``), for the caller to use
    instead of ``h``."""
    if not isinstance(h, Host):
        raise InputTypeError(f"{where}: must be a Host, {_got(h)}")
    h = host_once(h, where)
    ident(h.id, f"{where}.id")
    for r in BASE_RESOURCES:
        number(getattr(h, r), f"{where}.{r}")
    _check_scalars(h.scalars, where)
    _check_port_ranges(h.ports, f"{where}.ports")
    _check_host_sets(h.resource_sets, f"{where}.resource_sets")
    for k, x in mapping(h.attributes, f"{where}.attributes", "name -> value").items():
        ident(k, f"{where}.attributes key")
        attr_value(x, f"{where}.attributes[{k!r}]")
    return h


def _plain_hosts(hosts) -> int:
    """How many leading hosts are obviously valid (the compiled fast path, plain_host_prefix);
    only a host failing it takes the full check."""
    return plain_host_prefix(hosts, Host, MAX_PORT)


def _plain_host(h) -> bool:
    return _plain_hosts([h]) == 1


def _check_batch(items, known_ids, plain_prefix, check_one, snapshot, arg: str, kind: str, known: str) -> list:
    """``arg``'s items each valid (``plain_prefix``, the compiled fast path, first; the full
    ``check_one`` only for an item it does not pass, which returns the item read once; in such
    a batch the plain items are kept as ``snapshot`` copies), ids
    unique in the batch and not in ``known_ids``. Returns a new list: the items as checked.
    Raises at the first bad item."""
    items = batch(items, arg, f"{kind.capitalize()} objects")
    n_plain = plain_prefix(items)  # the leading items it passes, in one pass
    if n_plain == len(items):  # all plain (str ids): unique and new, decided without a Python loop
        ids = [x.id for x in items]
        if len(set(ids)) == len(ids) and not any(map(known_ids.__contains__, ids)):
            return items
    elif n_plain:
        # The full check of a later item runs the caller's code (a subclass's reads), which
        # could change a plain item already passed (its fields by object.__setattr__, its
        # dicts, lists and constraints in place): those are kept as copies taken now.
        items[:n_plain] = map(snapshot, items[:n_plain])
    seen: set = set()
    for i, x in enumerate(items):
        if i >= n_plain:
            x = items[i] = snapshot(x) if plain_prefix([x]) == 1 else check_one(x, f"{arg}[{i}]")
        xid = x.id
        if xid in seen:
            j = next(j for j, y in enumerate(items) if y.id == xid)  # only when refusing
            raise ValueError(f"{arg}[{i}].id: duplicate {kind} id {show(xid)} ({arg}[{j}] has it)")
        if xid in known_ids:
            raise ValueError(f"{arg}[{i}].id: duplicate {kind} id {show(xid)} ({known})")
        seen.add(xid)
    return items


def check_hosts(hosts, known_ids) -> list:
    """A batch of hosts: each valid, ids unique in the batch and not already known. Errors
    name the host's index: ``hosts[1].cpus: must be finite and >= 0, got nan``."""
    return _check_batch(hosts, known_ids, _plain_hosts, check_host, snapshot_host, "hosts", "host", "already added")


def check_host_ids(host_ids, known_ids) -> list:
    """The argument of ``remove_hosts``: ids of hosts known now, each named once. Returns them
    as exact strings (``text``): looked up again by ``str``'s own ``==`` and ``hash``."""
    ids = batch(host_ids, "host_ids", "host ids")
    keys = [text(h) for h in ids]
    seen: dict = {}
    for i, (h, k) in enumerate(zip(ids, keys)):
        if k is None or k not in known_ids:
            raise unknown_host(h, f"host_ids[{i}]: ")
        if k in seen:
            raise ValueError(f"host_ids[{i}]: duplicate host id {show(h)} (host_ids[{seen[k]}] has it)")
        seen[k] = i
    return keys


# ----------------------------------------------------------------------------- tasks
def _check_demand_shape(t, where: str) -> None:
    """What a Task and a TaskClass share: job, group, constraints, ports, resource sets. ``t`` is
    the copy ``read_once`` made (no caller holds it): its constraints are replaced by theirs
    as checked."""
    for f in ("job", "group"):
        x = getattr(t, f)
        if x is not None:
            ident(x, f"{where}.{f}")
    object.__setattr__(t, "hard", check_constraints(t.hard, f"{where}.hard"))
    object.__setattr__(t, "soft", check_constraints(t.soft, f"{where}.soft"))
    count(t.ports, f"{where}.ports")
    count(t.priority, f"{where}.priority", MIN_PRIORITY, MAX_PRIORITY)
    at = f"{where}.resource_sets"
    for name, label in mapping(t.resource_sets, at, "set name -> label").items():
        ident(name, f"{at} key")
        ident(label, f"{at}[{name!r}]")


def check_task(t, where: str) -> Task:
    """One task: id, quantities, scalars, constraints, ports, resource sets. Returns the task as
    checked: its fields read once (``read_once.task_once``), for the caller to use instead of
    ``t``."""
    if not isinstance(t, Task):
        raise InputTypeError(f"{where}: must be a Task, {_got(t)}")
    t = task_once(t, where)
    ident(t.id, f"{where}.id")
    for r in BASE_RESOURCES:
        number(getattr(t, r), f"{where}.{r}")
    _check_scalars(t.scalars, where)
    _check_demand_shape(t, where)
    if t.gang is not None:
        ident(t.gang, f"{where}.gang")
    return t


def _plain_tasks(tasks) -> int:
    """How many leading tasks are obviously valid (the compiled fast path, plain_task_prefix);
    only a task failing it takes the full check."""
    return plain_task_prefix(tasks, Task, MAX_COUNT, MIN_PRIORITY, MAX_PRIORITY, _plain_constraints)


def _plain_task(t) -> bool:
    return _plain_tasks([t]) == 1


def check_tasks(tasks, held_ids) -> list:
    """A batch of tasks: each valid, ids unique in the batch and not already held. Errors
    name the task's index: ``tasks[3].hard[0] BalancedHostAttr.expected_values: ...``."""
    tasks = _check_batch(tasks, held_ids, _plain_tasks, check_task, snapshot_task, "tasks", "task", "already held")
    check_gang_priorities(tasks)
    return tasks


def check_gang_priorities(tasks) -> None:
    """The members of a gang share one priority (a gang preempts as a whole, so no member may
    be the victim of another); else ValueError naming the first member that differs."""
    names = [t.gang for t in tasks]
    if names.count(None) == len(names):  # no gang: the common case, without a Python loop
        return
    first: dict = {}
    for i, t in enumerate(tasks):
        if t.gang is None:
            continue
        j = first.setdefault(t.gang, i)
        mine, theirs = int_value(t.priority), int_value(tasks[j].priority)  # as the engine reads them
        if mine != theirs:
            raise ValueError(f"tasks[{i}].priority: gang {show(t.gang)} members must share one priority, "
                             f"got {mine} (tasks[{j}] has {theirs})")


def check_running(task, ports, held_ids) -> tuple[Task, list[int] | None]:
    """``add_running``'s task and ports, before the host is looked at: the task valid and not
    held; ``ports`` None or exactly ``task.ports`` distinct port numbers. Returns the task as
    checked (read once, for the caller to use) and the ports."""
    # Copied either way: reading ``ports`` and the host id after this runs the caller's code.
    task = snapshot_task(task) if _plain_task(task) else check_task(task, "add_running: task")
    if task.id in held_ids:
        raise ValueError(f"add_running: task.id: duplicate task id {show(task.id)} (already held)")
    if ports is None:
        return task, None
    ports = batch(ports, "add_running: ports", "port numbers")
    out = [count(p, f"add_running: ports[{j}]", hi=MAX_PORT) for j, p in enumerate(ports)]
    if len(out) != task.ports:
        raise ValueError(f"add_running: ports: names {len(out)} ports, the task asks for {task.ports}")
    first: dict = {}
    for j, p in enumerate(out):
        k = first.setdefault(p, j)
        if k != j:
            raise ValueError(f"add_running: ports[{j}]: port {p} is named twice (ports[{k}] has it)")
    return task, out


# ----------------------------------------------------------------------------- arrays
def _plain_classes(classes) -> bool:
    """Whether every class is obviously valid (the compiled fast path, plain_classes)."""
    return plain_classes(classes, TaskClass, MAX_COUNT, MIN_PRIORITY, MAX_PRIORITY, _plain_constraints)


def check_classes(classes) -> list:
    """The task classes of ``schedule_arrays`` as a list; ValueError naming ``classes[i]``."""
    classes = batch(classes, "classes", "TaskClass objects")
    if _plain_classes(classes):
        return classes  # the common case, in one compiled loop
    return _check_classes_one_by_one(classes)


def check_keyed_classes(classes) -> tuple:
    """``check_classes``, and when every class took the compiled fast path, the codec's keys of
    the classes read in that same pass: ``(classes, (keys, gang bool[K], priority int32[K]))``,
    or ``(classes, None)`` when some class needed the full check (``Codec.class_keys`` then)."""
    classes = batch(classes, "classes", "TaskClass objects")
    keyed = plain_class_keys(classes, TaskClass, MAX_COUNT, MIN_PRIORITY, MAX_PRIORITY, _plain_constraints)
    if keyed is not None:
        return classes, keyed
    return _check_classes_one_by_one(classes), None


def _check_classes_one_by_one(classes: list) -> list:
    """Each class checked, the compiled fast path first; a class failing it is read once
    (``read_once.class_once``) and that copy checked and put in its place in ``classes``; a
    class passing it is put there as a copy (``read_once.snapshot_class``)."""
    for i, c in enumerate(classes):
        if _plain_classes([c]):  # kept as a copy: a later class's reads run the caller's code
            classes[i] = snapshot_class(c)
            continue
        if not isinstance(c, TaskClass):
            raise InputTypeError(f"classes[{i}]: must be a TaskClass, {_got(c)}")
        c = classes[i] = class_once(c, f"classes[{i}]")
        _check_demand_shape(c, f"classes[{i}]")
        if not isinstance(c.gang, (bool, np.bool_)):
            raise InputTypeError(f"classes[{i}].gang: must be True or False, {_got(c.gang)}")
    return classes


def _numeric_array(value, where: str) -> np.ndarray:
    """``value`` as an ndarray of ints or floats (not bools, objects, complex)."""
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting
        raise ValueError(f"{where}: must be a rectangular numeric array, {_got(value)}") from None
    if a.dtype.kind not in "iuf":
        raise InputTypeError(f"{where}: must be a numeric array, got dtype {a.dtype}")
    return a


def _check_demand(d: np.ndarray, resources) -> np.ndarray:
    d = np.ascontiguousarray(d, dtype=np.float64)
    # Two reductions, no temporaries: NaN fails both comparisons, inf the second.
    if d.size and not (d.min() >= 0 and d.max() <= _MAX_FLOAT):
        row, col = map(int, np.argwhere(~(np.isfinite(d) & (d >= 0)))[0])
        raise ValueError(f"demand[{row}, {col}] ({resources[col]}): must be finite and >= 0, "
                         f"got {show(float(d[row, col]))}")
    return d


def _check_task_ids(task_ids: list, n: int, held_ids) -> list:
    if len(task_ids) != n:
        raise ValueError(f"task_ids: must have {n} entries (one per row), got {len(task_ids)}")
    seen: set = set()
    for i, tid in enumerate(task_ids):
        if not (type(tid) is str and tid != "" and tid.isascii()):
            ident(tid, f"task_ids[{i}]")
        if tid in seen:
            raise ValueError(f"task_ids[{i}]: duplicate task id {show(tid)} "
                             f"(task_ids[{task_ids.index(tid)}] has it)")
        if tid in held_ids:
            raise ValueError(f"task_ids[{i}]: duplicate task id {show(tid)} (already held)")
        seen.add(tid)
    return task_ids


def check_arrays(demand, task_class, classes, resources: Sequence[str], task_ids=None, held_ids=(),
                 keyed: bool = False):
    """Validate the array API's inputs (vectorised over the rows); returns (demand float64
    C-contiguous, task_class int32, classes as a list, task_ids as a list or None), and with
    ``keyed`` a fifth value: the classes' keys as ``check_keyed_classes`` gives them (or None).
    ValueError naming the array and cell, class or id: ``demand[5, 0] (cpus): ...``,
    ``task_class[2]: ...``, ``classes[1].ports: ...``, ``task_ids[7]: ...``."""
    # Read first, checked after the classes: reading an array or a list of ids may run the
    # caller's code (``__array__``, an iterator), which must not change a class already checked.
    d = _numeric_array(demand, "demand")
    tc = _numeric_array(task_class, "task_class")
    if task_ids is not None:
        task_ids = batch(task_ids, "task_ids", "task ids")
    if keyed:
        classes, keys = check_keyed_classes(classes)
    else:
        classes, keys = check_classes(classes), None
    if d.ndim != 2 or d.shape[1] != len(resources):
        raise ValueError(
            f"demand: must have shape (N, {len(resources)}) with columns {tuple(resources)}, got {d.shape}")
    d = _check_demand(d, resources)
    if tc.dtype.kind == "f":
        raise InputTypeError(f"task_class: must be an integer array, got dtype {tc.dtype}")
    if tc.ndim != 1 or tc.shape[0] != d.shape[0]:
        raise ValueError(f"task_class: must have shape ({d.shape[0]},), got {tc.shape}")
    if tc.size and (tc.min() < 0 or tc.max() >= len(classes)):
        row = int(np.argmax((tc < 0) | (tc >= len(classes))))
        raise ValueError(f"task_class[{row}]: {int(tc[row])} is not an index into {len(classes)} classes")
    tc = np.ascontiguousarray(tc, dtype=np.int32)
    if task_ids is not None:
        task_ids = _check_task_ids(task_ids, d.shape[0], held_ids)
    return (d, tc, classes, task_ids, keys) if keyed else (d, tc, classes, task_ids)
