// The score bound: no host whose free-cpus key is at least k may score above at_with(k), and
// a walk stopped at key_limit misses no host that could reach the best score.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "fitness.hpp"
#include "layout.hpp"
#include "score_bound.hpp"

using namespace titus;

namespace {

double score_of(const FitnessMix& mix, double soft, const double* used, const double* cap, const double* d) {
    return (0.5 * soft + 0.35 * mix(used, cap, d)) / (0.5 + 0.35);
}

void check_mix(const std::vector<int32_t>& kinds, const std::vector<double>& weights, uint32_t seed) {
    constexpr int R = 4;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const int H = 200;
    std::vector<double> cap(H * R), used(H * R);
    std::vector<int32_t> live;
    for (int h = 0; h < H; ++h) {
        const double shapes[3][2] = {{16, 65536}, {32, 131072}, {8, 16384}};
        const auto* s = shapes[h % 3];
        cap[h * R + 0] = s[0];
        cap[h * R + 1] = s[1];
        cap[h * R + 2] = 1000;
        cap[h * R + 3] = 100;
        for (int r = 0; r < R; ++r) used[h * R + r] = cap[h * R + r] * u(rng) * 0.9;
        live.push_back(h);
    }
    FitnessMix mix;
    mix.set(kinds, weights);
    ScoreBound bound;
    REQUIRE(bound.prepare(mix, 0.5, 0.35, titus::CapExtremes::of(cap.data(), R, live), R, kEps));
    for (int trial = 0; trial < 200; ++trial) {
        const double d[R] = {u(rng) * 4, u(rng) * 8192, u(rng) * 10, u(rng) * 5};
        const double soft = u(rng);
        const double sp = bound.soft_part(soft);
        double best = -1.0;
        for (int h = 0; h < H; ++h) {
            const double* c = &cap[h * R];
            const double* us = &used[h * R];
            bool fit = true;
            for (int r = 0; r < R; ++r) fit = fit && us[r] + d[r] <= c[r] + kEps;
            if (!fit) continue;
            const double key = c[kCpus] - us[kCpus] + 1e-6 + 1e-12 * (c[kCpus] + us[kCpus] + 1.0);
            const double s = score_of(mix, soft, us, c, d);
            CHECK(bound.at_with(sp, key, d[kCpus]) >= s);  // the bound holds
            best = std::max(best, s);
        }
        if (best < 0) continue;
        // Every host at or past key_limit(best) is beneath best: a stop there cuts no winner.
        const double stop = bound.key_limit(sp, d[kCpus], best);
        for (int h = 0; h < H; ++h) {
            const double* c = &cap[h * R];
            const double* us = &used[h * R];
            const double key = c[kCpus] - us[kCpus] + 1e-6 + 1e-12 * (c[kCpus] + us[kCpus] + 1.0);
            bool fit = true;
            for (int r = 0; r < R; ++r) fit = fit && us[r] + d[r] <= c[r] + kEps;
            if (fit && key > stop) CHECK(score_of(mix, soft, us, c, d) < best);
        }
    }
}

}  // namespace

TEST_CASE("the bound holds and the stop key cuts no winner: cpu_mem_binpack") { check_mix({kCpuMemBinpack}, {1.0}, 1); }
TEST_CASE("... cpu_binpack with a memory spreader") { check_mix({kCpuBinpack, kSpreadOffset + kMemoryBinpack}, {2.0, 1.0}, 2); }
TEST_CASE("... cpu_mem_fewest_hosts") { check_mix({kCpuMemFewestHosts}, {1.0}, 3); }
TEST_CASE("... cpu_mem_network_binpack") { check_mix({kCpuMemNetworkBinpack}, {1.0}, 4); }

TEST_CASE("no bound without a cpu binpacker or with a negative weight") {
    std::vector<double> cap = {8, 100, 0, 0};
    std::vector<int32_t> live = {0};
    FitnessMix mix;
    ScoreBound bound;
    mix.set({kSpreadOffset + kCpuBinpack}, {1.0});
    CHECK_FALSE(bound.prepare(mix, 0.5, 0.35, titus::CapExtremes::of(cap.data(), 4, live), 4, kEps));
    mix.set({kCpuBinpack}, {-1.0});
    CHECK_FALSE(bound.prepare(mix, 0.5, 0.35, titus::CapExtremes::of(cap.data(), 4, live), 4, kEps));
    mix.set({kCpuBinpack}, {1.0});
    CHECK(bound.prepare(mix, 0.5, 0.35, titus::CapExtremes::of(cap.data(), 4, live), 4, kEps));
}

TEST_CASE("beneath keeps a margin so rounding never hides a tie") {
    CHECK_FALSE(ScoreBound::beneath(0.5, 0.5));
    CHECK_FALSE(ScoreBound::beneath(0.5 - 1e-13, 0.5));
    CHECK(ScoreBound::beneath(0.49, 0.5));
}
