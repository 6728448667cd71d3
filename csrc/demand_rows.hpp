// The demand rows of held tasks, shared: tasks placed one after another with the same demand
// (a run: the tasks of one job, mostly) point at one row, so a held task keeps 4 bytes for its
// demand instead of 8 per resource. A row is freed when its last task lets go. Rows are exact
// copies of the demand given; a release subtracts exactly what the hold added.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace titus {

class DemandRows {
public:
    /// A row holding `d` (R values): the last row taken when it is still held and equal, else a
    /// new one. Each take is paired with one drop.
    int32_t take(const double* d, int32_t R) {
        const size_t bytes = sizeof(double) * static_cast<size_t>(R);
        if (last_ >= 0 && refs_[last_] > 0 && std::memcmp(row(last_, R), d, bytes) == 0) {
            ++refs_[last_];
            return last_;
        }
        int32_t r;
        if (!free_.empty()) {
            r = free_.back();
            free_.pop_back();
        } else {
            r = static_cast<int32_t>(refs_.size());
            refs_.push_back(0);
            rows_.resize(rows_.size() + static_cast<size_t>(R), 0.0);
        }
        std::memcpy(&rows_[static_cast<size_t>(r) * R], d, bytes);
        refs_[r] = 1;
        last_ = r;
        return r;
    }

    /// One task of row r let go; the row is freed with its last.
    void drop(int32_t r) {
        if (--refs_[r] == 0) free_.push_back(r);
    }

    const double* row(int32_t r, int32_t R) const { return &rows_[static_cast<size_t>(r) * R]; }

    /// Re-lay the rows with one more column, 0 in every row (a new resource).
    void widen(int32_t R) {
        const size_t n = refs_.size();
        std::vector<double> out(n * (R + 1), 0.0);
        for (size_t i = 0; i < n; ++i) std::memcpy(&out[i * (R + 1)], &rows_[i * R], sizeof(double) * R);
        rows_.swap(out);
    }

    /// Rows in use (held by some task).
    size_t live() const { return refs_.size() - free_.size(); }

private:
    std::vector<double> rows_;   // [row][R]
    std::vector<int32_t> refs_;  // tasks holding each row; 0: free
    std::vector<int32_t> free_;
    int32_t last_ = -1;
};

}  // namespace titus
