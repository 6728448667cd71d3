// Preemption, the parts that need no engine state (preempt.cpp uses them): which victim set a
// host would need, and which host wins. Kubernetes' default preemption is the model
// (pkg/scheduler/framework/plugins/defaultpreemption: SelectVictimsOnNode,
// pickOneNodeForPreemption); the rules are restated in docs/semantics.md, "Preemption".
#pragma once
#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

namespace titus {

/// A task that may be evicted: its slot, priority and hold order (seq: lower is older).
struct Evictable {
    int32_t slot = -1;
    int32_t priority = 0;
    int64_t seq = 0;
};

/// More important first: higher priority, then older (Kubernetes' MoreImportantPod, with the
/// hold order standing in for the start time). The order the reprieve tries victims in.
inline bool more_important(const Evictable& a, const Evictable& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.seq < b.seq;
}

/// The cheapest victim set of one host, greedily as Kubernetes does: start from every
/// candidate (`eligible`, in more_important order), give up the host unless the task fits with
/// all of them gone, then spare (reprieve) each candidate in turn, most important first, when
/// the task still fits with it kept. `fits(victims)` is asked with victims oldest first.
/// Returns whether the host can be had; `victims` is then the set, oldest first.
template <typename Fits>
bool cheapest_victims(const std::vector<Evictable>& eligible, Fits&& fits, std::vector<Evictable>& victims) {
    victims = eligible;
    auto by_seq = [](const Evictable& a, const Evictable& b) { return a.seq < b.seq; };
    std::sort(victims.begin(), victims.end(), by_seq);
    if (!fits(victims)) return false;
    std::vector<Evictable> trial;
    for (const Evictable& e : eligible) {
        trial.clear();
        for (const Evictable& v : victims)
            if (v.slot != e.slot) trial.push_back(v);
        if (fits(trial)) victims.swap(trial);
    }
    return true;
}

/// One host a task could take by preemption, with what it would cost.
struct PreemptOption {
    int32_t host = -1;
    int32_t top_priority = 0;  // the highest priority among its victims
    int64_t priority_sum = 0;  // sum of (priority + 2^31) over its victims: never negative
    int64_t n_victims = 0;
    double score = 0.0;        // the task's usual score there, with the victims gone
    uint64_t tiekey = 0;

    /// Kubernetes' order (pickOneNodeForPreemption, less its disruption-budget and start-time
    /// steps): the lowest highest-victim priority, then the lowest sum of victim priorities,
    /// then the fewest victims; then the usual choice: the greatest score, the lowest tiekey.
    bool better_than(const PreemptOption& o) const {
        if (o.host < 0) return host >= 0;
        if (top_priority != o.top_priority) return top_priority < o.top_priority;
        if (priority_sum != o.priority_sum) return priority_sum < o.priority_sum;
        if (n_victims != o.n_victims) return n_victims < o.n_victims;
        if (score != o.score) return score > o.score;
        return tiekey < o.tiekey;
    }
};

/// The cost part of an option from its victims.
inline void cost_of(const std::vector<Evictable>& victims, PreemptOption& o) {
    o.top_priority = INT32_MIN;
    o.priority_sum = 0;
    for (const Evictable& v : victims) {
        if (v.priority > o.top_priority) o.top_priority = v.priority;
        o.priority_sum += static_cast<int64_t>(v.priority) + (int64_t{1} << 31);
    }
    o.n_victims = static_cast<int64_t>(victims.size());
}

}  // namespace titus
