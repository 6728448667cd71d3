// The scheduling engine: host state as structure-of-arrays, held tasks, and the placement
// pipeline candidates -> feasibility -> score -> select -> commit (docs/semantics.md), one stage
// per file: candidates.cpp, feasibility.hpp, score.hpp, select.hpp, commit.cpp; schedule.cpp
// runs them per task. It sees only ints and doubles: every name (attribute, value, job, group,
// resource set, label) was interned by titus._codec.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "constraints.hpp"
#include "demand_rows.hpp"
#include "fitness.hpp"
#include "host_groups.hpp"
#include "layout.hpp"
#include "ports.hpp"
#include "resource_sets.hpp"
#include "score_bound.hpp"
#include "select.hpp"

namespace titus {

/// The task classes of one call, packed by the codec (csrc/layout.hpp rows).
struct ClassTable {
    const ClassRow* cls = nullptr;
    int64_t n_cls = 0;
    const ConstraintRow* cons = nullptr;
    int64_t n_cons = 0;
    const int32_t* vals = nullptr;  // local value ids of HostAttrValue rows
    int64_t n_vals = 0;
    const SetRequestRow* rs = nullptr;
    int64_t n_rs = 0;
};

/// Group limits of one call: group ids and a [L][R] matrix of limits (+inf: no limit).
struct GroupLimits {
    const int32_t* groups = nullptr;
    const double* limits = nullptr;
    int64_t n = 0;
};

/// Where one call writes its results. host/slot have one entry per task; failure rows only for
/// unplaced tasks; ports/set choices only when `details`.
struct ScheduleOut {
    int32_t* host = nullptr;
    int32_t* slot = nullptr;  // may be null
    bool details = false;
    int32_t width = 0;        // reason slots per failure row
    int32_t max_sets = 0;     // set choices per task
    std::vector<int32_t> fail_rows;
    std::vector<int32_t> fail_counts;
    std::vector<int32_t> port_off;  // N + 1
    std::vector<int32_t> ports;
    std::vector<int32_t> set_choice;  // N * max_sets, -1 where none
    std::vector<int32_t> culprit;     // N: for a member of a gang that failed, the row that failed; else -1
    std::vector<int32_t> victims;     // (row, slot) pairs: the held tasks each row evicted (preempt.cpp)
};

/// What a call adds to plain placement: gangs (gang.cpp) and preemption (preempt.cpp).
struct CallExtras {
    const int32_t* gang = nullptr;      // per row: gang id, -1 none; a gang's rows are contiguous
    const int32_t* priority = nullptr;  // per row (null: all 0)
    bool preempt = false;
    const int32_t* quota_jobs = nullptr;    // jobs whose tasks may be evicted in this call...
    const int32_t* quota_counts = nullptr;  // ...and how many of them at most
    int64_t n_quota = 0;
};

/// One step of a gang's attempt, so that it can be undone exactly (gang.cpp): a hold, or an
/// eviction (then the victim's whole record). The host's and group's usage rows before the step
/// are restored bit for bit, so no rounding residue of add-then-subtract survives.
struct UndoStep {
    bool evicted = false;
    int32_t slot = -1, host = -1, group = -1, job = -1, priority = 0;
    uint8_t exclusive = 0;
    int64_t seq = 0;
    std::vector<double> used_before, group_before, demand;
    std::vector<int32_t> ports;
    std::vector<int32_t> sets;  // (set group, set, label) triples
};

/// A task class made ready for the placement loop.
struct ReadyClass {
    int32_t job = -1, group = -1, ports = 0;
    bool exclusive = false;  // has a hard ExclusiveHost
    std::vector<ReadyConstraint> hard, soft;
    std::vector<ReadyConstraint*> counted;  // constraints whose per-task numbers need refreshing
    std::vector<std::pair<int32_t, int32_t>> sets;  // (name, label)
    std::vector<std::vector<uint8_t>> allowed;      // storage behind HostAttrValue tables
    // Constraints on hostname (attribute 0), for the index: the co-task counts they read and
    // the hosts HostAttrValue(hostname) allows. Hosts outside both look alike to them.
    std::vector<const CoCount*> host_counts;
    std::vector<int32_t> allowed_hosts;
    bool names_host = false;       // some constraint is on hostname
    bool co_hosts_rejected = false;  // every hostname constraint is a hard UniqueHostAttr
    bool unique_only = false;        // every hostname constraint is a UniqueHostAttr of the job:
                                     // hosts holding co-tasks are alike within a host class
};

/// One task as the pipeline sees it: its demand row and its class.
struct TaskView {
    const double* d;
    const ReadyClass& rc;
    int32_t cls;  // index of the class in the call
};

/// What stays fixed for one schedule call: where each reason slot starts, the score's
/// denominator, the selection rule, and scratch space the candidate walk reuses.
struct CallState {
    int32_t reason_ports = 0, reason_sets0 = 0, reason_hard0 = 0, width = 0;
    double score_den = 1.0;
    bool use_good_enough = false;
    double good_enough = 0.0;
    std::vector<int32_t> limit_row;  // group id -> row of the limits matrix, or -1
    struct BucketBound {
        double top, soft_part, soft;
        int32_t bucket;
    };
    std::vector<BucketBound> bucket_order;

