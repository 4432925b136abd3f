#include "tensor/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

namespace tapeflow {

namespace {
std::atomic<int> threads{1};
}

int num_threads() { return threads.load(std::memory_order_relaxed); }

int set_num_threads(int n) {
    const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    threads.store(std::clamp(n, 1, hardware), std::memory_order_relaxed);
    return num_threads();
}

}  // namespace tapeflow
