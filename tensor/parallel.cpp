#include "tensor/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace tapeflow {

namespace {

std::atomic<int> threads{1};

// One iteration of a spin-wait. Deliberately *not* the x86 `pause` instruction: under a hypervisor with
// pause-loop exiting (as here), a loop of `pause` can make the vCPU trap to the host; with it a parallel
// 64³ product measured 440 µs instead of 10 µs (one run, possibly also disturbed by other load). Without
// SMT siblings to yield to, `pause` buys nothing. A compiler barrier keeps the loop re-reading the atomics.
inline void spin_once() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// A tiny persistent pool. Workers are started on first use and stay alive, so a parallel kernel does not
// pay for a thread start. Waking a *sleeping* thread is itself slow here — a condition-variable wake-up
// measured ~45 µs on this (virtualised) machine, as long as a whole 128³ product — so after each task a
// worker spins for a while (`spin_time`) watching for the next one before it goes to sleep: a training
// loop issues its gemms microseconds apart and finds the worker awake.
//
// Parts are claimed, not assigned: the caller and the workers all take the next unclaimed part from one
// atomic counter. If the machine is oversubscribed and the worker has not been scheduled by the time the
// caller finishes its own part, the caller simply runs the worker's part too, instead of waiting a whole
// scheduler time slice. (Measured with other jobs saturating both cores: 512×64×64 with two threads ran
// at 4.4 GFLOP/s when each thread owned a fixed half, 12.5 GFLOP/s with claiming.) The caller only ever
// waits for parts that a worker has actually started.
//
// One parallel call at a time: a caller that finds the pool busy (kernels called from several threads at
// once) gets `false` and runs serially instead of waiting.
class worker_pool {
public:
    static worker_pool& instance() {
        static worker_pool pool;
        return pool;
    }

    // try_parallel_for's contract (tensor/parallel.hpp).
    bool try_run(std::size_t parts, void (*run_part)(void*, std::size_t), void* task) {
        if (parts > max_parts) return false;
        bool idle = false;
        if (!busy_.compare_exchange_strong(idle, true, std::memory_order_acquire)) return false;
        struct release {
            std::atomic<bool>& busy;
            ~release() { busy.store(false, std::memory_order_release); }
        } release_when_done{busy_};
        // More threads than cores would only take turns; the claims spread any number of parts over them.
        const std::size_t threads = std::min(parts, static_cast<std::size_t>(hardware_threads()));
        while (workers_.size() + 1 < threads)
            workers_.emplace_back([this, seen = generation_.load()] { worker_loop(seen); });

        // Publish the task, then open the claims and bump the generation (release: whoever claims a part
        // sees the task). The task fields cannot change while anyone holds an unfinished claim, because
        // the next call only starts after every part has finished.
        const std::uint64_t generation = generation_.load(std::memory_order_relaxed) + 1;
        run_part_ = run_part;
        context_ = task;
        error_ = nullptr;
        finished_.store(0, std::memory_order_relaxed);
        claims_.store(claim_word(generation, parts, 0), std::memory_order_release);
        {
            std::lock_guard<std::mutex> lock(sleep_mutex_);  // a worker about to sleep cannot miss this
            generation_.store(generation, std::memory_order_release);
        }
        wake_.notify_all();

        run_claimed_parts(generation);
        for (unsigned spins = 0; finished_.load(std::memory_order_acquire) != parts; ++spins)
            if (spins < 100'000) spin_once(); else std::this_thread::yield();  // a worker was descheduled
        if (error_) std::rethrow_exception(error_);
        return true;
    }

    ~worker_pool() {
        {
            std::lock_guard<std::mutex> lock(sleep_mutex_);
            stopping_.store(true);
        }
        wake_.notify_all();
        for (std::thread& worker : workers_) worker.join();
    }

private:
    static constexpr std::chrono::microseconds spin_time{200};
    static constexpr std::size_t max_parts = 0xffff;

    // The claim counter packs the generation it belongs to, the number of parts and the next unclaimed
    // part into one word, so a claim is one compare-and-swap and a worker that wakes up late cannot claim
    // a part of a newer call by mistake.
    static std::uint64_t claim_word(std::uint64_t generation, std::size_t parts, std::size_t next) {
        return (generation << 32) | (std::uint64_t{parts} << 16) | next;
    }

    worker_pool() = default;

    // Claims and runs parts of call `generation` until none are left (or that call is over).
    void run_claimed_parts(std::uint64_t generation) {
        std::uint64_t word = claims_.load(std::memory_order_acquire);
        for (;;) {
            const std::size_t parts = (word >> 16) & max_parts;
            const std::size_t next = word & max_parts;
            if ((word >> 32) != (generation & 0xffffffff) || next >= parts) return;
            if (!claims_.compare_exchange_weak(word, word + 1, std::memory_order_acquire)) continue;
            try {
                run_part_(context_, next);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex_);
                if (!error_) error_ = std::current_exception();
            }
            finished_.fetch_add(1, std::memory_order_release);
            word = claims_.load(std::memory_order_acquire);
        }
    }

    // Returns once the generation differs from `seen` or the pool is stopping: spinning first, then asleep.
    void wait_for_work(std::uint64_t seen) {
        auto ready = [&] {
            return generation_.load(std::memory_order_acquire) != seen ||
                   stopping_.load(std::memory_order_acquire);
        };
        const auto deadline = std::chrono::steady_clock::now() + spin_time;
        for (unsigned spins = 1; !ready(); ++spins) {
            spin_once();
            if (spins % 256 == 0 && std::chrono::steady_clock::now() > deadline) {
                std::unique_lock<std::mutex> lock(sleep_mutex_);
                wake_.wait(lock, ready);
                return;
            }
        }
    }

    void worker_loop(std::uint64_t seen) {
        for (;;) {
            wait_for_work(seen);
            if (stopping_.load(std::memory_order_acquire)) return;
            seen = generation_.load(std::memory_order_acquire);
            run_claimed_parts(seen);
        }
    }

    // Set by the caller for the whole of a parallel call. A flag rather than a mutex: a part that itself
    // asks for a parallel call runs on a thread that may be the caller, and must get `false`, not lock
    // a mutex it already holds.
    std::atomic<bool> busy_{false};
    std::vector<std::thread> workers_;

    // The current task, written by the caller before it opens the claims.
    void (*run_part_)(void*, std::size_t) = nullptr;
    void* context_ = nullptr;

    std::atomic<std::uint64_t> generation_{0};  // bumped once per call; workers wait for it to change
    std::atomic<std::uint64_t> claims_{0};      // see claim_word
    std::atomic<std::size_t> finished_{0};      // parts of the current call that have completed
    std::atomic<bool> stopping_{false};
    std::mutex sleep_mutex_;
    std::condition_variable wake_;
    std::mutex error_mutex_;
    std::exception_ptr error_;  // first exception thrown by a part
};

}  // namespace

int num_threads() { return threads.load(std::memory_order_relaxed); }

int set_num_threads(int n) {
    threads.store(std::clamp(n, 1, hardware_threads()), std::memory_order_relaxed);
    return num_threads();
}

int hardware_threads() {
    static const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    return hardware;
}

bool detail::try_run_parts(std::size_t parts, void (*run_part)(void*, std::size_t), void* task) {
    return worker_pool::instance().try_run(parts, run_part, task);
}

}  // namespace tapeflow
