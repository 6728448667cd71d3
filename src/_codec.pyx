# cython: language_level=3, boundscheck=False, wraparound=False
"""The Python-object <-> array boundary of the scheduling engine (``titus._engine``).

``Codec`` interns every name once (attribute names and values, jobs, groups, resource-set names
and labels, host ids) and turns lists of ``Host``/``Task``/``TaskClass`` objects into the packed
int32/float64 arrays the engine reads, then turns the engine's answers back into ``Failure``
objects. The engine itself sees only ints and doubles.

The codec trusts its input: the scheduler validates each call whole first
(``titus.scheduler.validation``), so nothing here fails half way through a batch. Host ids are
registered (``register_hosts``) only once the engine holds the hosts, and a lookup that may be
refused (``set_requests(..., intern_names=False)``) leaves the name tables as they were.

Array layouts:

- hosts: ``caps`` float64[n, R]; ``fnv`` uint64[n] (FNV-1a of the UTF-8 id); ``attrs``
  int32[m, 3] (host row, attribute id, value id); ``ports`` int32[p, 3] (host row, lo, hi);
  ``sets`` int32[s, 4] (host row, set name id, sets, slots);
- classes: the engine's own row types (``csrc/layout.hpp``, exported as numpy dtypes):
  ``cls`` CLASS_DTYPE[K], ``cons`` CONSTRAINT_DTYPE[C], ``vals`` int32[V] and ``rs``
  SET_REQUEST_DTYPE[S] (sorted by name within a class).
"""
import numpy as np
cimport numpy as cnp
from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.long cimport PyLong_FromVoidPtr
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, uint64_t

from titus._engine import (BASE_RESOURCES, CLASS_DTYPE, CONSTRAINT_DTYPE, CONSTRAINT_KINDS,
                           CONSTRAINT_REASON_PREFIX, FIXED_REASONS, PORTS_REASON,
                           REASON_GROUP_LIMIT, SET_REASON_PREFIX, SET_REQUEST_DTYPE)
from titus.constraints import CONSTRAINT_TYPES, plain_constraint, value_text
from titus.readers import int_value, quantity

cnp.import_array()