    // A run: tasks in a row with the same class and demand. Within a run, a bucket's best host
    // (its champion) is found once and kept while only its own placements change the bucket
    // (candidates.cpp, Engine::champion_holds says when it still wins). Anything else that
    // changes a host within a call (release, undoing holds) must end the run (run_ended).
    struct Champion {
        int64_t run = -1;   // the run it was found for
        uint64_t epoch = 0;  // HostGroups::layout_epoch when found
        int32_t host = -1;   // -1: no host of the bucket admits the run's tasks
        double soft = 0.0;   // the bucket's mean soft score then
        double fit = 0.0;    // the champion's fitness then
        double runner_up = -std::numeric_limits<double>::infinity();  // best fitness of the rest seen
        // The last check: the champion's task count (within a run only placements change a
        // host, each adding one), the bucket's soft score, and the score found.
        int32_t checked_tasks = -1;
        double checked_soft = 0.0, checked_score = 0.0, checked_fit = 0.0;
    };
    std::vector<Champion> champions;  // by bucket id
    int64_t run = 0;
    int32_t run_cls = -1;
    std::vector<double> run_demand;
    bool run_cacheable = false;  // the class's soft scores read host attributes only
    // The run's view of the buckets: each non-empty bucket with a member (any tells its
    // attribute values) that passes the run's HostAttrValue constraints, taken again when the
    // layout moves; and the run's constraints that read attributes only (the rest count 1 in a
    // bucket's soft bound).
    uint64_t run_epoch = ~uint64_t{0};
    std::vector<std::pair<int32_t, int32_t>> run_buckets;  // (bucket, member) passing run_hard
    // The run's hard constraints that read attributes only (HostAttrValue), those that also read
    // co-task counts (UniqueHostAttr, BalancedHostAttr on an attribute), and its soft ones that
    // read attributes (and counts) only.
    std::vector<const ReadyConstraint*> run_hard, run_counted, run_soft;
    int32_t run_soft_other = 0;  // soft constraints that read more than attributes
    // No soft constraint and only HostAttrValue hard ones: the buckets' verdicts, scores and so
    // their order stay as they are for the whole run while the layout does (bucket_order is
    // that order when order_run is the run and order_epoch the layout's epoch).
    bool run_static_order = false;
    int64_t order_run = -1;
    uint64_t order_epoch = 0;
};

class Engine {
public:
    Engine(int32_t n_resources, uint64_t seed, std::vector<int32_t> fit_kinds, std::vector<double> fit_weights,
           double soft_weight, double fitness_weight, double good_enough, bool use_index);

    int32_t n_resources() const { return R_; }
    /// Append a resource column (a new scalar name): capacity 0 on every host.
    void add_resource();
    /// Make room for attributes 0..n-1 (attribute 0 is hostname, value = host index).
    void ensure_attrs(int32_t n);

