// Resource sets of one host (ENI-style): per name, N sets of K slots, each set labelled or not.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace titus {

struct SetGroup {
    int32_t name = -1;
    int32_t slots = 0;
    std::vector<int32_t> label;  // per set: label id, -1 when unlabelled (all slots free)
    std::vector<int32_t> used;   // per set: slots taken
};

struct HostSets {
    std::vector<SetGroup> groups;

    int32_t group_of(int32_t name) const {
        for (size_t g = 0; g < groups.size(); ++g)
            if (groups[g].name == name) return static_cast<int32_t>(g);
        return -1;
    }

    /// The set a task labelled `label` would get in group g: the lowest labelled one with a free
    /// slot, else the lowest unlabelled one; -1 when none.
    int32_t pick(int32_t g, int32_t label) const {
        const SetGroup& sg = groups[g];
        for (size_t i = 0; i < sg.label.size(); ++i)
            if (sg.label[i] == label && sg.used[i] < sg.slots) return static_cast<int32_t>(i);
        for (size_t i = 0; i < sg.label.size(); ++i)
            if (sg.label[i] < 0) return static_cast<int32_t>(i);
        return -1;
    }

    void take(int32_t g, int32_t set, int32_t label) {
        groups[g].label[set] = label;
        groups[g].used[set] += 1;
    }

    void give_back(int32_t g, int32_t set) {
        SetGroup& sg = groups[g];
        if (--sg.used[set] == 0) sg.label[set] = -1;
    }
};

}  // namespace titus
