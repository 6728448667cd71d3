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
    int32_t max_hard = 0, max_sets = 0, max_job = -1;
    for (int64_t k = 0; k < classes.n_cls; ++k) {
        ready.push_back(ready_class(classes, k));
        max_hard = std::max<int32_t>(max_hard, static_cast<int32_t>(ready.back().hard.size()));
        max_sets = std::max<int32_t>(max_sets, static_cast<int32_t>(ready.back().sets.size()));
        max_job = std::max(max_job, ready.back().job);
    }
    // Every job of the call has its tally row before the loop: none grows the table mid-call.
    if (static_cast<size_t>(max_job + 1) > jobs_.size()) jobs_.resize(static_cast<size_t>(max_job) + 1);
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
    if (use_index_ && !call_.use_good_enough) {
        if (!cap_extremes_fresh_) {
            cap_extremes_ = CapExtremes::of(cap_.data(), R_, order_);
            cap_extremes_fresh_ = true;
        }
        bound_.prepare(fitness_, soft_w_, fit_w_, cap_extremes_, R_, kEps);
    }
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
                      const GroupLimits& limits, ScheduleOut& out, const CallExtras& x) {
    std::vector<ReadyClass> ready = begin_call(classes, limits);
    reserve_slots(n);
    int32_t max_sets = call_.reason_hard0 - call_.reason_sets0;
    out.width = call_.width;
    out.max_sets = max_sets;
    if (out.details) {
        out.port_off.assign(1, 0);
        out.set_choice.assign(static_cast<size_t>(n) * max_sets, -1);
    }
    out.culprit.assign(static_cast<size_t>(n), -1);
    call_seq0_ = next_seq_;
    quota_left_.clear();
    if (x.preempt)
        for (int64_t q = 0; q < x.n_quota; ++q) quota_left_[x.quota_jobs[q]] = x.quota_counts[q];
    std::vector<int32_t> reasons(out.width);
    std::vector<int32_t> ports_got, sets_got, victims;
    // Failures since the last placement, by (class, demand[, priority]): nothing placed since
    // means the same state, so an identical task fails the same way and its reasons are copied.
    std::unordered_map<std::string, std::vector<int32_t>> failed;
    const bool memo = use_index_;
    std::string memo_key;
    std::vector<UndoStep> log;  // the steps of the gang being tried
    auto forget_failures = [&]() {
        if (failed.empty()) return;
        // A fresh table: clear() would walk every bucket a big table once grew.
        if (failed.bucket_count() > 64) failed = decltype(failed)();
        else failed.clear();
    };
    // One row through the pipeline; true when it was placed.
    auto place = [&](int64_t i, bool in_gang) -> bool {
        const TaskView t{demand + i * R_, ready[task_class[i]], task_class[i]};
        const int32_t prio = x.priority ? x.priority[i] : 0;
        out.host[i] = -1;
        if (out.slot) out.slot[i] = -1;
        std::fill(reasons.begin(), reasons.end(), 0);
        int32_t h = -1;
        bool keyed = false;
        victims.clear();
        auto make_key = [&]() {
            memo_key.assign(reinterpret_cast<const char*>(&task_class[i]), sizeof(int32_t));
            memo_key.append(reinterpret_cast<const char*>(t.d), sizeof(double) * R_);
            if (x.preempt) memo_key.append(reinterpret_cast<const char*>(&prio), sizeof(int32_t));
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
            if (h < 0 && x.preempt) {
                h = preempt_choose(t, prio, victims);
                if (h >= 0) {
                    for (const int32_t v : victims) {
                        evict(v, in_gang ? &log : nullptr);
                        --quota_left_[t_job_[v]];
                        out.victims.push_back(static_cast<int32_t>(i));
                        out.victims.push_back(v);
                    }
                    // Hosts emptied and co-task counts fell: kept champions and marks are stale.
                    run_ended();
                    clear_marks();
                }
            }
        }
        if (h >= 0) {  // commit
            ports_got.clear();
            sets_got.clear();
            if (in_gang) {
                log.emplace_back();
                save_rows(log.back(), h, t.rc.group);
            }
            const int32_t slot = hold(h, t.d, t.rc.job, t.rc.group, t.rc.exclusive, t.rc.ports, nullptr, t.rc.sets,
                                      out.details ? &ports_got : nullptr, out.details ? &sets_got : nullptr, prio);
            if (in_gang) log.back().slot = slot;
            out.host[i] = h;
            if (out.slot) out.slot[i] = slot;
            if (marks_class_ >= 0) mark_if_special(ready[marks_class_], h);
            if (out.details) {
                out.ports.insert(out.ports.end(), ports_got.begin(), ports_got.end());
                std::copy(sets_got.begin(), sets_got.end(), out.set_choice.begin() + i * max_sets);
            }
            forget_failures();
        } else {
            if (memo && hit == failed.end()) {
                if (!keyed) make_key();
                failed.emplace(memo_key, reasons);
            }
            out.fail_rows.push_back(static_cast<int32_t>(i));
            out.fail_counts.insert(out.fail_counts.end(), reasons.begin(), reasons.end());
        }
        if (out.details) out.port_off.push_back(static_cast<int32_t>(out.ports.size()));
        return h >= 0;
    };
    for (int64_t i = 0; i < n;) {
        const int32_t g = x.gang ? x.gang[i] : -1;
        if (g < 0) {
            place(i, false);
            ++i;
            continue;
        }
        // A gang: its rows follow each other (the wrapper orders them so).
        int64_t end = i + 1;
        while (end < n && x.gang[end] == g) ++end;
        const size_t ports0 = out.ports.size(), victims0 = out.victims.size();
        log.clear();
        const auto quota0 = x.preempt ? quota_left_ : decltype(quota_left_)();
        int64_t k = i;
        for (; k < end; ++k)
            if (!place(k, true)) break;
        if (k < end) {  // member k failed: undo the gang, every member fails naming k
            undo(log);
            forget_failures();
            if (x.preempt) quota_left_ = quota0;
            out.victims.resize(victims0);
            if (out.details) out.ports.resize(ports0);
            for (int64_t j = i; j < end; ++j) {
                out.culprit[j] = static_cast<int32_t>(k);
                out.host[j] = -1;
                if (out.slot) out.slot[j] = -1;
                if (out.details) {
                    std::fill(out.set_choice.begin() + j * max_sets, out.set_choice.begin() + (j + 1) * max_sets, -1);
                    if (j <= k) out.port_off[j + 1] = static_cast<int32_t>(ports0);
                    else out.port_off.push_back(static_cast<int32_t>(ports0));
                }
                if (j != k) {  // the culprit's row holds its own reasons; the others' are empty
                    out.fail_rows.push_back(static_cast<int32_t>(j));
                    out.fail_counts.insert(out.fail_counts.end(), reasons.size(), 0);
                }
            }
        }
        log.clear();
        i = end;
    }
    clear_marks();
}

}  // namespace titus