    /// Room for `n` hosts in all, so that adding them in parts copies no array.
    void reserve_hosts(int64_t n);
    /// Room for `n` more held tasks, so a call placing many does not copy the task arrays as
    /// they grow.
    void reserve_slots(int64_t n);
    /// Add hosts; returns the first new host index.
    int32_t add_hosts(const double* caps, int64_t n, const uint64_t* fnv, const int32_t* attrs, int64_t n_attrs,
                      const int32_t* port_ranges, int64_t n_ports, const int32_t* sets, int64_t n_sets);
    /// Remove a host; returns the slots of the tasks it held (now dropped).
    std::vector<int32_t> remove_host(int32_t h);
    void set_enabled(int32_t h, bool enabled) {
        enabled_[h] = enabled ? 1 : 0;
        groups_.touch(h);
    }
    bool is_enabled(int32_t h) const { return enabled_[h] != 0; }
    bool is_live(int32_t h) const { return h >= 0 && h < n_hosts() && live_[h] != 0; }
    int32_t n_hosts() const { return static_cast<int32_t>(live_.size()); }
    int32_t n_live() const { return static_cast<int32_t>(order_.size()); }
    const double* used_of(int32_t h) const { return &used_[static_cast<size_t>(h) * R_]; }
    const double* cap_of(int32_t h) const { return &cap_[static_cast<size_t>(h) * R_]; }
    /// The demand a held task added to its host (R values).
    const double* demand_of(int32_t slot) const { return demands_.row(t_row_[slot], R_); }
    int32_t tasks_on(int32_t h) const { return ntasks_[h]; }

    /// Place tasks one at a time in order (the heart of it; runs without the GIL).
    void schedule(const double* demand, const int32_t* task_class, int64_t n, const ClassTable& classes,
                  const GroupLimits& limits, ScheduleOut& out, const CallExtras& extras = CallExtras());

    /// First resource (kReasonResource0 + r) that `demand` would over-commit on h, or -1.
    int32_t overcommit_reason(int32_t h, const double* demand) const;
    /// The most of resource r any live, enabled host has free (capacity - used); 0 with none.
    double largest_free(int32_t r) const;
    /// Port p: 0 free, 1 not offered or in use.
    bool port_free(int32_t h, int32_t p) const;
    int32_t free_ports(int32_t h) const { return port_id_[h] < 0 ? 0 : ports_[port_id_[h]].free_count(); }
    /// Index (in `sets`) of the first resource-set request that h cannot serve, or -1.
    int32_t missing_set(int32_t h, const std::vector<std::pair<int32_t, int32_t>>& sets) const;
    /// Hold a task on h without any check (the caller checked); returns its slot.
    int32_t hold(int32_t h, const double* demand, int32_t job, int32_t group, bool exclusive, int32_t n_ports,
                 const std::vector<int32_t>* exact_ports, const std::vector<std::pair<int32_t, int32_t>>& sets,
                 std::vector<int32_t>* ports_out, std::vector<int32_t>* sets_out, int32_t priority = 0);
    /// Let a held task go: its resources return to its host.
    void release(int32_t slot);
    /// Drop every held task.
    void reset();

    bool slot_held(int32_t slot) const {
        return slot >= 0 && static_cast<size_t>(slot) < t_host_.size() && t_host_[slot] >= 0;
    }
    int32_t slot_host(int32_t slot) const { return t_host_[slot]; }
    int64_t slot_seq(int32_t slot) const { return t_seq_[slot]; }
    int32_t slot_priority(int32_t slot) const { return t_prio_[slot]; }
    int64_t n_held() const { return n_held_; }
    /// Bytes of engine memory per host and per held task (for the memory targets).
    size_t host_bytes() const;
    size_t task_bytes() const;
    /// Host equivalence classes in the index now (debug: shows what the signature tells apart).
    int64_t n_host_classes() const { return static_cast<int64_t>(groups_.size()); }
    /// Hosts evaluated (feasibility + score) by the last schedule call (debug counter).
    int64_t last_evaluated() const { return evaluated_; }
    /// Class entries the bounded walk looked at in the last schedule call (debug counter).
    int64_t last_walked() const { return walked_; }
    /// Buckets walked to their champion in the last schedule call (debug counter).
    int64_t last_bucket_walks() const { return bucket_walks_; }

private:
    int32_t R_;
    uint64_t seed_;
    FitnessMix fitness_;
    double soft_w_, fit_w_, good_enough_;
    bool use_index_;

