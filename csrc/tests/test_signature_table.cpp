// The signature table: ids found by hash and the caller's key test, keys sharing one hash kept
// apart, erased ids not found while later entries of their probe run still are, and a table
// through many inserts and erases agreeing with a std::map at every step.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "signature_table.hpp"

using titus::hash_bytes64;
using titus::SignatureTable;

TEST_CASE("two keys with one hash are both found, each by its own key") {
    SignatureTable t;
    std::vector<std::string> keys = {"alpha", "beta", "gamma"};
    t.insert(7, 0);
    t.insert(7, 1);  // same hash, another key
    t.insert(8, 2);
    auto find = [&](uint64_t h, const std::string& k) {
        return t.find(h, [&](int32_t id) { return keys[id] == k; });
    };
    CHECK(find(7, "alpha") == 0);
    CHECK(find(7, "beta") == 1);
    CHECK(find(8, "gamma") == 2);
    CHECK(find(7, "gamma") == -1);  // the hash of another key: not this one
    CHECK(find(9, "alpha") == -1);
    t.erase(7, 0);
    CHECK(find(7, "alpha") == -1);
    CHECK(find(7, "beta") == 1);  // past the gone slot, still found
    CHECK(t.size() == 2);
}

TEST_CASE("an erased slot is reused and the table grows past its first size") {
    SignatureTable t;
    std::vector<std::string> keys;
    for (int i = 0; i < 1000; ++i) {
        keys.push_back("k" + std::to_string(i));
        t.insert(hash_bytes64(keys.back().data(), keys.back().size()), i);
    }
    for (int i = 0; i < 1000; i += 2) t.erase(hash_bytes64(keys[i].data(), keys[i].size()), i);
    CHECK(t.size() == 500);
    for (int i = 0; i < 1000; ++i) {
        const int32_t got = t.find(hash_bytes64(keys[i].data(), keys[i].size()),
                                   [&](int32_t id) { return keys[id] == keys[i]; });
        CHECK(got == (i % 2 ? i : -1));
    }
}

TEST_CASE("the hash reads every byte, also the tail after the last eight") {
    const std::string a(83, 'x');
    for (size_t i = 0; i < a.size(); ++i) {
        std::string b = a;
        b[i] = 'y';
        CHECK(hash_bytes64(a.data(), a.size()) != hash_bytes64(b.data(), b.size()));
    }
    CHECK(hash_bytes64(a.data(), 82) != hash_bytes64(a.data(), 83));  // the length counts
}

TEST_CASE("random inserts and erases, with few hash values, agree with a map") {
    std::mt19937 rng(11);
    SignatureTable t;
    std::map<int32_t, uint64_t> live;  // id -> hash
    int32_t next = 0;
    for (int step = 0; step < 4000; ++step) {
        if (live.empty() || rng() % 3 != 0) {
            const uint64_t h = rng() % 8;  // many ids share a hash: probe runs are long
            t.insert(h, next);
            live[next++] = h;
        } else {
            auto it = live.begin();
            std::advance(it, rng() % live.size());
            t.erase(it->second, it->first);
            live.erase(it);
        }
        if (step % 199 == 0) {
            for (int32_t id = 0; id < next; ++id) {
                const auto it = live.find(id);
                const uint64_t h = it != live.end() ? it->second : static_cast<uint64_t>(id % 8);
                CHECK(t.find(h, [&](int32_t other) { return other == id; }) == (it != live.end() ? id : -1));
            }
            CHECK(t.size() == live.size());
        }
    }
}
