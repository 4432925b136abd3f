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

// What every storage block carries in front of its elements (same allocation, so it costs no extra
// malloc). `version` counts write accesses, as PyTorch's `tensor._version`: the tape saves it when it
// records a tensor and compares at backward, so a tensor modified in place in between is detected
// instead of silently changing the gradient. `read_only` is set by the tape on a gradient buffer while
// a backward rule runs (the buffer may be another node's gradient too); writes through Tensor's
// checked accessors then throw. Both are reset whenever a block is handed out again.
struct StorageHeader {
    std::uint64_t version = 0;
    std::uint32_t read_only = 0;
    std::uint32_t unused = 0;  // keeps the elements at the block's original 16-byte alignment
};
static_assert(sizeof(StorageHeader) == 2 * sizeof(double));

// The header of the storage whose first element is at `elements` (as returned by allocate_storage).
// (Integer arithmetic on the address: GCC's -Warray-bounds otherwise takes the step back from the
// elements for an out-of-bounds access of the element array.)
inline StorageHeader& storage_header(double* elements) {
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(elements) - sizeof(StorageHeader);
    return *std::launder(reinterpret_cast<StorageHeader*>(at));
}

// Storage for n doubles (uninitialized) behind a fresh StorageHeader, shared-ownership like any tensor buffer. Throws
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
