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

/// The Python class name of each kind, in kind order (`constraint:<name>` is its reason).
constexpr const char* kConstraintKindNames[] = {"HostAttrValue", "UniqueHostAttr", "ExclusiveHost", "BalancedHostAttr"};

/// Co-tasks of one job per value of one attribute: c[v], their sum n and how many c[v] > 0.
struct CoCount {
    std::vector<int32_t> c;
    int64_t n = 0;
    int32_t nonzero = 0;
    std::vector<int32_t> touched;  // every v with c[v] > 0, plus some stale ones (c[v] back to 0)
    std::vector<uint8_t> listed;   // v is in touched
    std::vector<int32_t> freq;     // freq[x]: how many v have c[v] == x (x >= 1)
    int32_t min_pos = 0;           // the least positive c[v], 0 when none

    void add(int32_t v, int32_t delta) {
        if (v < 0) return;  // the host lacks the attribute: not counted
        if (static_cast<size_t>(v) >= c.size()) {
            c.resize(static_cast<size_t>(v) + 1, 0);
            listed.resize(c.size(), 0);
        }
        const int32_t before = c[v];
        c[v] += delta;
        n += delta;
        track_min(before, c[v]);
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

    /// Keep freq and min_pos in step with one c[v] going from `before` to `after`.
    void track_min(int32_t before, int32_t after) {
        if (static_cast<size_t>(std::max(before, after)) >= freq.size()) freq.resize(std::max(before, after) + 1, 0);
        if (before > 0) --freq[before];
        if (after > 0) ++freq[after];
        if (after > 0 && (min_pos == 0 || after < min_pos)) {
            min_pos = after;
        } else if (before == min_pos && freq[before] == 0) {
            // The last value at the minimum moved: the new minimum is above it (or none left).
            if (nonzero_after(before, after) == 0) {
                min_pos = 0;
            } else {
                int32_t x = before + 1;
                while (freq[x] == 0) ++x;
                min_pos = x;
            }
        }
    }
    // Whether any c[v] stays positive once c[v] went from `before` to `after` (nonzero is
    // updated by the caller just after).
    int32_t nonzero_after(int32_t before, int32_t after) const {
        return nonzero + (before == 0 && after > 0) - (before > 0 && after == 0);
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
        return nonzero < k ? 0 : min_pos;
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
        if (kind != kBalancedHostAttr) return;  // only BalancedHostAttr reads n and m
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
