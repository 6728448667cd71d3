// An upper bound of the score any host class may reach, from its free-cpus key alone: the
// index walks classes by rising free cpus and stops once no class left can reach the best score.
//
// For a binpacker on cpus, u_cpu = 1 - (free - d) / cap falls as free cpus rise; every other
// term is bounded by a constant (a feasible host has used + d <= cap + kEps, so u <= 1 + kEps /
// cap; a spreader is 1 - u <= 1), and a soft score is at most 1. The bound is only used with
// non-negative weights, where the score grows with each term. cpu_mem_fewest_hosts is a binpacker
// lifted into [0.5, 1] on hosts in use and below 0.5 on empty ones, so the same bound holds.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "fitness.hpp"

namespace titus {

/// The capacity extremes over the live hosts that the bound reads. They change only when hosts
/// come or go (or a resource is added), so the engine keeps them between calls: a scan of every
/// host per call cost a 300-task round some 0.1 ms at 10k hosts.
struct CapExtremes {
    double cpu_max = 0.0, cpu_abs = 0.0;        // greatest cpu capacity, and of its magnitude
    double mem_min = 0.0, net_min = 0.0;        // least positive memory, network capacity (0: none)
    double cpu_min = 1.0;                       // least positive cpu capacity (1 when none)

    /// `cap` is [H][R], `live` the live hosts.
    static CapExtremes of(const double* cap, int32_t R, const std::vector<int32_t>& live) {
        CapExtremes x;
        double cpu_min = 0.0;
        for (const int32_t h : live) {
            const double* c = cap + static_cast<size_t>(h) * R;
            x.cpu_max = std::max(x.cpu_max, c[kCpus]);
            x.cpu_abs = std::max(x.cpu_abs, std::fabs(c[kCpus]));
            if (R > kMemory && c[kMemory] > 0.0 && (x.mem_min == 0.0 || c[kMemory] < x.mem_min)) x.mem_min = c[kMemory];
            if (R > kNetwork && c[kNetwork] > 0.0 && (x.net_min == 0.0 || c[kNetwork] < x.net_min))
                x.net_min = c[kNetwork];
            if (c[kCpus] > 0.0 && (cpu_min == 0.0 || c[kCpus] < cpu_min)) cpu_min = c[kCpus];
        }
        x.cpu_min = cpu_min > 0.0 ? cpu_min : 1.0;
        return x;
    }
};

class ScoreBound {
public:
    /// Make the bound ready for one call, from the live hosts' capacity extremes (R resources).
    /// Returns whether pruning is allowed (weights non-negative and some cpu binpacker in the mix).
    bool prepare(const FitnessMix& mix, double soft_w, double fit_w, const CapExtremes& caps, int32_t R,
                 double eps) {
        enabled_ = false;
        if (!(soft_w >= 0.0 && fit_w >= 0.0 && soft_w + fit_w > 0.0 && mix.weight_sum > 0.0) || R <= kNetwork)
            return false;
        bool uses_cpu = false;
        for (size_t i = 0; i < mix.kinds.size(); ++i) {
            if (!(mix.weights[i] >= 0.0)) return false;
            const int32_t k = mix.kinds[i];
            if (k < 0 || (k >= 2 * kSpreadOffset && k != kCpuMemFewestHosts)) return false;
            if (mix.weights[i] > 0.0 && (k == kCpuBinpack || k == kCpuMemBinpack || k == kCpuMemNetworkBinpack ||
                                         k == kCpuMemFewestHosts))
                uses_cpu = true;
        }
        if (!uses_cpu) return false;
        // Largest cpu capacity; least positive capacity of memory and network.
        const double cpu_max = caps.cpu_max, cpu_abs = caps.cpu_abs, mem_min = caps.mem_min, net_min = caps.net_min;
        if (!(cpu_max > 0.0) || !std::isfinite(cpu_abs)) return false;
        cpu_max_ = cpu_max;
        // The key overstates free cpus by 1e-6 + 1e-12 * (|cap| + |used| + 1) (Engine::signature);
        // twice that, with used <= cap + eps, covers it and the rounding.
        key_slack_ = 2.0 * (1e-6 + 1e-12 * (3.0 * cpu_abs + 2.0));
        top_cpu_ = 1.0 + eps / caps.cpu_min + 1e-12;
        top_mem_ = mem_min > 0.0 ? 1.0 + eps / mem_min + 1e-12 : 1.0;
        top_net_ = net_min > 0.0 ? 1.0 + eps / net_min + 1e-12 : 1.0;
        soft_w_ = soft_w;
        fit_w_ = fit_w;
        den_ = soft_w + fit_w;
        // fit <= fit_a + fit_b * u_cpu, term by term (an empty host under fewest_hosts scores < 0.5)
        double a = 0.0, bslope = 0.0;
        for (size_t i = 0; i < mix.kinds.size(); ++i) {
            const double w = mix.weights[i];
            switch (mix.kinds[i]) {
                case kCpuBinpack: bslope += w; break;
                case kMemoryBinpack: a += w * top_mem_; break;
                case kNetworkBinpack: a += w * top_net_; break;
                case kCpuMemBinpack: a += w * top_mem_ / 2.0; bslope += w / 2.0; break;
                case kCpuMemNetworkBinpack: a += w * (top_mem_ + top_net_) / 3.0; bslope += w / 3.0; break;
                case kCpuMemFewestHosts: a += w * (0.5 + 0.25 * top_mem_ + 1e-12); bslope += w / 4.0; break;
                default: a += w * (1.0 + 1e-12); break;  // a spreader: 1 - u with u >= 0
            }
        }
        // The same mix as an affine form of the utilisations of cpus, memory and network, for
        // bounds over a block of classes (block_fit).
        blk_c0_ = 0.0;
        for (double& c : blk_coef_) c = 0.0;
        for (size_t i = 0; i < mix.kinds.size(); ++i) {
            const double w = mix.weights[i] / mix.weight_sum;
            const int32_t k = mix.kinds[i];
            if (k == kCpuMemFewestHosts) {  // <= 0.5 + (u_cpu + u_mem) / 4 in use, < 0.5 empty
                blk_c0_ += 0.5 * w;
                blk_coef_[0] += 0.25 * w;
                blk_coef_[1] += 0.25 * w;
            } else if (k >= kSpreadOffset) {
                blk_c0_ += w;  // 1 - u <= 1
            } else {
                for (const FitnessName& fn : kFitnessNames)
                    if (fn.kind == k)
                        for (int32_t c = 0; c < fn.n_columns; ++c)
                            blk_coef_[fn.columns[c] == kCpus ? 0 : fn.columns[c] == kMemory ? 1 : 2] += w / fn.n_columns;
            }
        }
        fit_a_ = a / mix.weight_sum * (1.0 + 1e-12) + 1e-12;
        fit_b_ = bslope / mix.weight_sum * (1.0 + 1e-12);
        per_u_ = fit_w_ * fit_b_ / den_;
        enabled_ = true;
        return true;
    }

