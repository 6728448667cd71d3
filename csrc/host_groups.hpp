// Equivalence classes of hosts, the engine's index (docs/semantics.md results, found faster).
//
// Two hosts with the same signature -- capacities, usage, enabled, holds-any-task,
// holds-an-exclusive-task, free port count, the attribute values the constraints in use read
// (Engine::use_attr_view: a HostAttrValue-only attribute splits just the values it names) and
// the special mark of hostname constraints -- give every task of the call the same feasibility
// reason and the same score. So a placement needs to look at one member per class only: the one
// with the lowest tiekey, which is the one the tie-break would pick. Hosts with resource sets are
// kept in classes of their own.
// Classes are ordered by free cpus so that those a task cannot fit are never visited; they are
// also filed by bucket, the part of the signature after the first `bucket_from` bytes (the
// attribute values and the special mark), each bucket again by free cpus.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "layout.hpp"
#include "signature_table.hpp"

namespace titus {

struct HostGroup {
    // Members as a min-heap on (tiekey, host): heap[0], the representative, is the host the
    // tie-break would pick. 4 bytes a member (plus its slot in HostGroups::heap_pos_), where a
    // tree node would take some 64.
    std::vector<int32_t> heap;
    double free_cpus = 0.0;
    std::string signature;
    uint64_t hash = 0;  // of signature (SignatureTable)
    int32_t bucket = -1;

    int32_t rep() const { return heap.front(); }
    size_t size() const { return heap.size(); }
};

/// The classes of one bucket within a key range: (free-cpus key, class) pairs sorted, beside each
/// its capacities then usage (2 * R doubles, the first bytes of its signature), so a scan can
/// reject a class without a lookup; and, per resource, an upper bound of what any of them could
/// still take (cap + eps - used, plus a rounding allowance) and, for cpus, memory and network,
/// the greatest used/cap and 1/cap (for ScoreBound::block_score): a walk skips a chunk none of
/// whose classes fits or can reach the best score. A class coming in is folded into the bounds;
/// one leaving that alone reached a bound marks them stale, and they are rebuilt when a walk
/// next reaches the chunk.
struct BucketChunk {
    static constexpr int kUtilCols = 3;
    std::vector<std::pair<double, int32_t>> by_free;
    // by_free's first and last entries, kept beside the bounds: a binary search over the chunks
    // and a walk's stop test read these without following a pointer per chunk.
    std::pair<double, int32_t> first{0.0, 0}, last{0.0, 0};
    std::vector<double> state;  // [entry][2R]
    mutable std::vector<double> room;  // [R]
    mutable double util[2 * kUtilCols] = {0, 0, 0, 0, 0, 0};
    mutable bool stale = true;

    /// Rebuild the bounds if a class that alone reached one left since (a class coming in is
    /// folded in at once; such a leaving one would leave them loose, and a loose room lets walks
    /// into chunks none fits).
    void ensure(int32_t R, double eps) const {
        if (!stale) return;
        stale = false;
        const size_t w = 2 * static_cast<size_t>(R);
        room.assign(R, -std::numeric_limits<double>::infinity());
        std::fill(util, util + 2 * kUtilCols, 0.0);
        for (size_t j = 0; j < by_free.size(); ++j) fold(&state[j * w], R, eps);
    }

    static constexpr int kCol[kUtilCols] = {0, 1, 3};  // cpus, memory, network (fitness.hpp)

    /// What a class may still take of one resource, with a rounding allowance.
    static double take_of(double cap, double used, double eps) {
        return cap + eps - used + 1e-12 * (std::fabs(cap) + std::fabs(used) + 1.0);
    }

    /// A utilisation bound's term for a class: `num` (its usage, or 1) over capacity `cp` > 0,
    /// pushed up against rounding. One formula for folding and for asking who reached a bound.
    static double util_of(double num, double cp) { return num / cp * (1.0 + 1e-15); }

    /// Take one class's capacities then usage (2R values) into the bounds.
    void fold(const double* cap, int32_t R, double eps) const {
        const double* used = cap + R;
        for (int32_t r = 0; r < R; ++r) room[r] = std::max(room[r], take_of(cap[r], used[r], eps));
        if (R <= 3) return;
        for (int c = 0; c < kUtilCols; ++c) {
            const double cp = cap[kCol[c]];
            if (!(cp > 0.0)) continue;  // utilisation 0 there
            util[c] = std::max(util[c], util_of(used[kCol[c]], cp));
            util[kUtilCols + c] = std::max(util[kUtilCols + c], util_of(1.0, cp));
        }
    }

