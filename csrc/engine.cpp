// Engine state: hosts, held tasks, co-task counts and group usage (the placement loop is in
// schedule.cpp).
#include "engine.hpp"

#include <algorithm>
#include <cmath>

#include "feasibility.hpp"
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
    demands_.widen(R_);
    widen(group_used_, R_);
    ++R_;
    groups_.invalidate();
    cap_extremes_fresh_ = false;
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
    cap_extremes_fresh_ = false;  // live hosts came
    const size_t mid = order_.size();
    order_.insert(order_.end(), fresh.begin(), fresh.end());
    std::inplace_merge(order_.begin(), order_.begin() + mid, order_.end(), less);
}

// Room for `n` items, growing at least twofold: a reserve of exactly what one more small add
// needs would copy the whole array on every add (hosts added one at a time).
template <typename T>
static void grow(std::vector<T>& v, size_t n) {
    if (n > v.capacity()) v.reserve(std::max(n, 2 * v.capacity()));
}

void Engine::reserve_hosts(int64_t n) {
    if (n <= n_hosts()) return;
    const size_t H = static_cast<size_t>(n);
    grow(cap_, H * R_);
    grow(used_, H * R_);
    grow(tiekey_, H);
    grow(live_, H);
    grow(enabled_, H);
    grow(ntasks_, H);
    grow(nexcl_, H);
    grow(port_id_, H);
    grow(set_id_, H);
    grow(order_, H);
    for (auto& col : columns_) grow(col, H);
}

void Engine::reserve_slots(int64_t n) {
    // Free slots are taken first; only the rest are new.
    const size_t need = t_host_.size() + static_cast<size_t>(std::max<int64_t>(0, n - static_cast<int64_t>(free_slots_.size())));
    grow(t_host_, need);
    grow(t_job_, need);
    grow(t_group_, need);
    grow(t_excl_, need);
    grow(t_prio_, need);
    grow(t_seq_, need);
    grow(t_row_, need);
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
    fresh.reserve(static_cast<size_t>(n));
    grow(tiekey_, H);
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
    cap_extremes_fresh_ = false;
    if (port_id_[h] >= 0) ports_[port_id_[h]] = HostPorts();
    if (set_id_[h] >= 0) sets_[set_id_[h]] = HostSets();
    return dropped;
}

int32_t Engine::overcommit_reason(int32_t h, const double* d) const {
    const int32_t r = first_overcommit(used_of(h), cap_of(h), d, R_);
    return r < 0 ? -1 : kReasonResource0 + r;
}

double Engine::largest_free(int32_t r) const {
    double best = 0.0;
    for (const int32_t h : order_)
        if (enabled_[h]) best = std::max(best, cap_of(h)[r] - used_of(h)[r]);
    return best;
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
    if (static_cast<size_t>(job) >= jobs_.size()) jobs_.resize(static_cast<size_t>(job) + 1);
    jobs_[job].counts.emplace_back(attr, &cc);
    if (jobs_[job].held > 0 && attr < static_cast<int32_t>(columns_.size())) {
        const std::vector<int32_t>& col = columns_[attr];
        for (size_t s = 0; s < t_host_.size(); ++s)
            if (t_host_[s] >= 0 && t_job_[s] == job) cc.add(col[t_host_[s]], 1);
    }
    return &cc;
}

void Engine::count_task(int32_t slot, int32_t delta) {
    const int32_t job = t_job_[slot];
    if (job < 0) return;
    if (static_cast<size_t>(job) >= jobs_.size()) jobs_.resize(static_cast<size_t>(job) + 1);
    JobTally& tally = jobs_[job];
    tally.held += delta;
    const int32_t h = t_host_[slot];
    const int32_t n_columns = static_cast<int32_t>(columns_.size());
    for (const auto& [attr, cc] : tally.counts)
        if (attr < n_columns) cc->add(columns_[attr][h], delta);  // else no host has it (yet)
}

size_t Engine::host_bytes() const {
    size_t b = 2 * sizeof(double) * R_ + sizeof(uint64_t) + 2 + 4 * sizeof(int32_t) + sizeof(int32_t);
    b += columns_.size() * sizeof(int32_t);
    return b;
}

size_t Engine::task_bytes() const {
    // host, job, group, priority, demand row; exclusive; hold order (a row is shared by a run)
    return 5 * sizeof(int32_t) + 1 + sizeof(int64_t);
}

}  // namespace titus
