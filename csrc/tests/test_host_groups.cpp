// The class index: hosts with one signature share a class whose representative is the member
// with the lowest (tiekey, index); classes are found by free cpus; a touched host moves.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "host_groups.hpp"

using titus::HostGroups;

namespace {

// A toy host: R = 1 resource (cpus), signature = cap, used (2 doubles) + 5 flag ints + a zone.
struct Toy {
    std::vector<double> cap, used;
    std::vector<int32_t> zone;
    std::vector<uint64_t> key;
    std::vector<int32_t> live;

    int32_t add(double c, int32_t z, uint64_t k) {
        cap.push_back(c);
        used.push_back(0.0);
        zone.push_back(z);
        key.push_back(k);
        live.push_back(static_cast<int32_t>(live.size()));
        return live.back();
    }
    void refresh(HostGroups& g) {
        g.refresh(
            live, static_cast<int32_t>(cap.size()), 1,
            [this](int32_t h, std::string& out) {
                out.append(reinterpret_cast<const char*>(&cap[h]), sizeof(double));
                out.append(reinterpret_cast<const char*>(&used[h]), sizeof(double));
                const int32_t flags[5] = {1, used[h] > 0, 0, 0, -1};
                out.append(reinterpret_cast<const char*>(flags), sizeof(flags));
                out.append(reinterpret_cast<const char*>(&zone[h]), sizeof(int32_t));
                return cap[h] - used[h];
            },
            [this](int32_t h) { return key[h]; });
    }
};

}  // namespace

TEST_CASE("alike hosts share one class; the lowest tiekey represents it") {
    Toy t;
    HostGroups g;
    t.add(8, 0, 50);
    t.add(8, 0, 10);
    t.add(8, 0, 30);
    t.add(16, 0, 5);
    t.refresh(g);
    CHECK(g.size() == 2);
    CHECK(g.group(g.group_of(0)).rep() == 1);
    CHECK(g.group(g.group_of(0)).size() == 3);
    CHECK(g.group_of(0) == g.group_of(2));
    CHECK(g.group_of(3) != g.group_of(0));
}

TEST_CASE("classes are offered from the asked free cpus on, each bucket by rising free cpus") {
    Toy t;
    HostGroups g;
    for (int i = 0; i < 6; ++i) t.add(2.0 * (i + 1), 0, 100 - i);
    for (int i = 0; i < 4; ++i) t.add(3.0 * (i + 1), 1, 200 - i);  // another zone: another bucket
    t.refresh(g);
    std::map<int32_t, std::vector<double>> seen;  // bucket -> keys in the order offered
    g.for_each_from(5.0, [&](double key, int32_t c) { seen[g.group(c).bucket].push_back(key); });
    REQUIRE(seen.size() == 2);
    CHECK(seen[g.group(g.group_of(0)).bucket] == std::vector<double>{6, 8, 10, 12});
    CHECK(seen[g.group(g.group_of(6)).bucket] == std::vector<double>{6, 9, 12});
    CHECK(g.size() == 10);
}

TEST_CASE("a touched host leaves its class and the next member represents it") {
    Toy t;
    HostGroups g;
    t.add(8, 0, 10);
    t.add(8, 0, 20);
    t.refresh(g);
    REQUIRE(g.group(g.group_of(1)).rep() == 0);
    t.used[0] = 3;
    g.touch(0);
    CHECK(g.dirty().size() == 1);
    t.refresh(g);
    CHECK(g.group(g.group_of(1)).rep() == 1);
    CHECK(g.group(g.group_of(0)).free_cpus == doctest::Approx(5));
    CHECK(g.size() == 2);
    t.used[0] = 0;  // back to empty: it rejoins and represents the class again
    g.touch(0);
    t.refresh(g);
    CHECK(g.size() == 1);
    CHECK(g.group(g.group_of(1)).rep() == 0);
}

TEST_CASE("buckets file classes by the part of the signature after capacities and usage") {
    Toy t;
    HostGroups g;
    t.add(8, 0, 1);
    t.add(8, 1, 2);
    t.add(4, 1, 3);
    t.refresh(g);
    CHECK(g.n_buckets() == 2);
    CHECK(g.group(g.group_of(1)).bucket == g.group(g.group_of(2)).bucket);
    CHECK(g.group(g.group_of(0)).bucket != g.group(g.group_of(1)).bucket);
    const auto& b = g.bucket(g.group(g.group_of(1)).bucket);
    REQUIRE(b.n == 2);
    REQUIRE(b.chunks.size() == 1);
    const auto& bf = b.chunks[0].by_free;
    CHECK(bf[0].first < bf[1].first);  // rising free cpus
    b.chunks[0].ensure(1, 1e-9);
    const double small = 4.0, big = 9.0;
    CHECK(b.chunks[0].may_fit(&small, 1));
    CHECK_FALSE(b.chunks[0].may_fit(&big, 1));
}