    /// Note by_free's ends after it changed (not empty).
    void kept_ends() {
        first = by_free.front();
        last = by_free.back();
    }

    /// A class came in (its row at entry i): folded into the bounds. One left: rebuilt later.
    void entered(size_t i, int32_t R, double eps) const {
        if (!stale) fold(&state[i * 2 * static_cast<size_t>(R)], R, eps);
    }
    void left() const { stale = true; }

    /// Whether the bounds would loosen if entry i left: only if it reaches one of them and no
    /// other entry does (else the greatest of the rest is the same). A re-homed host leaves its
    /// class's chunk at each placement; most leave every bound where it was.
    bool reaches_a_bound(size_t i, int32_t R, double eps) const {
        if (stale) return true;
        const size_t w = 2 * static_cast<size_t>(R);
        const double* cap = &state[i * w];
        const double* used = cap + R;
        for (int32_t r = 0; r < R; ++r)
            if (take_of(cap[r], used[r], eps) >= room[r] && !others_reach_room(i, r, R, eps)) return true;
        if (R <= 3) return false;
        for (int c = 0; c < kUtilCols; ++c) {
            const double cp = cap[kCol[c]];
            if (!(cp > 0.0)) continue;
            if (util_of(used[kCol[c]], cp) >= util[c] && !others_reach_util(i, c, false, R)) return true;
            if (util_of(1.0, cp) >= util[kUtilCols + c] && !others_reach_util(i, c, true, R)) return true;
        }
        return false;
    }

    bool others_reach_room(size_t i, int32_t r, int32_t R, double eps) const {
        const size_t w = 2 * static_cast<size_t>(R);
        for (size_t j = 0; j < by_free.size(); ++j)
            if (j != i && take_of(state[j * w + r], state[j * w + R + r], eps) >= room[r]) return true;
        return false;
    }
    bool others_reach_util(size_t i, int c, bool inverse, int32_t R) const {
        const size_t w = 2 * static_cast<size_t>(R);
        const int col = kCol[c];
        const double bound = util[(inverse ? kUtilCols : 0) + c];
        for (size_t j = 0; j < by_free.size(); ++j) {
            if (j == i) continue;
            const double cp = state[j * w + col];
            if (!(cp > 0.0)) continue;
            if (util_of(inverse ? 1.0 : state[j * w + R + col], cp) >= bound) return true;
        }
        return false;
    }

    /// Whether some class of the chunk might fit demand `d` (false: none does); ensure() first.
    bool may_fit(const double* d, int32_t R) const {
        for (int32_t r = 0; r < R; ++r)
            if (room[r] < d[r]) return false;
        return true;
    }
};

/// Classes sharing attribute values (and special mark), by free cpus: a sorted list kept in
/// chunks of at most kChunk entries, so that a class coming or going shifts one chunk, not the
/// whole bucket, and ages the bounds of that chunk only. Every kGroup chunks in a row also share
/// a room bound (the greatest of theirs), so a walk passes a run of chunks none of whose classes
/// fits in one test: most of a bucket, for a task whose second resource is scarce there.
struct HostBucket {
    static constexpr size_t kChunk = 16;
    static constexpr size_t kGroup = 8;
    std::string key;
    std::vector<BucketChunk> chunks;  // in key order, none empty
    size_t n = 0;                     // entries in all

    /// Whether some class of chunks [k * kGroup, (k + 1) * kGroup) might fit demand `d` (false:
    /// none does). Rebuilds the group's bound, and its chunks', where they changed.
    bool group_may_fit(size_t k, const double* d, int32_t R, double eps) const {
        GroupRoom& g = groups_[k];
        if (!g.fresh) {
            g.room.assign(R, -std::numeric_limits<double>::infinity());
            const size_t end = std::min(chunks.size(), (k + 1) * kGroup);
            for (size_t c = k * kGroup; c < end; ++c) {
                chunks[c].ensure(R, eps);
                for (int32_t r = 0; r < R; ++r) g.room[r] = std::max(g.room[r], chunks[c].room[r]);
            }
            g.fresh = true;
        }
        for (int32_t r = 0; r < R; ++r)
            if (g.room[r] < d[r]) return false;
        return true;
    }