HOSTNAME = "hostname"
_KINDS = {cls: CONSTRAINT_KINDS[cls.__name__] for cls in CONSTRAINT_TYPES}
_EXCLUSIVE = CONSTRAINT_KINDS["ExclusiveHost"]
_HOST_ATTR_VALUE = CONSTRAINT_KINDS["HostAttrValue"]
_BALANCED = CONSTRAINT_KINDS["BalancedHostAttr"]
cdef int32_t _K_EXCLUSIVE = _EXCLUSIVE, _K_HOST_ATTR_VALUE = _HOST_ATTR_VALUE, _K_BALANCED = _BALANCED
# A class row as int32 columns: the column of each field of CLASS_DTYPE.
_COL = {name: CLASS_DTYPE.fields[name][1] // 4 for name in CLASS_DTYPE.names}
cdef Py_ssize_t _JOB = _COL["job"], _GROUP = _COL["group"], _PORTS = _COL["ports"]
cdef Py_ssize_t _HARD_OFF = _COL["hard_off"], _HARD_CNT = _COL["hard_cnt"]
cdef Py_ssize_t _SOFT_OFF = _COL["soft_off"], _SOFT_CNT = _COL["soft_cnt"]
cdef Py_ssize_t _RS_OFF = _COL["rs_off"], _RS_CNT = _COL["rs_cnt"]
# A constraint row likewise (CONSTRAINT_DTYPE: int32 fields only).
_CCOL = {name: CONSTRAINT_DTYPE.fields[name][1] // 4 for name in CONSTRAINT_DTYPE.names}
cdef Py_ssize_t _C_KIND = _CCOL["kind"], _C_ATTR = _CCOL["attr"], _C_EXPECTED = _CCOL["expected_values"]
cdef Py_ssize_t _C_VAL_OFF = _CCOL["val_off"], _C_VAL_CNT = _CCOL["val_cnt"]


cpdef uint64_t fnv1a64(object text):
    """64-bit FNV-1a of the UTF-8 bytes of ``text`` (a str, or a subclass: its text counts)."""
    if not isinstance(text, str):
        raise TypeError(f"fnv1a64: expected a str, got {type(text).__name__}")
    cdef bytes data = str.encode(text, "utf-8")
    cdef const unsigned char[:] view = data
    cdef uint64_t h = 0xCBF29CE484222325ULL
    cdef Py_ssize_t i
    for i in range(view.shape[0]):
        h = (h ^ view[i]) * 0x100000001B3ULL
    return h


cdef inline int32_t intern(dict table, object key):
    """The id of ``key`` in ``table``, giving it the next id when it is new."""
    cdef object found = table.get(key)
    if found is None:
        found = len(table)
        table[key] = found
    return <int32_t>found


cdef double _MAX_FLOAT = 1.7976931348623157e308


cdef extern from "Python.h":
    # The head of a dict object (Include/cpython/dictobject.h): ``ma_values`` is set only on a
    # split table, whose keys CPython keeps exact ``str`` (inserting any other key makes the
    # dict a combined table first).
    ctypedef struct _DictHead "PyDictObject":
        void* ma_values


cdef extern from *:
    """
    /* Whether a str is all ASCII: the flag CPython keeps on every str (what str.isascii()
       reads, without the cost of a method call). */
    static inline int titus_is_ascii(PyObject *s) {
    #if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(s) == -1) return -1;
    #endif
        return PyUnicode_IS_ASCII(s) ? 1 : 0;
    }
    """
    int _is_ascii "titus_is_ascii"(str s) except -1


cdef inline bint _plain_name(object x):
    return x is None or (type(x) is str and len(<str>x) > 0 and _is_ascii(<str>x))


def plain_classes(list classes, object task_class, object max_count, object min_priority,
                  object max_priority, ConstraintVerdicts plain_constraints):
    """Whether every class is obviously valid: a ``task_class`` instance with a bool ``gang``, a
    plain (None or non-empty ASCII str) job and group, int ports in ``[0, max_count]``, no
    resource sets, an int priority in ``[min_priority, max_priority]``, and hard and soft
    tuples or lists that ``plain_constraints`` accepts. The validator's fast path: a class
    failing it takes the full check, which names what is wrong."""
    cdef object c
    cdef bint gang
    cdef int32_t prio
    cdef set ok = set()  # constraint tuples found valid in this call, by id (see plain_task_prefix)
    for c in classes:
        if _plain_class(c, task_class, max_count, min_priority, max_priority, plain_constraints, ok, &gang,
                        &prio) is None:
            return False
    return True


def plain_class_keys(list classes, object task_class, object max_count, object min_priority,
                     object max_priority, ConstraintVerdicts plain_constraints):
    """``plain_classes`` and ``Codec.class_keys`` in one pass over the objects (a trace's call
    carries one class per job: tens of thousands, each read once): ``(keys, gang bool[K],
    priority int32[K])`` when every class is obviously valid, else None (the caller takes the
    full check, then ``class_keys``)."""
    cdef Py_ssize_t n = len(classes), k
    keys, gang, prio = _key_table(n)
    cdef cnp.uint8_t[::1] gv = gang.view(np.uint8)
    cdef int32_t[::1] pv = prio
    cdef set ok = set()
    cdef bint g
    cdef int32_t p
    cdef object key
    for k in range(n):
        key = _plain_class(classes[k], task_class, max_count, min_priority, max_priority, plain_constraints, ok, &g, &p)
        if key is None:
            return None
        keys[k] = key
        gv[k] = g
        pv[k] = p
    return keys, gang, prio


cdef tuple _key_table(Py_ssize_t n):
    """The class table both ``plain_class_keys`` and ``Codec.class_keys`` fill: ``([None] * n,
    gang bool[n], priority int32[n])``."""
    return [None] * n, np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.int32)


cdef tuple _plain_class(object c, object task_class, object max_count, object min_priority, object max_priority,
                        ConstraintVerdicts plain_constraints, set ok, bint* gang_out, int32_t* prio_out):
    """The class key of ``c`` (as ``Codec.class_keys`` makes it) when ``c`` is obviously valid
    (see plain_classes), its gang flag and priority in the outs; else None. The key holds the
    very values checked: a constraint's check runs Python code, which may rebind a field."""
    if type(c) is not task_class:
        return None
    cdef dict f = _fields(c)  # the exact type: its fields are its instance dict's items
    if f is None:
        return None
    cdef object gang = f.get("gang"), job = f.get("job", 0), group = f.get("group", 0)
    if type(gang) is not bool or not _plain_name(job) or not _plain_name(group):
        return None
    cdef object ports = f.get("ports"), prio = f.get("priority")
    if type(ports) is not int or not (0 <= ports <= max_count):
        return None
    if type(prio) is not int or not (min_priority <= prio <= max_priority):
        return None
    cdef object sets = f.get("resource_sets")
    if type(sets) is not dict or sets:  # a non-dict "empty" (None, []) is no mapping
        return None
    cdef tuple hard = _checked_tuple(plain_constraints, f.get("hard"), ok)
    if hard is None:
        return None
    cdef tuple soft = _checked_tuple(plain_constraints, f.get("soft"), ok)
    if soft is None:
        return None
    gang_out[0] = gang is True
    prio_out[0] = <int32_t>prio
    return (job, group, _key_constraints(hard), _key_constraints(soft), ports, ())


cdef tuple _checked_tuple(ConstraintVerdicts verdicts, object cs, set ok):
    """``cs`` as a tuple when every constraint in it is obviously valid, else None. A list is
    copied first and the copy checked, so that what is checked is what is kept (a check runs
    Python code, which may change a list), and never noted by id in ``ok`` (the copy need not
    outlive the call: a later tuple could take its id)."""
    cdef tuple t
    if type(cs) is tuple:
        return cs if _plain_in_call(verdicts, cs, ok) else None
    if type(cs) is list:
        t = tuple(cs)
        return t if verdicts.plain(t) else None
    return None


cdef inline bint _empty_dict(object x):
    # the fast paths' "none": any other empty value (None, [], "") is no mapping, refused by name
    return type(x) is dict and not x


cdef inline bint _plain_quantity(object x):
    # NaN fails both comparisons; +inf is above the largest float
    cdef double f
    if type(x) is float:
        f = <double>x
        return 0.0 <= f <= _MAX_FLOAT
    return type(x) is int and 0 <= x <= _MAX_FLOAT


cdef inline dict _fields(object x):
    """The instance dict of ``x`` (None if it has none, or if a key of it is not exactly a
    ``str``): a fast path reads the fields of an object of an exact, known dataclass type there
    (its class defines no descriptor for them). A key of another type whose hash equals a
    field's would have its ``__eq__`` called by every lookup of that field: the caller's code,
    which could answer one value to the check and another to the encoder."""
    cdef object d = getattr(x, "__dict__", None)
    if type(d) is not dict:
        return None
    if (<_DictHead*><PyObject*>d).ma_values != NULL:
        return d  # a split table (an instance dict as its class's __init__ made it): str keys only
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    while PyDict_Next(d, &pos, &key, &value):
        if type(<object>key) is not str:
            return None
    return d


cdef object _HAV = CONSTRAINT_TYPES[0], _UNIQUE = CONSTRAINT_TYPES[1], _EXCL = CONSTRAINT_TYPES[2]
cdef object _BAL = CONSTRAINT_TYPES[3]


cdef inline bint _exact_kind(object c):
    """Whether ``c`` is exactly one of the four kinds (no caller's subclass)."""
    cdef object t = type(c)
    return t is _HAV or t is _BAL or t is _UNIQUE or t is _EXCL


cdef inline object _int(object x):
    """An integer field as ``titus.readers.int_value`` reads it; an exact int without a call."""
    return x if type(x) is int else int_value(x)


cdef tuple _key_constraints(object cs):
    """A task's constraints as its class key holds them: a tuple, and a caller's own subclass of a
    kind as that kind (``plain_constraint``), so classes are told apart by their constraints'
    fields, never by a subclass's ``==`` or ``hash``."""
    cdef tuple t = cs if type(cs) is tuple else tuple(cs)
    for c in t:
        if not _exact_kind(c):
            return tuple([plain_constraint(x) for x in t])
    return t


cdef inline double _quantity(object x) except? -1.0:
    """A quantity as ``titus.readers.quantity`` reads it; an exact float or int without a call."""
    if type(x) is float:
        return <double>x
    if type(x) is int:
        return float(x)
    return quantity(x)


cdef inline object _read(dict f, object x, str name):
    """Field ``name`` of ``x``: from its instance dict ``f`` when one is given and holds it (an
    object of an exact dataclass type whose class has no descriptor for it), else by getattr."""
    cdef PyObject* found
    if f is not None:
        found = PyDict_GetItem(f, name)
        if found is not NULL:
            return <object>found
    return getattr(x, name)


cdef inline bint _plain_id(object x):
    return type(x) is str and len(<str>x) > 0 and _is_ascii(<str>x)


def plain_task_prefix(list tasks, object task_type, object max_count, object min_priority,
                      object max_priority, ConstraintVerdicts plain_constraints):
    """How many leading tasks are obviously valid (validation's fast path for ``Task``
    objects: plain id, quantities, ports, priority, job, group and constraints; no gang,
    scalars or resource sets). The rest take the per-task checks, which name what is wrong."""
    cdef Py_ssize_t i, n = len(tasks)
    cdef object t, ports, prio, hard, soft
    cdef dict f
    # Constraint tuples this call found valid, by id: the tasks of a job often share them, and
    # ``tasks`` holds each one (with its frozen constraints) until the call returns.
    cdef set ok = set()
    for i in range(n):
        t = tasks[i]
        if type(t) is not task_type:
            return i
        # The exact type has no descriptor for its fields: they are its instance dict's items
        # (one attribute lookup instead of fourteen). A field missing there is no fast path.
        f = _fields(t)
        if f is None or not _plain_id(f.get("id")) or f.get("gang", 0) is not None:
            return i
        prio, ports = f.get("priority"), f.get("ports")
        if type(prio) is not int or not (min_priority <= prio <= max_priority):
            return i
        if not (_plain_quantity(f.get("cpus")) and _plain_quantity(f.get("memory_mb"))
                and _plain_quantity(f.get("disk_mb")) and _plain_quantity(f.get("network_mbps"))):
            return i
        if type(ports) is not int or not (0 <= ports <= max_count) or not _empty_dict(f.get("scalars")) \
                or not _empty_dict(f.get("resource_sets")):
            return i
        if not _plain_name(f.get("job", 0)) or not _plain_name(f.get("group", 0)):
            return i
        hard, soft = f.get("hard"), f.get("soft")
        if not _plain_in_call(plain_constraints, hard, ok) or not _plain_in_call(plain_constraints, soft, ok):
            return i
    return n


cdef inline object _identity(object x):
    # id(x), without calling the builtin through Python's call protocol
    return PyLong_FromVoidPtr(<void*>x)


cdef inline bint _plain_in_call(ConstraintVerdicts verdicts, object cs, set ok) except -1:
    if type(cs) is tuple:
        if not cs:
            return True
        key = _identity(cs)
        if key in ok:
            return True
        if verdicts.plain(cs):
            ok.add(key)
            return True
        return False
    return verdicts.plain(cs)


def plain_host_prefix(list hosts, object host_type, object max_port):
    """How many leading hosts are obviously valid (validation's fast path for ``Host`` objects:
    plain id and quantities, (lo, hi) int port ranges within [0, max_port], str attributes; no
    scalars or resource sets). The rest take the per-host checks, which name what is wrong."""
    cdef Py_ssize_t i, n = len(hosts)
    cdef object h, ports, attrs, r, k, x
    cdef dict f
    for i in range(n):
        h = hosts[i]
        if type(h) is not host_type:
            return i
        # Read from the instance dict, as for tasks: a field deleted there is no fast path.
        f = _fields(h)
        if f is None or not _plain_id(f.get("id")):
            return i
        if not (_plain_quantity(f.get("cpus")) and _plain_quantity(f.get("memory_mb"))
                and _plain_quantity(f.get("disk_mb")) and _plain_quantity(f.get("network_mbps"))):
            return i
        ports, attrs = f.get("ports"), f.get("attributes")
        if not _empty_dict(f.get("scalars")) or not _empty_dict(f.get("resource_sets")) \
                or (type(ports) is not list and type(ports) is not tuple):
            return i
        if type(attrs) is not dict:
            return i
        for r in ports:
            if not (type(r) is tuple and len(r) == 2 and type(r[0]) is int and type(r[1]) is int
                    and 0 <= r[0] <= r[1] <= max_port):
                return i
        for k, x in (<dict>attrs).items():
            if not (_plain_id(k) and type(x) is str and _is_ascii(<str>x)):
                return i
    return n


cdef bint _plain_constraint(object c, object host_attr_value, object balanced, object max_count):
    """Whether ``c`` is obviously valid: an exact HostAttrValue naming a non-empty ASCII
    attribute and a non-empty tuple of non-empty ASCII values, or an exact BalancedHostAttr
    naming one and an int ``expected_values`` in ``1..max_count`` (a subset of what the full
    check accepts; anything else takes it)."""
    cdef dict f
    if type(c) is host_attr_value:
        f = _fields(c)
        if f is None or not _plain_id(f.get("attr")):
            return False
        vals = f.get("values")
        if type(vals) is not tuple or not vals:
            return False
        for x in <tuple>vals:
            if not _plain_id(x):
                return False
        return True
    if type(c) is balanced:
        f = _fields(c)
        if f is None or not _plain_id(f.get("attr")):
            return False
        k = f.get("expected_values")
        return type(k) is int and 1 <= k <= max_count
    return False


cdef object _constraint_key(object c, object host_attr_value, object balanced):
    """The key a constraint's verdict is kept under, when ``c`` is exactly one of the four kinds
    with an instance dict of ``str`` keys and fields of exact builtin types (a ``str``
    attribute, a tuple of ``str`` and ``int`` values, an ``int`` count): ``(kind, attr, values)``,
    ``(kind, attr, count)``, ``(kind, attr)`` or ``(kind,)``. The key holds those immutable
    values, not ``c`` (whose fields ``object.__setattr__`` could change once its verdict is
    kept), and is hashed and compared in C (a ``str`` never equals an ``int``). None for any
    other constraint: a field of a caller's type (a tuple subclass whose ``__iter__`` answers
    other values to the encoder, a ``str`` subclass) runs the caller's code when read, so the
    full check reads it once into a copy (``titus.scheduler.read_once``) instead."""
    cdef object t = type(c)
    if t is _EXCL:
        return (t,)
    if t is not host_attr_value and t is not balanced and t is not _UNIQUE:
        return None
    cdef dict f = _fields(c)
    if f is None:
        return None
    attr = f.get("attr")
    if type(attr) is not str:
        return None
    if t is host_attr_value:
        vals = f.get("values")
        if type(vals) is not tuple:
            return None
        for x in <tuple>vals:
            if type(x) is not str and type(x) is not int:
                return None
        return (t, attr, vals)
    if t is balanced:
        k = f.get("expected_values")
        return (t, attr, k) if type(k) is int else None
    return (t, attr)


cdef class ConstraintVerdicts:
    """Constraints already found valid: each is checked once (``check_one(c, where)``, which
    raises TypeError, ValueError or AttributeError on a bad one) and its verdict kept in
    ``known`` under a key that tells apart equal constraints of other value types (at most
    ``limit`` of them). Calling it with a list or tuple of constraints says whether every one
    is valid; anything else is not, nor is a caller's subclass of a kind (the full check reads
    it once). Constraints are frozen values, so a verdict holds for ever.
    """
    cdef readonly dict known
    cdef object check_one, host_attr_value, balanced, max_count
    cdef Py_ssize_t limit

    def __init__(self, dict known, object check_one, object host_attr_value, object balanced,
                 Py_ssize_t limit=100_000, object max_count=0):
        self.known, self.check_one, self.limit = known, check_one, limit
        self.host_attr_value, self.balanced = host_attr_value, balanced
        self.max_count = max_count

    def __call__(self, object cs):
        return self.plain(cs)

    cdef bint plain(self, object cs):
        if type(cs) is tuple:
            if not cs:  # most tasks: no constraint of a kind
                return True
        elif type(cs) is not list:
            return False
        for c in cs:
            if _plain_constraint(c, self.host_attr_value, self.balanced, self.max_count):
                continue  # a trace's call brings thousands never seen: no Python check for them
            # A caller's subclass, or a field of a caller's type: reading it runs the caller's
            # code, which may answer differently at each read, so the full check reads it once
            # into a copy (titus.scheduler.read_once) and that copy is what is encoded; not a
            # fast path. The check of the rest runs no code of the caller's.
            key = _constraint_key(c, self.host_attr_value, self.balanced)
            if key is None:
                return False
            if key in self.known:
                continue
            try:
                self.check_one(c, "constraint")
            except (TypeError, ValueError, AttributeError):
                return False
            if len(self.known) < self.limit:
                self.known[key] = True
        return True


cdef int32_t _EMPTY = -1, _GONE = -2


cdef class HostIndex:
    """Live host id -> engine index, and index -> id (``ids``: ``None`` where removed).

    A dict would keep, per host, an entry and an int object for the index (some 67 bytes at
    100k hosts); this open-addressing table keeps one int32 slot per host at load <= 3/4 and
    compares against ``ids`` (a str caches its hash), some 16 bytes a host with ``ids``.
    Supports ``in``, ``[]``, ``get``, ``del`` and ``len`` like the dict it replaces.
    """

    cdef public list ids
    cdef cnp.ndarray _slots      # int32: an index into ids, _EMPTY or _GONE
    cdef Py_ssize_t _live, _used  # live ids; slots not empty (live + gone)

    def __init__(self):
        self.ids = []
        self._slots = np.full(8, _EMPTY, dtype=np.int32)
        self._live = 0
        self._used = 0

    def __len__(self):
        return self._live

    cdef Py_ssize_t _find(self, object key) except -2:
        """The slot holding ``key``, or -1."""
        cdef int32_t[::1] slots = self._slots
        cdef size_t mask = <size_t>slots.shape[0] - 1
        cdef size_t i = (<size_t>hash(key)) & mask
        cdef int32_t x
        while True:
            x = slots[i]
            if x == _EMPTY:
                return -1
            if x >= 0 and self.ids[x] == key:
                return <Py_ssize_t>i
            i = (i + 1) & mask

    cdef void _put(self, int32_t[::1] slots, object key, int32_t index):
        cdef size_t mask = <size_t>slots.shape[0] - 1
        cdef size_t i = (<size_t>hash(key)) & mask
        while slots[i] != _EMPTY:
            i = (i + 1) & mask
        slots[i] = index

    cdef void _rebuild(self, Py_ssize_t room):
        cdef Py_ssize_t size = 8, i
        while size * 3 < room * 4 + 4:
            size *= 2
        fresh = np.full(size, _EMPTY, dtype=np.int32)
        cdef int32_t[::1] slots = fresh
        for i in range(len(self.ids)):
            if self.ids[i] is not None:
                self._put(slots, self.ids[i], <int32_t>i)
        self._slots = fresh
        self._used = self._live

    def add(self, list ids):
        """Append hosts under the next indices, in order (their ids are not in the index)."""
        need = self._used + len(ids)
        first = len(self.ids)
        self.ids.extend(ids)
        self._live += len(ids)
        if need * 4 > self._slots.shape[0] * 3:
            self._rebuild(self._live + self._live // 2)  # doubling: growth stays amortised
            return
        cdef int32_t[::1] slots = self._slots
        cdef Py_ssize_t i
        for i in range(len(ids)):
            self._put(slots, ids[i], <int32_t>(first + i))
        self._used = need

    def __contains__(self, key):
        return self._find(key) >= 0

    def get(self, key, default=None):
        cdef Py_ssize_t i = self._find(key)
        return default if i < 0 else int(self._slots[i])

    def __getitem__(self, key):
        cdef Py_ssize_t i = self._find(key)
        if i < 0:
            raise KeyError(key)
        return int(self._slots[i])

    def __delitem__(self, key):
        cdef Py_ssize_t i = self._find(key)
        if i < 0:
            raise KeyError(key)
        cdef int32_t[::1] slots = self._slots
        self.ids[slots[i]] = None
        slots[i] = _GONE
        self._live -= 1
        if self._used > 2 * self._live + 8:  # mostly removed slots: probes would lengthen
            self._rebuild(self._live)


cdef class Codec:
    """Interning tables and the encoders/decoders of one scheduler."""

    cdef public list resources          # resource names, in demand column order
    cdef public dict resource_col       # name -> column
    cdef public HostIndex host_index    # live host id <-> index
    cdef public dict attrs              # attribute name -> id (hostname is 0)
    cdef public list attr_values        # per attribute id: {str value: local id}
    cdef public dict jobs, groups, set_names, labels

    def __init__(self):
        self.resources = list(BASE_RESOURCES)
        self.resource_col = {r: i for i, r in enumerate(BASE_RESOURCES)}
        self.host_index = HostIndex()
        self.attrs = {HOSTNAME: 0}
        self.attr_values = [None]  # hostname values are host indices
        self.jobs = {}
        self.groups = {}
        self.set_names = {}
        self.labels = {}

    # ------------------------------------------------------------------ resources
    def note_scalars(self, list items):
        """Append scalar names not seen before (in order) from hosts' or tasks' ``scalars``.

        Returns how many were added (the engine must add as many columns).
        """
        cdef int added = 0
        for item in items:
            for name in item.scalars:
                if name not in self.resource_col:
                    self.resource_col[name] = len(self.resources)
                    self.resources.append(name)
                    added += 1
        return added

    cdef void _fill_row(self, double[:, ::1] out, Py_ssize_t i, object item, dict f=None) except *:
        # f: the item's instance dict, when its fields may be read there (see _read)
        # read as the check read them (titus.readers.quantity): a subclass by its value
        out[i, 0] = _quantity(_read(f, item, "cpus"))
        out[i, 1] = _quantity(_read(f, item, "memory_mb"))
        out[i, 2] = _quantity(_read(f, item, "disk_mb"))
        out[i, 3] = _quantity(_read(f, item, "network_mbps"))
        scalars = _read(f, item, "scalars")
        if type(scalars) is not dict or scalars:  # most have none: no items view, no iterator
            for name, q in scalars.items():
                out[i, <Py_ssize_t>self.resource_col[name]] = _quantity(q)

    def demand_row(self, task):
        """One task's demand as float64[R], in resource order."""
        out = np.zeros((1, len(self.resources)), dtype=np.float64)
        self._fill_row(out, 0, task)
        return out[0]

    # ------------------------------------------------------------------ hosts
    def encode_hosts(self, list hosts):
        """Pack hosts for ``Engine.add_hosts`` (their ids are registered by ``register_hosts``)."""
        cdef Py_ssize_t n = len(hosts), i, k = 0
        caps = np.zeros((n, len(self.resources)), dtype=np.float64)
        fnv = np.empty(n, dtype=np.uint64)
        cdef double[:, ::1] cv = caps
        cdef uint64_t[::1] fv = fnv
        # attribute rows straight into an array: a tuple per (host, attribute) would cost a few
        # hundred bytes per host of Python heap that the allocator keeps after the call
        cdef Py_ssize_t n_attr_rows = 0
        for i in range(n):
            n_attr_rows += len(hosts[i].attributes)
        attrs = np.empty((n_attr_rows, 3), dtype=np.int32)
        cdef int32_t[:, ::1] av = attrs
        ports, sets = [], []
        cdef int32_t a
        for i in range(n):
            h = hosts[i]
            self._fill_row(cv, i, h)
            fv[i] = fnv1a64(h.id)
            for name, value in h.attributes.items():
                if name == HOSTNAME:
                    continue  # hostname is always the host id
                a = intern(self.attrs, name)
                if a == len(self.attr_values):
                    self.attr_values.append({})
                av[k, 0] = i
                av[k, 1] = a
                av[k, 2] = intern(self.attr_values[a], value if type(value) is str else value_text(value))
                k += 1
            for lo, hi in h.ports:
                ports.append((i, _int(lo), _int(hi)))
            for name, shape in h.resource_sets.items():
                sets.append((i, intern(self.set_names, name), _int(shape[0]), _int(shape[1])))
        return (caps, fnv, attrs[:k], _rows(ports, 3), _rows(sets, 4))

    def register_hosts(self, list ids, int first_index):
        """Know hosts by id once the engine holds them: ``ids[i]`` has index ``first_index + i``
        (the next indices: ``first_index`` must be the number of hosts ever added)."""
        if first_index != len(self.host_index.ids):
            raise ValueError(f"register_hosts: first_index {first_index} is not the next index "
                             f"{len(self.host_index.ids)}")
        self.host_index.add(ids)

    # ------------------------------------------------------------------ tasks and classes
    def encode_tasks(self, list tasks, object plain_type=None):
        """Demand rows and task classes of a task list: (demand f64[N, R], task_class i32[N], keys).

        Tasks that share job, group, constraints, ports and resource sets share a class; each
        class key is ``(job, group, hard, soft, ports, sorted resource_sets items)``. The fields
        of a task of exactly ``plain_type`` (a dataclass defining no descriptor for them) are
        read from its instance dict: a dict lookup where an attribute lookup costs several.
        """
        cdef Py_ssize_t n = len(tasks), i
        demand = np.zeros((n, len(self.resources)), dtype=np.float64)
        task_class = np.empty(n, dtype=np.int32)
        cdef double[:, ::1] dv = demand
        cdef int32_t[::1] tv = task_class
        cdef dict index = {}
        # (job, group, id(hard), id(soft), ports) -> (class, hard, soft), for tasks without
        # resource sets whose constraint tuples are objects seen before in this call (the tasks
        # of a job share them when built from one spec): a constraint's hash is Python code, a
        # tuple's id is not. The entry holds its tuples: an id is an object's only while it
        # lives, and a task need not hold the tuple it hands out (a subclass may build one per
        # read), so a freed tuple's id could otherwise name a new tuple of other constraints.
        cdef dict seen = {}
        cdef object t, hard, soft, sets, ports, quick, key, k, job, group
        cdef dict f
        # The last task that took the quick path, by its very objects: the tasks of a job mostly
        # follow each other, and the same objects are the same class without any hashing.
        cdef object p_job = None, p_group = None, p_hard = None, p_soft = None, p_ports = None
        cdef int32_t p_k = -1
        keys = []
        for i in range(n):
            t = tasks[i]
            f = _fields(t) if type(t) is plain_type else None
            self._fill_row(dv, i, t, f)
            hard, soft, sets, ports = _read(f, t, "hard"), _read(f, t, "soft"), _read(f, t, "resource_sets"), _read(f, t, "ports")
            job, group = _read(f, t, "job"), _read(f, t, "group")
            ports = _int(ports)
            quick = k = None
            if type(hard) is tuple and type(soft) is tuple and not sets:
                if hard is p_hard and soft is p_soft and job is p_job and group is p_group and ports == p_ports:
                    tv[i] = p_k
                    continue
                quick = (job, group, _identity(hard), _identity(soft), ports)
                k = seen.get(quick)
                if k is not None:
                    k = (<tuple>k)[0]
            if k is None:
                key = (job, group, _key_constraints(hard), _key_constraints(soft), ports,
                       tuple(sorted(sets.items())) if sets else ())
                k = index.get(key)
                if k is None:
                    k = len(keys)
                    index[key] = k
                    keys.append(key)
                if quick is not None:
                    seen[quick] = (k, hard, soft)
            if quick is not None:
                p_k = k
                p_job, p_group, p_hard, p_soft, p_ports = job, group, hard, soft, ports
            tv[i] = k
        return demand, task_class, keys

    def class_key(self, c):
        """The class key of a ``TaskClass`` (or a ``Task``)."""
        return (c.job, c.group, _key_constraints(c.hard), _key_constraints(c.soft), _int(c.ports),
                tuple(sorted(c.resource_sets.items())))

    def class_keys(self, list classes):
        """One pass over validated ``TaskClass`` objects (a trace's calls carry one per job: tens
        of thousands): ``([class_key(c) ...], gang bool[K], priority int32[K])``."""
        cdef Py_ssize_t n = len(classes), k
        keys, gang, prio = _key_table(n)
        cdef cnp.uint8_t[::1] gv = gang.view(np.uint8)
        cdef int32_t[::1] pv = prio
        cdef object c, hard, soft, sets, ports
        for k in range(n):
            c = classes[k]
            hard, soft, sets, ports = c.hard, c.soft, c.resource_sets, c.ports
            keys[k] = (c.job, c.group, _key_constraints(hard), _key_constraints(soft),
                       _int(ports),
                       tuple(sorted(sets.items())) if sets else ())
            gv[k] = 1 if c.gang else 0
            pv[k] = _int(c.priority)
        return keys, gang, prio

    def encode_classes(self, list keys):
        """Pack class keys for ``Engine.schedule``: (cls, cons, vals, rs).

        The constraint rows are written in place (a trace's call has one class per job, and a
        list of tuples turned into a record array would cost more than the rest)."""
        cdef Py_ssize_t k_n = len(keys), k, n_cons = 0, j = 0
        cdef tuple key
        for key in keys:
            n_cons += len(key[2]) + len(key[3])
        cls = np.zeros(k_n, dtype=CLASS_DTYPE)
        cdef int32_t[:, ::1] cv = cls.view(np.int32).reshape(k_n, len(CLASS_DTYPE.names))
        cons = np.zeros(n_cons, dtype=CONSTRAINT_DTYPE)
        cdef int32_t[:, ::1] kv = cons.view(np.int32).reshape(n_cons, len(CONSTRAINT_DTYPE.names))
        cdef list vals = [], rs = []
        cdef dict jobs = self.jobs, groups = self.groups
        for k in range(k_n):
            job, group, hard, soft, n_ports, sets = keys[k]
            cv[k, _JOB] = -1 if job is None else intern(jobs, job)
            cv[k, _GROUP] = -1 if group is None else intern(groups, group)
            cv[k, _PORTS] = n_ports
            cv[k, _HARD_OFF] = j
            for c in hard:
                self._put_constraint(c, vals, &kv[j, 0])
                j += 1
            cv[k, _HARD_CNT] = len(hard)
            cv[k, _SOFT_OFF] = j
            for c in soft:
                self._put_constraint(c, vals, &kv[j, 0])
                j += 1
            cv[k, _SOFT_CNT] = len(soft)
            cv[k, _RS_OFF] = len(rs)
            for name, label in sets:
                rs.append((intern(self.set_names, name), intern(self.labels, label)))
            cv[k, _RS_CNT] = len(sets)
        return cls, cons, np.asarray(vals, dtype=np.int32), _records(rs, SET_REQUEST_DTYPE)

    cdef void _put_constraint(self, object c, list vals, int32_t* row) except *:
        """Constraint ``c`` as one constraint-table row (its values appended to vals)."""
        found = _KINDS.get(type(c))
        if found is None:  # a subclass of one of the four kinds
            found = next(k for cls, k in _KINDS.items() if isinstance(c, cls))
        cdef int32_t kind = found, attr = -1, expected = 1, n_vals = 0
        row[_C_VAL_OFF] = len(vals)
        if kind != _K_EXCLUSIVE:
            attr = self.attrs.get(c.attr, -1)
            if kind == _K_HOST_ATTR_VALUE:
                for x in c.values:
                    vals.append(self._value_id(attr, x if type(x) is str else value_text(x)))
                    n_vals += 1
            elif kind == _K_BALANCED:
                expected = _int(c.expected_values)
        row[_C_KIND] = kind
        row[_C_ATTR] = attr
        row[_C_EXPECTED] = expected
        row[_C_VAL_CNT] = n_vals

    cdef int32_t _value_id(self, int32_t attr, str value):
        if attr < 0:
            return -1
        if attr == 0:
            return self.host_index.get(value, -1)
        return self.attr_values[attr].get(value, -1)

    def group_limits(self, dict limits):
        """Group limits as (group ids int32[L], limits float64[L, R]; +inf where none)."""
        ids = np.empty(len(limits), dtype=np.int32)
        table = np.full((len(limits), len(self.resources)), np.inf, dtype=np.float64)
        for row, (group, lim) in enumerate(limits.items()):
            ids[row] = intern(self.groups, group)
            for r, value in lim.items():
                col = self.resource_col.get(r)
                if col is not None:
                    table[row, col] = value
        return ids, table

    def set_requests(self, dict sets, bint intern_names=True):
        """A task's resource-set requests sorted by name: int32[S, 2] (name id, label id).

        With ``intern_names`` false, names not seen yet are only looked up: an unknown set name
        is -1 (no host has it) and an unknown label -2 (no set carries it; -1 means unlabelled).
        """
        if intern_names:
            return _rows([(intern(self.set_names, n), intern(self.labels, l)) for n, l in sorted(sets.items())], 2)
        return _rows([(self.set_names.get(n, -1), self.labels.get(l, -2)) for n, l in sorted(sets.items())], 2)

    # ------------------------------------------------------------------ failures
    def failures(self, list keys, task_class, fail_rows, fail_counts, int n_hosts):
        """Failure objects of the unplaced rows, as [(row, Failure)].

        A failure row holds, per reason slot, how many hosts that reason rejected: slot 0 is 1
        when the task's group limit stopped it, then disabled, exclusive, each resource, ports,
        the class's resource sets (up to the most any class asks) and hard constraints. Rows
        of one class with the same counts share one (frozen) Failure: a backlog that cannot
        fit is mostly such rows, and building one object per row would cost more than the
        placement.
        """
        cdef Py_ssize_t f, j, w, row, k
        cdef int32_t[:, ::1] counts = fail_counts
        cdef int32_t[::1] rows = fail_rows
        cdef int32_t[::1] tc = task_class
        cdef Py_ssize_t max_sets = max([len(key[5]) for key in keys], default=0)
        cdef dict names_cache = {}
        cdef dict shared = {}
        cdef bytes raw = bytes(memoryview(fail_counts).cast("B")) if rows.shape[0] else b""
        cdef Py_ssize_t width
        # imported here: titus.scheduler imports this module
        from titus.scheduler.failures import constraint_labels, group_limit_failure, make_failure
        out = []
        w = counts.shape[1]
        width = w * 4  # int32 counts
        for f in range(rows.shape[0]):
            row = rows[f]
            k = tc[row]
            same = (k, raw[f * width:(f + 1) * width])
            failure = shared.get(same)
            if failure is not None:
                out.append((row, failure))
                continue
            key = keys[k]
            if counts[f, REASON_GROUP_LIMIT]:
                failure = shared[same] = group_limit_failure(key[1], n_hosts)
                out.append((row, failure))
                continue
            names = names_cache.get(k)
            if names is None:
                names = self._reason_names(key, max_sets, w)
                names_cache[k] = names
            reasons = {}
            for j in range(1, w):
                if counts[f, j]:
                    name = names[j]
                    reasons[name] = reasons.get(name, 0) + counts[f, j]
            failure = shared[same] = make_failure(reasons, n_hosts, constraint_labels(key[2]))
            out.append((row, failure))
        return out

    cdef list _reason_names(self, tuple key, Py_ssize_t max_sets, Py_ssize_t w):
        """The reason name of every slot of a failure row, for one class."""
        names = list(FIXED_REASONS) + list(self.resources) + [PORTS_REASON]
        sets = [SET_REASON_PREFIX + name for name, _ in key[5]]
        names += sets + [None] * (max_sets - len(sets))
        names += [CONSTRAINT_REASON_PREFIX + type(c).__name__ for c in key[2]]
        names += [None] * (w - len(names))
        return names


def _records(list rows, dtype):
    """A list of tuples as a 1-D array of the engine's row ``dtype``."""
    return np.array(rows, dtype=dtype) if rows else np.zeros(0, dtype=dtype)


def _rows(list rows, int width):
    """A list of equal-length tuples as a C-contiguous int32[n, width] array."""
    if not rows:
        return np.zeros((0, width), dtype=np.int32)
    return np.ascontiguousarray(np.asarray(rows, dtype=np.int64).astype(np.int32))


def record_placements(list tasks, const int32_t[::1] hosts, const int32_t[::1] slots,
                      const int32_t[::1] port_off, const int32_t[::1] ports,
                      const int32_t[:, ::1] set_choice, const int32_t[::1] task_class, list keys,
                      list host_ids, dict task_slot, dict slot_task, dict assignments,
                      dict ports_out, dict sets_out):
    """The bookkeeping of ``Scheduler.schedule`` for each placed row ``i`` of ``tasks``: its
    host id (``host_ids[hosts[i]]``) into ``assignments``, its slot into ``task_slot`` and
    ``slot_task``, its ports (``ports[port_off[i]:port_off[i + 1]]``) into ``ports_out`` and
    its resource-set choices (``set_choice[i]``, named by its class key) into ``sets_out``,
    each keyed by task id. Unplaced rows (host -1) are skipped."""
    cdef Py_ssize_t i, j, n = len(tasks)
    cdef int32_t h, slot
    cdef object tid, sets
    for i in range(n):
        h = hosts[i]
        if h < 0:
            continue
        tid = tasks[i].id
        slot = slots[i]
        assignments[tid] = host_ids[h]
        task_slot[tid] = slot
        slot_task[slot] = tid
        if port_off[i + 1] > port_off[i]:
            ports_out[tid] = [ports[j] for j in range(port_off[i], port_off[i + 1])]
        sets = keys[task_class[i]][5]
        if sets:
            sets_out[tid] = {name: set_choice[i, j] for j, (name, _) in enumerate(sets)}
