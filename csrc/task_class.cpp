// Task classes made ready for the pipeline: each constraint bound to its attribute column,
// allowed-value table and co-task counts; and the attribute view of the host index (which
// attributes the host signature tells apart, from the constraints of the call).
#include <algorithm>
#include <vector>

#include "engine.hpp"

namespace titus {

ReadyClass Engine::ready_class(const ClassTable& t, int64_t k) {
    const ClassRow& c = t.cls[k];
    ReadyClass rc;
    rc.job = c.job;
    rc.group = c.group;
    rc.ports = c.ports;
    auto make = [&](int64_t ci) {
        const ConstraintRow& con = t.cons[ci];
        ReadyConstraint r;
        r.kind = con.kind;
        const int32_t attr = con.attr;
        r.k = std::max<int32_t>(1, con.expected_values);
        if (r.kind != kExclusiveHost && attr >= 0 && attr < static_cast<int32_t>(columns_.size()))
            r.column = columns_[attr].data();
        if (r.kind == kHostAttrValue) {
            std::vector<uint8_t> allowed;
            for (int32_t j = 0; j < con.val_cnt; ++j) {
                const int32_t v = t.vals[con.val_off + j];
                if (v < 0) continue;  // a value no host has
                if (static_cast<size_t>(v) >= allowed.size()) allowed.resize(v + 1, 0);
                allowed[v] = 1;
            }
            rc.allowed.push_back(std::move(allowed));
        } else if ((r.kind == kUniqueHostAttr || r.kind == kBalancedHostAttr) && rc.job >= 0 && attr >= 0) {
            r.counts = counts_for(rc.job, attr);
        }
        r.prepare_for_task();  // no co-tasks: n = 0, m = 0 for good; else refreshed per task
        return r;
    };
    for (int32_t j = 0; j < c.hard_cnt; ++j) {
        rc.hard.push_back(make(c.hard_off + j));
        if (rc.hard.back().kind == kExclusiveHost) rc.exclusive = true;
    }
    for (int32_t j = 0; j < c.soft_cnt; ++j) rc.soft.push_back(make(c.soft_off + j));
    for (int32_t j = 0; j < c.rs_cnt; ++j) rc.sets.emplace_back(t.rs[c.rs_off + j].name, t.rs[c.rs_off + j].label);
    // Pointers into rc.allowed are taken only now that the vector stops growing.
    size_t a = 0;
    rc.co_hosts_rejected = true;
    rc.unique_only = true;
    for (auto* list : {&rc.hard, &rc.soft})
        for (auto& r : *list) {
            const bool on_hostname = r.kind != kExclusiveHost && r.column == columns_[0].data();
            if (r.kind == kHostAttrValue) {
                r.allowed = rc.allowed[a].data();
                r.n_allowed = static_cast<int32_t>(rc.allowed[a].size());
                if (on_hostname)
                    for (int32_t v = 0; v < r.n_allowed; ++v)
                        if (r.allowed[v]) rc.allowed_hosts.push_back(v);
                ++a;
            }
            if (r.counts) rc.counted.push_back(&r);
            if (on_hostname) {
                rc.names_host = true;
                if (r.counts) rc.host_counts.push_back(r.counts);
                if (!(list == &rc.hard && r.kind == kUniqueHostAttr)) rc.co_hosts_rejected = false;
                if (!(r.kind == kUniqueHostAttr && r.counts)) rc.unique_only = false;
            }
        }
    return rc;
}

void Engine::use_attr_view(const ClassTable& t) {
    std::vector<uint8_t> mode;
    std::vector<std::vector<uint8_t>> named;
    for (int64_t ci = 0; ci < t.n_cons; ++ci) {
        const ConstraintRow& con = t.cons[ci];
        const int32_t kind = con.kind, attr = con.attr;
        if (kind == kExclusiveHost || attr <= 0) continue;  // hostname: special hosts see to it
        if (static_cast<size_t>(attr) >= mode.size()) {
            mode.resize(attr + 1, 0);
            named.resize(attr + 1);
        }
        if (kind != kHostAttrValue) {
            mode[attr] = kAttrFull;
            continue;
        }
        if (mode[attr] != kAttrFull) mode[attr] = kAttrNamed;
        for (int32_t j = 0; j < con.val_cnt; ++j) {
            const int32_t v = t.vals[con.val_off + j];
            if (v < 0) continue;
            if (static_cast<size_t>(v) >= named[attr].size()) named[attr].resize(v + 1, 0);
            named[attr][v] = 1;
        }
    }
    for (size_t a = 0; a < mode.size(); ++a)
        if (mode[a] != kAttrNamed) named[a].clear();
    // Is the current view at least as fine as this call needs? Then keep it for a few calls
    // (rebuilding costs O(hosts)), but let it coarsen once the finer part stays unused.
    bool covered = true, equal = mode.size() == attr_mode_.size();
    for (size_t a = 0; a < std::max(mode.size(), attr_mode_.size()); ++a) {
        const uint8_t want = a < mode.size() ? mode[a] : 0;
        const uint8_t have = a < attr_mode_.size() ? attr_mode_[a] : 0;
        if (want != have) equal = false;
        if (want == 0 || have == kAttrFull) continue;
        if (have == 0 || want == kAttrFull) {
            covered = false;
            break;
        }
        const auto& w = named[a];
        const auto& hv = attr_named_[a];
        if (w != hv) equal = false;
        for (size_t v = 0; v < w.size(); ++v)
            if (w[v] && (v >= hv.size() || !hv[v])) covered = false;
    }
    if (equal) {
        view_idle_calls_ = 0;
        return;
    }
    if (covered && ++view_idle_calls_ <= kViewPatience) return;
    view_idle_calls_ = 0;
    attr_mode_.swap(mode);
    attr_named_.swap(named);
    groups_.invalidate();
}

}  // namespace titus
