#include "tensor/parallel.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <thread>

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
