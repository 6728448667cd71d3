// The placement loop (docs/semantics.md, "One task at a time, in the order given"): for each
// task, its group limit, then candidates -> feasibility -> score -> select (candidates.cpp),
// then commit (commit.cpp) or the failure row of per-reason host counts.
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "engine.hpp"
#include "feasibility.hpp"

namespace titus {

std::vector<ReadyClass> Engine::begin_call(const ClassTable& classes, const GroupLimits& limits) {
    std::vector<ReadyClass> ready;
    ready.reserve(classes.n_cls);
    int32_t max_hard = 0, max_sets = 0;
    for (int64_t k = 0; k < classes.n_cls; ++k) {
        ready.push_back(ready_class(classes, k));
        max_hard = std::max<int32_t>(max_hard, static_cast<int32_t>(ready.back().hard.size()));
        max_sets = std::max<int32_t>(max_sets, static_cast<int32_t>(ready.back().sets.size()));
    }
    call_.limit_row.clear();
    for (int64_t i = 0; i < limits.n; ++i) {
        const int32_t g = limits.groups[i];
        if (static_cast<size_t>(g) >= call_.limit_row.size()) call_.limit_row.resize(g + 1, -1);
        call_.limit_row[g] = static_cast<int32_t>(i);
    }
    call_.reason_ports = kReasonResource0 + R_;
    call_.reason_sets0 = call_.reason_ports + 1;
    call_.reason_hard0 = call_.reason_sets0 + max_sets;
    call_.width = call_.reason_hard0 + max_hard;
    call_.use_good_enough = !std::isnan(good_enough_);
    call_.good_enough = good_enough_;
    call_.score_den = soft_w_ + fit_w_;
    clear_marks();
    run_ended();
    if (use_index_) {
        use_attr_view(classes);
        refresh_groups();  // fresh at the start; within the call only placements age it
    }
    // Branch and bound over host classes: exact, so only where good_enough leaves the
    // greatest score in charge of the choice.
    bound_ = ScoreBound();
    if (use_index_ && !call_.use_good_enough) bound_.prepare(fitness_, soft_w_, fit_w_, cap_.data(), R_, order_, kEps);
    evaluated_ = 0;
    walked_ = 0;
    bucket_walks_ = 0;
    return ready;
}

bool Engine::over_group_limit(const TaskView& t, const GroupLimits& limits) const {
    const int32_t g = t.rc.group;
    if (g < 0 || static_cast<size_t>(g) >= call_.limit_row.size() || call_.limit_row[g] < 0) return false;
    const double* lim = limits.limits + static_cast<size_t>(call_.limit_row[g]) * R_;
    if (static_cast<size_t>(g + 1) * R_ > group_used_.size()) {
        static thread_local std::vector<double> zero;
        zero.assign(R_, 0.0);
        return !fits(zero.data(), lim, t.d, R_);
    }
    return !fits(&group_used_[static_cast<size_t>(g) * R_], lim, t.d, R_);
}

void Engine::schedule(const double* demand, const int32_t* task_class, int64_t n, const ClassTable& classes,
                      const GroupLimits& limits, ScheduleOut& out) {
    std::vector<ReadyClass> ready = begin_call(classes, limits);
    int32_t max_sets = call_.reason_hard0 - call_.reason_sets0;
    out.width = call_.width;
    out.max_sets = max_sets;
    if (out.details) {
        out.port_off.assign(1, 0);
        out.set_choice.assign(static_cast<size_t>(n) * max_sets, -1);
    }
    std::vector<int32_t> reasons(out.width);
    std::vector<int32_t> ports_got, sets_got;
    // Failures since the last placement, by (class, demand): nothing placed since means the
    // same state, so an identical task fails the same way and its reasons are copied.
    std::unordered_map<std::string, std::vector<int32_t>> failed;
    const bool memo = use_index_;
    std::string memo_key;
    for (int64_t i = 0; i < n; ++i) {
        const TaskView t{demand + i * R_, ready[task_class[i]], task_class[i]};
        out.host[i] = -1;
        if (out.slot) out.slot[i] = -1;
        std::fill(reasons.begin(), reasons.end(), 0);
        int32_t h = -1;
        bool keyed = false;
        auto make_key = [&]() {
            memo_key.assign(reinterpret_cast<const char*>(&task_class[i]), sizeof(int32_t));
            memo_key.append(reinterpret_cast<const char*>(t.d), sizeof(double) * R_);
            keyed = true;
        };
        const bool look = memo && !failed.empty();  // most tasks place: nothing to look up
        if (look) make_key();
        const auto hit = look ? failed.find(memo_key) : failed.end();
        if (hit != failed.end()) {
            reasons = hit->second;
        } else if (over_group_limit(t, limits)) {
            reasons[kReasonGroupLimit] = 1;  // a flag: the group limit stopped it before any host
        } else {
            for (ReadyConstraint* c : t.rc.counted) c->prepare_for_task();
            h = choose(t, reasons);
        }
        if (h >= 0) {  // commit
            ports_got.clear();
            sets_got.clear();
            const int32_t slot = hold(h, t.d, t.rc.job, t.rc.group, t.rc.exclusive, t.rc.ports, nullptr, t.rc.sets,
                                      out.details ? &ports_got : nullptr, out.details ? &sets_got : nullptr);
            out.host[i] = h;
            if (out.slot) out.slot[i] = slot;
            if (marks_class_ >= 0) mark_if_special(ready[marks_class_], h);
            if (out.details) {
                out.ports.insert(out.ports.end(), ports_got.begin(), ports_got.end());
                std::copy(sets_got.begin(), sets_got.end(), out.set_choice.begin() + i * max_sets);
            }
            if (!failed.empty()) {
                // A fresh table: clear() would walk every bucket a big table once grew.
                if (failed.bucket_count() > 64) failed = decltype(failed)();
                else failed.clear();
            }
        } else {
            if (memo && hit == failed.end()) {
                if (!keyed) make_key();
                failed.emplace(memo_key, reasons);
            }
            out.fail_rows.push_back(static_cast<int32_t>(i));
            out.fail_counts.insert(out.fail_counts.end(), reasons.begin(), reasons.end());
        }
        if (out.details) out.port_off.push_back(static_cast<int32_t>(out.ports.size()));
    }
    clear_marks();
}

}  // namespace titus
