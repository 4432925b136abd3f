// Where tensor memory comes from: a per-thread cache of freed blocks, keyed by size class.
//
// A training step allocates the same shapes every time. Handing freed blocks back out instead of
// returning them to malloc makes every step after the first allocation-free (no malloc, no page
// faults from the heap shrinking and growing again), which is what keeps the tape cheap per op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "tensor/shape.hpp"

namespace tapeflow {

// A failed tensor allocation, saying what was being allocated: a std::bad_alloc (so existing handlers
// still catch it) whose what() names the shape, the element count and the bytes.
class AllocationError : public std::bad_alloc {
public:
    explicit AllocationError(std::string message) : message_(std::move(message)) {}
    const char* what() const noexcept override { return message_.c_str(); }

private:
    std::string message_;
};

// Storage for n doubles (uninitialized), shared-ownership like any tensor buffer. Throws
// AllocationError when the bytes overflow the address space or the system allocator refuses them,
// naming `shape` (the tensor being made, when given), n and the bytes.
std::shared_ptr<double[]> allocate_storage(std::size_t n, const Shape* shape = nullptr);

struct StorageStats {
    std::uint64_t fresh_allocations = 0;  // blocks obtained from the system allocator
    std::uint64_t reused = 0;             // blocks handed out again from the cache
    std::size_t cached_bytes = 0;         // bytes held in this thread's cache right now
};

// Counters for this thread (the bench shows that a training step's fresh allocations stop growing).
StorageStats storage_stats();

}  // namespace tapeflow
