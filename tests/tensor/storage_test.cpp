// Storage: the version counter every write bumps and no read does (shared by all views of a storage),
// the read-only flag, and a recycled block starting afresh.
#include "tensor/storage.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

#include <fmt/format.h>

#include "tensor/tensor.hpp"

using namespace tapeflow;

TEST_CASE("every write bumps the storage's version; const reads do not") {
    Tensor t = Tensor::zeros(Shape{2, 2});
    const Tensor& read = t;
    const std::uint64_t start = t.version();
    (void)read[0];
    (void)read.data();
    (void)read.at({1, 1});
    (void)read.span();
    CHECK(t.version() == start);
    t[0] = 1.0;
    CHECK(t.version() == start + 1);
    t.at({0, 1}) = 2.0;
    CHECK(t.version() == start + 2);
    t.data()[2] = 3.0;
    CHECK(t.version() == start + 3);
    t.span()[3] = 4.0;
    CHECK(t.version() == start + 4);
    t.fill(0.5);
    CHECK(t.version() > start + 4);
    const std::uint64_t before_compound = t.version();
    t += Tensor::ones(Shape{2, 2});
    CHECK(t.version() > before_compound);
    const std::uint64_t before_scale = t.version();
    t *= 2.0;
    CHECK(t.version() > before_scale);
    CHECK(Tensor().version() == 0);
}

TEST_CASE("reading an element through a non-const handle is a read; assigning to it is a write") {
    Tensor t{{1.0, 2.0}, {3.0, 4.0}};
    const std::uint64_t start = t.version();
    const double first = t[0];
    const double corner = t.at({1, 1});
    CHECK(first + corner == 5.0);
    CHECK(t[1] * 2.0 == 4.0);
    CHECK(fmt::format("{}", t[2]) == "3");
    CHECK(t.version() == start);
    t[1] += 0.5;  // a compound assignment reads and then writes: one write
    CHECK(t.version() == start + 1);
    t.at({1, 0}) = t[0];  // element to element: the write is counted on the target
    CHECK(t.version() == start + 2);
    t[3] *= 2.0;
    t[3] -= 1.0;
    t[3] /= 7.0;
    CHECK(t.version() == start + 5);
    CHECK(equal(t, Tensor{{1.0, 2.5}, {1.0, 1.0}}));
}

TEST_CASE("a view shares its storage's version; a clone has its own") {
    Tensor t = Tensor::zeros(Shape{4});
    Tensor view = t.reshape(Shape{2, 2});
    const Tensor copy = t.clone();
    const std::uint64_t copy_version = copy.version();
    view.at({1, 0}) = 1.0;
    CHECK(t.version() == view.version());
    CHECK(copy.version() == copy_version);
    CHECK(t[2] == 1.0);
}

TEST_CASE("a read-only storage refuses writes through every handle and every accessor") {
    Tensor t{1.0, 2.0};
    Tensor other_handle = t;
    t.set_read_only(true);
    CHECK(other_handle.read_only());
    const std::uint64_t version = t.version();
    CHECK_THROWS_AS(other_handle[0] = 5.0, std::logic_error);
    CHECK_THROWS_AS(other_handle.data(), std::logic_error);
    CHECK_THROWS_AS(other_handle.at({1}) = 5.0, std::logic_error);
    CHECK_THROWS_AS(other_handle[1] += 1.0, std::logic_error);
    CHECK(other_handle[1] == 2.0);  // reading through a non-const handle is fine
    CHECK(other_handle.at({0}) == 1.0);
    CHECK_THROWS_AS(other_handle.fill(0.0), std::logic_error);
    CHECK_THROWS_AS(other_handle *= 2.0, std::logic_error);
    CHECK_THROWS_AS(other_handle += t, std::logic_error);
    CHECK(t.version() == version);
    CHECK(equal(t, Tensor{1.0, 2.0}));
    const Tensor& read = other_handle;
    CHECK(read[1] == 2.0);  // reading is fine
    Tensor copy = t.clone();
    CHECK_FALSE(copy.read_only());
    copy[0] = 5.0;
    t.set_read_only(false);
    t[0] = 3.0;
    CHECK(other_handle[0] == 3.0);
}

TEST_CASE("a recycled block starts at version 0 and writable") {
    double* address = nullptr;
    {
        Tensor t = Tensor::zeros(Shape{7});
        t.set_read_only(true);
        address = const_cast<double*>(static_cast<const Tensor&>(t).data());
    }
    const Tensor again(Shape{7});  // same size class: this thread's cache hands the block out again
    CHECK(again.data() == address);
    CHECK(again.version() == 0);
    CHECK_FALSE(again.read_only());
}
