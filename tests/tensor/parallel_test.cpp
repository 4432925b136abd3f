#include "tensor/parallel.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <vector>

TEST_CASE("set_num_threads clamps to [1, hardware threads] and returns the value in force") {
    const int before = tapeflow::num_threads();
    const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    CHECK(tapeflow::set_num_threads(1) == 1);
    CHECK(tapeflow::num_threads() == 1);
    CHECK(tapeflow::set_num_threads(0) == 1);
    CHECK(tapeflow::set_num_threads(-5) == 1);
    CHECK(tapeflow::set_num_threads(INT_MIN) == 1);
    CHECK(tapeflow::set_num_threads(hardware) == hardware);
    CHECK(tapeflow::num_threads() == hardware);
    CHECK(tapeflow::set_num_threads(hardware + 1) == hardware);
    CHECK(tapeflow::set_num_threads(INT_MAX) == hardware);
    CHECK(tapeflow::num_threads() == hardware);
    tapeflow::set_num_threads(before);
    CHECK(tapeflow::num_threads() == before);
}

TEST_CASE("hardware_threads is std::thread::hardware_concurrency, at least 1") {
    CHECK(tapeflow::hardware_threads() == std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
}

TEST_CASE("try_parallel_for runs every part exactly once") {
    for (std::size_t parts : {0, 1, 2, 3, 17, 300}) {
        INFO("parts = " << parts);
        std::vector<std::atomic<int>> runs(parts);
        auto task = [&](std::size_t part) { runs.at(part).fetch_add(1); };
        for (int repeat = 0; repeat < 3; ++repeat) {
            REQUIRE(tapeflow::try_parallel_for(parts, task));
            for (std::size_t part = 0; part < parts; ++part) CHECK(runs[part].exchange(0) == 1);
        }
    }
}

TEST_CASE("try_parallel_for rethrows a part's exception after every part has run") {
    std::vector<std::atomic<int>> runs(8);
    auto task = [&](std::size_t part) {
        runs[part].fetch_add(1);
        if (part == 5) throw std::runtime_error("part 5 failed");
    };
    CHECK_THROWS_WITH_AS(tapeflow::try_parallel_for(runs.size(), task), "part 5 failed", std::runtime_error);
    for (const std::atomic<int>& count : runs) CHECK(count.load() == 1);
    // The pool is usable again afterwards.
    auto nothing = [](std::size_t) {};
    CHECK(tapeflow::try_parallel_for(2, nothing));
}

TEST_CASE("try_parallel_for refuses, running nothing, while the pool is busy or for too many parts") {
    // A part that asks for another parallel call — on the calling thread or a worker — is told no and
    // does the work itself; this must neither deadlock nor run the inner parts.
    std::atomic<int> nested_accepted{0}, inner_runs{0};
    auto inner = [&](std::size_t) { inner_runs.fetch_add(1); };
    auto outer = [&](std::size_t) {
        if (tapeflow::try_parallel_for(2, inner)) nested_accepted.fetch_add(1);
    };
    REQUIRE(tapeflow::try_parallel_for(4, outer));
    CHECK(nested_accepted.load() == 0);
    CHECK(inner_runs.load() == 0);

    std::atomic<int> runs{0};
    auto count = [&](std::size_t) { runs.fetch_add(1); };
    CHECK_FALSE(tapeflow::try_parallel_for(65536, count));
    CHECK(runs.load() == 0);
}
