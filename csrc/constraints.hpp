// The four constraint kinds, their co-task counts, and their hard/soft evaluation on one host.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace titus {

enum ConstraintKind : int32_t {
    kHostAttrValue = 0,
    kUniqueHostAttr = 1,
    kExclusiveHost = 2,
    kBalancedHostAttr = 3,
};

/// Co-tasks of one job per value of one attribute: c[v], their sum n and how many c[v] > 0.
struct CoCount {
    std::vector<int32_t> c;
    int64_t n = 0;
    int32_t nonzero = 0;
    std::vector<int32_t> touched;  // every v with c[v] > 0, plus some stale ones (c[v] back to 0)
    std::vector<uint8_t> listed;   // v is in touched

    void add(int32_t v, int32_t delta) {
        if (v < 0) return;  // the host lacks the attribute: not counted
        if (static_cast<size_t>(v) >= c.size()) {
            c.resize(static_cast<size_t>(v) + 1, 0);
            listed.resize(c.size(), 0);
        }
        const int32_t before = c[v];
        c[v] += delta;
        n += delta;
        if (before == 0 && c[v] > 0) {
            ++nonzero;
            if (!listed[v]) {
                listed[v] = 1;
                touched.push_back(v);
            }
        }
        if (before > 0 && c[v] == 0) {
            --nonzero;
            if (touched.size() > 2 * static_cast<size_t>(nonzero) + 16) compact();
        }
    }

    /// Drop stale entries of `touched`.
    void compact() {
        size_t k = 0;
        for (int32_t v : touched) {
            if (c[v] > 0) touched[k++] = v;
            else listed[v] = 0;
        }
        touched.resize(k);
    }

    /// m of the soft BalancedHostAttr score: the least positive c[v] once k values are in use, else 0.
    int32_t balance_floor(int32_t k) const {
        if (nonzero < k) return 0;
        int32_t m = 0;
        for (int32_t x : c)
            if (x > 0 && (m == 0 || x < m)) m = x;
        return m;
    }
};

/// A constraint made ready for one task: attribute column, allowed values, co-task counts.
struct ReadyConstraint {
    int32_t kind = 0;
    const int32_t* column = nullptr;  // host index -> local value id, or -1; nullptr: no host has it
    const uint8_t* allowed = nullptr;  // HostAttrValue: allowed[v] for local value v
    int32_t n_allowed = 0;
    const CoCount* counts = nullptr;  // Unique/Balanced of a task with a job; nullptr: no co-tasks
    int32_t k = 1;                    // BalancedHostAttr expected values
    int32_t limit = 0;                // hard Balanced: c[v] + 1 <= limit, limit = ceil((n + 1) / k)
    int32_t floor = 0;                // soft Balanced: m

    int32_t value_of(int32_t host) const { return column ? column[host] : -1; }

    int32_t count_of(int32_t v) const {
        if (!counts || static_cast<size_t>(v) >= counts->c.size()) return 0;
        return counts->c[v];
    }

    /// Refresh the per-task numbers (n, m) from the co-task counts.
    void prepare_for_task() {
        const int64_t n = counts ? counts->n : 0;
        limit = static_cast<int32_t>((n + k) / k);
        floor = counts ? counts->balance_floor(k) : 0;
    }

    /// Hard check: is the constraint satisfied on host h (holding host_tasks tasks)?
    bool satisfied(int32_t h, int32_t host_tasks) const {
        switch (kind) {
            case kHostAttrValue: {
                const int32_t v = value_of(h);
                return v >= 0 && v < n_allowed && allowed[v];
            }
            case kUniqueHostAttr: {
                const int32_t v = value_of(h);
                return v >= 0 && count_of(v) == 0;
            }
            case kExclusiveHost:
                return host_tasks == 0;
            default: {
                const int32_t v = value_of(h);
                return v >= 0 && count_of(v) + 1 <= limit;
            }
        }
    }

    /// Soft score in [0, 1] on host h.
    double soft_score(int32_t h, int32_t host_tasks) const {
        if (kind == kBalancedHostAttr) {
            const int32_t v = value_of(h);
            if (v < 0) return 0.0;
            const int32_t over = std::max<int32_t>(0, count_of(v) - floor);
            return 1.0 / (1.0 + static_cast<double>(over));
        }
        return satisfied(h, host_tasks) ? 1.0 : 0.0;
    }
};

}  // namespace titus