TEST_CASE("a bucket keeps its classes sorted across chunks as they come and go") {
    titus::HostBucket b;
    const size_t w = 2;  // one resource: capacity, usage
    std::vector<std::pair<double, int32_t>> want;
    uint64_t x = 12345;
    for (int32_t g = 0; g < 1000; ++g) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        const double key = static_cast<double>((x >> 33) % 97);
        const double row[2] = {key + 1.0, 1.0};
        b.insert({key, g}, reinterpret_cast<const char*>(row), w);
        want.emplace_back(key, g);
        if (g % 3 == 0) {  // and some leave again
            const auto gone = want[static_cast<size_t>((x >> 20) % want.size())];
            b.erase(gone, w);
            want.erase(std::find(want.begin(), want.end(), gone));
        }
    }
    std::sort(want.begin(), want.end());
    std::vector<std::pair<double, int32_t>> got;
    for (const auto& c : b.chunks) {
        CHECK_FALSE(c.by_free.empty());
        CHECK(c.by_free.size() <= titus::HostBucket::kChunk);
        CHECK(c.first == c.by_free.front());  // the ends kept beside the bounds are the list's
        CHECK(c.last == c.by_free.back());
        for (size_t j = 0; j < c.by_free.size(); ++j) {
            got.push_back(c.by_free[j]);
            CHECK(c.state[j * w] == c.by_free[j].first + 1.0);  // each row stays beside its entry
        }
    }
    CHECK(got == want);
    CHECK(b.n == want.size());
    const auto at = b.locate({50.0, INT32_MIN});
    REQUIRE(at.first < b.chunks.size());
    CHECK(b.chunks[at.first].by_free[at.second].first >= 50.0);
}

TEST_CASE("chunk and group room bounds never miss a class that fits, as classes come and go") {
    // Two resources: cpus and memory; memory is what is scarce. Each step checks, for several
    // demands, that every chunk and every group whose classes include one that fits says so
    // (a bound may be loose, never short), and that a group none of whose classes fits is
    // passed once its bounds are rebuilt.
    titus::HostBucket b;
    const int32_t R = 2;
    const size_t w = 2 * R;
    std::vector<std::pair<std::pair<double, int32_t>, std::vector<double>>> live;
    uint64_t x = 99;
    auto rnd = [&x](uint64_t m) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>((x >> 33) % m);
    };
    for (int32_t g = 0; g < 600; ++g) {
        const double cpu_free = rnd(64), mem_free = rnd(8) < 1 ? 50.0 + rnd(50) : rnd(10);
        std::vector<double> row = {64.0, 100.0, 64.0 - cpu_free, 100.0 - mem_free};
        const std::pair<double, int32_t> e{cpu_free, g};
        b.insert(e, reinterpret_cast<const char*>(row.data()), w);
        live.push_back({e, row});
        if (g % 4 == 1) {
            const size_t k = static_cast<size_t>(rnd(live.size()));
            b.erase(live[k].first, w);
            live.erase(live.begin() + static_cast<ptrdiff_t>(k));
        }
        if (g % 50 != 49) continue;
        for (const double mem : {5.0, 40.0, 95.0}) {
            const double d[2] = {1.0, mem};
            for (size_t c = 0; c < b.chunks.size(); ++c) {
                const auto& ch = b.chunks[c];
                bool any = false;
                for (size_t j = 0; j < ch.by_free.size(); ++j) {
                    const double* cap = &ch.state[j * w];
                    any = any || (cap[2] + d[0] <= cap[0] + titus::kEps && cap[3] + d[1] <= cap[1] + titus::kEps);
                }
                ch.ensure(R, titus::kEps);
                if (any) CHECK(ch.may_fit(d, R));
                if (any) CHECK(b.group_may_fit(c / titus::HostBucket::kGroup, d, R, titus::kEps));
            }
            for (size_t k = 0; k * titus::HostBucket::kGroup < b.chunks.size(); ++k) {
                bool any = false;
                for (size_t c = k * titus::HostBucket::kGroup;
                     c < std::min(b.chunks.size(), (k + 1) * titus::HostBucket::kGroup); ++c)
                    any = any || b.chunks[c].may_fit(d, R);
                // Rebuilt from its chunks' rooms; with cpus never binding here, exactly theirs.
                CHECK(b.group_may_fit(k, d, R, titus::kEps) == any);
            }
        }
    }
}

