// Preemption's engine-free parts (preempt.hpp): the cheapest victim set of a host (Kubernetes'
// reprieve: spare the most important first) and the order of hosts (lowest highest-victim
// priority, lowest sum, fewest victims, then score and tiekey).
#include <doctest/doctest.h>

#include <algorithm>

#include "preempt.hpp"

using namespace titus;

namespace {
std::vector<int32_t> slots_of(const std::vector<Evictable>& vs) {
    std::vector<int32_t> out;
    for (const auto& v : vs) out.push_back(v.slot);
    return out;
}
}  // namespace

TEST_CASE("the reprieve spares the most important victims first") {
    // Four tasks of 1 cpu on a 4-cpu host; the task asks 2: two must go.
    std::vector<Evictable> eligible = {{0, 1, 10}, {1, 1, 11}, {2, 0, 12}, {3, 0, 13}};
    std::sort(eligible.begin(), eligible.end(), more_important);
    CHECK(slots_of(eligible) == std::vector<int32_t>{0, 1, 2, 3});
    auto fits = [](const std::vector<Evictable>& gone) { return gone.size() >= 2; };
    std::vector<Evictable> victims;
    REQUIRE(cheapest_victims(eligible, fits, victims));
    CHECK(slots_of(victims) == std::vector<int32_t>{2, 3});  // the priority-0 ones, oldest first
}

TEST_CASE("a host where even every candidate gone is not enough is no option") {
    std::vector<Evictable> eligible = {{0, 0, 1}};
    std::vector<Evictable> victims;
    CHECK_FALSE(cheapest_victims(eligible, [](const std::vector<Evictable>&) { return false; }, victims));
}

TEST_CASE("victims are asked for oldest first") {
    std::vector<Evictable> eligible = {{5, 3, 9}, {6, 2, 4}};
    std::vector<int64_t> seen;
    std::vector<Evictable> victims;
    cheapest_victims(eligible, [&](const std::vector<Evictable>& gone) {
        for (size_t i = 1; i < gone.size(); ++i) CHECK(gone[i - 1].seq < gone[i].seq);
        return true;
    }, victims);
    CHECK(victims.empty());  // the task fits with both kept
}

TEST_CASE("hosts rank by top priority, then priority sum, then victim count, then score and tiekey") {
    auto option = [](int32_t host, std::initializer_list<Evictable> list, double score, uint64_t key) {
        static std::vector<Evictable> vs;
        vs.assign(list.begin(), list.end());
        PreemptOption o;
        o.host = host;
        cost_of(vs, o);
        o.score = score;
        o.tiekey = key;
        return o;
    };
    const PreemptOption none;
    const PreemptOption a = option(0, {{0, 5, 0}}, 0.1, 9);
    const PreemptOption b = option(1, {{1, 3, 0}, {2, 3, 1}}, 0.1, 9);
    CHECK(a.better_than(none));
    CHECK(b.better_than(a));  // top priority 3 < 5, whatever the count
    const PreemptOption c = option(2, {{3, 3, 0}, {4, -7, 0}}, 0.1, 9);
    CHECK(c.better_than(b));  // same top, lower sum (negative priorities count as less)
    const PreemptOption d = option(3, {{5, 3, 0}}, 0.0, 9);
    const PreemptOption e = option(4, {{6, 1, 0}, {7, 2, 0}}, 0.9, 1);
    CHECK(e.priority_sum > d.priority_sum - (int64_t{1} << 31));
    const PreemptOption f = option(5, {{8, 3, 0}}, 0.5, 9);
    CHECK(f.better_than(d));  // same cost: the greater score
    const PreemptOption g = option(6, {{9, 3, 0}}, 0.5, 2);
    CHECK(g.better_than(f));  // same cost and score: the lower tiekey
    CHECK(c.priority_sum == (int64_t{3} + (int64_t{1} << 31)) + (int64_t{-7} + (int64_t{1} << 31)));
}