    bool empty() const { return n == 0; }
    /// The class of the first entry (any member tells the bucket's attribute values).
    int32_t first_class() const { return chunks.front().first.second; }

    /// (chunk, index) of the first entry not below `e`; (chunks.size(), 0) when none.
    std::pair<size_t, size_t> locate(const std::pair<double, int32_t>& e) const {
        auto it = std::lower_bound(chunks.begin(), chunks.end(), e,
                                   [](const BucketChunk& c, const std::pair<double, int32_t>& x) {
                                       return c.last < x;
                                   });
        const size_t c = static_cast<size_t>(it - chunks.begin());
        if (c == chunks.size()) return {c, 0};
        const auto& bf = it->by_free;
        return {c, static_cast<size_t>(std::lower_bound(bf.begin(), bf.end(), e) - bf.begin())};
    }

    void insert(const std::pair<double, int32_t>& e, const char* row, size_t w) {
        if (chunks.empty()) {
            chunks.emplace_back();
            chunks.back().by_free.push_back(e);
            chunks.back().kept_ends();
            chunks.back().state.resize(w);
            std::memcpy(chunks.back().state.data(), row, sizeof(double) * w);
            n = 1;
            shifted_from(0);
            return;
        }
        auto [c, i] = locate(e);
        if (c == chunks.size()) {  // past the last entry: append to the last chunk
            c = chunks.size() - 1;
            i = chunks[c].by_free.size();
        }
        BucketChunk& ch = chunks[c];
        ch.by_free.insert(ch.by_free.begin() + static_cast<ptrdiff_t>(i), e);
        ch.kept_ends();
        ch.state.insert(ch.state.begin() + static_cast<ptrdiff_t>(i * w), w, 0.0);
        std::memcpy(&ch.state[i * w], row, sizeof(double) * w);  // may be unaligned there
        ch.entered(i, static_cast<int32_t>(w / 2), kEps);
        ++n;
        widened(c);
        if (ch.by_free.size() > kChunk) split(c, w);
    }

    void erase(const std::pair<double, int32_t>& e, size_t w) {
        const auto [c, i] = locate(e);
        BucketChunk& ch = chunks[c];
        const bool loosens = ch.reaches_a_bound(i, static_cast<int32_t>(w / 2), kEps);
        ch.by_free.erase(ch.by_free.begin() + static_cast<ptrdiff_t>(i));
        if (!ch.by_free.empty()) ch.kept_ends();
        ch.state.erase(ch.state.begin() + static_cast<ptrdiff_t>(i * w),
                       ch.state.begin() + static_cast<ptrdiff_t>((i + 1) * w));
        --n;
        if (loosens) {  // else the chunk's bounds, and so its group's, stay exactly as they were
            ch.left();
            aged(c);
        }
        if (ch.by_free.empty()) {
            chunks.erase(chunks.begin() + static_cast<ptrdiff_t>(c));
            shifted_from(c);
        }
    }

private:
    struct GroupRoom {
        std::vector<double> room;  // [R]
        bool fresh = false;
    };
    mutable std::vector<GroupRoom> groups_;  // one per kGroup chunks

    /// Chunk c changed: its group's bound is rebuilt when next asked.
    void aged(size_t c) { groups_[c / kGroup].fresh = false; }
    /// A class came into chunk c: a fresh group bound takes in the chunk's (which only grew).
    void widened(size_t c) {
        GroupRoom& g = groups_[c / kGroup];
        if (!g.fresh) return;
        const BucketChunk& ch = chunks[c];
        if (ch.stale) {
            g.fresh = false;
            return;
        }
        for (size_t r = 0; r < g.room.size(); ++r) g.room[r] = std::max(g.room[r], ch.room[r]);
    }
    /// Chunks from c on moved (one came or went): their groups' bounds are rebuilt.
    void shifted_from(size_t c) {
        groups_.resize((chunks.size() + kGroup - 1) / kGroup);
        for (size_t k = c / kGroup; k < groups_.size(); ++k) groups_[k].fresh = false;
    }

