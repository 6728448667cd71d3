// Stage 5 of the pipeline, commit: hold a task on its chosen host (resources, lowest free
// ports, resource-set slots, group usage, co-task counts), and let it go again on release.
// The caller checked the fit; this is the one place a placement changes state.
#include <algorithm>

#include "engine.hpp"

namespace titus {

int32_t Engine::hold(int32_t h, const double* d, int32_t job, int32_t group, bool exclusive, int32_t n_ports,
                     const std::vector<int32_t>* exact_ports, const std::vector<std::pair<int32_t, int32_t>>& sets,
                     std::vector<int32_t>* ports_out, std::vector<int32_t>* sets_out, int32_t priority) {
    int32_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = static_cast<int32_t>(t_host_.size());
        t_host_.push_back(-1);
        t_job_.push_back(-1);
        t_group_.push_back(-1);
        t_excl_.push_back(0);
        t_prio_.push_back(0);
        t_seq_.push_back(0);
        t_row_.push_back(-1);
    }
    double* used = &used_[static_cast<size_t>(h) * R_];
    for (int32_t r = 0; r < R_; ++r) used[r] += d[r];
    t_row_[slot] = demands_.take(d, R_);
    t_host_[slot] = h;
    t_job_[slot] = job;
    t_group_[slot] = group;
    t_excl_[slot] = exclusive ? 1 : 0;
    t_prio_[slot] = priority;
    t_seq_[slot] = next_seq_++;
    ntasks_[h] += 1;
    nexcl_[h] += exclusive ? 1 : 0;
    if (exact_ports || n_ports > 0) {
        HostPorts& hp = ports_[port_id_[h]];
        std::vector<int32_t> ps;
        if (exact_ports) {
            ps = *exact_ports;
            hp.take(ps);
        } else {
            ps = hp.take_lowest(n_ports);
        }
        if (ports_out) ports_out->insert(ports_out->end(), ps.begin(), ps.end());
        if (!ps.empty()) t_ports_[slot] = std::move(ps);
    }
    if (!sets.empty()) {
        HostSets& hs = sets_[set_id_[h]];
        std::vector<int32_t> taken;
        for (const auto& req : sets) {
            const int32_t g = hs.group_of(req.first);
            const int32_t s = hs.pick(g, req.second);
            hs.take(g, s, req.second);
            taken.push_back(g);
            taken.push_back(s);
            if (sets_out) sets_out->push_back(s);
        }
        t_sets_[slot] = std::move(taken);
    }
    if (group >= 0) {
        ensure_group(group);
        double* gu = &group_used_[static_cast<size_t>(group) * R_];
        for (int32_t r = 0; r < R_; ++r) gu[r] += d[r];
    }
    count_task(slot, +1);
    groups_.touch(h);
    ++n_held_;
    return slot;
}

void Engine::release(int32_t slot) {
    run_ended();  // a run's kept champions assume hosts only gain tasks
    const int32_t h = t_host_[slot];
    count_task(slot, -1);
    double* used = &used_[static_cast<size_t>(h) * R_];
    const double* td = demand_of(slot);
    for (int32_t r = 0; r < R_; ++r) used[r] -= td[r];
    auto pit = t_ports_.find(slot);
    if (pit != t_ports_.end()) {
        ports_[port_id_[h]].give_back(pit->second);
        t_ports_.erase(pit);
    }
    auto sit = t_sets_.find(slot);
    if (sit != t_sets_.end()) {
        HostSets& hs = sets_[set_id_[h]];
        for (size_t i = 0; i + 1 < sit->second.size(); i += 2) hs.give_back(sit->second[i], sit->second[i + 1]);
        t_sets_.erase(sit);
    }
    const int32_t g = t_group_[slot];
    if (g >= 0) {
        double* gu = &group_used_[static_cast<size_t>(g) * R_];
        for (int32_t r = 0; r < R_; ++r) gu[r] -= td[r];
    }
    ntasks_[h] -= 1;
    // An empty host holds exactly nothing: no rounding residue of the subtractions above.
    if (ntasks_[h] == 0) std::fill(used, used + R_, 0.0);
    nexcl_[h] -= t_excl_[slot];
    demands_.drop(t_row_[slot]);
    t_row_[slot] = -1;
    t_host_[slot] = -1;
    free_slots_.push_back(slot);
    groups_.touch(h);
    --n_held_;
}

void Engine::reset() {
    for (size_t s = 0; s < t_host_.size(); ++s)
        if (t_host_[s] >= 0) release(static_cast<int32_t>(s));
    std::fill(group_used_.begin(), group_used_.end(), 0.0);  // nothing held: exactly zero
}

}  // namespace titus
