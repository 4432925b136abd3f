// The verification ledger: every tutorial prints each derived result next to
// an independent value, each under a label saying what it is (there is no
// unlabelled comparison), and exits non-zero if any disagree, so the test
// suite (which runs every tutorial with --quick) catches a wrong derivation
// the same way it catches a crash.
//
//   Verifier v;
//   v.section("The triangular Jacobian");
//   v.check_close("log|det J|", {"lemma", lemma}, {"slogdet", lu}, 1e-6, 1e-9);
//   v.summary();
//   return v.exit_code();
//
// prints
//
//   == 1. The triangular Jacobian ==
//     [ok]   log|det J|                    lemma  -1.234567890123  slogdet  -1.234567890120  |diff| 3.0e-12
//
//   1 checks, 0 failed
#pragma once

#include <cstdio>
#include <string_view>

namespace tapeflow::tutorial {

// One side of a comparison: what the number is (printed before it) and its value.
struct Compared {
    std::string_view label;
    double value;
};

class Verifier {
public:
    explicit Verifier(std::FILE* out = stdout);  // another FILE* lets a test capture the ledger

    // Prints a numbered heading "== N. title ==".
    void section(std::string_view title);

    // Passes when |value - reference| <= atol + rtol * |reference| (gradcheck's
    // rule: the reference is the independent value), or when the two are
    // identical (e.g. both -inf). NaN never passes. Each side is printed under
    // its own label, e.g. {"tape", g} beside {"by hand", h}. Returns the verdict.
    bool check_close(std::string_view what, Compared value, Compared reference, double rtol, double atol);
    // A one-sided bound between two labelled values: passes when value <= bound
    // (NaN never passes), e.g. {"−log₂ P(v)", exact} ≤ {"dequantized", estimate}.
    bool check_at_most(std::string_view what, Compared value, Compared bound);
    // A measured error against its bound: passes when 0 ≤ error ≤ bound (NaN never passes); printed
    // as "error … ≤ bound …" rather than as a comparison with zero.
    bool check_error(std::string_view what, double error, double bound);

    // A yes/no fact, e.g. "round trip restores x"; `detail` is printed after it.
    bool check(std::string_view what, bool ok, std::string_view detail = "");

    int checks() const { return checks_; }
    int failures() const { return failures_; }
    int exit_code() const { return failures_ == 0 ? 0 : 1; }
    void summary() const;  // "N checks, M failed"

private:
    void record(bool ok);

    std::FILE* out_;
    int sections_ = 0;
    int checks_ = 0;
    int failures_ = 0;
};

}  // namespace tapeflow::tutorial
