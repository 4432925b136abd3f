// Threads in the tensor kernels: how many they may use, and the one pool of worker threads they share.
//
// One thread by default, so results and timings are those of a single core unless the user opts in
// (the bench measures both). Kernels split their work into parts that never depend on the thread count
// for their arithmetic (gemm splits C, never the sum over K), so results are the same with any count.
#pragma once

#include <cstddef>

namespace tapeflow {

int num_threads();
// Clamped to [1, hardware threads]; returns the value now in force.
int set_num_threads(int n);
// std::thread::hardware_concurrency(), at least 1, asked once (glibc reads /sys for it on every call).
int hardware_threads();

namespace detail {
bool try_run_parts(std::size_t parts, void (*run_part)(void* task, std::size_t part), void* task);
}

// Runs task(0), …, task(parts − 1), each exactly once, on the calling thread and the pool's workers
// (started on first use and kept; at most min(parts, hardware_threads()) − 1 of them), and returns true. Exceptions thrown by
// any part are rethrown here, the first one winning. Returns false, having run nothing, when the pool is
// already running another call (from another thread) or parts > 65535: the caller then runs the work
// itself, serially, instead of waiting.
template <class Task>
bool try_parallel_for(std::size_t parts, Task& task) {
    return detail::try_run_parts(
        parts, [](void* context, std::size_t part) { (*static_cast<Task*>(context))(part); }, &task);
}

// Runs body(begin, end) over `parts` contiguous ranges of [0, count), each on its own thread of the
// pool when num_threads() > 1 (all on this one when the pool is busy). Which items make a range
// depends only on `count` and `parts`, so callers that choose `parts` without looking at the thread
// count get the same bits with any number of threads.
template <class Body>
void in_parts(std::size_t count, std::size_t parts, Body body) {
    auto task = [&](std::size_t part) { body(count * part / parts, count * (part + 1) / parts); };
    if (parts > 1 && num_threads() > 1 && try_parallel_for(parts, task)) return;
    for (std::size_t part = 0; part < parts; ++part) task(part);
}

}  // namespace tapeflow
