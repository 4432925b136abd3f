#include "tutorials/common/verify.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

using tapeflow::tutorial::Verifier;

namespace {

// A Verifier writing to a temporary file, and the text it wrote so far.
struct Captured {
    std::FILE* file = std::tmpfile();
    Verifier verifier{file};

    ~Captured() { std::fclose(file); }
    std::string text() const {
        std::fflush(file);
        std::rewind(file);
        std::string out;
        for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) out += static_cast<char>(c);
        return out;
    }
};

}  // namespace

TEST_CASE("check_close passes within atol + rtol * |brute force| and counts failures") {
    Captured c;
    Verifier& v = c.verifier;
    CHECK(v.check_close("log|det J|", -1.234567890123, -1.234567890120, 1e-9, 0));
    CHECK_FALSE(v.check_close("gradient", 1.0, 1.1, 1e-3, 1e-5));
    CHECK(v.check_close("tiny", 1e-12, 0.0, 0, 1e-10));
    CHECK(v.checks() == 3);
    CHECK(v.failures() == 1);
    CHECK(v.exit_code() == 1);

    const std::string text = c.text();
    CHECK(text.find("  [ok]   log|det J|") != std::string::npos);
    CHECK(text.find("-1.234567890123") != std::string::npos);
    CHECK(text.find("|diff| 3.0e-12") != std::string::npos);
    CHECK(text.find("  [FAIL] gradient") != std::string::npos);
    CHECK(text.find("> tol 1.1e-03") != std::string::npos);
}

TEST_CASE("NaN never passes; identical infinities do") {
    Captured c;
    CHECK_FALSE(c.verifier.check_close("nan", NAN, NAN, 1, 1));
    CHECK_FALSE(c.verifier.check_close("nan vs 0", NAN, 0, 1, 1));
    CHECK(c.verifier.check_close("log 0", -INFINITY, -INFINITY, 1e-6, 0));
    CHECK_FALSE(c.verifier.check_close("inf vs -inf", INFINITY, -INFINITY, 1e-6, 0));
    CHECK(c.verifier.failures() == 3);
    CHECK_THROWS_AS(c.verifier.check_close("bad tol", 1, 1, -1, 0), std::invalid_argument);
}

TEST_CASE("sections are numbered, checks and summary are printed") {
    Captured c;
    Verifier& v = c.verifier;
    v.section("Change of variables");
    v.check("round trip restores x", true, "max |x - f^-1(f(x))| = 1e-15");
    v.section("The triangular Jacobian");
    v.check("det is the product of the diagonal", false);
    v.summary();
    CHECK(v.exit_code() == 1);

    const std::string text = c.text();
    CHECK(text.find("== 1. Change of variables ==\n") != std::string::npos);
    CHECK(text.find("== 2. The triangular Jacobian ==\n") != std::string::npos);
    CHECK(text.find("  [ok]   round trip restores x") != std::string::npos);
    CHECK(text.find("max |x - f^-1(f(x))| = 1e-15") != std::string::npos);
    CHECK(text.find("  [FAIL] det is the product of the diagonal\n") != std::string::npos);
    CHECK(text.find("2 checks, 1 failed\n") != std::string::npos);
}

TEST_CASE("a ledger without failures exits 0") {
    Captured c;
    c.verifier.check_close("exact", 2.0, 2.0, 0, 0);
    CHECK(c.verifier.exit_code() == 0);
    CHECK(c.verifier.failures() == 0);
}

TEST_CASE("labelled comparisons print what is compared; errors are printed against their bound") {
    Captured c;
    Verifier& v = c.verifier;
    CHECK(v.check_close("det", {"1 + bᵀa", 2.0}, {"LU", 2.0 + 1e-15}, 1e-12, 0));
    CHECK(v.check_error("round trip", 1e-15, 1e-12));
    CHECK_FALSE(v.check_error("round trip too far", 1e-9, 1e-12));
    CHECK_FALSE(v.check_error("NaN", NAN, 1.0));
    CHECK_FALSE(v.check_error("negative error", -1.0, 1.0));
    CHECK_THROWS_AS(v.check_error("bad bound", 0.0, -1.0), std::invalid_argument);
    const std::string text = c.text();
    CHECK(text.find("  1 + bᵀa   2.000000000000") != std::string::npos);
    CHECK(text.find("  LU   2.000000000000") != std::string::npos);
    CHECK(text.find("analytic") == std::string::npos);
    CHECK(text.find("error 1.00e-15  ≤ bound 1.0e-12") != std::string::npos);
    CHECK(text.find("error 1.00e-09  > bound 1.0e-12") != std::string::npos);
    CHECK(v.failures() == 3);
}