    void split(size_t c, size_t w) {
        BucketChunk upper;
        BucketChunk& lo = chunks[c];
        const size_t half = lo.by_free.size() / 2;
        upper.by_free.assign(lo.by_free.begin() + static_cast<ptrdiff_t>(half), lo.by_free.end());
        upper.state.assign(lo.state.begin() + static_cast<ptrdiff_t>(half * w), lo.state.end());
        lo.by_free.resize(half);
        lo.state.resize(half * w);
        lo.kept_ends();
        upper.kept_ends();
        lo.left();
        upper.left();
        chunks.insert(chunks.begin() + static_cast<ptrdiff_t>(c + 1), std::move(upper));
        shifted_from(c);
    }
};

class HostGroups {
public:
    /// Forget everything: the next refresh rebuilds from scratch.
    void invalidate() { valid_ = false; }
    bool valid() const { return valid_; }

    /// Note that host h changed (usage, flags, ports): it is re-homed at the next refresh.
    void touch(int32_t h) {
        if (!valid_) return;
        if (static_cast<size_t>(h) >= dirty_flag_.size()) dirty_flag_.resize(h + 1, 0);
        if (!dirty_flag_[h]) {
            dirty_flag_[h] = 1;
            dirty_.push_back(h);
        }
    }

    /// Bring the classes up to date. `sig(h, out)` writes a host's signature and returns its free
    /// cpus; `live` lists the live hosts; `key(h)` is a host's tiekey.
    template <typename Sig, typename Key>
    void refresh(const std::vector<int32_t>& live, int32_t n_hosts, int32_t n_res, Sig sig, Key key) {
        // The bucket part of a signature starts after capacities, usage and flags (Engine::signature).
        const size_t bucket_from = sizeof(double) * 2 * static_cast<size_t>(n_res) + sizeof(int32_t) * 5;
        if (valid_ && bucket_from != bucket_from_) valid_ = false;
        bucket_from_ = bucket_from;
        n_res_ = n_res;
        if (!valid_) {
            clear();
            group_of_.assign(n_hosts, -1);
            heap_pos_.assign(n_hosts, -1);
            dirty_flag_.assign(n_hosts, 0);
            for (int32_t h : live) place(h, sig, key);
            valid_ = true;
            return;
        }
        for (int32_t h : dirty_) {
            dirty_flag_[h] = 0;
            rehome(h, sig, key);
        }
        dirty_.clear();
    }

    /// Re-home only the waiting hosts now filed in bucket b (a walk of b needs no more); the
    /// rest keep waiting, so a host placed on again meanwhile is re-homed once.
    template <typename Sig, typename Key>
    void refresh_bucket(int32_t b, Sig sig, Key key) {
        if (!valid_) return;
        size_t k = 0;
        for (size_t i = 0; i < dirty_.size(); ++i) {
            const int32_t h = dirty_[i];
            const int32_t g = group_of(h);
            if (g >= 0 && groups_[g].bucket == b) {
                dirty_flag_[h] = 0;
                rehome(h, sig, key);
            } else {
                dirty_[k++] = h;
            }
        }
        dirty_.resize(k);
    }

    /// Hosts waiting to be re-homed at the next refresh.
    const std::vector<int32_t>& dirty() const { return dirty_; }
    /// Moves on every change of which buckets exist (one made, one freed, a rebuild): a bucket id
    /// names the same attribute values only while it stays.
    uint64_t layout_epoch() const { return layout_epoch_; }

    /// Drop a host for good (it was removed).
    template <typename Key>
    void drop(int32_t h, Key key) {
        if (!valid_) return;
        unplace(h, key);
        if (static_cast<size_t>(h) < dirty_flag_.size() && dirty_flag_[h]) {
            dirty_flag_[h] = 0;
            dirty_.erase(std::find(dirty_.begin(), dirty_.end(), h));
        }
    }

