// Stage 2 of the pipeline, feasibility: does host h admit the task, and if not, the first check
// it fails (docs/semantics.md, "Feasibility of host h for task t"). `first_overcommit` is the
// one fit test (used + demand > capacity + eps); every other place that asks whether demand
// fits -- the class walk, add_running, the group limit -- calls it.
#pragma once
#include <cstdint>

#include "engine.hpp"

namespace titus {

/// The first column r where `used[r] + d[r] > cap[r] + kEps`, or -1 when the demand fits.
inline int32_t first_overcommit(const double* used, const double* cap, const double* d, int32_t R) {
    for (int32_t r = 0; r < R; ++r)
        if (used[r] + d[r] > cap[r] + kEps) return r;
    return -1;
}

inline bool fits(const double* used, const double* cap, const double* d, int32_t R) {
    return first_overcommit(used, cap, d, R) < 0;
}

// Checks in the documented order: disabled, ExclusiveHost, resources, ports, resource sets,
// hard constraints.
inline int32_t Engine::reject_reason(const TaskView& t, int32_t h) const {
    const ReadyClass& rc = t.rc;
    if (!enabled_[h]) return kReasonDisabled;
    if (nexcl_[h] > 0 || (rc.exclusive && ntasks_[h] > 0)) return kReasonExclusive;
    const int32_t r = first_overcommit(used_of(h), cap_of(h), t.d, R_);
    if (r >= 0) return kReasonResource0 + r;
    if (rc.ports > 0 && free_ports(h) < rc.ports) return call_.reason_ports;
    if (!rc.sets.empty()) {
        const int32_t j = missing_set(h, rc.sets);
        if (j >= 0) return call_.reason_sets0 + j;
    }
    for (size_t j = 0; j < rc.hard.size(); ++j)
        if (!rc.hard[j].satisfied(h, ntasks_[h])) return call_.reason_hard0 + static_cast<int32_t>(j);
    return -1;
}

}  // namespace titus
