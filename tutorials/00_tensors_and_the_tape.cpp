// 00_tensors_and_the_tape: record an expression, sweep it backward by hand, and meet the tape's rules
//
// Reverse-mode automatic differentiation in one page. We record f(x, y) = (x·y + sin x)·y on the
// tape, print the tape, and run the reverse sweep by hand (one adjoint per node) beside the tape's
// own backward(). Then the rules every later tutorial relies on: a value used twice accumulates
// both contributions; parameters outlive tape.clear() while a stale Var throws; NoGrad records
// nothing; the tape can be drawn as a Graphviz graph. A short tour of tensors closes the page.
//
//   ./tapeflow tutorial 00 [--quick] [--out DIR] [--seed N]

#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "autograd/var.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"
#include "tensor/file_io.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::plot::ascii_table;
using tapeflow::tutorial::Verifier;

std::string num(double v) { return fmt::format("{:.6g}", v); }

// Prints a block of text indented by two spaces, so program output stands apart from narration.
using tutorial::print_indented;

int run(const tutorial::Options& opt) {
    Verifier verifier;
    Tape& tape = Tape::current();
    tape.clear();

    // ------------------------------------------------------------------------------------------
    verifier.section("Recording an expression on the tape");
    fmt::print(
        "Every operation on a Var appends one node to the tape, in the order it runs. We record\n"
        "  f(x, y) = (x·y + sin x)·y   at x = 0.5, y = 2\n"
        "as a = x·y, b = sin x, c = a + b, f = c·y. The tape (index, op, inputs, shape, value):\n\n");
    const double x0 = 0.5, y0 = 2.0;
    const Var x = tape.variable(Tensor::scalar(x0));
    const Var y = tape.variable(Tensor::scalar(y0));
    const Var a = x * y;
    const Var b = sin(x);
    const Var c = a + b;
    const Var f = c * y;
    print_indented(tape.dump());
    fmt::print(
        "\nThe recording order is already a topological order: each node comes after its inputs.\n"
        "So backward() needs no graph search: it walks this list once, from the bottom up.\n\n");
    const double f_plain = (x0 * y0 + std::sin(x0)) * y0;
    verifier.check_close("f", {"tape", f.item()}, {"plain doubles", f_plain}, 1e-15, 0);
    verifier.check("one node per operation", tape.size() == 6, fmt::format("tape.size() = {}", tape.size()));

    // ------------------------------------------------------------------------------------------
    verifier.section("The reverse sweep by hand");
    fmt::print(
        "The adjoint of a node v is v̄ = ∂f/∂v. Start from f̄ = 1 and visit the nodes in reverse;\n"
        "each node sends its adjoint times its local derivative to each input, and an input's\n"
        "adjoint is the SUM of what it receives (y feeds two nodes, x feeds two nodes):\n\n");
    const double a0 = x0 * y0, b0 = std::sin(x0), c0 = a0 + b0;
    const double f_bar = 1;
    fmt::print("    f̄ = 1                                     (the seed: ∂f/∂f)\n");
    const double c_bar = f_bar * y0;  // f = c·y: ∂f/∂c = y
    double y_bar = f_bar * c0;        //          ∂f/∂y = c   (first share of ȳ)
    fmt::print("    #{} f = c·y     c̄  = f̄·y      = {} · {} = {}\n", f.index(), num(f_bar), num(y0), num(c_bar));
    fmt::print("                   ȳ  = f̄·c      = {} · {} = {}\n", num(f_bar), num(c0), num(y_bar));
    const double a_bar = c_bar * 1;  // c = a + b: both local derivatives are 1
    const double b_bar = c_bar * 1;
    fmt::print("    #{} c = a + b   ā  = c̄·1      = {};   b̄ = c̄·1 = {}\n", c.index(), num(a_bar), num(b_bar));
    double x_bar = b_bar * std::cos(x0);  // b = sin x: ∂b/∂x = cos x   (first share of x̄)
    fmt::print("    #{} b = sin x   x̄  = b̄·cos x  = {} · {} = {}\n", b.index(), num(b_bar), num(std::cos(x0)),
               num(x_bar));
    x_bar += a_bar * y0;  // a = x·y: ∂a/∂x = y   (second share of x̄)
    y_bar += a_bar * x0;  //          ∂a/∂y = x   (second share of ȳ)
    fmt::print("    #{} a = x·y     x̄ += ā·y      = {} · {}  →  x̄ = {}\n", a.index(), num(a_bar), num(y0),
               num(x_bar));
    fmt::print("                   ȳ += ā·x      = {} · {}  →  ȳ = {}\n\n", num(a_bar), num(x0), num(y_bar));

    fmt::print("Now the tape does the same with tape.backward(f); each node's .grad is its adjoint:\n\n");
    tape.backward(f);
    struct Row {
        const Var* v;
        std::string local;  // the node's derivatives with respect to its inputs, at this point
        double hand;
    };
    const std::vector<Row> rows = {
        {&f, fmt::format("∂f/∂c = y = {}, ∂f/∂y = c = {}", num(y0), num(c0)), f_bar},
        {&c, "∂c/∂a = 1, ∂c/∂b = 1", c_bar},
        {&b, fmt::format("∂b/∂x = cos x = {}", num(std::cos(x0))), b_bar},
        {&a, fmt::format("∂a/∂x = y = {}, ∂a/∂y = x = {}", num(y0), num(x0)), a_bar},
        {&y, "(leaf)", y_bar},
        {&x, "(leaf)", x_bar},
    };
    std::vector<std::vector<std::string>> table;
    for (const Row& r : rows) {
        const Node& n = tape.node(r.v->index());
        table.push_back({fmt::format("#{}", r.v->index()), n.op, num(r.v->item()), r.local, num(r.hand),
                         num(n.grad.item())});
    }
    print_indented(ascii_table({"node", "op", "value", "local derivatives", "adjoint by hand", "backward()"}, table));
    fmt::print("\n");
    for (const Row& r : rows) {
        const Node& n = tape.node(r.v->index());
        verifier.check_close(fmt::format("adjoint of #{} ({})", r.v->index(), n.op), {"backward()", n.grad.item()},
                             {"by hand", r.hand}, 1e-14, 1e-15);
    }
    fmt::print("\nAnd against the derivatives worked out on paper, ∂f/∂x = (y + cos x)·y, ∂f/∂y = 2xy + sin x:\n");
    verifier.check_close("∂f/∂x", {"backward()", x.grad().item()}, {"(y + cos x)·y", (y0 + std::cos(x0)) * y0}, 1e-14, 1e-15);
    verifier.check_close("∂f/∂y", {"backward()", y.grad().item()}, {"2xy + sin x", 2 * x0 * y0 + std::sin(x0)}, 1e-14, 1e-15);

    // ------------------------------------------------------------------------------------------
    verifier.section("The tape as a graph");
    const std::filesystem::path dot_path = std::filesystem::path(opt.out_dir) / "tape.dot";
    const std::string dot = tape.to_dot();
    write_file_atomically(dot_path.string(), dot, "DOT file");  // flushed, checked, fsync'ed, renamed
    fmt::print(
        "tape.to_dot() writes the same tape in Graphviz DOT (leaves are boxes, edges run input → op).\n"
        "Written to {}; render it with\n"
        "    dot -Tsvg {} -o tape.svg\n\n",
        dot_path.string(), dot_path.string());
    print_indented(dot);
    std::size_t edges_recorded = 0;
    for (std::size_t i = 0; i < tape.size(); ++i) edges_recorded += tape.node(static_cast<std::uint32_t>(i)).n_inputs;
    std::size_t edges_drawn = 0;
    for (std::size_t at = dot.find("->"); at != std::string::npos; at = dot.find("->", at + 2)) ++edges_drawn;
    fmt::print("\n");
    verifier.check("one DOT edge per recorded input", edges_drawn == edges_recorded,
                   fmt::format("{} edges, {} inputs on the tape", edges_drawn, edges_recorded));

    // ------------------------------------------------------------------------------------------
    verifier.section("A value used twice accumulates");
    tape.clear();
    const double x1 = 3.0;
    fmt::print(
        "g(x) = x·x at x = {0}. mul's backward sends ḡ·(other operand) to EACH operand; here both\n"
        "operands are the same node, so x̄ receives two contributions and must ADD them (+=).\n"
        "Assigning instead (a classic autodiff bug) would give x = {0}, not 2x = {1}.\n"
        "We see each contribution alone by replacing one operand with a constant copy of x:\n\n",
        num(x1), num(2 * x1));
    const Var xt = tape.variable(Tensor::scalar(x1));
    const Var x_const(xt.value());  // a constant: same value, no tape entry, no gradient
    const Var via_first = xt * x_const;
    tape.backward(via_first);
    const double share_first = xt.grad().item();
    const Var via_second = x_const * xt;
    tape.backward(via_second);
    const double share_second = xt.grad().item();
    const Var g = xt * xt;
    tape.backward(g);
    fmt::print("    through mul's first operand:   ḡ·x = {}\n", num(share_first));
    fmt::print("    through mul's second operand:  ḡ·x = {}\n", num(share_second));
    fmt::print("    sum of the two:                       {}\n", num(share_first + share_second));
    fmt::print("    tape.backward(x·x) gives x̄ =         {}\n\n", num(xt.grad().item()));
    verifier.check_close("x̄ of x·x", {"backward()", xt.grad().item()}, {"sum of shares", share_first + share_second}, 0, 0);
    verifier.check_close("x̄ of x·x", {"backward()", xt.grad().item()}, {"2x", 2 * x1}, 1e-15, 0);

    // ------------------------------------------------------------------------------------------
    verifier.section("Parameters outlive tape.clear(); stale Vars throw");
    tape.clear();
    fmt::print(
        "A Parameter (a weight) lives outside the tape: each step records a leaf for it, and\n"
        "backward adds into parameter.grad. Loss L(w) = (w·u − 1)² with u = (2, 3), w = (0.5, −1),\n"
        "so ∂L/∂w = 2(w·u − 1)·u.\n\n");
    Parameter w(Tensor{0.5, -1.0});
    const Tensor u{2.0, 3.0};
    auto loss_of = [&](const Var& wv) { return square(sum(wv * Var(u)) - 1.0); };
    const double residual = 0.5 * 2.0 + (-1.0) * 3.0 - 1.0;
    const Tensor expected_grad{2 * residual * 2.0, 2 * residual * 3.0};

    Var loss_step1 = loss_of(w.var());
    tape.backward(loss_step1);
    fmt::print("    step 1: L = {}, tape holds {} nodes, w.grad = {}\n", num(loss_step1.item()), tape.size(),
               to_string(w.grad));
    verifier.check_close("w.grad[0] after step 1", {"backward()", w.grad[0]}, {"2(w·u − 1)·u₀", expected_grad[0]}, 1e-15, 0);
    verifier.check_close("w.grad[1] after step 1", {"backward()", w.grad[1]}, {"2(w·u − 1)·u₁", expected_grad[1]}, 1e-15, 0);

    tape.clear();
    fmt::print("    tape.clear(): tape holds {} nodes, w.value = {}, w.grad = {}\n", tape.size(), to_string(w.value),
               to_string(w.grad));
    verifier.check("clear() empties the tape", tape.size() == 0);
    verifier.check_close("w.grad[1] survives clear()", {"after clear()", w.grad[1]}, {"2(w·u − 1)·u₁", expected_grad[1]}, 0, 0);

    const Var loss_step2 = loss_of(w.var());
    tape.backward(loss_step2);
    fmt::print(
        "    step 2 (no zero_grad): w.grad = {}  ← added to step 1's, as in PyTorch;\n"
        "    a training loop calls w.zero_grad() (or the optimizer's) before each backward.\n\n",
        to_string(w.grad));
    verifier.check_close("w.grad[1] after two steps", {"accumulated", w.grad[1]}, {"2 × step 1", 2 * expected_grad[1]}, 1e-15, 0);

    fmt::print("\nUsing step 1's loss Var after the clear is a bug; the tape detects it (generation counter):\n");
    bool threw = false;
    try {
        const Var doubled = loss_step1 * 2.0;
        fmt::print("    no exception, value {}\n", num(doubled.item()));
    } catch (const std::logic_error& e) {
        threw = true;
        fmt::print("    caught std::logic_error: {}\n\n", e.what());
    }
    verifier.check("a stale Var throws", threw);

    // ------------------------------------------------------------------------------------------
    verifier.section("NoGrad records nothing");
    tape.clear();
    fmt::print(
        "Evaluation, sampling and logging need values, not gradients. Inside a NoGrad scope ops\n"
        "compute their values and record nothing (Parameter::var() returns a plain constant):\n\n");
    const std::size_t before_grad = tape.size();
    const Var recorded = loss_of(w.var());
    const std::size_t after_grad = tape.size();
    std::size_t before_nograd = 0, after_nograd = 0;
    double value_nograd = 0;
    bool nograd_is_constant = false;
    {
        NoGrad no_grad;
        before_nograd = tape.size();
        const Var evaluated = loss_of(w.var());
        after_nograd = tape.size();
        value_nograd = evaluated.item();
        nograd_is_constant = !evaluated.requires_grad();
    }
    fmt::print("    recording:    tape size {} → {}  (L = {})\n", before_grad, after_grad, num(recorded.item()));
    fmt::print("    under NoGrad: tape size {} → {}  (L = {})\n\n", before_nograd, after_nograd, num(value_nograd));
    verifier.check("NoGrad adds no node", after_nograd == before_nograd,
                   fmt::format("{} nodes before and after", after_nograd));
    verifier.check("the result is a constant", nograd_is_constant, "requires_grad() == false");
    verifier.check_close("same value either way", {"NoGrad", value_nograd}, {"recorded", recorded.item()}, 0, 0);

    // ------------------------------------------------------------------------------------------
    verifier.section("A tour of tensors");
    tape.clear();
    fmt::print(
        "A Tensor is a shared handle to row-major doubles (copying aliases; clone() copies).\n"
        "Broadcasting follows NumPy: align trailing axes; a size-1 axis stretches.\n\n");
    const Tensor col(Shape{3, 1}, {1, 2, 3});
    const Tensor row{10.0, 20.0};
    const Tensor grid = col + row;
    fmt::print("    col {} + row {}  →  {}\n", col.shape(), row.shape(), grid.shape());
    print_indented(to_string(grid));
    bool broadcast_ok = grid.shape() == Shape{3, 2};
    for (std::size_t i = 0; i < 3 && broadcast_ok; ++i)
        for (std::size_t j = 0; j < 2; ++j) broadcast_ok = broadcast_ok && grid.at({i, j}) == col[i] + row[j];
    verifier.check("[3,1] + [2] = [3,2], elementwise", broadcast_ok);

    const Tensor column_sums = sum(grid, 0);
    fmt::print("\n    sum(grid, axis 0) = {}   (a reduction removes the axis)\n", to_string(column_sums));
    verifier.check_close("sum over axis 0, column 1", {"sum(grid, 0)", column_sums[1]}, {"21 + 22 + 23", 21.0 + 22.0 + 23.0}, 0, 0);

    Rng rng(opt.seed);
    const Tensor A = randn(Shape{2, 3}, rng);
    const Tensor B = randn(Shape{3, 2}, rng);
    const Tensor AB = matmul(A, B);
    fmt::print("\n    matmul: {} · {} → {}   (A, B ~ N(0, 1), seed {})\n", A.shape(), B.shape(), AB.shape(), opt.seed);
    print_indented(to_string(AB));
    double loop_01 = 0;
    for (std::size_t k = 0; k < 3; ++k) loop_01 += A.at({0, k}) * B.at({k, 1});
    verifier.check_close("(A·B)[0,1]", {"matmul", AB.at({0, 1})}, {"k-loop", loop_01}, 1e-14, 1e-15);

    fmt::print(
        "\nBroadcasting in the forward pass means summing in the backward pass: in sum(col + r)\n"
        "each r_j is used by all 3 rows, so ∂/∂r_j = 3. The tape sums the gradient back to r's shape:\n");
    const Var r = tape.variable(row.clone());
    const Var total = sum(Var(col) + r);
    tape.backward(total);
    fmt::print("    r.grad() = {}\n\n", to_string(r.grad()));
    verifier.check("gradient has r's shape [2]", r.grad().shape() == row.shape());
    verifier.check_close("∂ sum(col + r) / ∂r_0", {"backward()", r.grad()[0]}, {"3 rows", 3.0}, 0, 0);

    tape.clear();
    if (opt.quick) fmt::print("\n(--quick changes nothing here: this tutorial is instant.)\n");
    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli("00_tensors_and_the_tape",
                                "Record an expression, sweep it backward by hand, and meet the tape's rules");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
