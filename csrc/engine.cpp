// Engine state: hosts, held tasks, co-task counts and group usage (the placement loop is in
// schedule.cpp).
#include "engine.hpp"

#include <algorithm>
#include <cmath>

#include "hash.hpp"

namespace titus {

Engine::Engine(int32_t n_resources, uint64_t seed, std::vector<int32_t> fit_kinds, std::vector<double> fit_weights,
               double soft_weight, double fitness_weight, double good_enough, bool use_index)
    : R_(n_resources),
      seed_(seed),
      soft_w_(soft_weight),
      fit_w_(fitness_weight),
      good_enough_(good_enough),
      use_index_(use_index) {
    fitness_.set(fit_kinds, fit_weights);
    columns_.resize(1);  // attribute 0: hostname
}

// Re-lay a [rows][R] matrix out as [rows][R + 1] with a zero last column.
static void widen(std::vector<double>& m, int32_t R) {
    const size_t rows = R ? m.size() / R : 0;
    std::vector<double> out(rows * (R + 1), 0.0);
    for (size_t i = 0; i < rows; ++i)
        std::copy(m.begin() + i * R, m.begin() + (i + 1) * R, out.begin() + i * (R + 1));
    m.swap(out);
}

void Engine::add_resource() {
    widen(cap_, R_);
    widen(used_, R_);
    widen(t_demand_, R_);
    widen(group_used_, R_);
    ++R_;
    groups_.invalidate();
}

void Engine::ensure_attrs(int32_t n) {
    if (static_cast<int32_t>(columns_.size()) < n) groups_.invalidate();
    while (static_cast<int32_t>(columns_.size()) < n) columns_.emplace_back(live_.size(), -1);
}

void Engine::insert_order(std::vector<int32_t> fresh) {
    auto less = [this](int32_t a, int32_t b) {
        return tiekey_[a] != tiekey_[b] ? tiekey_[a] < tiekey_[b] : a < b;
    };
    std::sort(fresh.begin(), fresh.end(), less);
    const size_t mid = order_.size();
    order_.insert(order_.end(), fresh.begin(), fresh.end());
    std::inplace_merge(order_.begin(), order_.begin() + mid, order_.end(), less);
}

int32_t Engine::add_hosts(const double* caps, int64_t n, const uint64_t* fnv, const int32_t* attrs, int64_t n_attrs,
                          const int32_t* port_ranges, int64_t n_ports, const int32_t* sets, int64_t n_sets) {
    const int32_t first = n_hosts();
    const size_t H = static_cast<size_t>(first + n);
    cap_.insert(cap_.end(), caps, caps + n * R_);
    used_.resize(H * R_, 0.0);
    live_.resize(H, 1);
    enabled_.resize(H, 1);
    ntasks_.resize(H, 0);
    nexcl_.resize(H, 0);
    port_id_.resize(H, -1);
    set_id_.resize(H, -1);
    for (auto& col : columns_) col.resize(H, -1);
    std::vector<int32_t> fresh;
    for (int64_t i = 0; i < n; ++i) {
        const int32_t h = first + static_cast<int32_t>(i);
        tiekey_.push_back(tiekey_from_fnv(fnv[i], seed_));
        columns_[0][h] = h;
        fresh.push_back(h);
    }
    for (int64_t i = 0; i < n_attrs; ++i) {
        const int32_t* a = attrs + 3 * i;
        ensure_attrs(a[1] + 1);
        columns_[a[1]][first + a[0]] = a[2];
    }
    // ports: rows (host row, lo, hi), grouped by host row
    for (int64_t i = 0; i < n_ports;) {
        const int32_t row = port_ranges[3 * i];
        std::vector<std::pair<int32_t, int32_t>> rs;
        for (; i < n_ports && port_ranges[3 * i] == row; ++i) rs.emplace_back(port_ranges[3 * i + 1], port_ranges[3 * i + 2]);
        HostPorts hp;
        hp.set_ranges(std::move(rs));
        port_id_[first + row] = static_cast<int32_t>(ports_.size());
        ports_.push_back(std::move(hp));
    }
    // resource sets: rows (host row, name, sets, slots), grouped by host row
    for (int64_t i = 0; i < n_sets;) {
        const int32_t row = sets[4 * i];
        HostSets hs;
        for (; i < n_sets && sets[4 * i] == row; ++i) {
            SetGroup g;
            g.name = sets[4 * i + 1];
            g.slots = sets[4 * i + 3];
            g.label.assign(sets[4 * i + 2], -1);
            g.used.assign(sets[4 * i + 2], 0);
            hs.groups.push_back(std::move(g));
        }
        set_id_[first + row] = static_cast<int32_t>(sets_.size());
        sets_.push_back(std::move(hs));
    }
    for (int32_t h : fresh) groups_.touch(h);  // joins its class at the next refresh
    insert_order(std::move(fresh));
    return first;
}

std::vector<int32_t> Engine::remove_host(int32_t h) {
    std::vector<int32_t> dropped;
    if (ntasks_[h] > 0) {
        for (size_t s = 0; s < t_host_.size(); ++s)
            if (t_host_[s] == h) dropped.push_back(static_cast<int32_t>(s));
        for (int32_t s : dropped) release(s);
    }
    groups_.drop(h, [this](int32_t x) { return tiekey_[x]; });
    live_[h] = 0;
    order_.erase(std::find(order_.begin(), order_.end(), h));
    if (port_id_[h] >= 0) ports_[port_id_[h]] = HostPorts();
    if (set_id_[h] >= 0) sets_[set_id_[h]] = HostSets();
    return dropped;
}

int32_t Engine::overcommit_reason(int32_t h, const double* d) const {
    const double* used = used_of(h);
    const double* cap = cap_of(h);
    for (int32_t r = 0; r < R_; ++r)
        if (used[r] + d[r] > cap[r] + kEps) return kReasonResource0 + r;
    return -1;
}

bool Engine::port_free(int32_t h, int32_t p) const {
    if (port_id_[h] < 0) return false;
    const HostPorts& hp = ports_[port_id_[h]];
    return hp.offered(p) && !hp.in_use(p);
}

int32_t Engine::missing_set(int32_t h, const std::vector<std::pair<int32_t, int32_t>>& sets) const {
    for (size_t j = 0; j < sets.size(); ++j) {
        if (set_id_[h] < 0) return static_cast<int32_t>(j);
        const HostSets& hs = sets_[set_id_[h]];
        const int32_t g = hs.group_of(sets[j].first);
        if (g < 0 || hs.pick(g, sets[j].second) < 0) return static_cast<int32_t>(j);
    }
    return -1;
}

void Engine::ensure_group(int32_t g) {
    if (static_cast<size_t>(g + 1) * R_ > group_used_.size()) group_used_.resize(static_cast<size_t>(g + 1) * R_, 0.0);
}

CoCount* Engine::counts_for(int32_t job, int32_t attr) {
    const uint64_t key = pair_key(job, attr);
    auto it = cocounts_.find(key);
    if (it != cocounts_.end()) return &it->second;
    // First use of (job, attr): count the job's held tasks once.
    CoCount& cc = cocounts_[key];
    job_attrs_[job].push_back(attr);
    const bool holds_any = static_cast<size_t>(job) < job_held_.size() && job_held_[job] > 0;
    if (holds_any && attr < static_cast<int32_t>(columns_.size())) {
        const std::vector<int32_t>& col = columns_[attr];
        for (size_t s = 0; s < t_host_.size(); ++s)
            if (t_host_[s] >= 0 && t_job_[s] == job) cc.add(col[t_host_[s]], 1);
    }
    return &cc;
}

void Engine::count_task(int32_t slot, int32_t delta) {
    const int32_t job = t_job_[slot];
    if (job < 0) return;
    if (static_cast<size_t>(job) >= job_held_.size()) job_held_.resize(static_cast<size_t>(job) + 1, 0);
    job_held_[job] += delta;
    auto it = job_attrs_.find(job);
    if (it == job_attrs_.end()) return;
    const int32_t h = t_host_[slot];
    for (int32_t attr : it->second) {
        if (attr >= static_cast<int32_t>(columns_.size())) continue;  // no host has it (yet)
        cocounts_[pair_key(job, attr)].add(columns_[attr][h], delta);
    }
}

int32_t Engine::hold(int32_t h, const double* d, int32_t job, int32_t group, bool exclusive, int32_t n_ports,
                     const std::vector<int32_t>* exact_ports, const std::vector<std::pair<int32_t, int32_t>>& sets,
                     std::vector<int32_t>* ports_out, std::vector<int32_t>* sets_out) {
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
        t_demand_.resize(t_demand_.size() + R_, 0.0);
    }
    double* used = &used_[static_cast<size_t>(h) * R_];
    double* td = &t_demand_[static_cast<size_t>(slot) * R_];
    for (int32_t r = 0; r < R_; ++r) {
        used[r] += d[r];
        td[r] = d[r];
    }
    t_host_[slot] = h;
    t_job_[slot] = job;
    t_group_[slot] = group;
    t_excl_[slot] = exclusive ? 1 : 0;
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
    const int32_t h = t_host_[slot];
    count_task(slot, -1);
    double* used = &used_[static_cast<size_t>(h) * R_];
    const double* td = &t_demand_[static_cast<size_t>(slot) * R_];
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

double Engine::signature(int32_t h, std::string& out) const {
    auto put = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
    const double* cap = cap_of(h);
    const double* used = used_of(h);
    put(cap, sizeof(double) * R_);
    put(used, sizeof(double) * R_);
    const int32_t flags[5] = {enabled_[h], ntasks_[h] > 0, nexcl_[h] > 0, free_ports(h),
                              set_id_[h] >= 0 ? h : -1};  // hosts with resource sets stand alone
    put(flags, sizeof(flags));
    // Only the attributes (and values) the constraints in use read; see use_attr_view.
    const size_t n_attrs = std::min(columns_.size(), attr_mode_.size());
    for (size_t a = 1; a < n_attrs; ++a) {
        if (!attr_mode_[a]) continue;
        int32_t v = columns_[a][h];
        if (attr_mode_[a] == kAttrNamed) {
            const std::vector<uint8_t>& named = attr_named_[a];
            if (v < 0 || static_cast<size_t>(v) >= named.size() || !named[v]) v = -1;  // fails alike
        }
        put(&v, sizeof(v));
    }
    const uint8_t special = static_cast<size_t>(h) < special_mark_.size() ? special_mark_[h] : 0;
    put(&special, 1);
    // Feasible needs used + d <= cap + 1e-9 (rounded); this bound leaves room for the rounding.
    const double scale = std::fabs(cap[kCpus]) + std::fabs(used[kCpus]) + 1.0;
    return (cap[kCpus] - used[kCpus]) + 1e-6 + 1e-12 * scale;
}

void Engine::mark_special(const ReadyClass& rc) {
    if (special_mark_.size() < live_.size()) special_mark_.resize(live_.size(), 0);
    auto mark = [this](int32_t h) {
        if (h >= 0 && static_cast<size_t>(h) < live_.size() && live_[h] && !special_mark_[h]) {
            special_mark_[h] = 1;
            special_.push_back(h);
            groups_.touch(h);  // special hosts form classes of their own
        }
    };
    for (const CoCount* cc : rc.host_counts)
        for (int32_t h : cc->touched)
            if (cc->c[h] > 0) mark(h);
    for (int32_t h : rc.allowed_hosts) mark(h);
}

void Engine::unmark_special() {
    for (int32_t h : special_) {
        special_mark_[h] = 0;
        if (live_[h]) groups_.touch(h);
    }
    special_.clear();
}

size_t Engine::host_bytes() const {
    size_t b = 2 * sizeof(double) * R_ + sizeof(uint64_t) + 2 + 4 * sizeof(int32_t) + sizeof(int32_t);
    b += columns_.size() * sizeof(int32_t);
    return b;
}

size_t Engine::task_bytes() const { return 3 * sizeof(int32_t) + 1 + sizeof(double) * R_; }

}  // namespace titus
