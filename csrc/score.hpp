// Stage 3 of the pipeline, score: a feasible host's score for the task, in [0, 1] with
// non-negative weights: (soft_w * mean soft score + fit_w * fitness) / (soft_w + fit_w), the mean
// summed in constraint order and 1 for a task with no soft constraint (docs/semantics.md).
#pragma once
#include <cstdint>

#include "engine.hpp"
#include "feasibility.hpp"

namespace titus {

/// The mean soft score of `soft` on host h (1 when there is none).
inline double soft_mean(const std::vector<ReadyConstraint>& soft, int32_t h, int32_t host_tasks) {
    if (soft.empty()) return 1.0;
    double total = 0.0;
    for (const auto& c : soft) total += c.soft_score(h, host_tasks);
    return total / static_cast<double>(soft.size());
}

inline double Engine::score_with(const TaskView& t, int32_t h, double fit) const {
    const double soft = soft_mean(t.rc.soft, h, ntasks_[h]);
    return (soft_w_ * soft + fit_w_ * fit) / call_.score_den;
}

inline double Engine::score_on(const TaskView& t, int32_t h) const {
    return score_with(t, h, fitness_(used_of(h), cap_of(h), t.d));
}

inline int32_t Engine::evaluate(const TaskView& t, int32_t h, double& score) {
    ++evaluated_;
    const int32_t reason = reject_reason(t, h);
    if (reason < 0) score = score_on(t, h);
    return reason;
}

}  // namespace titus