    /// `fn(key, class)` for every class whose free-cpus key is >= `need`, bucket by bucket (each
    /// by rising key). The key is an upper bound of the cpus a task may ask and still fit (see
    /// Engine::signature), so no class skipped could fit.
    template <typename Fn>
    void for_each_from(double need, Fn fn) const {
        for (const HostBucket& b : buckets_) {
            if (b.empty()) continue;
            auto [c, j] = b.locate({need, INT32_MIN});
            for (; c < b.chunks.size(); ++c, j = 0) {
                const auto& bf = b.chunks[c].by_free;
                for (; j < bf.size(); ++j) fn(bf[j].first, bf[j].second);
            }
        }
    }
    const HostGroup& group(int32_t g) const { return groups_[g]; }
    int32_t group_of(int32_t h) const { return static_cast<size_t>(h) < group_of_.size() ? group_of_[h] : -1; }
    size_t capacity() const { return groups_.size(); }
    size_t size() const { return n_classes_; }
    /// Buckets in use (ids below bucket_capacity(); an unused one has no classes).
    size_t bucket_capacity() const { return buckets_.size(); }
    size_t n_buckets() const { return buckets_.size() - spare_buckets_.size(); }
    const HostBucket& bucket(int32_t b) const { return buckets_[b]; }

private:
    bool valid_ = false;
    uint64_t layout_epoch_ = 0;
    std::vector<HostGroup> groups_;
    std::vector<int32_t> spare_;  // unused group ids
    SignatureTable by_signature_;
    size_t n_classes_ = 0;
    std::vector<int32_t> group_of_;
    std::vector<int32_t> heap_pos_;  // host -> its position in its class's heap, or -1
    std::vector<int32_t> dirty_;
    std::vector<uint8_t> dirty_flag_;
    std::string scratch_, bucket_scratch_;
    size_t bucket_from_ = 0;
    int32_t n_res_ = 0;
    std::vector<HostBucket> buckets_;
    std::vector<int32_t> spare_buckets_;
    std::unordered_map<std::string, int32_t> bucket_by_key_;

    void clear() {
        ++layout_epoch_;
        buckets_.clear();
        spare_buckets_.clear();
        bucket_by_key_.clear();
        groups_.clear();
        spare_.clear();
        by_signature_.clear();
        n_classes_ = 0;
        dirty_.clear();
    }

    template <typename Sig, typename Key>
    void place(int32_t h, Sig& sig, Key& key) {
        scratch_.clear();
        const double free_cpus = sig(h, scratch_);
        place_as(h, free_cpus, -1, key);
    }

    /// Move a changed host to the class of its signature now. Most changes are usage only: the
    /// attribute part is the same, so the bucket is the one it was in (no lookup); a host whose
    /// signature did not change at all stays where it is.
    template <typename Sig, typename Key>
    void rehome(int32_t h, Sig& sig, Key& key) {
        scratch_.clear();
        const double free_cpus = sig(h, scratch_);
        int32_t bucket = -1;
        const int32_t g0 = group_of(h);
        if (g0 >= 0) {
            const std::string& was = groups_[g0].signature;
            if (was == scratch_) return;
            if (was.size() == scratch_.size() &&
                std::memcmp(was.data() + bucket_from_, scratch_.data() + bucket_from_, was.size() - bucket_from_) == 0)
                bucket = groups_[g0].bucket;
        }
        unplace(h, key);
        if (bucket >= 0 && buckets_[bucket].empty()) bucket = -1;  // h alone held it: freed
        place_as(h, free_cpus, bucket, key);
    }

    /// File h under the signature in scratch_ (free cpus `free_cpus`); `bucket` is its bucket
    /// when known, else -1.
    template <typename Key>
    void place_as(int32_t h, double free_cpus, int32_t bucket, Key& key) {
        const uint64_t hash = hash_bytes64(scratch_.data(), scratch_.size());
        int32_t g = by_signature_.find(hash, [this](int32_t id) { return groups_[id].signature == scratch_; });
        if (g < 0) {
            if (!spare_.empty()) {
                g = spare_.back();
                spare_.pop_back();
            } else {
                g = static_cast<int32_t>(groups_.size());
                groups_.emplace_back();
            }
            groups_[g].signature = scratch_;
            groups_[g].hash = hash;
            groups_[g].free_cpus = free_cpus;
            by_signature_.insert(hash, g);
            ++n_classes_;
            file_in_bucket(g, bucket);
        }
        if (static_cast<size_t>(h) >= group_of_.size()) group_of_.resize(h + 1, -1);
        if (static_cast<size_t>(h) >= heap_pos_.size()) heap_pos_.resize(h + 1, -1);
        group_of_[h] = g;
        std::vector<int32_t>& heap = groups_[g].heap;
        heap.push_back(h);
        heap_pos_[h] = static_cast<int32_t>(heap.size() - 1);
        sift_up(heap, heap.size() - 1, key);
    }

