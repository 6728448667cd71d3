// Stage 1 of the pipeline, candidates: which hosts a task is offered, and the order.
//
// Without the index: every live host in tiekey order (the definition). With it: one
// representative per host class (hosts a task cannot tell apart, host_groups.hpp), the one
// the tie-break would pick. Where a score bound exists (score_bound.hpp) the classes are walked
// bucket by bucket, best soft bound first, each bucket by rising free cpus, and a walk stops
// once no class left can reach the best score so far. Hosts a hostname constraint sees apart
// (special hosts) are offered one by one. Each candidate goes through feasibility and score;
// selection (select.hpp) keeps the winner.
#include <algorithm>
#include <cstring>
#include <limits>

#include "engine.hpp"
#include "feasibility.hpp"
#include "score.hpp"

namespace titus {

namespace {

// Beyond this many buckets, ranking them per task costs more than it saves.
constexpr size_t kMaxBuckets = 256;

// A kept champion survives a change of its bucket's soft score only if its fitness leads every
// other host seen by more than this: scores are (soft_w * soft + fit_w * fit) / den in [0, 1],
// so a lead of fit_w / den * kFitGap (>= 1e-13 with kMinFitShare) is far above their rounding
// (a few 1e-16), and the order of the bucket's hosts cannot change.
constexpr double kFitGap = 1e-9;
constexpr double kMinFitShare = 1e-4;

/// A constraint whose verdict and soft score depend only on a host's attribute values (not its
/// task count): alike for every host of a bucket. Only asked of classes with no constraint on
/// hostname (those take the plain walk).
bool reads_attrs_only(const ReadyConstraint& c) { return c.kind != kExclusiveHost; }

}  // namespace

int32_t Engine::choose(const TaskView& t, std::vector<int32_t>& reasons) {
    if (!use_index_) return scan_all(t, reasons);
    const ReadyClass& rc = t.rc;
    if (rc.names_host && marks_class_ != t.cls) {
        clear_marks();
        mark_special(rc);
        marks_class_ = t.cls;
    }
    // Under unique_only, special hosts (holding co-tasks) are alike within a class too;
    // otherwise each special host is looked at on its own.
    const bool specials_apart = rc.names_host && !rc.unique_only;
    // Hard UniqueHostAttr(hostname) alone: a special host can never be chosen.
    const bool specials_rejected = rc.names_host && rc.unique_only && rc.co_hosts_rejected;
    GroupSelector pick(call_.use_good_enough, call_.good_enough);
    bool prune = bound_.enabled();
    for (int32_t r = 0; r < R_ && prune; ++r)
        if (!(t.d[r] >= 0.0)) prune = false;
    // The bucket walk brings the index up to date itself, and only where it must look: a run's
    // placements on kept champions leave their hosts to be re-homed later.
    if (prune && !rc.names_host && groups_.n_buckets() <= kMaxBuckets) {
        walk_buckets(t, pick);
    } else {
        run_ended();
        refresh_groups();
        walk_classes(t, pick, specials_apart || specials_rejected);
    }
    double score;
    if (specials_apart)
        for (const int32_t h : special_)
            if (evaluate(t, h, score) < 0) pick.offer(h, tiekey_[h], score);
    if (pick.chosen() < 0) {
        refresh_groups();
        count_reasons(t, reasons, specials_apart);
    }
    return pick.chosen();
}

int32_t Engine::scan_all(const TaskView& t, std::vector<int32_t>& reasons) {
    Selector select(call_.use_good_enough, call_.good_enough);
    double score;
    for (const int32_t h : order_) {
        const int32_t reason = evaluate(t, h, score);
        if (reason >= 0) {
            ++reasons[reason];
            continue;
        }
        if (select.offer(h, score)) break;
    }
    return select.chosen();
}

void Engine::walk_classes(const TaskView& t, GroupSelector& pick, bool skip_special) {
    double score;
    groups_.for_each_from(t.d[kCpus], [&](double, int32_t g) {
        const int32_t h = groups_.group(g).rep();
        if (skip_special && special_mark_[h]) return;
        if (evaluate(t, h, score) < 0) pick.offer(h, tiekey_[h], score);
    });
}

void Engine::run_ended() { call_.run_cls = -1; }

void Engine::follow_run(const TaskView& t) {
    CallState& c = call_;
    const size_t bytes = sizeof(double) * static_cast<size_t>(R_);
    if (c.run_cls == t.cls && c.run_demand.size() == static_cast<size_t>(R_) &&
        std::memcmp(c.run_demand.data(), t.d, bytes) == 0)
        return;
    ++c.run;
    c.run_cls = t.cls;
    c.run_demand.assign(t.d, t.d + R_);
    // A soft score that reads a host's own tasks (soft ExclusiveHost) differs inside a bucket:
    // such a run walks every time.
    c.run_cacheable = fit_w_ > 0.0 && fit_w_ >= kMinFitShare * c.score_den;
    c.run_epoch = ~uint64_t{0};
    c.run_hard.clear();
    c.run_counted.clear();
    c.run_soft.clear();
    c.run_soft_other = 0;
    c.run_static_order = t.rc.soft.empty();
    for (const auto& k : t.rc.hard) {
        if (!reads_attrs_only(k)) continue;
        if (k.kind == kHostAttrValue) {
            c.run_hard.push_back(&k);
        } else {
            c.run_counted.push_back(&k);
            c.run_static_order = false;  // reads co-task counts
        }
    }
    for (const auto& k : t.rc.soft) {
        if (reads_attrs_only(k)) {
            c.run_soft.push_back(&k);
        } else {
            c.run_cacheable = false;
            ++c.run_soft_other;
        }
    }
}

void Engine::list_buckets() {
    CallState& c = call_;
    if (c.run_epoch == groups_.layout_epoch()) return;
    c.run_epoch = groups_.layout_epoch();
    c.run_buckets.clear();
    for (int32_t b = 0; b < static_cast<int32_t>(groups_.bucket_capacity()); ++b) {
        const HostBucket& hb = groups_.bucket(b);
        if (hb.empty()) continue;
        // Any member tells the bucket's attribute values, also one waiting to be re-homed; a
        // bucket failing a verdict that reads attributes only is failed for the whole run.
        const int32_t member = groups_.group(hb.first_class()).rep();
        bool ok = true;
        for (const ReadyConstraint* k : c.run_hard)
            if (!k->satisfied(member, 0)) {
                ok = false;
                break;
            }
        if (ok) c.run_buckets.emplace_back(b, member);
    }
}

bool Engine::champion_holds(const TaskView& t, const CallState::BucketBound& bb, int32_t& h, double& score) {
    if (!call_.run_cacheable || static_cast<size_t>(bb.bucket) >= call_.champions.size()) return false;
    CallState::Champion& c = call_.champions[bb.bucket];
    if (c.run != call_.run || c.epoch != groups_.layout_epoch()) return false;
    h = c.host;
    if (h < 0) return true;  // its hosts are as they were: none admits the task still
    // Since the walk, only placements on the champion itself changed the bucket, so every other
    // host scores as it did then. The champion still wins if it still fits and its fitness did
    // not fall; if the bucket's soft score moved (the same shift for every host of the bucket),
    // also if its fitness leads the rest by far more than rounding (kFitGap), so that no tie
    // broken the other way by rounding can appear. Hosts the walk pruned scored below the
    // champion by the bound's margin, far above kFitGap.
    double f;
    if (ntasks_[h] == c.checked_tasks) {
        // The host is as at the last check (within a run only placements change a host, each
        // adding a task): it still admits the task -- the bucket passed the attribute checks
        // just now -- with the same fitness.
        if (bb.soft == c.checked_soft) {
            score = c.checked_score;
            return true;
        }
        f = c.checked_fit;
    } else {
        ++evaluated_;
        if (reject_reason(t, h) >= 0) return false;
        f = fitness_(used_of(h), cap_of(h), t.d);
        if (!(f >= c.fit)) return false;
    }
    if (bb.soft != c.soft && !(f - c.runner_up > kFitGap)) return false;
    score = score_with(t, h, f);
    c.checked_tasks = ntasks_[h];
    c.checked_soft = bb.soft;
    c.checked_score = score;
    c.checked_fit = f;
    return true;
}

void Engine::rank_buckets(const TaskView& t) {
    // Buckets share attribute values: the same hard-attribute verdict and the same soft score
    // for every class in them. Best soft bound first.
    const ReadyClass& rc = t.rc;
    const double* d = t.d;
    list_buckets();
    auto& order = call_.bucket_order;
    order.clear();
    const double n_soft = static_cast<double>(rc.soft.size());
    for (const auto& [b, member] : call_.run_buckets) {
        // The run's HostAttrValue verdicts were taken by list_buckets; those that read
        // co-task counts move with every placement.
        bool ok = true;
        for (const ReadyConstraint* c : call_.run_counted)
            if (!c->satisfied(member, 0)) {
                ok = false;  // every class of the bucket fails it
                break;
            }
        if (!ok) continue;
        double soft = 1.0;
        if (!rc.soft.empty()) {
            // Summed in constraint order, as score.hpp does (the others count 1 here).
            double total = 0.0;
            if (call_.run_soft_other == 0) {
                for (const ReadyConstraint* c : call_.run_soft) total += c->soft_score(member, 0);
            } else {
                for (const auto& c : rc.soft) total += reads_attrs_only(c) ? c.soft_score(member, 0) : 1.0;
            }
            soft = total / n_soft;
        }
        const double sp = bound_.soft_part(soft);
        order.push_back({bound_.at_with(sp, d[kCpus], d[kCpus]), sp, soft, b});
    }
    std::sort(order.begin(), order.end(),
              [](const CallState::BucketBound& a, const CallState::BucketBound& b) { return a.top > b.top; });
    call_.order_run = call_.run_static_order ? call_.run : -1;
    call_.order_epoch = groups_.layout_epoch();
}

void Engine::walk_buckets(const TaskView& t, GroupSelector& pick) {
    follow_run(t);
    for (;;) {
        const uint64_t epoch = groups_.layout_epoch();
        auto& order = call_.bucket_order;
        if (!(call_.run_static_order && call_.order_run == call_.run && call_.order_epoch == epoch))
            rank_buckets(t);
        bool refiled = false;
        for (const CallState::BucketBound& bb : order) {
            if (pick.has_best() && ScoreBound::beneath(bb.top, pick.best_score())) break;
            int32_t h = -1;
            double score = 0.0;
            if (!champion_holds(t, bb, h, score)) {
                if (!groups_.dirty().empty()) {
                    refresh_bucket(bb.bucket);
                    if (groups_.layout_epoch() != epoch) {  // bucket ids moved: start over
                        refiled = true;
                        break;
                    }
                }
                walk_bucket(t, bb, h, score);
            }
            if (h >= 0) pick.offer(h, tiekey_[h], score);
        }
        if (!refiled) return;
    }
}

void Engine::walk_bucket(const TaskView& t, const CallState::BucketBound& bb, int32_t& h_out, double& score_out) {
    const double* d = t.d;
    const HostBucket& hb = groups_.bucket(bb.bucket);
    const size_t w = 2 * static_cast<size_t>(R_);
    ++bucket_walks_;
    // The bucket's own champion: the greatest score, the lowest tiekey among equals.
    GroupSelector best(false, 0.0);
    double best_fit = -std::numeric_limits<double>::infinity();
    double runner_up = -std::numeric_limits<double>::infinity();
    // Classes come by rising free cpus: past the key where the bound of the rest falls below
    // the best score, none of them can win or tie. That key moves only when the best does.
    double key_stop = std::numeric_limits<double>::infinity();
    const auto [c0, j0] = hb.locate(std::make_pair(d[kCpus], INT32_MIN));
    double score = 0.0;
    const bool attrs_only_soft = call_.run_soft_other == 0;  // walk_buckets serves no hostname constraint
    const size_t n_chunks = hb.chunks.size();
    for (size_t c = c0; c < n_chunks; ++c) {
        if (c % HostBucket::kGroup == 0 && !hb.group_may_fit(c / HostBucket::kGroup, d, R_, kEps)) {
            c += HostBucket::kGroup - 1;  // no class of the next kGroup chunks fits
            continue;
        }
        const BucketChunk& ch = hb.chunks[c];
        if (ch.first.first > key_stop) break;
        // Skip a whole chunk where no class fits, or (with a best already) none can reach it.
        ch.ensure(R_, kEps);
        if (!ch.may_fit(d, R_)) continue;
        if (best.has_best() &&
            ScoreBound::beneath(bound_.block_score(bb.soft, ch.util, ch.util + BucketChunk::kUtilCols, d),
                                best.best_score()))
            continue;
        const size_t n_entries = ch.by_free.size();
        for (size_t j = c == c0 ? j0 : 0; j < n_entries; ++j) {
            if (ch.by_free[j].first > key_stop) break;
            ++walked_;
            // The fit test on the class's own numbers: a class it fails is infeasible, so
            // skipping it changes nothing.
            const double* cap = &ch.state[j * w];
            if (!fits(cap + R_, cap, d, R_)) continue;
            // Its fitness from the same numbers (its members' own) and, where every soft score
            // reads attributes only, its score from the bucket's soft score (alike for every
            // host of the bucket, summed as score_with does): a class that cannot win or tie
            // is passed without looking up its host. It still counts for the runner-up, which
            // may then only overstate the fitness of the feasible others (a champion is then
            // re-checked sooner, never kept wrongly).
            const double f = fitness_(cap + R_, cap, d);
            if (attrs_only_soft) {
                score = (soft_w_ * bb.soft + fit_w_ * f) / call_.score_den;
                if (best.has_best() && score < best.best_score()) {
                    ++evaluated_;
                    runner_up = std::max(runner_up, f);
                    continue;
                }
            }
            const int32_t h = groups_.group(ch.by_free[j].second).rep();
            ++evaluated_;  // feasibility then score, as evaluate() does
            if (reject_reason(t, h) >= 0) continue;
            if (!attrs_only_soft) score = score_with(t, h, f);
            const int32_t before = best.chosen();
            const bool rose = best.offer(h, tiekey_[h], score);
            if (best.chosen() == h) {
                if (before >= 0) runner_up = std::max(runner_up, best_fit);
                best_fit = f;
            } else {
                runner_up = std::max(runner_up, f);
            }
            if (rose) key_stop = bound_.key_limit(bb.soft_part, d[kCpus], best.best_score());
        }
    }
    h_out = best.chosen();
    if (h_out >= 0) score_out = best.best_score();
    if (!call_.run_cacheable) return;
    if (static_cast<size_t>(bb.bucket) >= call_.champions.size()) call_.champions.resize(bb.bucket + 1);
    call_.champions[bb.bucket] = {call_.run,  groups_.layout_epoch(), h_out, bb.soft, best_fit, runner_up,
                                  h_out >= 0 ? ntasks_[h_out] : -1, bb.soft, h_out >= 0 ? score_out : 0.0, best_fit};
}

void Engine::count_reasons(const TaskView& t, std::vector<int32_t>& reasons, bool specials_apart) {
    // Unplaced: every host's reason. A class's members share the reason of its representative;
    // special hosts looked at apart are counted one by one.
    double score;
    if (specials_apart)
        for (const int32_t h : special_) ++reasons[evaluate(t, h, score)];  // infeasible, or chosen
    groups_.for_each_from(-std::numeric_limits<double>::infinity(), [&](double, int32_t g) {
        const HostGroup& grp = groups_.group(g);
        const int32_t h = grp.rep();
        if (specials_apart && special_mark_[h]) return;
        reasons[evaluate(t, h, score)] += static_cast<int32_t>(grp.size());
    });
}

}  // namespace titus
