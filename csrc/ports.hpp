// Ports of one host: inclusive ranges offered (merged), ports in use; the lowest free go first.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace titus {

struct HostPorts {
    std::vector<std::pair<int32_t, int32_t>> ranges;  // sorted, disjoint, inclusive
    std::vector<int32_t> used;                        // sorted
    int32_t total = 0;

    /// Take ranges (lo, hi) as offered; overlapping or touching ranges are merged.
    void set_ranges(std::vector<std::pair<int32_t, int32_t>> rs) {
        std::sort(rs.begin(), rs.end());
        ranges.clear();
        for (const auto& r : rs) {
            if (!ranges.empty() && r.first <= ranges.back().second + 1)
                ranges.back().second = std::max(ranges.back().second, r.second);
            else
                ranges.push_back(r);
        }
        total = 0;
        for (const auto& r : ranges) total += r.second - r.first + 1;
    }

    int32_t free_count() const { return total - static_cast<int32_t>(used.size()); }

    bool offered(int32_t p) const {
        for (const auto& r : ranges)
            if (r.first <= p && p <= r.second) return true;
        return false;
    }

    bool in_use(int32_t p) const { return std::binary_search(used.begin(), used.end(), p); }

    /// The n lowest free ports (the caller checked free_count() >= n), marked used.
    std::vector<int32_t> take_lowest(int32_t n) {
        std::vector<int32_t> out;
        out.reserve(n);
        size_t u = 0;
        for (const auto& r : ranges) {
            for (int32_t p = r.first; p <= r.second && static_cast<int32_t>(out.size()) < n; ++p) {
                while (u < used.size() && used[u] < p) ++u;
                if (u < used.size() && used[u] == p) continue;
                out.push_back(p);
            }
            if (static_cast<int32_t>(out.size()) >= n) break;
        }
        take(out);
        return out;
    }

    /// Mark the given ports used (the caller checked that they are offered and free).
    void take(const std::vector<int32_t>& ps) {
        used.insert(used.end(), ps.begin(), ps.end());
        std::sort(used.begin(), used.end());
    }

    void give_back(const std::vector<int32_t>& ps) {
        for (int32_t p : ps) {
            auto it = std::lower_bound(used.begin(), used.end(), p);
            if (it != used.end() && *it == p) used.erase(it);
        }
    }
};

}  // namespace titus
