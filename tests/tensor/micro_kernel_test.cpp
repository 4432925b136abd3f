// The choice of gemm micro-kernel: TAPEFLOW_KERNEL, set_kernel and the errors for names that are unknown
// or that this CPU cannot run. That every kernel computes the right products is gemm_test.cpp's job.
#include "tensor/micro_kernel.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kernels = tapeflow::kernels;

namespace {

// The message of the std::invalid_argument that `call` throws ("" if it throws nothing).
template <class Call>
std::string invalid_argument_message(Call call) {
    try {
        call();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// 'value', as the messages quote it. (Appended piecewise: GCC 12's -Wrestrict misfires on "'" + s + "'".)
std::string quoted(std::string_view value) {
    std::string text = "'";
    text.append(value);
    text.append("'");
    return text;
}

}  // namespace

TEST_CASE("supported_kernels lists what this CPU runs, fastest first, ending with the portable kernel") {
    const std::vector<std::string_view> names = kernels::supported_kernels();
    REQUIRE(!names.empty());
    CHECK(names.back() == "portable");
    const std::vector<std::string_view> order{"avx512", "avx2", "portable"};
    std::vector<std::size_t> ranks;
    for (std::string_view name : names) {
        const auto rank = std::find(order.begin(), order.end(), name);
        REQUIRE(rank != order.end());
        ranks.push_back(static_cast<std::size_t>(rank - order.begin()));
    }
    CHECK(std::is_sorted(ranks.begin(), ranks.end()));
    CHECK(std::adjacent_find(ranks.begin(), ranks.end()) == ranks.end());
}

TEST_CASE("set_kernel switches the active kernel and 'auto' returns to the start-up choice") {
    kernels::set_kernel("auto");
    const std::string startup = kernels::active_kernel().name;
    for (std::string_view name : kernels::supported_kernels()) {
        kernels::set_kernel(name);
        CHECK(kernels::active_kernel().name == name);
        // The label names the kernel and its tile, e.g. "avx512 8x24".
        const std::string label = kernels::active_kernel_name();
        CHECK(label == std::string(name) + " " + std::to_string(kernels::active_kernel().mr) + "x" +
                           std::to_string(kernels::active_kernel().nr));
    }
    kernels::set_kernel("auto");
    CHECK(kernels::active_kernel().name == startup);
    const char* requested = std::getenv("TAPEFLOW_KERNEL");
    if (requested == nullptr || *requested == '\0')  // without TAPEFLOW_KERNEL: the fastest one
        CHECK(startup == kernels::supported_kernels().front());
}

TEST_CASE("set_kernel rejects unknown kernels and kernels this CPU cannot run, naming the value") {
    const std::string before = kernels::active_kernel().name;
    const std::string unknown = invalid_argument_message([] { kernels::set_kernel("avx9"); });
    CHECK(contains(unknown, "set_kernel"));
    CHECK(contains(unknown, "'avx9'"));
    CHECK(contains(unknown, "avx512, avx2, portable"));
    CHECK(contains(invalid_argument_message([] { kernels::set_kernel(""); }), "''"));
    CHECK(contains(invalid_argument_message([] { kernels::set_kernel("AVX2"); }), "'AVX2'"));
    // Only on a CPU without AVX-512 (or AVX2): the kernels it lacks are refused with the reason.
    const std::vector<std::string_view> supported = kernels::supported_kernels();
    for (std::string_view name : {"avx512", "avx2"}) {
        if (std::find(supported.begin(), supported.end(), name) != supported.end()) continue;
        const std::string refused = invalid_argument_message([&] { kernels::set_kernel(name); });
        CHECK(contains(refused, quoted(name)));
        CHECK((contains(refused, "which this CPU lacks") || contains(refused, "not part of this build")));
    }
    CHECK(kernels::active_kernel().name == before);  // a refused request changes nothing
}

TEST_CASE("kernel_named names the setting a bad value came from") {
    const std::string message =
        invalid_argument_message([] { (void)kernels::detail::kernel_named("sse9", "TAPEFLOW_KERNEL"); });
    CHECK(contains(message, "TAPEFLOW_KERNEL"));
    CHECK(contains(message, "'sse9'"));
    CHECK(&kernels::detail::kernel_named("portable", "TAPEFLOW_KERNEL") == &kernels::detail::portable_kernel);
}

// Run by tests/tensor/meson.build with TAPEFLOW_KERNEL set (to a kernel, and to a bad name); without it
// there is nothing to check here.
TEST_CASE("TAPEFLOW_KERNEL chooses the start-up kernel, or makes gemm fail naming the bad value") {
    const char* requested = std::getenv("TAPEFLOW_KERNEL");
    if (requested == nullptr || *requested == '\0' || std::string_view(requested) == "auto") return;
    kernels::set_kernel("auto");
    const std::vector<std::string_view> supported = kernels::supported_kernels();
    if (std::find(supported.begin(), supported.end(), requested) != supported.end()) {
        CHECK(kernels::active_kernel().name == std::string_view(requested));
    } else {
        const std::string message = invalid_argument_message([] { (void)kernels::active_kernel(); });
        CHECK(contains(message, "TAPEFLOW_KERNEL"));
        CHECK(contains(message, quoted(requested)));
    }
}