    // hosts, by index (structure of arrays)
    std::vector<double> cap_, used_;  // [H][R]
    std::vector<uint64_t> tiekey_;
    std::vector<uint8_t> live_, enabled_;
    std::vector<int32_t> ntasks_, nexcl_, port_id_, set_id_;
    std::vector<HostPorts> ports_;
    std::vector<HostSets> sets_;
    std::vector<std::vector<int32_t>> columns_;  // attribute -> host -> local value id or -1
    std::vector<int32_t> order_;                 // live hosts by (tiekey, index): the scan order

    // held tasks, by slot
    std::vector<int32_t> t_host_, t_job_, t_group_;
    std::vector<uint8_t> t_excl_;
    std::vector<int32_t> t_prio_;  // priority (preemption: only strictly lower ones are evicted)
    std::vector<int64_t> t_seq_;   // hold order, a total order shared with the twin (oldest first)
    int64_t next_seq_ = 0;
    std::vector<int32_t> t_row_;    // slot -> its demand row in demands_
    DemandRows demands_;
    std::unordered_map<int32_t, std::vector<int32_t>> t_ports_;
    std::unordered_map<int32_t, std::vector<int32_t>> t_sets_;  // (group, set) pairs
    std::vector<int32_t> free_slots_;
    int64_t n_held_ = 0;

    // groups and co-task counts
    std::vector<double> group_used_;  // [G][R]
    std::unordered_map<uint64_t, CoCount> cocounts_;  // (job << 32 | attr) -> counts
    /// Per job (ids are dense, from the codec): tasks held, and the (attribute, counts) it keeps.
    /// A flat row, so holding a task reads one place, not two hash tables; entries of cocounts_
    /// are never erased, so the pointers stay good.
    struct JobTally {
        int64_t held = 0;  // a new job's counts start at zero
        std::vector<std::pair<int32_t, CoCount*>> counts;
    };
    std::vector<JobTally> jobs_;

    HostGroups groups_;  // the index: equivalence classes of hosts

    // Which attributes the host signature tells apart: only those the constraints of recent
    // calls read, so a label unique to each host (instance id) does not split every class.
    // Per attribute: 0 ignored, kAttrFull every value, kAttrNamed only the values a
    // HostAttrValue names (each named value vs "any other").
    static constexpr uint8_t kAttrFull = 1, kAttrNamed = 2;
    std::vector<uint8_t> attr_mode_;
    std::vector<std::vector<uint8_t>> attr_named_;
    int32_t view_idle_calls_ = 0;
    static constexpr int32_t kViewPatience = 4;  // calls in a row that needed less than the current view
    /// Fit the attribute view to the constraints of one call; invalidates the index on change.
    void use_attr_view(const ClassTable& t);
    int64_t evaluated_ = 0, walked_ = 0, bucket_walks_ = 0;

    /// Write host h's equivalence-class signature; returns its free-cpus key (an upper bound of
    /// the cpus a task may ask and still fit on h).
    double signature(int32_t h, std::string& out) const;
    /// Hosts a hostname constraint of the class sees apart from the rest (they hold co-tasks,
    /// or HostAttrValue(hostname) names them): marked in special_mark_, listed in special_.
    void mark_special(const ReadyClass& rc);
    void unmark_special();
    /// Within one call the marks stay while tasks of one class follow each other: co-task
    /// counts only grow during a call, so a placement can only add a special host.
    void mark_if_special(const ReadyClass& rc, int32_t h);
    void clear_marks();
    /// Bring the host classes up to date. A special mark is part of the signature, so special
    /// and ordinary hosts never share a class.
    void refresh_groups();
    /// Bring bucket b up to date (the hosts waiting in it), leaving the others' for later.
    void refresh_bucket(int32_t b);
    std::vector<uint8_t> special_mark_;
    bool marks_moved_ = false;  // a mark changed since the last whole refresh (refresh_bucket)
    std::vector<int32_t> special_;
    int64_t marks_class_ = -1;               // the task class the marks are for, or -1

