#include "tensor/random.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "tensor/format.hpp"

namespace tapeflow {

namespace {
std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(std::uint64_t seed) {
    // splitmix64 spreads any seed (0 included) over the 256-bit state, which must not be all zero.
    for (auto& word : s_) word = splitmix64(seed);
}

std::uint64_t Rng::next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::normal() {
    if (has_spare_) {
        has_spare_ = false;
        return spare_normal_;
    }
    // Box–Muller: 1 − u lies in (0, 1], so the logarithm is finite.
    const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));
    const double angle = 2.0 * std::numbers::pi * uniform();
    spare_normal_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
}

std::uint64_t Rng::below(std::uint64_t n) {
    if (n == 0) throw std::invalid_argument("Rng::below: the range [0, n) needs n > 0");
    // Rejection keeps every value equally likely: drop the top partial copy of [0, n).
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t x;
    do x = next_u64();
    while (x >= limit);
    return x % n;
}

Rng Rng::split() { return Rng(next_u64()); }

Tensor randn(const Shape& shape, Rng& rng, double mean, double std) {
    // A negative std is let through: it draws from the same distribution (the layers that take an
    // init_std check its sign themselves, with their own name in the message).
    if (!std::isfinite(mean) || !std::isfinite(std))
        throw std::invalid_argument(fmt::format("randn: the mean and std must be finite, got mean {} and std {}", mean, std));
    Tensor t(shape);
    for (double& v : t.span()) v = mean + std * rng.normal();
    return t;
}

Tensor rand(const Shape& shape, Rng& rng, double lo, double hi) {
    if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
        throw std::invalid_argument(fmt::format("rand: needs finite bounds lo ≤ hi, got [{}, {})", lo, hi));
    Tensor t(shape);
    for (double& v : t.span()) v = rng.uniform(lo, hi);
    return t;
}

std::vector<std::size_t> random_permutation(std::size_t n, Rng& rng) {
    std::vector<std::size_t> p(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = i;
    for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[rng.below(i)]);
    return p;
}

}  // namespace tapeflow
