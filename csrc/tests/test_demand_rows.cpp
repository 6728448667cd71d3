// Held tasks' demand rows: a run of equal demands shares one row, a row is freed with its last
// task and reused, rows are exact copies, and a new resource adds a zero column to each.
#include <doctest/doctest.h>

#include <cmath>

#include "demand_rows.hpp"

using titus::DemandRows;

TEST_CASE("equal demands in a row share one row; a different one takes another") {
    DemandRows rows;
    const double a[2] = {1.5, 2.0}, b[2] = {1.5, 2.0000000000000004};
    const int32_t r0 = rows.take(a, 2);
    CHECK(rows.take(a, 2) == r0);
    const int32_t r1 = rows.take(b, 2);
    CHECK(r1 != r0);  // differs in the last bit: kept apart, exactly
    CHECK(rows.row(r1, 2)[1] == b[1]);
    CHECK(rows.live() == 2);
}

TEST_CASE("a row lives until its last task lets go, then is reused") {
    DemandRows rows;
    const double a[1] = {3.0}, b[1] = {4.0}, c[1] = {5.0};
    const int32_t ra = rows.take(a, 1);
    rows.take(a, 1);
    const int32_t rb = rows.take(b, 1);
    rows.drop(ra);
    CHECK(rows.live() == 2);
    CHECK(rows.row(ra, 1)[0] == 3.0);  // one task still holds it
    rows.drop(ra);
    CHECK(rows.live() == 1);
    const int32_t rc = rows.take(c, 1);
    CHECK(rc == ra);  // the freed row is reused
    CHECK(rows.row(rc, 1)[0] == 5.0);
    CHECK(rows.row(rb, 1)[0] == 4.0);
}

TEST_CASE("the last row is not shared once freed, even for an equal demand") {
    DemandRows rows;
    const double a[1] = {2.0}, b[1] = {7.0};
    const int32_t ra = rows.take(a, 1);
    rows.drop(ra);
    const int32_t rb = rows.take(b, 1);  // reuses ra's storage
    CHECK(rb == ra);
    const int32_t ra2 = rows.take(a, 1);
    CHECK(ra2 != rb);
    CHECK(rows.row(rb, 1)[0] == 7.0);
    CHECK(rows.row(ra2, 1)[0] == 2.0);
}

TEST_CASE("negative zero and zero stay distinct rows (bytes are compared)") {
    DemandRows rows;
    const double z[1] = {0.0}, nz[1] = {-0.0};
    const int32_t r0 = rows.take(z, 1), r1 = rows.take(nz, 1);
    CHECK(r0 != r1);
    CHECK(std::signbit(rows.row(r1, 1)[0]));
}

TEST_CASE("widen adds a zero column to every row") {
    DemandRows rows;
    const double a[2] = {1.0, 2.0}, b[2] = {3.0, 4.0};
    const int32_t ra = rows.take(a, 2), rb = rows.take(b, 2);
    rows.widen(2);
    CHECK(rows.row(ra, 3)[0] == 1.0);
    CHECK(rows.row(ra, 3)[1] == 2.0);
    CHECK(rows.row(ra, 3)[2] == 0.0);
    CHECK(rows.row(rb, 3)[1] == 4.0);
    const double a3[3] = {1.0, 2.0, 0.0};
    CHECK(rows.take(a3, 3) != ra);  // only the last row taken is shared (rb)
}
