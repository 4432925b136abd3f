// Configure-time check (meson.build): compiled and run with exactly the flags a part of the build will
// use, it exits 0 if the compiler got these constants right, 1 if it miscompiled one (and says which),
// 77 if this machine cannot run code built with those flags (then nothing was checked).
//
// The wrong code it looks for: GCC 12.2 stores a 32- or 64-byte constant whose halves differ — the
// std::vector<double>{1, 1, 0, 0} of tests/tensor/elementwise_test.cpp, but also {1, 1, 1, 1, 0, 0, 0, 0}
// as int32 or float, or a local array copied out — as a broadcast of its first element whenever it
// copies it with 256- or 512-bit stores: under -mavx512f (any -mtune), or AVX2 with an AVX-512 Intel
// tuning (-mtune=skylake-avx512 … sapphirerapids, so also -march=native on those CPUs). The expected
// values are built at run time from volatile inputs, so the comparison cannot be miscompiled the same way.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

volatile int one = 1;
volatile int zero = 0;
int failures = 0;

template <class T>
__attribute__((noinline)) std::vector<T> half_ones(std::size_t count) {
    switch (count) {
        case 2: return {1, 0};
        case 4: return {1, 1, 0, 0};
        case 8: return {1, 1, 1, 1, 0, 0, 0, 0};
        default: return {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    }
}

template <class T, std::size_t count>
__attribute__((noinline)) void copy_half_ones(T* out) {
    T local[count];
    for (std::size_t i = 0; i < count; ++i) local[i] = i < count / 2 ? T(1) : T(0);
    __builtin_memcpy(out, local, sizeof local);
}

template <class T>
void expect_half_ones(const char* type, const char* form, const T* got, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
        const T want = i < count / 2 ? T(one) : T(zero);
        if (!(got[i] == want)) {
            std::printf("wrong code: %s of %zu %s, element %zu\n", form, count, type, i);
            ++failures;
            return;
        }
    }
}

template <class T>
void check(const char* type) {
    for (std::size_t count : {2, 4, 8, 16}) {
        const std::vector<T> v = half_ones<T>(count);
        if (v.size() != count) {
            std::printf("wrong code: std::vector constant of %zu %s has %zu elements\n", count, type, v.size());
            ++failures;
            continue;
        }
        expect_half_ones(type, "std::vector constant", v.data(), count);
    }
    T four[4], eight[8], sixteen[16];
    copy_half_ones<T, 4>(four);
    copy_half_ones<T, 8>(eight);
    copy_half_ones<T, 16>(sixteen);
    expect_half_ones(type, "copied array", four, 4);
    expect_half_ones(type, "copied array", eight, 8);
    expect_half_ones(type, "copied array", sixteen, 16);
}

// Whether this CPU can run what the flags enabled; checked before any of it runs.
bool cpu_runs_these_flags() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
#if defined(__AVX512F__)
    if (!__builtin_cpu_supports("avx512f")) return false;
#endif
#if defined(__AVX2__)
    if (!__builtin_cpu_supports("avx2")) return false;
#endif
#if defined(__FMA__)
    if (!__builtin_cpu_supports("fma")) return false;
#endif
#if defined(__SSE4_2__)
    if (!__builtin_cpu_supports("sse4.2")) return false;
#endif
#endif
    return true;
}

}  // namespace

int main() {
    if (!cpu_runs_these_flags()) {
        std::printf("this CPU cannot run code built with these flags\n");
        return 77;
    }
    check<double>("double");
    check<float>("float");
    check<std::int64_t>("int64");
    check<std::int32_t>("int32");
    check<std::int16_t>("int16");
    check<std::int8_t>("int8");
    return failures == 0 ? 0 : 1;
}