    static uint64_t pair_key(int32_t job, int32_t attr) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(job)) << 32) | static_cast<uint32_t>(attr);
    }
    // ---- the pipeline stages (one file each; schedule.cpp runs them)
    CallState call_;
    ScoreBound bound_;
    CapExtremes cap_extremes_;         // of the live hosts, kept while no host comes or goes
    bool cap_extremes_fresh_ = false;
    /// Ready the classes and the per-call state of one schedule call.
    std::vector<ReadyClass> begin_call(const ClassTable& classes, const GroupLimits& limits);
    /// group_limit (before any host): whether the task would take its group over a limit.
    bool over_group_limit(const TaskView& t, const GroupLimits& limits) const;
    /// candidates.cpp: the chosen host for the task, or -1 (then `reasons` holds every host's).
    int32_t choose(const TaskView& t, std::vector<int32_t>& reasons);
    int32_t scan_all(const TaskView& t, std::vector<int32_t>& reasons);
    void walk_buckets(const TaskView& t, GroupSelector& pick);
    /// The next task starts a new run (its champions are not kept).
    void run_ended();
    /// The run's list of non-empty buckets, current with the layout.
    void list_buckets();
    /// call_.bucket_order for task t: the buckets that pass its attribute checks, best bound first.
    void rank_buckets(const TaskView& t);
    /// The run the task belongs to (a new one when its class or demand differs from the last).
    void follow_run(const TaskView& t);
    /// Whether bucket bb's kept champion still wins it for task t; sets h (-1: none admits t)
    /// and its score.
    bool champion_holds(const TaskView& t, const CallState::BucketBound& bb, int32_t& h, double& score);
    /// Walk one bucket to its champion (kept for the run); h = -1 when no class admits t.
    void walk_bucket(const TaskView& t, const CallState::BucketBound& bb, int32_t& h, double& score);
    void walk_classes(const TaskView& t, GroupSelector& pick, bool skip_special);
    void count_reasons(const TaskView& t, std::vector<int32_t>& reasons, bool specials_apart);
    /// feasibility.hpp: the first check host h fails for the task (a reason slot), or -1.
    inline int32_t reject_reason(const TaskView& t, int32_t h) const;
    /// score.hpp: the score of a feasible host h for the task.
    inline double score_on(const TaskView& t, int32_t h) const;
    /// score.hpp: the same score from a fitness already computed (`fit`, fitness_ on h).
    inline double score_with(const TaskView& t, int32_t h, double fit) const;
    /// score.hpp: feasibility then score: the reason slot, or -1 with `score` set.
    inline int32_t evaluate(const TaskView& t, int32_t h, double& score);

    // ---- gangs (gang.cpp) and preemption (preempt.cpp)
    /// The usage rows of host h and group g now, for an UndoStep.
    void save_rows(UndoStep& s, int32_t h, int32_t g);
    void restore_rows(const UndoStep& s);
    /// Undo a gang's steps, newest first, leaving the state exactly as before the first.
    void undo(std::vector<UndoStep>& log);
    /// Put an evicted task back in its own slot, with its ports and set slots.
    void rehold(const UndoStep& s);
    /// Evict a held task (release it), recording it in `log` when a gang may need it back.
    void evict(int32_t slot, std::vector<UndoStep>* log);
    /// Whether task t would pass feasibility on h once `victims` (oldest first) were gone; sets
    /// `score` to its score there.
    bool fits_without(const TaskView& t, int32_t h, const std::vector<int32_t>& victims, double& score,
                      std::vector<double>& used_tmp) const;
    /// preempt.cpp: the host task t may take by evicting tasks of priority below `prio`, and the
    /// victims (oldest first); -1 when there is none.
    int32_t preempt_choose(const TaskView& t, int32_t prio, std::vector<int32_t>& victims);
    /// Evictions left per job in this call (preempt.cpp), and the first seq of this call (tasks
    /// placed by the call itself are never victims).
    std::unordered_map<int32_t, int64_t> quota_left_;
    int64_t call_seq0_ = 0;

    CoCount* counts_for(int32_t job, int32_t attr);
    void count_task(int32_t slot, int32_t delta);
    void ensure_group(int32_t g);
    ReadyClass ready_class(const ClassTable& t, int64_t k);
    void insert_order(std::vector<int32_t> fresh);
};

}  // namespace titus
