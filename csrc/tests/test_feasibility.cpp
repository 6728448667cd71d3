// The one fit test: used + demand > capacity + eps names the first over-committed column.
#include <doctest/doctest.h>

#include "feasibility.hpp"

using namespace titus;

TEST_CASE("first_overcommit reports the first column in resource order") {
    const double cap[3] = {4, 100, 1};
    const double used[3] = {3, 50, 0};
    const double ok[3] = {1, 50, 1};
    const double over[3] = {1.5, 60, 2};
    CHECK(first_overcommit(used, cap, ok, 3) == -1);
    CHECK(fits(used, cap, ok, 3));
    CHECK(first_overcommit(used, cap, over, 3) == 0);
    const double within_eps[3] = {1 + 5e-10, 0, 0};
    CHECK(fits(used, cap, within_eps, 3));  // the slack absorbs rounding
}
