// Port allocation: ranges merged, the lowest free ports first, given back on release.
#include <doctest/doctest.h>

#include "ports.hpp"

using titus::HostPorts;

TEST_CASE("overlapping and touching ranges merge; free count is their size") {
    HostPorts p;
    p.set_ranges({{10, 12}, {13, 14}, {20, 20}, {11, 11}});
    CHECK(p.ranges == std::vector<std::pair<int32_t, int32_t>>{{10, 14}, {20, 20}});
    CHECK(p.free_count() == 6);
    CHECK(p.offered(14));
    CHECK_FALSE(p.offered(15));
}

TEST_CASE("take_lowest skips ports in use and crosses ranges") {
    HostPorts p;
    p.set_ranges({{100, 102}, {200, 201}});
    p.take({101});
    CHECK(p.take_lowest(3) == std::vector<int32_t>{100, 102, 200});
    CHECK(p.free_count() == 1);
    CHECK(p.in_use(200));
    p.give_back({100, 200});
    CHECK(p.free_count() == 3);
    CHECK(p.take_lowest(1) == std::vector<int32_t>{100});
}

TEST_CASE("ports 0 and 65535 are ordinary ports") {
    HostPorts p;
    p.set_ranges({{65535, 65535}, {0, 0}});
    CHECK(p.take_lowest(2) == std::vector<int32_t>{0, 65535});
    CHECK(p.free_count() == 0);
}