    bool enabled() const { return enabled_; }

    /// The score bound splits into a part set by the soft score and a part set by the key:
    /// every term of the fitness mix is a constant or affine in u_cpu, so the bound is
    /// `(soft_w * soft + fit_w * (fit_a + fit_b * u_cpu)) / (soft_w + fit_w)`, with fit_a and
    /// fit_b summed once in prepare (rounding there is far below the 1e-12 slack of each term).
    /// This is the part of a soft score at most `soft` (hoisted out of a walk over classes).
    double soft_part(double soft) const { return (soft_w_ * soft + fit_w_ * fit_a_) / den_; }
    /// Upper bound of the score of any host whose free-cpus key is at least `key` and whose soft
    /// part is `soft_part`, for a task asking `d_cpu` cpus. Non-increasing in `key`.
    double at_with(double soft_part, double key, double d_cpu) const {
        return soft_part + per_u_ * u_cpu(key, d_cpu);
    }

    /// A free-cpus key past which `beneath(at_with(soft_part, key, d_cpu), best)` holds for every
    /// key: solved from the affine form and then pushed up, so rounding can only make a walk stop
    /// later (never earlier) than the bound allows. -inf: no key can reach `best`; +inf: any may.
    double key_limit(double soft_part, double d_cpu, double best) const {
        constexpr double kInf = std::numeric_limits<double>::infinity();
        const double target = reach(best);
        if (!(per_u_ > 0.0)) return soft_part < target ? -kInf : kInf;
        const double u_star = (target - soft_part) / per_u_;  // beneath iff u_cpu(key) < u_star
        if (!(u_star > 2e-12)) return kInf;                  // u_cpu never falls below 1e-12
        if (u_star > top_cpu_ * (1.0 + 1e-9)) return -kInf;   // even the top u_cpu is beneath
        const double spare = std::max(0.0, (1.0 + 1e-12 - u_star) * cpu_max_);
        const double key = spare + key_slack_ + d_cpu;
        return key + 1e-9 * (std::fabs(key) + 1.0);
    }

    /// Upper bound of the score of any class of a block, from the block's greatest used/cap
    /// (`umax`) and greatest 1/cap (`icmax`) of cpus, memory and network (HostBucket::util):
    /// u_r = (used + d) / cap <= umax_r + d_r * icmax_r, each term pushed up against rounding.
    double block_score(double soft, const double* umax, const double* icmax, const double* d) const {
        static constexpr int kCol[3] = {kCpus, kMemory, kNetwork};
        double fit = blk_c0_;
        for (int c = 0; c < 3; ++c)
            if (blk_coef_[c] > 0.0) fit += blk_coef_[c] * (umax[c] + d[kCol[c]] * icmax[c]);
        fit = fit * (1.0 + 1e-12) + 1e-12;
        return (soft_w_ * soft + fit_w_ * fit) / den_ * (1.0 + 1e-12) + 1e-12;
    }

    /// True when a score bound `ub` cannot reach `best`, with a safety margin (so rounding never
    /// hides a tie or a better host).
    static bool beneath(double ub, double best) { return ub < reach(best); }

private:
    /// The least score a bound must reach not to be beneath `best`: `best` less the margin.
    static double reach(double best) { return best - 1e-10 * std::max(1.0, std::fabs(best)); }

    /// u_cpu of any host with a key at least `key` is at most this.
    double u_cpu(double key, double d_cpu) const {
        const double spare = key - key_slack_ - d_cpu;
        return spare > 0.0 ? std::max(0.0, 1.0 - spare / cpu_max_) + 1e-12 : top_cpu_;
    }

    bool enabled_ = false;
    double soft_w_ = 0.0, fit_w_ = 0.0, den_ = 1.0;
    double fit_a_ = 0.0, fit_b_ = 0.0, per_u_ = 0.0;
    double cpu_max_ = 1.0, key_slack_ = 0.0;
    double top_cpu_ = 1.0, top_mem_ = 1.0, top_net_ = 1.0;
    double blk_c0_ = 0.0, blk_coef_[3] = {0.0, 0.0, 0.0};
};

}  // namespace titus
