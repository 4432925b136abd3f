// Shared by the autograd tests: a doctest check that runs gradcheck and, on failure, prints its report
// (the worst element, both derivative values and the recorded tape).
#pragma once

#include <doctest/doctest.h>

#include "autograd/gradcheck.hpp"

// CHECK_GRADCHECK(f, inputs[, options]): the arguments of tapeflow::gradcheck.
#define CHECK_GRADCHECK(...)                                                            \
    do {                                                                                \
        const ::tapeflow::GradcheckResult gradcheck_result_ = ::tapeflow::gradcheck(__VA_ARGS__); \
        INFO(gradcheck_result_.report);                                                 \
        CHECK(gradcheck_result_.ok);                                                    \
    } while (false)
