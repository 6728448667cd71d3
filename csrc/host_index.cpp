// The engine's side of the host-class index (host_groups.hpp): each host's signature, and
// the special marks that set apart the hosts a hostname constraint sees differently.
#include <cmath>
#include <string>

#include "engine.hpp"

namespace titus {

double Engine::signature(int32_t h, std::string& out) const {
    auto put = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
    const double* cap = cap_of(h);
    const double* used = used_of(h);
    put(cap, sizeof(double) * R_);
    put(used, sizeof(double) * R_);
    const int32_t flags[5] = {enabled_[h], ntasks_[h] > 0, nexcl_[h] > 0, free_ports(h),
                              set_id_[h] >= 0 ? h : -1};  // hosts with resource sets stand alone
    put(flags, sizeof(flags));
    // Only the attributes (and values) the constraints in use read; see use_attr_view.
    const size_t n_attrs = std::min(columns_.size(), attr_mode_.size());
    for (size_t a = 1; a < n_attrs; ++a) {
        if (!attr_mode_[a]) continue;
        int32_t v = columns_[a][h];
        if (attr_mode_[a] == kAttrNamed) {
            const std::vector<uint8_t>& named = attr_named_[a];
            if (v < 0 || static_cast<size_t>(v) >= named.size() || !named[v]) v = -1;  // fails alike
        }
        put(&v, sizeof(v));
    }
    const uint8_t special = static_cast<size_t>(h) < special_mark_.size() ? special_mark_[h] : 0;
    put(&special, 1);
    // Feasible needs used + d <= cap + 1e-9 (rounded); this bound leaves room for the rounding.
    const double scale = std::fabs(cap[kCpus]) + std::fabs(used[kCpus]) + 1.0;
    return (cap[kCpus] - used[kCpus]) + 1e-6 + 1e-12 * scale;
}

void Engine::mark_special(const ReadyClass& rc) {
    if (special_mark_.size() < live_.size()) special_mark_.resize(live_.size(), 0);
    auto mark = [this](int32_t h) {
        if (h >= 0 && static_cast<size_t>(h) < live_.size() && live_[h] && !special_mark_[h]) {
            special_mark_[h] = 1;
            special_.push_back(h);
            groups_.touch(h);  // special hosts form classes of their own
            marks_moved_ = true;
        }
    };
    for (const CoCount* cc : rc.host_counts)
        for (int32_t h : cc->touched)
            if (cc->c[h] > 0) mark(h);
    for (int32_t h : rc.allowed_hosts) mark(h);
}

void Engine::unmark_special() {
    for (int32_t h : special_) {
        special_mark_[h] = 0;
        if (live_[h]) groups_.touch(h);
        marks_moved_ = true;
    }
    special_.clear();
}

void Engine::refresh_bucket(int32_t b) {
    // A special mark set or cleared moves its host to another bucket: only a whole refresh
    // finds it there.
    if (!groups_.valid() || marks_moved_) return refresh_groups();
    groups_.refresh_bucket(b, [this](int32_t h, std::string& o) { return signature(h, o); },
                           [this](int32_t h) { return tiekey_[h]; });
}

void Engine::refresh_groups() {
    marks_moved_ = false;
    groups_.refresh(order_, n_hosts(), R_, [this](int32_t h, std::string& o) { return signature(h, o); },
                    [this](int32_t h) { return tiekey_[h]; });
}

void Engine::mark_if_special(const ReadyClass& rc, int32_t h) {
    if (special_mark_[h]) return;
    for (const CoCount* cc : rc.host_counts)
        if (static_cast<size_t>(h) < cc->c.size() && cc->c[h] > 0) {
            special_mark_[h] = 1;
            special_.push_back(h);
            groups_.touch(h);  // its class changes at the next refresh
            marks_moved_ = true;
            return;
        }
}

void Engine::clear_marks() {
    unmark_special();
    marks_class_ = -1;
}

}  // namespace titus
