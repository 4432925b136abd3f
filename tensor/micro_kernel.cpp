// Which micro-kernel gemm runs: the fastest one the CPU supports, unless TAPEFLOW_KERNEL or set_kernel
// says otherwise. Compiled for the baseline ISA like the rest of the library; it only reads the CPU's
// features, and hands out the per-ISA kernels once they are known to be safe to run.
#include "tensor/micro_kernel.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace tapeflow::kernels {
namespace {

struct candidate {
    const char* name;
    const MicroKernel* kernel;  // null when its file is not part of this build (not x86-64)
    const char* needs;          // the CPU features it needs, for error messages
    bool (*cpu_has)();
};

// Fastest first. __builtin_cpu_supports also checks that the operating system saves the wider registers
// (XGETBV), so a kernel it accepts really can run.
const candidate candidates[] = {
#if defined(TAPEFLOW_HAVE_AVX512_KERNEL)
    {"avx512", &detail::avx512_kernel, "AVX-512F", [] { return __builtin_cpu_supports("avx512f") != 0; }},
#else
    {"avx512", nullptr, "AVX-512F", [] { return false; }},
#endif
#if defined(TAPEFLOW_HAVE_AVX2_KERNEL)
    {"avx2", &detail::avx2_kernel, "AVX2 and FMA",
     [] { return __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0; }},
#else
    {"avx2", nullptr, "AVX2 and FMA", [] { return false; }},
#endif
    {"portable", &detail::portable_kernel, "nothing beyond the library's baseline", [] { return true; }},
};

std::string supported_list() {
    std::string list;
    for (std::string_view name : supported_kernels()) list += (list.empty() ? "" : ", ") + std::string(name);
    return list;
}

// What the first gemm chose: TAPEFLOW_KERNEL, or the fastest supported kernel. A bad TAPEFLOW_KERNEL
// throws here, and again on every later call (the static is only set once a choice succeeds).
const MicroKernel& startup_kernel() {
    static const MicroKernel& chosen = [] () -> const MicroKernel& {
        const char* requested = std::getenv("TAPEFLOW_KERNEL");
        if (requested != nullptr && *requested != '\0' && std::string_view(requested) != "auto")
            return detail::kernel_named(requested, "TAPEFLOW_KERNEL");
        for (const candidate& c : candidates)
            if (c.kernel != nullptr && c.cpu_has()) return *c.kernel;
        return detail::portable_kernel;
    }();
    return chosen;
}

std::atomic<const MicroKernel*> forced{nullptr};  // set_kernel's choice; null = startup_kernel()

}  // namespace

const MicroKernel& detail::kernel_named(std::string_view name, std::string_view source) {
    for (const candidate& c : candidates) {
        if (name != c.name) continue;
        if (c.kernel == nullptr)
            throw std::invalid_argument(std::string(source) + ": gemm kernel '" + std::string(name) +
                                        "' is not part of this build (it is built on x86-64 only); "
                                        "available: " + supported_list());
        if (!c.cpu_has())
            throw std::invalid_argument(std::string(source) + ": gemm kernel '" + std::string(name) +
                                        "' needs " + c.needs + ", which this CPU lacks; available: " +
                                        supported_list());
        return *c.kernel;
    }
    throw std::invalid_argument(std::string(source) + ": unknown gemm kernel '" + std::string(name) +
                                "' (expected avx512, avx2, portable or auto)");
}

const MicroKernel& active_kernel() {
    const MicroKernel* kernel = forced.load(std::memory_order_acquire);
    return kernel != nullptr ? *kernel : startup_kernel();
}

const char* active_kernel_name() { return active_kernel().label; }

void set_kernel(std::string_view name) {
    forced.store(name == "auto" ? nullptr : &detail::kernel_named(name, "set_kernel"), std::memory_order_release);
}

std::vector<std::string_view> supported_kernels() {
    std::vector<std::string_view> names;
    for (const candidate& c : candidates)
        if (c.kernel != nullptr && c.cpu_has()) names.push_back(c.name);
    return names;
}

}  // namespace tapeflow::kernels
