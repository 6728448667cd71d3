// Tie-break keys: splitmix64(fnv1a64(utf8(host id)) ^ splitmix64(seed)), as docs/semantics.md says.
#pragma once
#include <cstddef>
#include <cstdint>

namespace titus {

/// One step of the splitmix64 mixer.
inline uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/// 64-bit FNV-1a of a byte string.
inline uint64_t fnv1a64(const char* data, size_t n) {
    uint64_t h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 0x100000001B3ULL;
    }
    return h;
}

/// The key ordering hosts of equal score (lowest wins), from the host id's FNV hash.
inline uint64_t tiekey_from_fnv(uint64_t fnv, uint64_t seed) {
    return splitmix64(fnv ^ splitmix64(seed));
}

}  // namespace titus