    // Indexed binary min-heap on (key(h), h); heap_pos_[h] follows every move.
    template <typename Key>
    static bool before(int32_t a, int32_t b, Key& key) {
        const uint64_t ka = key(a), kb = key(b);
        return ka != kb ? ka < kb : a < b;
    }
    template <typename Key>
    void sift_up(std::vector<int32_t>& heap, size_t i, Key& key) {
        const int32_t h = heap[i];
        while (i > 0) {
            const size_t parent = (i - 1) / 2;
            if (!before(h, heap[parent], key)) break;
            heap[i] = heap[parent];
            heap_pos_[heap[i]] = static_cast<int32_t>(i);
            i = parent;
        }
        heap[i] = h;
        heap_pos_[h] = static_cast<int32_t>(i);
    }
    template <typename Key>
    void sift_down(std::vector<int32_t>& heap, size_t i, Key& key) {
        const int32_t h = heap[i];
        const size_t n = heap.size();
        while (true) {
            size_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && before(heap[child + 1], heap[child], key)) ++child;
            if (!before(heap[child], h, key)) break;
            heap[i] = heap[child];
            heap_pos_[heap[i]] = static_cast<int32_t>(i);
            i = child;
        }
        heap[i] = h;
        heap_pos_[h] = static_cast<int32_t>(i);
    }
    template <typename Key>
    void heap_erase(std::vector<int32_t>& heap, int32_t h, Key& key) {
        const size_t i = static_cast<size_t>(heap_pos_[h]);
        heap_pos_[h] = -1;
        const int32_t last = heap.back();
        heap.pop_back();
        if (i == heap.size()) return;  // h was the last one
        heap[i] = last;
        heap_pos_[last] = static_cast<int32_t>(i);
        sift_up(heap, i, key);
        sift_down(heap, static_cast<size_t>(heap_pos_[last]), key);
    }

    /// File class g in its bucket: `b` when known (-1: found or made from its signature).
    void file_in_bucket(int32_t g, int32_t b) {
        HostGroup& grp = groups_[g];
        if (b >= 0) {
            grp.bucket = b;
            buckets_[b].insert(std::make_pair(grp.free_cpus, g), grp.signature.data(), 2 * static_cast<size_t>(n_res_));
            return;
        }
        std::string& k = bucket_scratch_;  // reused: a class made per placement, no allocation
        if (grp.signature.size() > bucket_from_) k.assign(grp.signature, bucket_from_, std::string::npos);
        else k.clear();
        auto it = bucket_by_key_.find(k);
        if (it == bucket_by_key_.end()) {
            if (!spare_buckets_.empty()) {
                b = spare_buckets_.back();
                spare_buckets_.pop_back();
            } else {
                b = static_cast<int32_t>(buckets_.size());
                buckets_.emplace_back();
            }
            buckets_[b].key = k;
            bucket_by_key_.emplace(k, b);
            ++layout_epoch_;
        } else {
            b = it->second;
        }
        grp.bucket = b;
        buckets_[b].insert(std::make_pair(grp.free_cpus, g), grp.signature.data(), 2 * static_cast<size_t>(n_res_));
    }

    template <typename Key>
    void unplace(int32_t h, Key& key) {
        if (static_cast<size_t>(h) >= group_of_.size() || group_of_[h] < 0) return;
        const int32_t g = group_of_[h];
        group_of_[h] = -1;
        HostGroup& grp = groups_[g];
        heap_erase(grp.heap, h, key);
        if (grp.heap.empty()) {
            if (grp.heap.capacity() > 64) std::vector<int32_t>().swap(grp.heap);  // a big class gives its memory back
            by_signature_.erase(grp.hash, g);
            --n_classes_;
            HostBucket& b = buckets_[grp.bucket];
            b.erase(std::make_pair(grp.free_cpus, g), 2 * static_cast<size_t>(n_res_));
            if (b.empty()) {
                bucket_by_key_.erase(b.key);
                b.key.clear();
                spare_buckets_.push_back(grp.bucket);
                ++layout_epoch_;
            }
            grp.bucket = -1;
            grp.signature.clear();
            spare_.push_back(g);
        }
    }
};

}  // namespace titus
