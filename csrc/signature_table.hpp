// The host index's lookup from a class signature to its class id: open addressing over
// (64-bit hash, id) pairs, keys compared by the caller. A host is re-homed at most once per
// placement, and a node-based map keyed by strings hashed a signature two to three times per
// re-home and allocated nodes; this hashes it once and keeps everything in two flat arrays.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hash.hpp"

namespace titus {

/// A 64-bit hash of a byte string, eight bytes at a time (a signature is some 80 bytes).
inline uint64_t hash_bytes64(const char* data, size_t n) {
    uint64_t h = 0x243F6A8885A308D3ULL ^ (n * 0x9E3779B97F4A7C15ULL);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, data + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, data + i, n - i);
    return splitmix64(h ^ tail);
}

/// Ids (>= 0) filed by a 64-bit hash of their key. The table holds no keys: `find` asks the
/// caller's `same(id)` whether an id with an equal hash has the key sought, so two keys with
/// one hash are both kept and told apart. A slot holds its hash beside its id: a probe reads
/// one cache line, not two.
class SignatureTable {
public:
    /// The id whose key hashes to `h` and for which `same(id)` holds, or -1.
    template <typename Same>
    int32_t find(uint64_t h, Same same) const {
        if (slots_.empty()) return -1;
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.id == kEmpty) return -1;
            if (s.id >= 0 && s.hash == h && same(s.id)) return s.id;
        }
    }

    /// File `id` under `h` (not filed yet).
    void insert(uint64_t h, int32_t id) {
        if ((filled_ + 1) * 2 > slots_.size()) grow();
        size_t i = h & mask_;
        while (slots_[i].id >= 0) i = (i + 1) & mask_;
        if (slots_[i].id == kEmpty) ++filled_;  // a gone entry's slot is reused as it is
        slots_[i] = {h, id};
        ++live_;
    }

    /// Take `id`, filed under `h`, out.
    void erase(uint64_t h, int32_t id) {
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            if (slots_[i].id == id) {
                slots_[i].id = kGone;  // probes for later entries still pass over it
                --live_;
                return;
            }
            if (slots_[i].id == kEmpty) return;  // not filed
        }
    }

    void clear() {
        slots_.assign(slots_.size(), Slot{});
        filled_ = live_ = 0;
    }
    size_t size() const { return live_; }

private:
    static constexpr int32_t kEmpty = -1;
    static constexpr int32_t kGone = -2;
    struct Slot {
        uint64_t hash = 0;
        int32_t id = kEmpty;
    };
    std::vector<Slot> slots_;
    size_t mask_ = 0;
    size_t filled_ = 0;  // slots live or gone (what probes walk over)
    size_t live_ = 0;

    /// Refile the live entries in a table at least four times their number (gone ones dropped).
    void grow() {
        size_t cap = 16;
        while (cap < 4 * (live_ + 1)) cap *= 2;
        std::vector<Slot> slots(cap);
        for (const Slot& s : slots_) {
            if (s.id < 0) continue;
            size_t j = s.hash & (cap - 1);
            while (slots[j].id != kEmpty) j = (j + 1) & (cap - 1);
            slots[j] = s;
        }
        slots_.swap(slots);
        mask_ = cap - 1;
        filled_ = live_;
    }
};

}  // namespace titus
