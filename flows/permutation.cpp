#include "flows/permutation.hpp"

#include <numeric>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "autograd/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

std::vector<std::size_t> checked(std::vector<std::size_t> p) {
    if (p.empty()) throw std::invalid_argument("Permutation: needs at least one coordinate (D ≥ 1), got an empty list");
    std::vector<bool> seen(p.size(), false);
    for (std::size_t j = 0; j < p.size(); ++j) {
        if (p[j] >= p.size())
            throw std::invalid_argument(fmt::format(
                "Permutation: entry {} is {}, outside 0..{}: not a permutation of {} coordinates", j, p[j], p.size() - 1,
                p.size()));
        if (seen[p[j]])
            throw std::invalid_argument(
                fmt::format("Permutation: entry {} repeats the index {}: not a permutation", j, p[j]));
        seen[p[j]] = true;
    }
    return p;
}

std::vector<std::size_t> inverse_of(const std::vector<std::size_t>& p) {
    std::vector<std::size_t> inv(p.size());
    for (std::size_t j = 0; j < p.size(); ++j) inv[p[j]] = j;
    return inv;
}

void require_dim(std::size_t dim, const char* who) {
    if (dim == 0) throw std::invalid_argument(fmt::format("{}: the dimension D must be at least 1", who));
}

}  // namespace

Permutation::Permutation(std::vector<std::size_t> permutation)
    : permutation_(checked(std::move(permutation))), inverse_(inverse_of(permutation_)) {}

std::unique_ptr<Permutation> Permutation::random(std::size_t dim, Rng& rng) {
    require_dim(dim, "Permutation::random");
    return std::make_unique<Permutation>(random_permutation(dim, rng));
}

std::unique_ptr<Permutation> Permutation::reverse(std::size_t dim) {
    require_dim(dim, "Permutation::reverse");
    std::vector<std::size_t> p(dim);
    std::iota(p.rbegin(), p.rend(), std::size_t{0});
    return std::make_unique<Permutation>(std::move(p));
}

Transformed Permutation::forward(const Var& z) {
    require_batch(z, dim(), "Permutation::forward");
    return {index_select(z, 1, permutation_), Var(Tensor::zeros(Shape{z.shape()[0]}))};
}

Transformed Permutation::inverse(const Var& x) {
    require_batch(x, dim(), "Permutation::inverse");
    return {index_select(x, 1, inverse_), Var(Tensor::zeros(Shape{x.shape()[0]}))};
}

std::string Permutation::name() const {
    if (permutation_.size() <= 16) return fmt::format("Permutation([{}])", fmt::join(permutation_, ", "));
    return fmt::format("Permutation(D = {})", permutation_.size());
}

}  // namespace tapeflow::flows
