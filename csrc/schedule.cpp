// The placement loop: for each task in order, group limit -> feasibility -> score -> select ->
// hold (docs/semantics.md, "One task at a time, in the order given").
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

#include "engine.hpp"
#include "score_bound.hpp"
#include "select.hpp"

namespace titus {

namespace {

// Beyond this many buckets, ranking them per task costs more than it saves.
constexpr size_t kMaxBuckets = 256;

/// A constraint whose verdict and soft score depend only on a host's attribute values (not its
/// task count): alike for every host of a bucket. Only asked of classes with no constraint on
/// hostname (those take the plain walk).
bool reads_attrs_only(const ReadyConstraint& c) {
    return c.kind != kExclusiveHost;
}

}  // namespace

ReadyClass Engine::ready_class(const ClassTable& t, int64_t k) {
    const int32_t* c = t.cls + 9 * k;
    ReadyClass rc;
    rc.job = c[0];
    rc.group = c[1];
    rc.ports = c[2];
    auto make = [&](int64_t ci) {
        const int32_t* con = t.cons + 5 * ci;
        ReadyConstraint r;
        r.kind = con[0];
        const int32_t attr = con[1];
        r.k = std::max<int32_t>(1, con[2]);
        if (r.kind != kExclusiveHost && attr >= 0 && attr < static_cast<int32_t>(columns_.size()))
            r.column = columns_[attr].data();
        if (r.kind == kHostAttrValue) {
            std::vector<uint8_t> allowed;
            for (int32_t j = 0; j < con[4]; ++j) {
                const int32_t v = t.vals[con[3] + j];
                if (v < 0) continue;  // a value no host has
                if (static_cast<size_t>(v) >= allowed.size()) allowed.resize(v + 1, 0);
                allowed[v] = 1;
            }
            rc.allowed.push_back(std::move(allowed));
        } else if ((r.kind == kUniqueHostAttr || r.kind == kBalancedHostAttr) && rc.job >= 0 && attr >= 0) {
            r.counts = counts_for(rc.job, attr);
        }
        r.prepare_for_task();  // no co-tasks: n = 0, m = 0 for good; else refreshed per task
        return r;
    };
    for (int32_t j = 0; j < c[4]; ++j) {
        rc.hard.push_back(make(c[3] + j));
        if (rc.hard.back().kind == kExclusiveHost) rc.exclusive = true;
    }
    for (int32_t j = 0; j < c[6]; ++j) rc.soft.push_back(make(c[5] + j));
    for (int32_t j = 0; j < c[8]; ++j) rc.sets.emplace_back(t.rs[2 * (c[7] + j)], t.rs[2 * (c[7] + j) + 1]);
    // Pointers into rc.allowed are taken only now that the vector stops growing.
    size_t a = 0;
    rc.co_hosts_rejected = true;
    rc.unique_only = true;
    for (auto* list : {&rc.hard, &rc.soft})
        for (auto& r : *list) {
            const bool on_hostname = r.kind != kExclusiveHost && r.column == columns_[0].data();
            if (r.kind == kHostAttrValue) {
                r.allowed = rc.allowed[a].data();
                r.n_allowed = static_cast<int32_t>(rc.allowed[a].size());
                if (on_hostname)
                    for (int32_t v = 0; v < r.n_allowed; ++v)
                        if (r.allowed[v]) rc.allowed_hosts.push_back(v);
                ++a;
            }
            if (r.counts) rc.counted.push_back(&r);
            if (on_hostname) {
                rc.names_host = true;
                if (r.counts) rc.host_counts.push_back(r.counts);
                if (!(list == &rc.hard && r.kind == kUniqueHostAttr)) rc.co_hosts_rejected = false;
                if (!(r.kind == kUniqueHostAttr && r.counts)) rc.unique_only = false;
            }
        }
    return rc;
}

void Engine::schedule(const double* demand, const int32_t* task_class, int64_t n, const ClassTable& classes,
                      const GroupLimits& limits, ScheduleOut& out) {
    std::vector<ReadyClass> ready;
    ready.reserve(classes.n_cls);
    int32_t max_hard = 0, max_sets = 0;
    for (int64_t k = 0; k < classes.n_cls; ++k) {
        ready.push_back(ready_class(classes, k));
        max_hard = std::max<int32_t>(max_hard, static_cast<int32_t>(ready.back().hard.size()));
        max_sets = std::max<int32_t>(max_sets, static_cast<int32_t>(ready.back().sets.size()));
    }
    // group id -> row of the limits matrix
    std::vector<int32_t> limit_row;
    for (int64_t i = 0; i < limits.n; ++i) {
        const int32_t g = limits.groups[i];
        if (static_cast<size_t>(g) >= limit_row.size()) limit_row.resize(g + 1, -1);
        limit_row[g] = static_cast<int32_t>(i);
    }
    const int32_t reason_ports = kReasonResource0 + R_;
    const int32_t reason_sets0 = reason_ports + 1;
    const int32_t reason_hard0 = reason_sets0 + max_sets;
    out.width = reason_hard0 + max_hard;
    out.max_sets = max_sets;
    if (out.details) {
        out.port_off.assign(1, 0);
        out.set_choice.assign(static_cast<size_t>(n) * max_sets, -1);
    }
    std::vector<int32_t> reasons(out.width);
    std::vector<int32_t> ports_got, sets_got;
    const bool use_good_enough = !std::isnan(good_enough_);
    const double score_den = soft_w_ + fit_w_;

    clear_marks();
    if (use_index_) use_attr_view(classes);
    // Branch and bound over host classes: exact, so only where good_enough leaves the greatest
    // score in charge of the choice.
    ScoreBound bound;
    if (use_index_ && !use_good_enough) bound.prepare(fitness_, soft_w_, fit_w_, cap_.data(), R_, order_, kEps);
    evaluated_ = 0;
    walked_ = 0;
    std::unordered_map<std::string, std::vector<int32_t>> failed;  // since the last placement
    struct BucketBound {
        double top, soft_part;
        int32_t bucket;
    };
    std::vector<BucketBound> bucket_order;
    std::string memo_key;
    for (int64_t i = 0; i < n; ++i) {
        const double* d = demand + i * R_;
        ReadyClass& rc = ready[task_class[i]];
        out.host[i] = -1;
        if (out.slot) out.slot[i] = -1;
        std::fill(reasons.begin(), reasons.end(), 0);
        bool placed = false;

        // Nothing placed since an identical task (class and demand) failed: the state is the
        // same, so it fails the same way; its reasons are copied, not recounted.
        const bool memo = use_index_;
        auto make_memo_key = [&]() {
            memo_key.assign(reinterpret_cast<const char*>(&task_class[i]), sizeof(int32_t));
            memo_key.append(reinterpret_cast<const char*>(d), sizeof(double) * R_);
        };
        // Most tasks place: no failure since the last placement means nothing to look up.
        const bool look = memo && !failed.empty();
        if (look) make_memo_key();
        const auto hit = look ? failed.find(memo_key) : failed.end();
        if (hit != failed.end()) {
            reasons = hit->second;
        } else {
            // Group limit, before looking at hosts.
            bool over_limit = false;
            if (rc.group >= 0 && static_cast<size_t>(rc.group) < limit_row.size() && limit_row[rc.group] >= 0) {
                const double* lim = limits.limits + static_cast<size_t>(limit_row[rc.group]) * R_;
                const bool has_used = static_cast<size_t>(rc.group + 1) * R_ <= group_used_.size();
                for (int32_t r = 0; r < R_ && !over_limit; ++r) {
                    const double u = has_used ? group_used_[static_cast<size_t>(rc.group) * R_ + r] : 0.0;
                    if (u + d[r] > lim[r] + kEps) over_limit = true;
                }
            }
            if (over_limit) {
                reasons[kReasonGroupLimit] = 1;  // a flag: the group limit stopped it before any host
            } else {
                for (ReadyConstraint* c : rc.counted) c->prepare_for_task();
                // Feasibility of host h (first failing check), else its score.
                auto evaluate = [&](int32_t h, double& score) -> int32_t {
                    ++evaluated_;
                    const double* used = &used_[static_cast<size_t>(h) * R_];
                    const double* cap = &cap_[static_cast<size_t>(h) * R_];
                    if (!enabled_[h]) return kReasonDisabled;
                    if (nexcl_[h] > 0 || (rc.exclusive && ntasks_[h] > 0)) return kReasonExclusive;
                    for (int32_t r = 0; r < R_; ++r)
                        if (used[r] + d[r] > cap[r] + kEps) return kReasonResource0 + r;
                    if (rc.ports > 0 && free_ports(h) < rc.ports) return reason_ports;
                    if (!rc.sets.empty()) {
                        const int32_t j = missing_set(h, rc.sets);
                        if (j >= 0) return reason_sets0 + j;
                    }
                    for (size_t j = 0; j < rc.hard.size(); ++j)
                        if (!rc.hard[j].satisfied(h, ntasks_[h])) return reason_hard0 + static_cast<int32_t>(j);
                    const double fit = fitness_(used, cap, d);
                    double soft = 1.0;
                    if (!rc.soft.empty()) {
                        double total = 0.0;
                        for (const auto& c : rc.soft) total += c.soft_score(h, ntasks_[h]);
                        soft = total / static_cast<double>(rc.soft.size());
                    }
                    score = (soft_w_ * soft + fit_w_ * fit) / score_den;
                    return -1;
                };
                // Every live host in tiekey order: exact reasons for every host.
                auto full_scan = [&](Selector& select) {
                    for (const int32_t h : order_) {
                        double score;
                        const int32_t reason = evaluate(h, score);
                        if (reason >= 0) {
                            ++reasons[reason];
                            continue;
                        }
                        if (select.offer(h, score)) break;
                    }
                };
                Selector select(use_good_enough, good_enough_);
                if (use_index_) {
                    // One representative (lowest tiekey) per equivalence class that may fit the cpus.
                    // Hosts a hostname constraint sees apart (special) sit in classes of their own.
                    if (rc.names_host && marks_class_ != task_class[i]) {
                        clear_marks();
                        mark_special(rc);
                        marks_class_ = task_class[i];
                    }
                    refresh_groups();
                    // Under unique_only, special hosts (holding co-tasks) are alike within a class
                    // too; otherwise each special host is looked at on its own.
                    const bool specials_apart = rc.names_host && !rc.unique_only;
                    // Hard UniqueHostAttr(hostname) alone: a special host can never be chosen.
                    const bool specials_rejected = rc.names_host && rc.unique_only && rc.co_hosts_rejected;
                    GroupSelector pick(use_good_enough, good_enough_);
                    double score;
                    bool prune = bound.enabled();
                    for (int32_t r = 0; r < R_ && prune; ++r)
                        if (!(d[r] >= 0.0)) prune = false;
                    if (prune && !rc.names_host && groups_.n_buckets() <= kMaxBuckets) {
                        // Buckets share attribute values: the same hard-attribute verdict and
                        // the same soft score for every class in them. Best soft bound first.
                        bucket_order.clear();
                        for (int32_t b = 0; b < static_cast<int32_t>(groups_.bucket_capacity()); ++b) {
                            const HostBucket& hb = groups_.bucket(b);
                            if (hb.by_free.empty()) continue;
                            const int32_t rep = groups_.group(hb.by_free.front().second).rep();
                            bool ok = true;
                            for (const auto& c : rc.hard)
                                if (reads_attrs_only(c) && !c.satisfied(rep, ntasks_[rep])) {
                                    ok = false;  // every class of the bucket fails it
                                    break;
                                }
                            if (!ok) continue;
                            double soft = 1.0;
                            if (!rc.soft.empty()) {
                                double total = 0.0;
                                for (const auto& c : rc.soft) total += reads_attrs_only(c) ? c.soft_score(rep, 0) : 1.0;
                                soft = total / static_cast<double>(rc.soft.size());
                            }
                            const double sp = bound.soft_part(soft);
                            bucket_order.push_back({bound.at_with(sp, d[kCpus], d[kCpus]), sp, b});
                        }
                        std::sort(bucket_order.begin(), bucket_order.end(),
                                  [](const BucketBound& a, const BucketBound& b) { return a.top > b.top; });
                        for (const BucketBound& bb : bucket_order) {
                            if (pick.has_best() && ScoreBound::beneath(bb.top, pick.best_score())) break;
                            const HostBucket& hb = groups_.bucket(bb.bucket);
                            const auto& by_free = hb.by_free;
                            const size_t w = 2 * static_cast<size_t>(R_);
                            // Classes come by rising free cpus: past the key where the bound of
                            // the rest falls below the best score, none of them can win or tie.
                            // That key moves only when the best does.
                            double key_stop = pick.has_best() ? bound.key_limit(bb.soft_part, d[kCpus], pick.best_score())
                                                              : std::numeric_limits<double>::infinity();
                            hb.refresh_room(R_, kEps);
                            const size_t n_entries = by_free.size();
                            size_t j = static_cast<size_t>(
                                std::lower_bound(by_free.begin(), by_free.end(), std::make_pair(d[kCpus], INT32_MIN)) -
                                by_free.begin());
                            for (; j < n_entries; ++j) {
                                if (j % HostBucket::kBlock == 0) {  // skip whole blocks where no class fits
                                    size_t blk = j / HostBucket::kBlock;
                                    while (blk * HostBucket::kBlock < n_entries && !hb.block_may_fit(blk, d, R_)) ++blk;
                                    j = blk * HostBucket::kBlock;
                                    if (j >= n_entries) break;
                                }
                                if (by_free[j].first > key_stop) break;
                                ++walked_;
                                // The resource check of evaluate, on the class's own numbers:
                                // a class it fails is infeasible, so skipping it changes nothing.
                                const double* cap = &hb.state[j * w];
                                const double* used = cap + R_;
                                bool fits = true;
                                for (int32_t r = 0; r < R_; ++r)
                                    if (used[r] + d[r] > cap[r] + kEps) {
                                        fits = false;
                                        break;
                                    }
                                if (!fits) continue;
                                const int32_t h = groups_.group(by_free[j].second).rep();
                                if (evaluate(h, score) < 0 && pick.offer(h, tiekey_[h], score))
                                    key_stop = bound.key_limit(bb.soft_part, d[kCpus], pick.best_score());
                            }
                        }
                    } else {
                        for (auto it = groups_.from(d[kCpus]); it != groups_.end(); ++it) {
                            const int32_t h = groups_.group(it->second).rep();
                            if ((specials_apart || specials_rejected) && special_mark_[h]) continue;
                            if (evaluate(h, score) < 0) pick.offer(h, tiekey_[h], score);
                        }
                    }
                    if (specials_apart)
                        for (const int32_t h : special_)
                            if (evaluate(h, score) < 0) pick.offer(h, tiekey_[h], score);
                    if (pick.chosen() >= 0) {
                        select.force(pick.chosen());
                    } else {
                        // Unplaced: every host's reason. A class's members share the reason of its
                        // representative; special hosts looked at apart are counted one by one.
                        if (specials_apart)
                            for (const int32_t h : special_)
                                ++reasons[evaluate(h, score)];  // infeasible, or pick would have chosen one
                        for (auto it = groups_.from(-std::numeric_limits<double>::infinity()); it != groups_.end(); ++it) {
                            const HostGroup& grp = groups_.group(it->second);
                            const int32_t h = grp.rep();
                            if (specials_apart && special_mark_[h]) continue;
                            reasons[evaluate(h, score)] += static_cast<int32_t>(grp.size());
                        }
                    }
                } else {
                    full_scan(select);
                }
                if (select.chosen() >= 0) {
                    const int32_t h = select.chosen();
                    ports_got.clear();
                    sets_got.clear();
                    const int32_t slot = hold(h, d, rc.job, rc.group, rc.exclusive, rc.ports, nullptr, rc.sets,
                                              out.details ? &ports_got : nullptr, out.details ? &sets_got : nullptr);
                    out.host[i] = h;
                    if (out.slot) out.slot[i] = slot;
                    if (marks_class_ >= 0) mark_if_special(ready[marks_class_], h);
                    placed = true;
                    if (out.details) {
                        out.ports.insert(out.ports.end(), ports_got.begin(), ports_got.end());
                        std::copy(sets_got.begin(), sets_got.end(), out.set_choice.begin() + i * max_sets);
                    }
                }
            }
            if (placed && !failed.empty()) {
                // A fresh table: clear() would walk every bucket a big table once grew.
                if (failed.bucket_count() > 64) failed = decltype(failed)();
                else failed.clear();
            } else if (!placed && memo) {
                if (!look) make_memo_key();
                failed.emplace(memo_key, reasons);
            }
        }
        if (out.details) out.port_off.push_back(static_cast<int32_t>(out.ports.size()));
        if (!placed) {
            out.fail_rows.push_back(static_cast<int32_t>(i));
            out.fail_counts.insert(out.fail_counts.end(), reasons.begin(), reasons.end());
        }
    }
    clear_marks();
}

void Engine::refresh_groups() {
    groups_.refresh(order_, n_hosts(), R_, [this](int32_t h, std::string& o) { return signature(h, o); },
                    [this](int32_t h) { return tiekey_[h]; });
}

void Engine::mark_if_special(const ReadyClass& rc, int32_t h) {
    if (special_mark_[h]) return;
    for (const CoCount* cc : rc.host_counts)
        if (static_cast<size_t>(h) < cc->c.size() && cc->c[h] > 0) {
            special_mark_[h] = 1;
            special_.push_back(h);
            groups_.touch(h);  // its class changes at the next refresh
            return;
        }
}

void Engine::clear_marks() {
    unmark_special();
    marks_class_ = -1;
}

void Engine::use_attr_view(const ClassTable& t) {
    std::vector<uint8_t> mode;
    std::vector<std::vector<uint8_t>> named;
    for (int64_t ci = 0; ci < t.n_cons; ++ci) {
        const int32_t* con = t.cons + 5 * ci;
        const int32_t kind = con[0], attr = con[1];
        if (kind == kExclusiveHost || attr <= 0) continue;  // hostname: special hosts see to it
        if (static_cast<size_t>(attr) >= mode.size()) {
            mode.resize(attr + 1, 0);
            named.resize(attr + 1);
        }
        if (kind != kHostAttrValue) {
            mode[attr] = kAttrFull;
            continue;
        }
        if (mode[attr] != kAttrFull) mode[attr] = kAttrNamed;
        for (int32_t j = 0; j < con[4]; ++j) {
            const int32_t v = t.vals[con[3] + j];
            if (v < 0) continue;
            if (static_cast<size_t>(v) >= named[attr].size()) named[attr].resize(v + 1, 0);
            named[attr][v] = 1;
        }
    }
    for (size_t a = 0; a < mode.size(); ++a)
        if (mode[a] != kAttrNamed) named[a].clear();
    // Is the current view at least as fine as this call needs? Then keep it for a few calls
    // (rebuilding costs O(hosts)), but let it coarsen once the finer part stays unused.
    bool covered = true, equal = mode.size() == attr_mode_.size();
    for (size_t a = 0; a < std::max(mode.size(), attr_mode_.size()); ++a) {
        const uint8_t want = a < mode.size() ? mode[a] : 0;
        const uint8_t have = a < attr_mode_.size() ? attr_mode_[a] : 0;
        if (want != have) equal = false;
        if (want == 0 || have == kAttrFull) continue;
        if (have == 0 || want == kAttrFull) {
            covered = false;
            break;
        }
        const auto& w = named[a];
        const auto& hv = attr_named_[a];
        if (w != hv) equal = false;
        for (size_t v = 0; v < w.size(); ++v)
            if (w[v] && (v >= hv.size() || !hv[v])) covered = false;
    }
    if (equal) {
        view_idle_calls_ = 0;
        return;
    }
    if (covered && ++view_idle_calls_ <= kViewPatience) return;
    view_idle_calls_ = 0;
    attr_mode_.swap(mode);
    attr_named_.swap(named);
    groups_.invalidate();
}

}  // namespace titus
