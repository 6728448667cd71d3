"""Each input object read once, into plain values that the check, the encoder and the twin share.

A call checks a field, then encodes it for the engine (or the twin reads it): three reads. An
object whose fields answer differently at each read -- a ``Task`` subclass overriding
``__getattribute__``, a mapping whose ``items()`` changes, a sequence whose items do -- could
pass the check with one value and be placed with another (a NaN usage on the twin, a host
over-committed, an id registered as an int). So every object that does not take the compiled
fast path (which reads an exact ``Task``, ``Host`` or ``TaskClass`` with plain fields directly)
is first copied here: its fields read once each, mappings as ``dict``, sequences as ``list``
or ``tuple``, constraints as new objects of their exact kind. The copy is what is checked and
used; the caller's object is not read again. In a batch that mixes the two, the fast-path items
are copied too (``snapshot_*``), before any of the caller's code runs. Values themselves (a ``float`` subclass, ...) are read by the value they hold
(``titus.readers``), so they are kept as they are.

A field that cannot be read raises :class:`~titus.scheduler.errors.InputTypeError` naming
it (``tasks[2].scalars: could not be read (RuntimeError: ...)``); a field missing on the object
names it as missing, as the checks did before.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from titus.constraints import BalancedHostAttr, ExclusiveHost, HostAttrValue, UniqueHostAttr
from titus.scheduler.errors import InputTypeError
from titus.scheduler.model import Host, Task, TaskClass

# The fields read, in the order a message names the first missing.
HOST_FIELDS = tuple(f.name for f in dataclasses.fields(Host))
TASK_FIELDS = tuple(f.name for f in dataclasses.fields(Task))
CLASS_FIELDS = tuple(f.name for f in dataclasses.fields(TaskClass))


def _failed(where: str, e: BaseException) -> InputTypeError:
    return InputTypeError(f"{where}: could not be read ({type(e).__name__}: {_text(e)})")


def _text(e: BaseException) -> str:
    try:
        text = str(e)
    except Exception:  # noqa: BLE001 -- a caller's exception may fail to print
        text = "?"
    return text if len(text) <= 120 else text[:117] + "..."


def _field(obj, name: str, where: str):
    try:
        return getattr(obj, name)
    except AttributeError:
        raise InputTypeError(f"{where}.{name}: missing (the object has no such attribute)") from None
    except Exception as e:  # noqa: BLE001 -- a caller's property may raise anything
        raise _failed(f"{where}.{name}", e) from e


def _fields(obj, names, where: str) -> dict:
    return {name: _field(obj, name, where) for name in names}


def mapping_once(value, where: str):
    """A mapping as a new ``dict`` of its items, read once; anything else as it is (the check
    refuses it by its type)."""
    if not isinstance(value, Mapping):
        return value
    try:
        return dict(value.items())
    except Exception as e:  # noqa: BLE001 -- a caller's mapping may raise anything
        raise _failed(where, e) from e


def sequence_once(value, where: str):
    """A list (or subclass) as a new ``list`` of its items, another sequence (not a string) as a
    ``tuple``, read once; anything else as it is (the check refuses it by its type). A list
    stays a list: where a tuple is needed (a constraint's values key tables) the check refuses
    an unhashable list as it did the caller's."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return value
    if type(value) is tuple:
        return value
    try:
        return list(value) if isinstance(value, list) else tuple(value)
    except Exception as e:  # noqa: BLE001
        raise _failed(where, e) from e


def constraint_once(c, where: str):
    """A constraint as a new object of exactly its kind (``HostAttrValue``, ``UniqueHostAttr``,
    ``ExclusiveHost``, ``BalancedHostAttr``), its fields read once and kept as read (values as a
    tuple). Always a copy, an exact kind too: the caller's code run later in the call (another
    object's reads) could change the caller's constraint by ``object.__setattr__`` after its
    check. Anything else as it is (the check refuses it)."""
    kind = type(c).__name__
    if isinstance(c, HostAttrValue):
        f = _fields(c, ("attr", "values"), f"{where} {kind}")
        return _built(HostAttrValue, attr=f["attr"], values=sequence_once(f["values"], f"{where} {kind}.values"))
    if isinstance(c, BalancedHostAttr):
        return _built(BalancedHostAttr, **_fields(c, ("attr", "expected_values"), f"{where} {kind}"))
    if isinstance(c, UniqueHostAttr):
        return _built(UniqueHostAttr, **_fields(c, ("attr",), f"{where} {kind}"))
    if isinstance(c, ExclusiveHost):
        return c if type(c) is ExclusiveHost else ExclusiveHost()  # no field to change
    return c


def _built(kind, **fields):
    """An instance of the frozen dataclass ``kind`` holding ``fields`` exactly as given (its own
    constructor may reshape them: HostAttrValue's turns a value into a tuple of one)."""
    obj = object.__new__(kind)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


def _pairs_once(value, where: str):
    """A mapping whose values are (a, b) pairs (a host's resource sets), each pair read once."""
    value = mapping_once(value, where)
    if type(value) is not dict:
        return value
    return {k: sequence_once(x, f"{where}[{k!r}]") for k, x in value.items()}


def host_once(h, where: str):
    """A ``Host`` (or subclass) as an exact ``Host`` of its fields read once; anything else as it
    is. Raises InputTypeError naming a field that is missing or cannot be read."""
    if not isinstance(h, Host):
        return h
    f = _fields(h, HOST_FIELDS, where)
    ports = sequence_once(f["ports"], f"{where}.ports")
    if type(ports) is tuple or type(ports) is list:
        ports = type(ports)(sequence_once(r, f"{where}.ports[{j}]") for j, r in enumerate(ports))
    f.update(ports=ports, scalars=mapping_once(f["scalars"], f"{where}.scalars"),
             attributes=mapping_once(f["attributes"], f"{where}.attributes"),
             resource_sets=_pairs_once(f["resource_sets"], f"{where}.resource_sets"))
    return _built(Host, **f)


def _demand_shape_once(f: dict, where: str) -> dict:
    # The constraints themselves are read once by the check (``validation.check_constraints``),
    # which names a caller's constraint type in its messages and puts their copies here.
    f.update(hard=sequence_once(f["hard"], f"{where}.hard"), soft=sequence_once(f["soft"], f"{where}.soft"),
             resource_sets=mapping_once(f["resource_sets"], f"{where}.resource_sets"))
    return f


def task_once(t, where: str):
    """A ``Task`` (or subclass) as an exact ``Task`` of its fields read once; anything else as it
    is. Raises InputTypeError naming a field that is missing or cannot be read."""
    if not isinstance(t, Task):
        return t
    f = _demand_shape_once(_fields(t, TASK_FIELDS, where), where)
    f["scalars"] = mapping_once(f["scalars"], f"{where}.scalars")
    return _built(Task, **f)


def class_once(c, where: str):
    """A ``TaskClass`` (or subclass) as an exact ``TaskClass`` of its fields read once; anything
    else as it is. Raises InputTypeError naming a field that is missing or cannot be read."""
    if not isinstance(c, TaskClass):
        return c
    return _built(TaskClass, **_demand_shape_once(_fields(c, CLASS_FIELDS, where), where))


# ----------------------------------------------------------------------------- snapshots
# An item that passed the compiled fast path (an exact Host, Task or TaskClass with plain
# fields: exact str, int and float values, tuples or lists of exact constraints whose fields
# are exact str and int, empty or str -> str dicts) copied as it is, when the caller's code
# runs later in the same call (the full check of another item): the fields of the caller's
# object, its dicts and lists and its constraints could be changed in place after its check.
# Reading them here runs no code of the caller's (the fast path passed only such values).


def _constraint_copy(c):
    return c if type(c) is ExclusiveHost else _built(type(c), **vars(c))


def _demand_shape_snapshot(f: dict) -> dict:
    f["hard"] = tuple(map(_constraint_copy, f["hard"]))
    f["soft"] = tuple(map(_constraint_copy, f["soft"]))
    f["resource_sets"] = dict(f["resource_sets"])
    return f


def snapshot_task(t: Task) -> Task:
    """A copy of a fast-path ``Task`` nothing of the caller's can change."""
    f = _demand_shape_snapshot(dict(vars(t)))
    f["scalars"] = dict(f["scalars"])
    return _built(Task, **f)


def snapshot_class(c: TaskClass) -> TaskClass:
    """A copy of a fast-path ``TaskClass`` nothing of the caller's can change."""
    return _built(TaskClass, **_demand_shape_snapshot(dict(vars(c))))


def snapshot_host(h: Host) -> Host:
    """A copy of a fast-path ``Host`` nothing of the caller's can change (its port ranges are
    tuples of ints already)."""
    f = dict(vars(h))
    f.update(ports=tuple(f["ports"]), scalars=dict(f["scalars"]), attributes=dict(f["attributes"]),
             resource_sets=dict(f["resource_sets"]))
    return _built(Host, **f)
