// Where tensor memory comes from: a per-thread cache of freed blocks, keyed by size class.
//
// A training step allocates the same shapes every time. Handing freed blocks back out instead of
// returning them to malloc makes every step after the first allocation-free (no malloc, no page
// faults from the heap shrinking and growing again), which is what keeps the tape cheap per op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tapeflow {

// Storage for n doubles (uninitialized), shared-ownership like any tensor buffer.
std::shared_ptr<double[]> allocate_storage(std::size_t n);

struct StorageStats {
    std::uint64_t fresh_allocations = 0;  // blocks obtained from the system allocator
    std::uint64_t reused = 0;             // blocks handed out again from the cache
    std::size_t cached_bytes = 0;         // bytes held in this thread's cache right now
};

// Counters for this thread (the bench shows that a training step's fresh allocations stop growing).
StorageStats storage_stats();

}  // namespace tapeflow
