// pybind11 module titus._engine: the Engine class over numpy arrays. Whole batches cross the
// boundary; the placement loop runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>

#include "constraints.hpp"
#include "engine.hpp"
#include "fitness.hpp"
#include "hash.hpp"
#include "layout.hpp"

namespace py = pybind11;
using titus::Engine;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// Hand a vector to numpy without copying: the array owns it through a capsule.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
    auto* owned = new std::vector<T>(std::move(v));
    py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(shape, owned->data(), free_when_done);
}

void check_host(const Engine& e, int32_t h) {
    if (!e.is_live(h)) throw py::index_error("no live host at index " + std::to_string(h));
}

void check_cols(const py::array& a, py::ssize_t cols, const char* what) {
    if (a.ndim() != 2 || a.shape(1) != cols)
        throw py::value_error(std::string(what) + ": expected shape (n, " + std::to_string(cols) + ")");
}

// Demands and capacities are finite and >= 0 (group limits may be +inf: none). The Python
// layer checks each field first; this is the engine's own guard, so that no value that reached
// it some other way (an object whose number changes between reads) can enter a host's usage:
// a NaN there would break the order of the class index and every fit test after it.
void check_quantities(const double* p, size_t count, bool inf_ok, const char* what) {
    for (size_t i = 0; i < count; ++i)
        if (!(p[i] >= 0.0) || (!inf_ok && !std::isfinite(p[i])))
            throw py::value_error(std::string(what) + ": every value must be " + (inf_ok ? "" : "finite and ") +
                                  ">= 0, got " + std::to_string(p[i]));
}

std::vector<std::pair<int32_t, int32_t>> set_requests(const CArray<int32_t>& rs) {
    if (rs.size() == 0) return {};
    check_cols(rs, 2, "resource set requests");
    std::vector<std::pair<int32_t, int32_t>> out;
    auto a = rs.unchecked<2>();
    for (py::ssize_t i = 0; i < a.shape(0); ++i) out.emplace_back(a(i, 0), a(i, 1));
    return out;
}

template <typename Row>
using Rows = py::array_t<Row, py::array::c_style>;

py::tuple schedule(Engine& e, const CArray<double>& demand, const CArray<int32_t>& task_class,
                   const Rows<titus::ClassRow>& cls, const Rows<titus::ConstraintRow>& cons,
                   const CArray<int32_t>& vals, const Rows<titus::SetRequestRow>& rs,
                   const CArray<int32_t>& limit_groups, const CArray<double>& limits, bool details, bool want_slots,
                   const CArray<int32_t>& gang, const CArray<int32_t>& priority, bool preempt,
                   const CArray<int32_t>& quota_jobs, const CArray<int32_t>& quota_counts) {
    const py::ssize_t n = task_class.size();
    if (demand.ndim() != 2 || demand.shape(0) != n || demand.shape(1) != e.n_resources())
        throw py::value_error("demand: expected shape (len(task_class), n_resources)");
    if (cls.ndim() != 1 || cons.ndim() != 1 || rs.ndim() != 1)
        throw py::value_error("cls, cons, rs: expected 1-D arrays of CLASS_DTYPE, CONSTRAINT_DTYPE, SET_REQUEST_DTYPE");
    if (limit_groups.size()) check_cols(limits, e.n_resources(), "group limits");
    check_quantities(demand.data(), static_cast<size_t>(demand.size()), false, "demand");
    check_quantities(limits.data(), static_cast<size_t>(limits.size()), true, "group limits");
    const py::ssize_t n_cls = cls.size();
    const int32_t* tc = task_class.data();
    for (py::ssize_t i = 0; i < n; ++i)
        if (tc[i] < 0 || tc[i] >= n_cls) throw py::value_error("task_class entry out of range");

    titus::ClassTable table;
    table.cls = cls.data();
    table.n_cls = n_cls;
    table.cons = cons.data();
    table.n_cons = cons.size();
    table.vals = vals.data();
    table.n_vals = vals.size();
    table.rs = rs.data();
    table.n_rs = rs.size();
    if (gang.size() && gang.size() != n) throw py::value_error("gang: expected one entry per row (or none)");
    if (priority.size() && priority.size() != n) throw py::value_error("priority: expected one entry per row (or none)");
    if (quota_jobs.size() != quota_counts.size()) throw py::value_error("quota_jobs, quota_counts: lengths differ");
    titus::CallExtras extras;
    extras.gang = gang.size() ? gang.data() : nullptr;
    extras.priority = priority.size() ? priority.data() : nullptr;
    extras.preempt = preempt;
    extras.quota_jobs = quota_jobs.data();
    extras.quota_counts = quota_counts.data();
    extras.n_quota = quota_jobs.size();
    titus::GroupLimits gl;
    gl.groups = limit_groups.data();
    gl.limits = limits.data();
    gl.n = limit_groups.size();

    py::array_t<int32_t> hosts(n);
    py::object slots = py::none();
    titus::ScheduleOut out;
    out.host = hosts.mutable_data();
    if (want_slots) {
        py::array_t<int32_t> s(n);
        out.slot = s.mutable_data();
        slots = s;
    }
    out.details = details;
    {
        py::gil_scoped_release release;
        e.schedule(demand.data(), tc, n, table, gl, out, extras);
    }
    const py::ssize_t n_fail = static_cast<py::ssize_t>(out.fail_rows.size());
    py::object port_off = py::none(), ports = py::none(), set_choice = py::none();
    if (details) {
        port_off = to_numpy(std::move(out.port_off), {n + 1});
        const py::ssize_t np_ = static_cast<py::ssize_t>(out.ports.size());
        ports = to_numpy(std::move(out.ports), {np_});
        set_choice = to_numpy(std::move(out.set_choice), {n, static_cast<py::ssize_t>(out.max_sets)});
    }
    return py::make_tuple(hosts, slots, to_numpy(std::move(out.fail_rows), {n_fail}),
                          to_numpy(std::move(out.fail_counts), {n_fail, static_cast<py::ssize_t>(out.width)}),
                          port_off, ports, set_choice, to_numpy(std::move(out.culprit), {n}),
                          to_numpy(std::move(out.victims), {static_cast<py::ssize_t>(out.victims.size() / 2), 2}));
}

