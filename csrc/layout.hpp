// The shapes and codes shared with Python, defined once here and exported by bindings.cpp:
// the rows of the task-class table the codec packs, the reason slots of a failure row, the
// names of those reasons, and the fit slack. Python (codec, scheduler, twin) imports them.
#pragma once
#include <cstdint>

namespace titus {

/// Slack when comparing sums of doubles against a capacity or a limit (the fit test).
constexpr double kEps = 1e-9;

/// One task class of a call. Constraint rows [hard_off, hard_off + hard_cnt) are its hard
/// constraints, [soft_off, ...) its soft ones; set-request rows [rs_off, rs_off + rs_cnt).
struct ClassRow {
    int32_t job, group, ports, hard_off, hard_cnt, soft_off, soft_cnt, rs_off, rs_cnt;
};

/// One constraint: its kind (ConstraintKind), attribute id (-1: no host has it), the expected
/// values of a BalancedHostAttr, and the value ids [val_off, val_off + val_cnt) a HostAttrValue
/// accepts (-1 for a value no host has).
struct ConstraintRow {
    int32_t kind, attr, expected_values, val_off, val_cnt;
};

/// One resource-set request of a class: set name id and label id (rows sorted by name).
struct SetRequestRow {
    int32_t name, label;
};

/// Reason slots of a failure count row: the fixed ones, then R resources, ports, the class's
/// resource sets (up to the most any class asks), its hard constraints.
/// kReasonGroupLimit is a flag (1: the group limit stopped the task), the others count hosts.
enum ReasonSlot : int32_t { kReasonGroupLimit = 0, kReasonDisabled = 1, kReasonExclusive = 2, kReasonResource0 = 3 };

/// The names Failure.counts uses for the fixed slots, in slot order.
constexpr const char* kFixedReasonNames[] = {"group_limit", "disabled", "constraint:ExclusiveHost"};
/// The reason a host without enough free ports gets.
constexpr const char* kPortsReason = "ports";
/// Prefixes of the per-name reasons: `resource_set:<name>`, `constraint:<Kind>`.
constexpr const char* kSetReasonPrefix = "resource_set:";
constexpr const char* kConstraintReasonPrefix = "constraint:";

}  // namespace titus
