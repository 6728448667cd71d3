// Selection: the greatest score wins, the lowest tiekey among equals; with good_enough, the
// first host (in tiekey order) scoring at least that. Hosts are offered in tiekey order.
#pragma once
#include <cstdint>
#include <limits>

namespace titus {

class Selector {
public:
    Selector(bool use_good_enough, double good_enough) : use_good_(use_good_enough), good_(good_enough) {}

    /// Offer a feasible host; true when the scan may stop (good enough).
    bool offer(int32_t host, double score) {
        if (use_good_ && score >= good_) {
            best_ = host;
            best_score_ = score;
            return true;
        }
        if (best_ < 0 || score > best_score_) {  // strict: an earlier (lower tiekey) host keeps a tie
            best_ = host;
            best_score_ = score;
        }
        return false;
    }

    int32_t chosen() const { return best_; }
    double score() const { return best_score_; }

private:
    bool use_good_;
    double good_;
    int32_t best_ = -1;
    double best_score_ = -std::numeric_limits<double>::infinity();
};

}  // namespace titus
