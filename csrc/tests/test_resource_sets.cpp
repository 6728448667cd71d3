// Resource sets: a task gets the lowest set carrying its label with a free slot, else the
// lowest unlabelled set, which takes the label; a set whose slots are all free loses it.
#include <doctest/doctest.h>

#include "resource_sets.hpp"

using titus::HostSets;
using titus::SetGroup;

static HostSets two_sets_of_two() {
    HostSets hs;
    SetGroup g;
    g.name = 7;
    g.slots = 2;
    g.label.assign(2, -1);
    g.used.assign(2, 0);
    hs.groups.push_back(g);
    return hs;
}

TEST_CASE("same label shares a set until it is full, then opens the next") {
    HostSets hs = two_sets_of_two();
    REQUIRE(hs.group_of(7) == 0);
    CHECK(hs.group_of(8) == -1);
    CHECK(hs.pick(0, 1) == 0);
    hs.take(0, 0, 1);
    CHECK(hs.pick(0, 1) == 0);
    hs.take(0, 0, 1);
    CHECK(hs.pick(0, 1) == 1);  // set 0 is full
    CHECK(hs.pick(0, 2) == 1);  // another label gets the unlabelled set
    hs.take(0, 1, 2);
    CHECK(hs.pick(0, 3) == -1);  // no unlabelled set left
    CHECK(hs.pick(0, 2) == 1);
}

TEST_CASE("a set gives its label up when its last slot comes back") {
    HostSets hs = two_sets_of_two();
    hs.take(0, 0, 5);
    hs.take(0, 0, 5);
    hs.give_back(0, 0);
    CHECK(hs.groups[0].label[0] == 5);
    hs.give_back(0, 0);
    CHECK(hs.groups[0].label[0] == -1);
    CHECK(hs.pick(0, 9) == 0);
}
