// Gangs (docs/semantics.md, "Gangs"): the rows of a gang are placed in order as usual, and when
// one cannot be placed every step taken for the gang in this call -- holds and evictions -- is
// undone, newest first, leaving hosts, groups, ports, resource sets and co-task counts exactly
// as before the gang was tried. The schedule loop (schedule.cpp) logs the steps and calls undo.
#include <algorithm>

#include "engine.hpp"

namespace titus {

void Engine::save_rows(UndoStep& s, int32_t h, int32_t g) {
    s.host = h;
    s.group = g;
    s.used_before.assign(used_of(h), used_of(h) + R_);
    if (g >= 0) {
        ensure_group(g);
        const double* gu = &group_used_[static_cast<size_t>(g) * R_];
        s.group_before.assign(gu, gu + R_);
    }
}

void Engine::restore_rows(const UndoStep& s) {
    std::copy(s.used_before.begin(), s.used_before.end(), used_.begin() + static_cast<size_t>(s.host) * R_);
    if (s.group >= 0)
        std::copy(s.group_before.begin(), s.group_before.end(), group_used_.begin() + static_cast<size_t>(s.group) * R_);
    groups_.touch(s.host);
}

void Engine::evict(int32_t slot, std::vector<UndoStep>* log) {
    if (log) {
        UndoStep s;
        s.evicted = true;
        s.slot = slot;
        save_rows(s, t_host_[slot], t_group_[slot]);
        s.job = t_job_[slot];
        s.priority = t_prio_[slot];
        s.exclusive = t_excl_[slot];
        s.seq = t_seq_[slot];
        const double* td = demand_of(slot);
        s.demand.assign(td, td + R_);
        auto pit = t_ports_.find(slot);
        if (pit != t_ports_.end()) s.ports = pit->second;
        auto sit = t_sets_.find(slot);
        if (sit != t_sets_.end()) {
            const HostSets& hs = sets_[set_id_[s.host]];
            for (size_t i = 0; i + 1 < sit->second.size(); i += 2) {
                const int32_t g = sit->second[i], set = sit->second[i + 1];
                s.sets.insert(s.sets.end(), {g, set, hs.groups[g].label[set]});
            }
        }
        log->push_back(std::move(s));
    }
    release(slot);
}

void Engine::rehold(const UndoStep& s) {
    // Its own slot again: the names Python keeps for slots stay right.
    auto it = std::find(free_slots_.begin(), free_slots_.end(), s.slot);
    if (it != free_slots_.end()) free_slots_.erase(it);
    const int32_t h = s.host, slot = s.slot;
    t_row_[slot] = demands_.take(s.demand.data(), R_);
    t_host_[slot] = h;
    t_job_[slot] = s.job;
    t_group_[slot] = s.group;
    t_excl_[slot] = s.exclusive;
    t_prio_[slot] = s.priority;
    t_seq_[slot] = s.seq;
    ntasks_[h] += 1;
    nexcl_[h] += s.exclusive;
    if (!s.ports.empty()) {
        std::vector<int32_t> ps = s.ports;
        ports_[port_id_[h]].take(ps);
        t_ports_[slot] = std::move(ps);
    }
    if (!s.sets.empty()) {
        HostSets& hs = sets_[set_id_[h]];
        std::vector<int32_t> taken;
        for (size_t i = 0; i + 2 < s.sets.size(); i += 3) {
            hs.take(s.sets[i], s.sets[i + 1], s.sets[i + 2]);
            taken.push_back(s.sets[i]);
            taken.push_back(s.sets[i + 1]);
        }
        t_sets_[slot] = std::move(taken);
    }
    count_task(slot, +1);
    ++n_held_;
    restore_rows(s);  // usage exactly as before the eviction
}

void Engine::undo(std::vector<UndoStep>& log) {
    for (auto it = log.rbegin(); it != log.rend(); ++it) {
        if (it->evicted) {
            rehold(*it);
        } else {
            release(it->slot);
            restore_rows(*it);
        }
    }
    log.clear();
    // Co-task counts fell and hosts emptied: kept champions and special marks are stale.
    run_ended();
    clear_marks();
}

}  // namespace titus
