#include "tensor/storage.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <iterator>
#include <new>
#include <vector>

#include <fmt/format.h>

namespace tapeflow {

namespace {

// Size classes: four per power of two (…, 64, 80, 96, 112, 128, 160, …), so rounding a request up
// wastes at most a quarter of it. Requests above the largest class bypass the cache: such blocks
// are rare (whole data sets) and large enough that malloc serves them from mmap anyway.
constexpr std::size_t min_class_bytes = 64;
constexpr int max_class = 80;  // class 80 holds 64 MiB

int size_class(std::size_t bytes) {
    if (bytes <= min_class_bytes) return 0;
    const int octave = std::bit_width(bytes - 1) - 1;  // 2^octave < bytes ≤ 2^(octave+1)
    const std::size_t quarter = std::size_t{1} << (octave - 2);
    const std::size_t step = (bytes - 1 - (std::size_t{1} << octave)) / quarter;  // 0..3
    return (octave - 5) * 4 + static_cast<int>(step) - 3;
}

std::size_t class_bytes(int c) {
    if (c == 0) return min_class_bytes;
    const int octave = (c + 3) / 4 + 5;
    const int step = (c + 3) % 4;
    return (std::size_t{1} << octave) + (static_cast<std::size_t>(step) + 1) * (std::size_t{1} << (octave - 2));
}

// Set when this thread's cache is destroyed at thread exit. Tensors that outlive it (held by other
// thread-locals or statics destroyed later) then go straight back to the system allocator.
thread_local bool cache_destroyed = false;

class BlockCache {
public:
    ~BlockCache() {
        release();
        cache_destroyed = true;
    }

    void* take(std::size_t bytes) {
        const int c = size_class(bytes);
        if (c > max_class) {
            ++stats_.fresh_allocations;
            return ::operator new(bytes);
        }
        auto& list = free_[static_cast<std::size_t>(c)];
        if (!list.empty()) {
            void* p = list.back();
            list.pop_back();
            stats_.cached_bytes -= class_bytes(c);
            ++stats_.reused;
            return p;
        }
        ++stats_.fresh_allocations;
        return ::operator new(class_bytes(c));
    }

    void give_back(void* p, std::size_t bytes) {
        const int c = size_class(bytes);
        if (c > max_class) {
            ::operator delete(p);
            return;
        }
        free_[static_cast<std::size_t>(c)].push_back(p);
        stats_.cached_bytes += class_bytes(c);
    }

    void release() {
        for (auto& list : free_) {
            for (void* p : list) ::operator delete(p);
            list.clear();
            list.shrink_to_fit();
        }
        stats_.cached_bytes = 0;
    }

    const StorageStats& stats() const { return stats_; }

private:
    std::array<std::vector<void*>, max_class + 1> free_;
    StorageStats stats_;
};

BlockCache* cache() {
    if (cache_destroyed) return nullptr;
    thread_local BlockCache c;
    return &c;
}

// The allocator shared_ptr uses for the buffer and its control block (one allocation).
template <class T>
struct CachingAllocator {
    using value_type = T;
    CachingAllocator() = default;
    template <class U>
    CachingAllocator(const CachingAllocator<U>&) {}
    T* allocate(std::size_t n) {
        BlockCache* c = cache();
        return static_cast<T*>(c ? c->take(n * sizeof(T)) : ::operator new(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) {
        if (BlockCache* c = cache()) c->give_back(p, n * sizeof(T));
        else ::operator delete(p);
    }
    template <class U>
    bool operator==(const CachingAllocator<U>&) const { return true; }
};

}  // namespace

std::shared_ptr<double[]> allocate_storage(std::size_t n, const Shape* shape) {
    // "8.80 TB": the size a reader can compare with the machine's memory.
    const auto describe = [&](const char* reason) {
        const double bytes = static_cast<double>(n) * sizeof(double);
        const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
        double scaled = bytes;
        std::size_t u = 0;
        while (scaled >= 1000 && u + 1 < std::size(units)) {
            scaled /= 1000;
            ++u;
        }
        return fmt::format("{}: cannot allocate {} doubles ({:.3g} {}): {}",
                           shape ? fmt::format("Tensor {}", *shape) : std::string("allocate_storage"), n, scaled,
                           units[u], reason);
    };
    // allocate_shared adds a control block; keep well inside what a pointer difference can express.
    if (n > static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(double) / 2)
        throw AllocationError(describe("more bytes than this machine can address"));
    constexpr std::size_t header_slots = sizeof(StorageHeader) / sizeof(double);
    std::shared_ptr<double[]> block;
    try {
        block = std::allocate_shared_for_overwrite<double[]>(CachingAllocator<double>{}, n + header_slots);
    } catch (const std::bad_alloc&) {
        throw AllocationError(describe("out of memory"));
    }
    ::new (static_cast<void*>(block.get())) StorageHeader{};
    // The handle points at the elements and owns the whole block (shared_ptr's aliasing constructor).
    double* elements = block.get() + header_slots;
    return std::shared_ptr<double[]>(std::move(block), elements);
}

StorageStats storage_stats() {
    const BlockCache* c = cache();
    return c ? c->stats() : StorageStats{};
}

}  // namespace tapeflow
