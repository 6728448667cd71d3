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

    /// Take a host chosen elsewhere (by GroupSelector).
    void force(int32_t host) { best_ = host; }

    int32_t chosen() const { return best_; }
    double score() const { return best_score_; }

private:
    bool use_good_;
    double good_;
    int32_t best_ = -1;
    double best_score_ = -std::numeric_limits<double>::infinity();
};

}  // namespace titus

namespace titus {

/// The same choice over hosts offered in any order: the greatest score, the lowest tiekey among
/// equals; with good_enough, the lowest tiekey among hosts scoring at least that.
class GroupSelector {
public:
    GroupSelector(bool use_good_enough, double good_enough) : use_good_(use_good_enough), good_(good_enough) {}

    /// Returns whether the greatest score offered so far rose (or this is the first offer).
    bool offer(int32_t host, uint64_t key, double score) {
        if (use_good_ && score >= good_ && (good_host_ < 0 || before(key, host, good_key_, good_host_))) {
            good_host_ = host;
            good_key_ = key;
        }
        const bool rose = best_ < 0 || score > best_score_;
        if (rose || (score == best_score_ && before(key, host, best_key_, best_))) {
            best_ = host;
            best_key_ = key;
            best_score_ = score;
        }
        return rose;
    }

    int32_t chosen() const { return good_host_ >= 0 ? good_host_ : best_; }
    /// Whether some host was offered, and the greatest score offered so far.
    bool has_best() const { return best_ >= 0; }
    double best_score() const { return best_score_; }

private:
    // The scan order: tiekey, then host index.
    static bool before(uint64_t key, int32_t host, uint64_t other_key, int32_t other) {
        return key != other_key ? key < other_key : host < other;
    }

    bool use_good_;
    double good_;
    int32_t best_ = -1, good_host_ = -1;
    uint64_t best_key_ = 0, good_key_ = 0;
    double best_score_ = 0.0;
};

}  // namespace titus
