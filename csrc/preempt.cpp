// Preemption (docs/semantics.md, "Preemption"): a task that fits no host may take one host by
// evicting held tasks of strictly lower priority, at most a job's quota of them per call, the
// cheapest set per host and the host in Kubernetes' order (preempt.hpp). Tasks placed by the
// same call are never victims. The schedule loop (schedule.cpp) asks preempt_choose only after
// the normal pipeline found no host, then evicts and commits as usual.
#include <algorithm>
#include <vector>

#include "engine.hpp"
#include "feasibility.hpp"
#include "preempt.hpp"
#include "score.hpp"

namespace titus {

bool Engine::fits_without(const TaskView& t, int32_t h, const std::vector<int32_t>& victims, double& score,
                          std::vector<double>& used) const {
    const ReadyClass& rc = t.rc;
    if (!enabled_[h]) return false;
    int32_t excl = nexcl_[h], n = ntasks_[h], ports = free_ports(h);
    used.assign(used_of(h), used_of(h) + R_);
    // Subtracted oldest first, as release would (an emptied host holds exactly nothing).
    for (const int32_t v : victims) {
        const double* td = demand_of(v);
        for (int32_t r = 0; r < R_; ++r) used[r] -= td[r];
        excl -= t_excl_[v];
        n -= 1;
        auto pit = t_ports_.find(v);
        if (pit != t_ports_.end()) ports += static_cast<int32_t>(pit->second.size());
    }
    if (n == 0) std::fill(used.begin(), used.end(), 0.0);
    if (excl > 0 || (rc.exclusive && n > 0)) return false;
    if (!fits(used.data(), cap_of(h), t.d, R_)) return false;
    if (rc.ports > 0 && ports < rc.ports) return false;
    if (!rc.sets.empty()) {
        if (set_id_[h] < 0) return false;
        const HostSets& hs = sets_[set_id_[h]];
        for (const auto& req : rc.sets) {
            const int32_t g = hs.group_of(req.first);
            if (g < 0) return false;
            const SetGroup& sg = hs.groups[g];
            std::vector<int32_t> su = sg.used;
            for (const int32_t v : victims) {
                auto sit = t_sets_.find(v);
                if (sit == t_sets_.end()) continue;
                for (size_t i = 0; i + 1 < sit->second.size(); i += 2)
                    if (sit->second[i] == g) su[sit->second[i + 1]] -= 1;
            }
            bool found = false;
            for (size_t i = 0; i < su.size() && !found; ++i)
                found = su[i] > 0 && sg.label[i] == req.second && su[i] < sg.slots;
            for (size_t i = 0; i < su.size() && !found; ++i) found = su[i] == 0;
            if (!found) return false;
        }
    }
    // Hard constraints other than ExclusiveHost read co-task counts as they are (a victim of
    // the task's own job still counts): the same rule in the twin.
    for (const auto& c : rc.hard)
        if (!c.satisfied(h, n)) return false;
    const double fit = fitness_(used.data(), cap_of(h), t.d);
    const double soft = soft_mean(rc.soft, h, n);
    score = (soft_w_ * soft + fit_w_ * fit) / call_.score_den;
    return true;
}

int32_t Engine::preempt_choose(const TaskView& t, int32_t prio, std::vector<int32_t>& victims_out) {
    victims_out.clear();
    // Every task that may be evicted for this one, by host.
    std::vector<std::pair<int32_t, Evictable>> all;
    for (size_t s = 0; s < t_host_.size(); ++s) {
        const int32_t h = t_host_[s];
        if (h < 0 || t_prio_[s] >= prio || t_seq_[s] >= call_seq0_) continue;
        const int32_t job = t_job_[s];
        if (job < 0) continue;
        auto q = quota_left_.find(job);
        if (q == quota_left_.end() || q->second <= 0) continue;
        all.push_back({h, Evictable{static_cast<int32_t>(s), t_prio_[s], t_seq_[s]}});
    }
    if (all.empty()) return -1;
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first < b.first : more_important(a.second, b.second);
    });
    PreemptOption best;
    std::vector<int32_t> best_victims, slots;
    std::vector<Evictable> eligible, victims;
    std::vector<double> used;
    std::unordered_map<int32_t, int64_t> per_job;
    for (size_t i = 0; i < all.size();) {
        const int32_t h = all[i].first;
        eligible.clear();
        for (; i < all.size() && all[i].first == h; ++i) eligible.push_back(all[i].second);
        double score = 0.0;
        auto fits_with = [&](const std::vector<Evictable>& vs) {
            slots.clear();
            for (const Evictable& v : vs) slots.push_back(v.slot);
            return fits_without(t, h, slots, score, used);
        };
        if (!cheapest_victims(eligible, fits_with, victims)) continue;
        // A set that would take more of a job than its quota allows: the host is not an option.
        per_job.clear();
        bool within = true;
        for (const Evictable& v : victims)
            if (++per_job[t_job_[v.slot]] > quota_left_[t_job_[v.slot]]) within = false;
        if (!within || victims.empty()) continue;
        fits_with(victims);  // the score with exactly this set gone
        PreemptOption o;
        o.host = h;
        cost_of(victims, o);
        o.score = score;
        o.tiekey = tiekey_[h];
        if (o.better_than(best)) {
            best = o;
            best_victims.clear();
            for (const Evictable& v : victims) best_victims.push_back(v.slot);
        }
    }
    victims_out = best_victims;
    return best.host;
}

}  // namespace titus
