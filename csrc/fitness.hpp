// Fitness functions: utilisation after placing the task, bin-packing or spreading.
#pragma once
#include <cstdint>
#include <vector>

namespace titus {

// Columns of the base resources in every demand/capacity row, and their names.
constexpr int kCpus = 0, kMemory = 1, kDisk = 2, kNetwork = 3;
constexpr const char* kBaseResourceNames[] = {"cpus", "memory_mb", "disk_mb", "network_mbps"};

/// Named fitness functions; a *_spread kind is 1 - the matching binpacker (kind - kSpreadOffset).
enum FitnessKind : int32_t {
    kCpuBinpack = 0,
    kMemoryBinpack = 1,
    kNetworkBinpack = 2,
    kCpuMemBinpack = 3,
    kCpuMemNetworkBinpack = 4,
    kSpreadOffset = 5,
    // Not a spreader's mirror: hosts in use first (by cpu/mem utilisation), empty ones largest first.
    kCpuMemFewestHosts = 10,
};

/// A named fitness function: its public name, its code, and (for a binpacker or its spreader)
/// the resource columns whose utilisations it averages (count 0: not an average).
struct FitnessName {
    const char* name;
    int32_t kind;
    int32_t n_columns;
    int32_t columns[3];
};

/// Every named fitness function, in the order `titus.scheduler.validation.FITNESS_NAMES` lists.
constexpr FitnessName kFitnessNames[] = {
    {"cpu_binpack", kCpuBinpack, 1, {kCpus}},
    {"memory_binpack", kMemoryBinpack, 1, {kMemory}},
    {"network_binpack", kNetworkBinpack, 1, {kNetwork}},
    {"cpu_mem_binpack", kCpuMemBinpack, 2, {kCpus, kMemory}},
    {"cpu_mem_network_binpack", kCpuMemNetworkBinpack, 3, {kCpus, kMemory, kNetwork}},
    {"cpu_spread", kSpreadOffset + kCpuBinpack, 1, {kCpus}},
    {"memory_spread", kSpreadOffset + kMemoryBinpack, 1, {kMemory}},
    {"network_spread", kSpreadOffset + kNetworkBinpack, 1, {kNetwork}},
    {"cpu_mem_spread", kSpreadOffset + kCpuMemBinpack, 2, {kCpus, kMemory}},
    {"cpu_mem_network_spread", kSpreadOffset + kCpuMemNetworkBinpack, 3, {kCpus, kMemory, kNetwork}},
    {"cpu_mem_fewest_hosts", kCpuMemFewestHosts, 0, {}},
};

/// u_r = (used + demand) / capacity, 0 when the capacity is 0.
inline double utilisation(const double* used, const double* cap, const double* demand, int r) {
    const double c = cap[r];
    return c > 0.0 ? (used[r] + demand[r]) / c : 0.0;
}

/// Slack under which a used amount counts as none (sums of doubles leave residues on release).
constexpr double kInUseEps = 1e-9;

/// kCpuMemFewestHosts: 0.5 + (u_cpus + u_memory) / 4 on a host in use (cpus or memory used), else
/// 0.5 * s / (1 + s) with s = cpus capacity * memory capacity, so every host in use outranks every
/// empty one and empty hosts open largest first: few hosts end up holding the work.
inline double fewest_hosts(const double* used, const double* cap, const double* d) {
    if (used[kCpus] > kInUseEps || used[kMemory] > kInUseEps) {
        const double m = (utilisation(used, cap, d, kCpus) + utilisation(used, cap, d, kMemory)) / 2.0;
        return 0.5 + 0.5 * m;
    }
    const double s = cap[kCpus] * cap[kMemory];
    return 0.5 * (s / (1.0 + s));
}

/// One named fitness function on one host.
inline double fitness_one(int32_t kind, const double* used, const double* cap, const double* d) {
    if (kind == kCpuMemFewestHosts) return fewest_hosts(used, cap, d);
    const bool spread = kind >= kSpreadOffset;
    const int32_t base = spread ? kind - kSpreadOffset : kind;
    double f;
    switch (base) {
        case kCpuBinpack: f = utilisation(used, cap, d, kCpus); break;
        case kMemoryBinpack: f = utilisation(used, cap, d, kMemory); break;
        case kNetworkBinpack: f = utilisation(used, cap, d, kNetwork); break;
        case kCpuMemBinpack:
            f = (utilisation(used, cap, d, kCpus) + utilisation(used, cap, d, kMemory)) / 2.0;
            break;
        default:
            f = (utilisation(used, cap, d, kCpus) + utilisation(used, cap, d, kMemory) +
                 utilisation(used, cap, d, kNetwork)) / 3.0;
            break;
    }
    return spread ? 1.0 - f : f;
}

/// A weighted mix of fitness functions: sum(w_i * f_i) / sum(w_i), summed in the given order.
struct FitnessMix {
    std::vector<int32_t> kinds;
    std::vector<double> weights;
    double weight_sum = 0.0;

    void set(const std::vector<int32_t>& k, const std::vector<double>& w) {
        kinds = k;
        weights = w;
        weight_sum = 0.0;
        for (double x : w) weight_sum += x;
    }

    double operator()(const double* used, const double* cap, const double* d) const {
        double num = 0.0;
        for (size_t i = 0; i < kinds.size(); ++i) num += weights[i] * fitness_one(kinds[i], used, cap, d);
        return num / weight_sum;
    }
};

}  // namespace titus