// The codes and layouts Python shares with the engine (csrc/layout.hpp, fitness.hpp,
// constraints.hpp), so that titus._codec, titus.scheduler and the twin restate none of them.
void export_constants(py::module_& m) {
    PYBIND11_NUMPY_DTYPE(titus::ClassRow, job, group, ports, hard_off, hard_cnt, soft_off, soft_cnt, rs_off, rs_cnt);
    PYBIND11_NUMPY_DTYPE(titus::ConstraintRow, kind, attr, expected_values, val_off, val_cnt);
    PYBIND11_NUMPY_DTYPE(titus::SetRequestRow, name, label);
    m.attr("CLASS_DTYPE") = py::dtype::of<titus::ClassRow>();
    m.attr("CONSTRAINT_DTYPE") = py::dtype::of<titus::ConstraintRow>();
    m.attr("SET_REQUEST_DTYPE") = py::dtype::of<titus::SetRequestRow>();
    m.attr("EPS") = titus::kEps;
    m.attr("IN_USE_EPS") = titus::kInUseEps;
    py::tuple base(4);
    for (int r = 0; r < 4; ++r) base[r] = titus::kBaseResourceNames[r];
    m.attr("BASE_RESOURCES") = base;
    // name -> (code, base-resource columns averaged; () for cpu_mem_fewest_hosts), in listing order
    py::dict fitness;
    for (const auto& f : titus::kFitnessNames) {
        py::tuple cols(f.n_columns);
        for (int32_t j = 0; j < f.n_columns; ++j) cols[j] = titus::kBaseResourceNames[f.columns[j]];
        fitness[f.name] = py::make_tuple(f.kind, cols);
    }
    m.attr("FITNESS_KINDS") = fitness;
    m.attr("SPREAD_OFFSET") = static_cast<int32_t>(titus::kSpreadOffset);
    py::dict kinds;
    for (int32_t k = 0; k < 4; ++k) kinds[titus::kConstraintKindNames[k]] = k;
    m.attr("CONSTRAINT_KINDS") = kinds;
    py::tuple fixed(3);
    for (int32_t j = 0; j < 3; ++j) fixed[j] = titus::kFixedReasonNames[j];
    m.attr("FIXED_REASONS") = fixed;  // reason names of slots 0, 1, 2
    m.attr("REASON_GROUP_LIMIT") = static_cast<int32_t>(titus::kReasonGroupLimit);
    m.attr("REASON_RESOURCE0") = static_cast<int32_t>(titus::kReasonResource0);
    m.attr("PORTS_REASON") = titus::kPortsReason;
    m.attr("SET_REASON_PREFIX") = titus::kSetReasonPrefix;
    m.attr("CONSTRAINT_REASON_PREFIX") = titus::kConstraintReasonPrefix;
}

}  // namespace