TEST_CASE("bounds kept through a class leaving are exactly those a rebuild gives") {
    // Four resources (so the utilisation bounds are kept too), two capacity shapes (so many
    // classes reach the 1/cap bound at once). A class leaving marks its chunk stale only when it
    // alone reached a bound; every chunk still fresh must hold what a rebuild from its entries
    // gives, and every fresh group the greatest of its chunks' rooms.
    titus::HostBucket b;
    const int32_t R = 4;
    const size_t w = 2 * R;
    std::vector<std::pair<double, int32_t>> live;
    uint64_t x = 7;
    auto rnd = [&x](uint64_t m) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>((x >> 33) % m);
    };
    int32_t kept_fresh = 0;
    for (int32_t g = 0; g < 2000; ++g) {
        const bool small = rnd(2) < 1;
        const double cap_cpu = small ? 16.0 : 36.0, cap_mem = small ? 64.0 : 72.0;
        const double used_cpu = rnd(static_cast<uint64_t>(cap_cpu)), used_mem = rnd(static_cast<uint64_t>(cap_mem));
        std::vector<double> row = {cap_cpu, cap_mem, 100.0, 10.0, used_cpu, used_mem, rnd(100), rnd(10)};
        const std::pair<double, int32_t> e{cap_cpu - used_cpu, g};
        b.insert(e, reinterpret_cast<const char*>(row.data()), w);
        live.push_back(e);
        for (size_t c = 0; c < b.chunks.size(); ++c) b.chunks[c].ensure(R, titus::kEps);  // all fresh
        for (size_t k = 0; k * titus::HostBucket::kGroup < b.chunks.size(); ++k)
            b.group_may_fit(k, std::vector<double>(R, 0.0).data(), R, titus::kEps);
        if (g % 3 != 0) continue;
        const size_t k = static_cast<size_t>(rnd(live.size()));
        b.erase(live[k], w);
        live.erase(live.begin() + static_cast<ptrdiff_t>(k));
        for (size_t c = 0; c < b.chunks.size(); ++c) {
            const auto& ch = b.chunks[c];
            if (ch.stale) continue;
            ++kept_fresh;
            titus::BucketChunk copy;
            copy.by_free = ch.by_free;
            copy.state = ch.state;
            copy.ensure(R, titus::kEps);
            for (int32_t r = 0; r < R; ++r) CHECK(ch.room[r] == copy.room[r]);
            for (int u = 0; u < 2 * titus::BucketChunk::kUtilCols; ++u) CHECK(ch.util[u] == copy.util[u]);
        }
    }
    CHECK(kept_fresh > 0);  // the case this test is about happened
    // Every group's room, fresh or rebuilt, is its chunks' greatest.
    const double none[R] = {0.0, 0.0, 0.0, 0.0};
    for (size_t k = 0; k * titus::HostBucket::kGroup < b.chunks.size(); ++k) {
        std::vector<double> want(R, -1e300);
        for (size_t c = k * titus::HostBucket::kGroup;
             c < std::min(b.chunks.size(), (k + 1) * titus::HostBucket::kGroup); ++c) {
            b.chunks[c].ensure(R, titus::kEps);
            for (int32_t r = 0; r < R; ++r) want[r] = std::max(want[r], b.chunks[c].room[r]);
        }
        for (int32_t r = 0; r < R; ++r) {
            double d[R] = {0.0, 0.0, 0.0, 0.0};
            d[r] = want[r] + 1e-6;  // just past the greatest room: no class fits
            CHECK_FALSE(b.group_may_fit(k, d, R, titus::kEps));
            d[r] = want[r];
            CHECK(b.group_may_fit(k, d, R, titus::kEps));
        }
        CHECK(b.group_may_fit(k, none, R, titus::kEps));
    }
}

TEST_CASE("a dropped host is gone from its class, and an emptied class from the index") {
    Toy t;
    HostGroups g;
    t.add(8, 0, 1);
    t.add(8, 0, 2);
    t.refresh(g);
    g.drop(0, [&t](int32_t h) { return t.key[h]; });
    CHECK(g.group_of(0) == -1);
    CHECK(g.group(g.group_of(1)).rep() == 1);
    g.drop(1, [&t](int32_t h) { return t.key[h]; });
    CHECK(g.size() == 0);
    CHECK(g.n_buckets() == 0);
}
