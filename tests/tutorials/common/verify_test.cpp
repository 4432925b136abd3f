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

TEST_CASE("check_close passes within atol + rtol * |reference| and counts failures") {
    Captured c;
    Verifier& v = c.verifier;
    CHECK(v.check_close("log|det J|", {"lemma", -1.234567890123}, {"LU", -1.234567890120}, 1e-9, 0));
    CHECK_FALSE(v.check_close("gradient", {"tape", 1.0}, {"FD", 1.1}, 1e-3, 1e-5));
    CHECK(v.check_close("tiny", {"a", 1e-12}, {"b", 0.0}, 0, 1e-10));
    CHECK(v.checks() == 3);
    CHECK(v.failures() == 1);
    CHECK(v.exit_code() == 1);

    const std::string text = c.text();
    CHECK(text.find("  [ok]   log|det J|") != std::string::npos);
    CHECK(text.find("-1.234567890123") != std::string::npos);
    CHECK(text.find("|diff| 3.0e-12") != std::string::npos);
    CHECK(text.find("  [FAIL] gradient") != std::string::npos);
    CHECK(text.find("> tol 1.1e-03") != std::string::npos);
    CHECK(text.find("tape                1  FD   1.100000000000") != std::string::npos);
}

TEST_CASE("NaN never passes; identical infinities do") {
    Captured c;
    CHECK_FALSE(c.verifier.check_close("nan", {"a", NAN}, {"b", NAN}, 1, 1));
    CHECK_FALSE(c.verifier.check_close("nan vs 0", {"a", NAN}, {"b", 0}, 1, 1));
    CHECK(c.verifier.check_close("log 0", {"a", -INFINITY}, {"b", -INFINITY}, 1e-6, 0));
    CHECK_FALSE(c.verifier.check_close("inf vs -inf", {"a", INFINITY}, {"b", -INFINITY}, 1e-6, 0));
    CHECK(c.verifier.failures() == 3);
    CHECK_THROWS_AS(c.verifier.check_close("bad tol", {"a", 1}, {"b", 1}, -1, 0), std::invalid_argument);
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
    c.verifier.check_close("exact", {"a", 2.0}, {"b", 2.0}, 0, 0);
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
    CHECK(text.find("  1 + bᵀa                2  LU") != std::string::npos);  // a whole number prints as one
    CHECK(text.find("  LU   2.000000000000") != std::string::npos);
    CHECK(text.find("analytic") == std::string::npos);
    CHECK(text.find("error 1.00e-15  ≤ bound 1.0e-12") != std::string::npos);
    CHECK(text.find("error 1.00e-09  > bound 1.0e-12") != std::string::npos);
    CHECK(v.failures() == 3);
}

TEST_CASE("check_at_most passes when value <= bound, prints both labels and the margin; NaN never passes") {
    Captured c;
    Verifier& v = c.verifier;
    CHECK(v.check_at_most("Jensen", {"exact", 3.0}, {"estimate", 3.25}));
    CHECK(v.check_at_most("equal", {"a", 1.0}, {"b", 1.0}));
    CHECK_FALSE(v.check_at_most("above", {"exact", 3.5}, {"estimate", 3.25}));
    CHECK_FALSE(v.check_at_most("nan", {"a", NAN}, {"b", 1.0}));
    CHECK_FALSE(v.check_at_most("nan bound", {"a", 0.0}, {"b", NAN}));
    CHECK(v.failures() == 3);
    const std::string text = c.text();
    CHECK(text.find("exact                3  ≤ estimate   3.250000000000  margin 2.5e-01") != std::string::npos);
    CHECK(text.find("[FAIL] above") != std::string::npos);
    CHECK(text.find("> estimate") != std::string::npos);
}