PYBIND11_MODULE(_engine, m) {
    m.doc() = "Titus scheduling engine: hosts as structure-of-arrays, tasks placed in batches "
              "(candidates -> feasibility -> score -> select -> commit), the GIL released while it works.";
    export_constants(m);

    m.def("tiekey", [](const std::string& host_id, uint64_t seed) {
        return titus::tiekey_from_fnv(titus::fnv1a64(host_id.data(), host_id.size()), seed);
    }, py::arg("host_id"), py::arg("seed"), "The tie-break key of a host id for a seed (lowest wins).");

    py::class_<Engine>(m, "Engine", "Host state, held tasks and the placement loop, over interned ints.")
        .def(py::init<int32_t, uint64_t, std::vector<int32_t>, std::vector<double>, double, double, double, bool>(),
             py::arg("n_resources"), py::arg("seed"), py::arg("fitness_kinds"), py::arg("fitness_weights"),
             py::arg("soft_weight"), py::arg("fitness_weight"), py::arg("good_enough"), py::arg("use_index"))
        .def_property_readonly("n_resources", &Engine::n_resources, "Columns of a demand row.")
        .def_property_readonly("n_live", &Engine::n_live, "Hosts not removed.")
        .def_property_readonly("n_held", &Engine::n_held, "Tasks held.")
        .def("add_resource", &Engine::add_resource, "Append a resource column (capacity 0 everywhere).")
        .def("add_hosts",
             [](Engine& e, const CArray<double>& caps, const CArray<uint64_t>& fnv, const CArray<int32_t>& attrs,
                const CArray<int32_t>& ports, const CArray<int32_t>& sets) {
                 const py::ssize_t n = fnv.size();
                 if (caps.ndim() != 2 || caps.shape(0) != n || caps.shape(1) != e.n_resources())
                     throw py::value_error("caps: expected shape (n_hosts, n_resources)");
                 if (attrs.size()) check_cols(attrs, 3, "attributes");
                 if (ports.size()) check_cols(ports, 3, "port ranges");
                 if (sets.size()) check_cols(sets, 4, "resource sets");
                 check_quantities(caps.data(), static_cast<size_t>(caps.size()), false, "caps");
                 return e.add_hosts(caps.data(), n, fnv.data(), attrs.data(), attrs.size() ? attrs.shape(0) : 0,
                                    ports.data(), ports.size() ? ports.shape(0) : 0, sets.data(),
                                    sets.size() ? sets.shape(0) : 0);
             },
             py::arg("caps"), py::arg("fnv"), py::arg("attrs"), py::arg("ports"), py::arg("sets"),
             "Add hosts: capacities [n, R], FNV-1a of their ids, (row, attr, value) attributes, "
             "(row, lo, hi) port ranges and (row, name, sets, slots) resource sets. Returns the first index.")
        .def("reserve_hosts", &Engine::reserve_hosts, py::arg("n"),
             "Room for n hosts in all (adding them in parts then copies no array).")
        .def("ensure_attrs", &Engine::ensure_attrs, "Make room for n attribute ids.")
        .def("remove_host",
             [](Engine& e, int32_t h) {
                 check_host(e, h);
                 std::vector<int32_t> dropped = e.remove_host(h);
                 const py::ssize_t n = static_cast<py::ssize_t>(dropped.size());
                 return to_numpy(std::move(dropped), {n});
             },
             "Remove a host; returns the slots of the tasks dropped with it.")
        .def("set_enabled", [](Engine& e, int32_t h, bool on) { check_host(e, h); e.set_enabled(h, on); })
        .def("is_enabled", [](const Engine& e, int32_t h) { check_host(e, h); return e.is_enabled(h); })
        .def("used",
             [](const Engine& e, int32_t h) {
                 check_host(e, h);
                 return py::array_t<double>(e.n_resources(), e.used_of(h));
             },
             "Resources held on a host, in resource order.")
        .def("cap",
             [](const Engine& e, int32_t h) {
                 check_host(e, h);
                 return py::array_t<double>(e.n_resources(), e.cap_of(h));
             },
             "Capacities of a host, in resource order.")
        .def("tasks_on", [](const Engine& e, int32_t h) { check_host(e, h); return e.tasks_on(h); })
        .def("schedule", &schedule, py::arg("demand"), py::arg("task_class"), py::arg("cls"), py::arg("cons"),
             py::arg("vals"), py::arg("rs"), py::arg("limit_groups"), py::arg("limits"), py::arg("details"),
             py::arg("want_slots"), py::arg("gang") = CArray<int32_t>(0), py::arg("priority") = CArray<int32_t>(0),
             py::arg("preempt") = false, py::arg("quota_jobs") = CArray<int32_t>(0),
             py::arg("quota_counts") = CArray<int32_t>(0),
             "Place rows of demand in order. `gang` (int32[N] or empty): rows with the same id >= 0 follow "
             "each other and are placed whole or not at all; `priority` (int32[N] or empty); with `preempt`, "
             "a row that fits nowhere may evict held tasks of lower priority of the jobs in `quota_jobs`, "
             "at most `quota_counts` each. Returns (hosts, slots|None, fail_rows, fail_counts, "
             "port_off|None, ports|None, set_choice|None, culprit int32[N] (the failing row of a failed "
             "gang, else -1), victims int32[k, 2] (row, evicted slot)).")
        .def("overcommit_reason",
             [](const Engine& e, int32_t h, const CArray<double>& d) {
                 check_host(e, h);
                 if (d.size() != e.n_resources()) throw py::value_error("demand: expected n_resources values");
                 return e.overcommit_reason(h, d.data());
             },
             "First reason slot (3 + resource) the demand would over-commit on the host, or -1.")
        .def("largest_free",
             [](const Engine& e, int32_t r) {
                 if (r < 0 || r >= e.n_resources()) throw py::value_error("no resource column " + std::to_string(r));
                 return e.largest_free(r);
             },
             py::arg("column"), "The most of a resource any live, enabled host has free (0 with no such host).")
        .def("port_free", [](const Engine& e, int32_t h, int32_t p) { check_host(e, h); return e.port_free(h, p); })
        .def("free_ports", [](const Engine& e, int32_t h) { check_host(e, h); return e.free_ports(h); })
        .def("missing_set",
             [](const Engine& e, int32_t h, const CArray<int32_t>& rs) {
                 check_host(e, h);
                 return e.missing_set(h, set_requests(rs));
             },
             "Index of the first resource-set request the host cannot serve, or -1.")
        .def("hold",
             [](Engine& e, int32_t h, const CArray<double>& d, int32_t job, int32_t group, bool exclusive,
                int32_t n_ports, py::object exact_ports, const CArray<int32_t>& rs, int32_t priority) {
                 check_host(e, h);
                 if (d.size() != e.n_resources()) throw py::value_error("demand: expected n_resources values");
                 check_quantities(d.data(), static_cast<size_t>(d.size()), false, "demand");
                 std::vector<int32_t> exact;
                 const bool has_exact = !exact_ports.is_none();
                 if (has_exact) exact = exact_ports.cast<std::vector<int32_t>>();
                 std::vector<int32_t> ports, sets;
                 const int32_t slot = e.hold(h, d.data(), job, group, exclusive, n_ports, has_exact ? &exact : nullptr,
                                             set_requests(rs), &ports, &sets, priority);
                 return py::make_tuple(slot, ports, sets);
             },
             py::arg("h"), py::arg("demand"), py::arg("job"), py::arg("group"), py::arg("exclusive"),
             py::arg("n_ports"), py::arg("exact_ports"), py::arg("rs"), py::arg("priority") = 0,
             "Hold a task on a host without checks (the caller checked). Returns (slot, ports, set indices).")
        .def("release",
             [](Engine& e, int32_t slot) {
                 if (!e.slot_held(slot)) throw py::key_error("no task held in slot " + std::to_string(slot));
                 e.release(slot);
             },
             "A held task ended: its resources go back to its host.")
        .def("reset", &Engine::reset, "Drop every held task.")
        .def("slot_host", [](const Engine& e, int32_t slot) { return e.slot_held(slot) ? e.slot_host(slot) : -1; })
        .def("slot_seq", [](const Engine& e, int32_t slot) { return e.slot_held(slot) ? e.slot_seq(slot) : int64_t{-1}; },
             "The hold order of a held slot (lower is older), -1 if it holds nothing.")
        .def("slot_priority",
             [](const Engine& e, int32_t slot) {
                 if (!e.slot_held(slot)) throw py::key_error("no task held in slot " + std::to_string(slot));
                 return e.slot_priority(slot);
             },
             "The priority a held slot's task was held with.")
        .def_property_readonly("host_bytes", &Engine::host_bytes, "Engine bytes per host (dense part).")
        .def_property_readonly("task_bytes", &Engine::task_bytes, "Engine bytes per held task (dense part).")
        .def_property_readonly("n_host_classes", &Engine::n_host_classes,
                               "Host equivalence classes in the index (debug).")
        .def_property_readonly("last_walked", &Engine::last_walked,
                               "Class entries the bounded walk looked at in the last schedule call.")
        .def_property_readonly("last_bucket_walks", &Engine::last_bucket_walks,
                               "Buckets walked to their best host in the last schedule call (the rest reused one).")
        .def_property_readonly("last_evaluated", &Engine::last_evaluated,
                               "Hosts evaluated by the last schedule call (debug).");
}
