// One helper thread for splitting a per-task scan in two (large host sets only). Between calls it
// sleeps; during a call that uses it, it waits for work by spinning, because a task's scan lasts
// microseconds and a sleep/wake round trip would cost more than the work it shares.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace titus {

class ScanPool {
public:
    ScanPool() = default;
    ScanPool(const ScanPool&) = delete;
    ScanPool& operator=(const ScanPool&) = delete;
    ~ScanPool() {
        if (!worker_.joinable()) return;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
            active_.store(false);  // out of the spin loop, then the wait sees stop_
        }
        wake_.notify_one();
        worker_.join();
    }

    /// Whether a second thread is worth having on this machine.
    static bool available() { return std::thread::hardware_concurrency() >= 2; }

    /// The helper stays awake (spinning between jobs) until end().
    void begin() {
        if (!worker_.joinable()) worker_ = std::thread([this] { loop(); });
        {
            std::lock_guard<std::mutex> lock(mutex_);
            active_.store(true);
        }
        wake_.notify_one();
    }
    void end() { active_.store(false); }

    /// Run fn(ctx, 0) here and fn(ctx, 1) on the helper; returns when both are done.
    template <typename F>
    void run_two(F& f) {
        fn_ = [](void* c, int part) { (*static_cast<F*>(c))(part); };
        ctx_ = &f;
        const uint64_t ticket = posted_.load(std::memory_order_relaxed) + 1;
        posted_.store(ticket, std::memory_order_release);
        f(0);
        while (finished_.load(std::memory_order_acquire) != ticket) spin();
    }

private:
    std::thread worker_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::atomic<bool> active_{false};
    std::atomic<uint64_t> posted_{0}, finished_{0};
    void (*fn_)(void*, int) = nullptr;
    void* ctx_ = nullptr;

    static void spin() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }

    void loop() {
        uint64_t seen = 0;
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [this] { return active_.load() || stop_; });
                if (stop_) return;
            }
            while (active_.load(std::memory_order_acquire)) {
                const uint64_t ticket = posted_.load(std::memory_order_acquire);
                if (ticket == seen) {
                    spin();
                    continue;
                }
                fn_(ctx_, 1);
                seen = ticket;
                finished_.store(ticket, std::memory_order_release);
            }
        }
    }
};

}  // namespace titus
