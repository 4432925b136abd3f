// The bad-input table: every public entry point fed something invalid (mismatched shapes, wrong
// ranks, empty batches, zero sizes, NaN/kInf parameters, degenerate masks, mismatched dimensions,
// bad command lines) must throw an exception of the documented type whose message names what was
// wrong: never a crash, never a silently wrong number. One row per case; the loop runs them all and
// reports every row that fails, with the message it got.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/actnorm.hpp"
#include "flows/autoregressive.hpp"
#include "flows/batchnorm.hpp"
#include "flows/channel_actnorm.hpp"
#include "flows/conditional.hpp"
#include "flows/conformance.hpp"
#include "flows/coupling.hpp"
#include "flows/datasets.hpp"
#include "flows/distributions.hpp"
#include "flows/elementwise.hpp"
#include "flows/flow.hpp"
#include "flows/image_coupling.hpp"
#include "flows/logit.hpp"
#include "flows/losses.hpp"
#include "flows/multiscale.hpp"
#include "flows/permutation.hpp"
#include "flows/planar.hpp"
#include "flows/radial.hpp"
#include "flows/realnvp.hpp"
#include "flows/squeeze.hpp"
#include "flows/targets.hpp"
#include "flows/trainer.hpp"
#include "nn/batchnorm2d.hpp"
#include "nn/checkpoint.hpp"
#include "nn/conv2d.hpp"
#include "nn/clip.hpp"
#include "nn/init.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "nn/resnet.hpp"
#include "nn/weight_norm.hpp"
#include "tensor/conv.hpp"
#include "nn/safetensors.hpp"
#include "nn/schedule.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"
#include "tensor/linalg.hpp"
#include "tensor/micro_kernel.hpp"
#include "tensor/npy.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tensor/search.hpp"
#include "tensor/shape_ops.hpp"
#include "tensor/storage.hpp"
#include "tests/reliability/child_process.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The exception a row expects. invalid_argument is a logic_error, so `logic` accepts both.
enum class Expect { invalid_argument, logic, runtime, allocation };

struct Row {
    std::string entry_point;
    std::string bad_input;
    Expect expect;
    std::string message;  // a fragment the exception's message must contain
    std::function<void()> call;
};

std::string expect_name(Expect e) {
    switch (e) {
        case Expect::invalid_argument: return "std::invalid_argument";
        case Expect::logic: return "std::logic_error";
        case Expect::runtime: return "std::runtime_error";
        case Expect::allocation: return "tapeflow::AllocationError (a std::bad_alloc)";
    }
    return "?";
}

bool has_expected_type(const std::exception& e, Expect expect) {
    switch (expect) {
        case Expect::invalid_argument: return dynamic_cast<const std::invalid_argument*>(&e) != nullptr;
        case Expect::logic: return dynamic_cast<const std::logic_error*>(&e) != nullptr;
        case Expect::runtime: return dynamic_cast<const std::runtime_error*>(&e) != nullptr;
        case Expect::allocation: return dynamic_cast<const AllocationError*>(&e) != nullptr;
    }
    return false;
}

void run_table(const std::vector<Row>& rows) {
    for (const Row& row : rows) {
        INFO(row.entry_point << " with " << row.bad_input);
        try {
            row.call();
            FAIL_CHECK("no exception: expected " << expect_name(row.expect) << " containing \"" << row.message << "\"");
        } catch (const std::exception& e) {
            const std::string what = e.what();
            INFO("got " << std::string(typeid(e).name()) << ": " << what);
            CHECK(has_expected_type(e, row.expect));
            CHECK(what.find(row.message) != std::string::npos);
        }
    }
}

// A small flow on D = 2 for the flow-level rows.
std::unique_ptr<flows::Flow> planar_flow() { return testing::planar_flow(2, 2, 0); }

Tensor moons(std::size_t n, Rng& rng) { return flows::sample_moons(n, rng); }

}  // namespace

TEST_CASE("tensor layer: every operation rejects malformed input with a message naming it") {
    const Tensor a23 = Tensor::ones({2, 3});
    const std::vector<Row> rows{
        {"Tensor(shape, values)", "5 values for a [2, 3] shape", Expect::invalid_argument, "6",
         [] { Tensor(Shape{2, 3}, std::vector<double>(5, 0.0)); }},
        {"Tensor{{…}}", "ragged rows", Expect::invalid_argument, "ragged",
         [] { Tensor{{1.0, 2.0}, {3.0}}; }},
        {"Tensor::item", "a tensor of 6 elements", Expect::invalid_argument, "item",
         [&] { (void)a23.item(); }},
        {"add", "[2, 3] + [4] (not broadcastable)", Expect::invalid_argument, "[2, 3]",
         [&] { (void)add(a23, Tensor::ones({4})); }},
        {"where", "a condition of a non-broadcastable shape", Expect::invalid_argument, "where",
         [&] { (void)where(Tensor::ones({5}), a23, a23); }},
        {"add_into", "a source that would grow the destination", Expect::invalid_argument, "add_into",
         [&] { Tensor d = Tensor::ones({3}); add_into(d, a23); }},
        {"clamp", "lo > hi", Expect::invalid_argument, "clamp",
         [&] { (void)clamp(a23, 1.0, 0.0); }},
        {"kernels::set_kernel", "an unknown kernel name", Expect::invalid_argument, "'avx9'",
         [] { kernels::set_kernel("avx9"); }},
        {"matmul", "[2, 3] · [4, 5] (inner sizes differ)", Expect::invalid_argument, "matmul",
         [&] { (void)matmul(a23, Tensor::ones({4, 5})); }},
        {"matmul", "a vector (rank 1)", Expect::invalid_argument, "matmul",
         [&] { (void)matmul(Tensor::ones({3}), a23); }},
        {"matmul", "batch sizes 2 and 3", Expect::invalid_argument, "matmul",
         [] { (void)matmul(Tensor::ones({2, 2, 2}), Tensor::ones({3, 2, 2})); }},
        {"matmul_tn", "[3, 2]ᵀ · [4, 2]", Expect::invalid_argument, "matmul_tn",
         [] { (void)matmul_tn(Tensor::ones({3, 2}), Tensor::ones({4, 2})); }},
        {"matmul_nt", "[2, 3] · [4, 2]ᵀ", Expect::invalid_argument, "matmul_nt",
         [] { (void)matmul_nt(Tensor::ones({2, 3}), Tensor::ones({4, 2})); }},
        {"sum", "axis 2 of a 2-D tensor", Expect::invalid_argument, "axis",
         [&] { (void)sum(a23, 2); }},
        {"mean", "axis −3 of a 2-D tensor", Expect::invalid_argument, "axis",
         [&] { (void)mean(a23, -3); }},
        {"max", "an empty tensor", Expect::invalid_argument, "max",
         [] { (void)max(Tensor::zeros({0})); }},
        {"mean", "an empty tensor (0/0)", Expect::invalid_argument, "mean",
         [] { (void)mean(Tensor::zeros({0, 3})); }},
        {"reshape", "[2, 3] to [4, 2]", Expect::invalid_argument, "reshape",
         [&] { (void)reshape(a23, Shape{4, 2}); }},
        {"squeeze", "an axis of size 3", Expect::invalid_argument, "squeeze",
         [&] { (void)squeeze(a23, 1); }},
        {"permute", "axes {0, 0}", Expect::invalid_argument, "permute",
         [&] { (void)permute(a23, {0, 0}); }},
        {"narrow", "start 2 + length 2 on an axis of 3", Expect::invalid_argument, "narrow",
         [&] { (void)narrow(a23, 1, 2, 2); }},
        {"concat", "no parts", Expect::invalid_argument, "concat",
         [] { (void)concat(std::vector<Tensor>{}, 0); }},
        {"concat", "[2, 3] and [2, 4] along axis 0", Expect::invalid_argument, "concat",
         [&] { (void)concat(std::vector<Tensor>{a23, Tensor::ones({2, 4})}, 0); }},
        {"split", "sizes 1 + 1 for an axis of 3", Expect::invalid_argument, "split",
         [&] { (void)split(a23, 1, {1, 1}); }},
        {"chunk", "0 chunks", Expect::invalid_argument, "chunk",
         [&] { (void)chunk(a23, 0, 1); }},
        {"index_select", "index 3 on an axis of 3", Expect::invalid_argument, "index_select",
         [&] { (void)index_select(a23, 1, {0, 3}); }},
        {"broadcast_to", "[2, 3] to [3, 3]", Expect::invalid_argument, "broadcast",
         [&] { (void)broadcast_to(a23, Shape{3, 3}); }},
        {"det", "a non-square matrix", Expect::invalid_argument, "det",
         [&] { (void)det(a23); }},
        {"solve", "a singular matrix", Expect::invalid_argument, "singular",
         [] { (void)solve(Tensor{{1.0, 2.0}, {2.0, 4.0}}, Tensor{1.0, 1.0}); }},
        {"Tensor::arange", "step 0", Expect::invalid_argument, "arange",
         [] { (void)Tensor::arange(0, 1, 0); }},
        {"Rng::below", "n = 0", Expect::invalid_argument, "below",
         [] { Rng rng(0); (void)rng.below(0); }},
        {"randn", "std = +inf", Expect::invalid_argument, "randn: the mean and std must be finite",
         [] { Rng rng(0); (void)randn({2}, rng, 0.0, kInf); }},
        {"randn", "mean = NaN", Expect::invalid_argument, "randn",
         [] { Rng rng(0); (void)randn({2}, rng, kNaN, 1.0); }},
        {"rand", "lo > hi", Expect::invalid_argument, "rand: needs finite bounds lo ≤ hi",
         [] { Rng rng(0); (void)rand({2}, rng, 1.0, 0.0); }},
        {"cumsum", "axis 2 of a 2-D tensor", Expect::invalid_argument, "cumsum",
         [&] { (void)cumsum(a23, 2); }},
        {"norm", "axis −3 of a 2-D tensor", Expect::invalid_argument, "axis",
         [&] { (void)norm(a23, -3); }},
        {"take_along_axis", "index 3 on an axis of 3", Expect::invalid_argument, "index 3",
         [&] { (void)take_along_axis(a23, Tensor{{0.0, 3.0}, {1.0, 1.0}}, 1); }},
        {"take_along_axis", "a fractional index", Expect::invalid_argument, "whole number",
         [&] { (void)take_along_axis(a23, Tensor(Shape{2, 1}, {0.5, 1.0}), 1); }},
        {"take_along_axis", "indices of another rank", Expect::invalid_argument, "do not fit",
         [&] { (void)take_along_axis(a23, Tensor{0.0, 1.0}, 1); }},
        {"searchsorted", "a sequence that is not ascending", Expect::invalid_argument, "not ascending",
         [] { (void)searchsorted(Tensor{0.0, 2.0, 1.0}, Tensor{1.0}); }},
        {"searchsorted", "2 sequences for 3 rows of values", Expect::invalid_argument, "leading sizes",
         [] { (void)searchsorted(Tensor::zeros({2, 4}), Tensor::zeros({3, 1})); }},
        {"conv2d", "an input of rank 3", Expect::invalid_argument, "[N, C, H, W], got shape [3, 4, 4]",
         [] { (void)conv2d(Tensor::ones({3, 4, 4}), Tensor::ones({1, 3, 3, 3})); }},
        {"conv2d", "a 2 × 2 kernel (even)", Expect::invalid_argument, "odd size",
         [] { (void)conv2d(Tensor::ones({1, 3, 4, 4}), Tensor::ones({1, 3, 2, 2})); }},
        {"conv2d", "a weight for 2 input channels on 3", Expect::invalid_argument, "C_in = 2",
         [] { (void)conv2d(Tensor::ones({1, 3, 4, 4}), Tensor::ones({1, 2, 3, 3})); }},
        {"conv2d", "a bias [3] for 2 output channels", Expect::invalid_argument, "[C_out] = [2]",
         [] { (void)conv2d(Tensor::ones({1, 3, 4, 4}), Tensor::ones({2, 3, 3, 3}), Tensor::ones({3})); }},
        {"crop2d", "a window larger than the image", Expect::invalid_argument, "does not fit",
         [] { (void)crop2d(Tensor::ones({1, 1, 2, 2}), 1, 0, 2, 2); }},
    };
    run_table(rows);
}


TEST_CASE("memory safety: shapes that overflow size_t and allocations that fail are refused, named") {
    constexpr std::size_t big = (std::size_t{1} << 62) + 1;  // [big, 4] has 2⁶⁴ + 4 elements: "4" if wrapped
    std::vector<Row> rows{
        {"Tensor::zeros", "[2⁶² + 1, 4] (the element count overflows)", Expect::invalid_argument,
         "Shape [4611686018427387905, 4]: the element count (the product of the dims) overflows",
         [] { (void)Tensor::zeros({big, 4}); }},
        {"reshape", "a 4-element tensor to [2⁶² + 1, 4]", Expect::invalid_argument, "overflows",
         [] { (void)reshape(Tensor::ones({4}), Shape{big, 4}); }},
        {"Tensor(shape)", "a shape edited in place to overflow", Expect::invalid_argument, "overflows",
         [] { Shape s{1, 1}; s[0] = big; s[1] = 4; Tensor t(s); }},
        {"broadcast_shapes", "[2³³, 1] with [1, 2³³] (2⁶⁶ elements)", Expect::invalid_argument, "overflows",
         [] { (void)broadcast_shapes(Shape{std::size_t{1} << 33, 1}, Shape{1, std::size_t{1} << 33}, "add"); }},
        {"Tensor(shape)", "[2⁶⁰] (more bytes than a pointer can address)", Expect::allocation,
         "more bytes than this machine can address", [] { Tensor t(Shape{std::size_t{1} << 60}); }},
    };
#if !defined(__SANITIZE_ADDRESS__)
    // A request the machine cannot serve reaches the allocator. Under AddressSanitizer it cannot be
    // tested: ASan's throwing operator new reports out-of-memory and aborts instead of throwing
    // std::bad_alloc, whatever allocator_may_return_null says.
    rows.push_back({"Tensor(shape)", "[2⁴⁰] (8.8 TB)", Expect::allocation,
                    "Tensor [1099511627776]: cannot allocate 1099511627776 doubles (8.8 TB): out of memory",
                    [] { Tensor t(Shape{std::size_t{1} << 40}); }});
#endif
    run_table(rows);
}

TEST_CASE("autograd layer: tape misuse and malformed ops are reported, not misread") {
    const std::vector<Row> rows{
        {"Tape::backward", "a root with 3 elements", Expect::invalid_argument, "one element",
         [] { Tape t; TapeScope s(t); t.backward(exp(t.variable(Tensor{1.0, 2.0, 3.0}))); }},
        {"Tape::backward", "a seed of shape [2] for a root [3]", Expect::invalid_argument, "seed shape [2]",
         [] { Tape t; TapeScope s(t); const Var y = exp(t.variable(Tensor{1.0, 2.0, 3.0})); t.backward(y, Tensor{1.0, 1.0}); }},
        {"Var::grad", "a Var recorded before tape.clear()", Expect::logic, "tape.clear()",
         [] { Tape t; TapeScope s(t); const Var x = t.variable(Tensor{1.0}); t.clear(); (void)x.grad(); }},
        {"exp", "a Var recorded before tape.clear()", Expect::logic, "generation",
         [] { Tape t; TapeScope s(t); const Var x = t.variable(Tensor{1.0}); t.clear(); (void)exp(x); }},
        {"mul", "Vars from two different tapes", Expect::logic, "different tapes",
         [] { Tape t1, t2; (void)mul(t1.variable(Tensor{1.0}), t2.variable(Tensor{2.0})); }},
        {"Var::grad", "a constant", Expect::logic, "constant",
         [] { (void)Var(Tensor{1.0}).grad(); }},
        {"Backward::accumulate", "input 1 of a one-input op", Expect::logic, "asked for input 1 of an op with 1 inputs",
         [] { Tape t; TapeScope s(t); const Var x = t.variable(Tensor{1.0});
              t.backward(record("one", Tensor{1.0}, {x}, [](Backward& ctx) { ctx.accumulate(1, ctx.grad()); })); }},
        {"Tape::variable", "an undefined tensor", Expect::invalid_argument, "Tape::variable",
         [] { Tape t; (void)t.variable(Tensor()); }},
        {"add (Var)", "[2] + [3]", Expect::invalid_argument, "[3]",
         [] { Tape t; (void)add(t.variable(Tensor{1.0, 2.0}), t.variable(Tensor{1.0, 2.0, 3.0})); }},
        {"matmul (Var)", "[1, 2] · [3, 1]", Expect::invalid_argument, "matmul",
         [] { Tape t; (void)matmul(t.variable(Tensor::ones({1, 2})), t.variable(Tensor::ones({3, 1}))); }},
        {"concat (Var)", "no parts", Expect::invalid_argument, "concat",
         [] { (void)concat(std::vector<Var>{}, 0); }},
        {"softmax", "axis 1 of a 1-D Var", Expect::invalid_argument, "axis",
         [] { Tape t; (void)softmax(t.variable(Tensor{1.0, 2.0}), 1); }},
        {"log_softmax", "axis −2 of a 1-D Var", Expect::invalid_argument, "axis",
         [] { Tape t; (void)log_softmax(t.variable(Tensor{1.0, 2.0}), -2); }},
        {"cumsum (Var)", "axis 1 of a 1-D Var", Expect::invalid_argument, "cumsum",
         [] { Tape t; (void)cumsum(t.variable(Tensor{1.0, 2.0}), 1); }},
        {"norm (Var)", "axis 1 of a 1-D Var", Expect::invalid_argument, "axis",
         [] { Tape t; (void)norm(t.variable(Tensor{1.0, 2.0}), 1); }},
        {"log_add_exp", "[2] and [3]", Expect::invalid_argument, "log_add_exp",
         [] { Tape t; (void)log_add_exp(t.variable(Tensor{1.0, 2.0}), t.variable(Tensor{1.0, 2.0, 3.0})); }},
        {"take_along_axis (Var)", "index −1", Expect::invalid_argument, "take_along_axis",
         [] { Tape t; (void)take_along_axis(t.variable(Tensor{1.0, 2.0}), Tensor{-1.0}, 0); }},
        {"grad", "an output with 2 elements", Expect::invalid_argument, "must have one element",
         [] { Tape t; const Var x = t.variable(Tensor{1.0, 2.0}); (void)grad(exp(x), {x}); }},
    };
    run_table(rows);
}

TEST_CASE("nn layer: layers, optimizers, clipping and checkpoints reject what they cannot use") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("tapeflow_bad_input_{}", ::getpid());
    fs::create_directories(dir);
    const std::string truncated = (dir / "truncated.ckpt").string();
    {
        Rng rng(0);
        nn::Linear layer(2, 3, rng);
        nn::save_checkpoint(truncated, layer);
        fs::resize_file(truncated, fs::file_size(truncated) - 9);
    }
    const std::string other = (dir / "other.ckpt").string();
    {
        Rng rng(0);
        nn::Linear layer(3, 3, rng);
        nn::save_checkpoint(other, layer);
    }
    const std::vector<Row> rows{
        {"nn::Linear", "in_features = 0", Expect::invalid_argument, "Linear",
         [] { Rng rng(0); nn::Linear(0, 3, rng); }},
        {"nn::Linear::forward", "x [4, 3] for a 2 → 3 layer", Expect::invalid_argument, "[4, 3]",
         [] { Rng rng(0); nn::Linear l(2, 3, rng); (void)l(Var(Tensor::ones({4, 3}))); }},
        {"nn::linear", "a bias [2] for a weight [3, 4]", Expect::invalid_argument, "linear",
         [] { (void)nn::linear(Var(Tensor::ones({1, 3})), Var(Tensor::ones({3, 4})), Var(Tensor::ones({2}))); }},
        {"nn::Conv2d", "a 2 × 2 kernel", Expect::invalid_argument, "odd",
         [] { Rng rng(0); nn::Conv2d(2, 3, 2, rng); }},
        {"nn::Conv2d::forward", "3 channels into a 2 → 3 layer", Expect::invalid_argument, "[1, 3, 4, 4]",
         [] { Rng rng(0); nn::Conv2d c(2, 3, 3, rng); (void)c(Var(Tensor::ones({1, 3, 4, 4}))); }},
        {"nn::weight_norm", "g [2] for v [3, 2]", Expect::invalid_argument, "weight_norm",
         [] { (void)nn::weight_norm(Var(Tensor::ones({3, 2})), Var(Tensor::ones({2}))); }},
        {"nn::BatchNorm2d", "one value per channel in training", Expect::invalid_argument, "N·H·W ≥ 2",
         [] { nn::BatchNorm2d bn(2); (void)bn(Var(Tensor::ones({1, 2, 1, 1}))); }},
        {"nn::make_resnet", "hidden = 0", Expect::invalid_argument, "hidden 0",
         [] { Rng rng(0); (void)nn::make_resnet(1, 2, rng, {.hidden = 0}); }},
        {"nn::linear_relu", "a bias [2] for a weight [3, 4]", Expect::invalid_argument, "linear_relu",
         [] { (void)nn::linear_relu(Var(Tensor::ones({1, 3})), Var(Tensor::ones({3, 4})), Var(Tensor::ones({2}))); }},
        {"nn::MLP", "a single size (no layer)", Expect::invalid_argument, "MLP",
         [] { Rng rng(0); nn::MLP({2}, rng); }},
        {"nn::MLP", "a zero hidden size", Expect::invalid_argument, "MLP",
         [] { Rng rng(0); nn::MLP({2, 0, 1}, rng); }},
        {"nn::initialize", "normal with σ = −1", Expect::invalid_argument, "normal",
         [] { Rng rng(0); (void)nn::initialize(nn::Init::normal(-1.0), {2, 2}, 2, 2, rng); }},
        {"nn::initialize", "kaiming_uniform with fan_in = 0", Expect::invalid_argument, "fan_in",
         [] { Rng rng(0); (void)nn::initialize(nn::Init::kaiming_uniform(), {2, 2}, 0, 2, rng); }},
        {"nn::SGD", "lr = −1", Expect::invalid_argument, "SGD: the learning rate must be finite and ≥ 0, got -1",
         [] { Parameter p(Tensor{1.0}); nn::SGD({&p}, {.lr = -1.0}); }},
        {"nn::Adam", "β₁ = 1", Expect::invalid_argument, "beta1",
         [] { Parameter p(Tensor{1.0}); nn::Adam({&p}, {.beta1 = 1.0}); }},
        {"nn::Adam", "lr = NaN", Expect::invalid_argument, "Adam: the learning rate must be finite and ≥ 0, got nan",
         [] { Parameter p(Tensor{1.0}); nn::Adam({&p}, {.lr = kNaN}); }},
        {"nn::Adam", "no parameters", Expect::invalid_argument, "Adam",
         [] { nn::Adam({}, {}); }},
        {"nn::Adam", "one parameter twice", Expect::invalid_argument, "Adam",
         [] { Parameter p(Tensor{1.0}); nn::Adam({&p, &p}, {}); }},
        {"Optimizer::set_learning_rate", "+inf", Expect::invalid_argument, "learning",
         [] { Parameter p(Tensor{1.0}); nn::Adam adam({&p}); adam.set_learning_rate(kInf); }},
        {"Optimizer::step", "a gradient of the wrong shape", Expect::invalid_argument, "shape",
         [] { Parameter p(Tensor{1.0, 2.0}); p.grad = Tensor{1.0}; nn::Adam adam({&p}); adam.step(); }},
        {"nn::clip_grad_norm", "max_norm = 0", Expect::invalid_argument, "max_norm",
         [] { Parameter p(Tensor{1.0}); p.grad = Tensor{1.0}; (void)nn::clip_grad_norm({&p}, 0.0); }},
        {"nn::clip_grad_norm", "a NaN gradient with error_if_nonfinite", Expect::runtime, "the total gradient norm is nan",
         [] { Parameter p(Tensor{1.0}); p.grad = Tensor{kNaN};
              (void)nn::clip_grad_norm({&p}, 1.0, {.error_if_nonfinite = true}); }},
        {"nn::clip_grad_value", "clip_value = −1", Expect::invalid_argument, "clip_value",
         [] { Parameter p(Tensor{1.0}); p.grad = Tensor{1.0}; nn::clip_grad_value({&p}, -1.0); }},
        {"nn::load_checkpoint", "a file that does not exist", Expect::runtime, "no_such.ckpt",
         [&] { Rng rng(0); nn::Linear l(2, 3, rng); nn::load_checkpoint((dir / "no_such.ckpt").string(), l); }},
        {"nn::load_checkpoint", "a truncated file", Expect::runtime, "truncated",
         [&] { Rng rng(0); nn::Linear l(2, 3, rng); nn::load_checkpoint(truncated, l); }},
        {"nn::load_checkpoint", "a checkpoint of a 3 → 3 layer into a 2 → 3 layer", Expect::runtime, "weight",
         [&] { Rng rng(0); nn::Linear l(2, 3, rng); nn::load_checkpoint(other, l); }},
        {"nn::save_checkpoint", "a directory that does not exist", Expect::runtime, "no_such_dir",
         [&] { Rng rng(0); nn::Linear l(2, 3, rng); nn::save_checkpoint((dir / "no_such_dir" / "x.ckpt").string(), l); }},
        {"nn::LinearCooldown", "a cool-down of 11 steps out of 10", Expect::invalid_argument, "cooldown_steps must be in [1, total_steps = 10], got 11",
         [] { nn::LinearCooldown(nn::ConstantSchedule(0.1), 10, 11); }},
    };
    run_table(rows);
    fs::remove_all(dir);
}

TEST_CASE("interop files: malformed .npy and safetensors files are reported with the file and the offset") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("tapeflow_bad_interop_{}", ::getpid());
    fs::create_directories(dir);
    // Writes `contents` to dir/name and returns the path.
    const auto file = [&](const std::string& name, const std::string& contents) {
        const std::string path = (dir / name).string();
        std::ofstream(path, std::ios::binary) << contents;
        return path;
    };
    const auto npy = [&](const std::string& name, const std::string& dict, std::size_t data_bytes) {
        const std::string header = dict + "\n";
        return file(name, std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header +
                              std::string(data_bytes, '\0'));
    };
    const std::string f8 = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
    // u64 header length (or `length` when given), the header, `data_bytes` zero bytes.
    const auto st = [&](const std::string& name, const std::string& header, std::size_t data_bytes, std::uint64_t length = 0) {
        std::string out;
        for (int b = 0; b < 8; ++b) out += static_cast<char>(((length ? length : header.size()) >> (8 * b)) & 0xff);
        return file(name, out + header + std::string(data_bytes, '\0'));
    };
    const std::string w16 = R"("w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]})";
    // A model with one parameter "weight" [2, 3], for the name and shape rows.
    struct One : nn::Module {
        One() { register_parameter("weight", Tensor::zeros({2, 3})); }
    };
    const auto load = [](const std::string& path) { One m; nn::load_safetensors(path, m); };
    const Tensor w23 = Tensor::zeros({2, 3}), w32 = Tensor::zeros({3, 2}), v1 = Tensor::zeros({1});
    using Named = std::vector<std::pair<std::string, const Tensor*>>;
    const std::string wrong_shape = (dir / "wrong_shape.safetensors").string();
    nn::save_safetensors(wrong_shape, Named{{"weight", &w32}});
    const std::string missing = (dir / "missing.safetensors").string();
    nn::save_safetensors(missing, Named{{"bias", &v1}});
    const std::string unexpected = (dir / "unexpected.safetensors").string();
    nn::save_safetensors(unexpected, Named{{"weight", &w23}, {"extra", &v1}});

    const std::vector<Row> rows{
        {"load_npy", "a file that does not exist", Expect::runtime, "no_such.npy",
         [&] { (void)load_npy((dir / "no_such.npy").string()); }},
        {"load_npy", "a zip file (wrong magic)", Expect::runtime, "magic.npy: not a .npy file",
         [&] { (void)load_npy(file("magic.npy", "PK\x03\x04 not numpy")); }},
        {"load_npy", "format version 4.0", Expect::runtime, "format version 4.0 at byte 6",
         [&] { (void)load_npy(file("v4.npy", std::string("\x93NUMPY\x04\x00\x10\x00", 10))); }},
        {"load_npy", "a header cut short", Expect::runtime, "cut.npy: truncated at byte 10 while reading the header",
         [&] { (void)load_npy(file("cut.npy", std::string("\x93NUMPY\x01\x00\x76\x00{'descr'", 18))); }},
        {"load_npy", "a header with an unknown key", Expect::runtime, "unexpected key 'x'",
         [&] { (void)load_npy(npy("key.npy", "{'descr': '<f8', 'x': 1}", 0)); }},
        {"load_npy", "malformed shape tuple", Expect::runtime, "tuple.npy: at byte",
         [&] { (void)load_npy(npy("tuple.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2 3), }", 16)); }},
        {"load_npy", "dtype float32", Expect::runtime, "dtype '<f4' is not supported",
         [&] { (void)load_npy(npy("f4.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8)); }},
        {"load_npy", "dtype int64", Expect::runtime, "integers or booleans",
         [&] { (void)load_npy(npy("i8.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 16)); }},
        {"load_npy", "fortran_order True", Expect::runtime, "fortran_order is True",
         [&] { (void)load_npy(npy("fortran.npy", "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", 32)); }},
        {"load_npy", "rank 9", Expect::runtime, "more than 8 dimensions",
         [&] { (void)load_npy(npy("rank9.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 8)); }},
        {"load_npy", "data truncated (15 of 16 bytes)", Expect::runtime, "truncated at byte 68 while reading the data of shape [2] (needs 16 bytes, 15 remain)",
         [&] { (void)load_npy(npy("short.npy", f8, 15)); }},
        {"load_npy", "bytes after the data", Expect::runtime, "1 unexpected bytes after the data",
         [&] { (void)load_npy(npy("long.npy", f8, 17)); }},
        {"save_npy", "an undefined tensor", Expect::invalid_argument, "save_npy",
         [&] { save_npy((dir / "u.npy").string(), Tensor()); }},

        {"nn::load_safetensors", "a file that does not exist", Expect::runtime, "no_such.safetensors",
         [&] { load((dir / "no_such.safetensors").string()); }},
        {"nn::load_safetensors", "5 bytes (no header length)", Expect::runtime, "tiny.safetensors: truncated at byte 0",
         [&] { load(file("tiny.safetensors", "12345")); }},
        {"nn::load_safetensors", "a header length past the end (truncated)", Expect::runtime, "the file is truncated",
         [&] { load(st("cut.safetensors", "{" + w16 + "}", 16, 4096)); }},
        {"nn::load_safetensors", "a header length of 2^40", Expect::runtime, "above the format's limit",
         [&] { load(st("huge.safetensors", "{}", 0, std::uint64_t{1} << 40)); }},
        {"nn::load_safetensors", "a header that is not an object", Expect::runtime, "does not start with '{'",
         [&] { load(st("array.safetensors", "[]", 0)); }},
        {"nn::load_safetensors", "bad JSON", Expect::runtime, "json.safetensors: the header is not valid JSON: at byte 21: expected ':'",
         [&] { load(st("json.safetensors", R"({"w":{"dtype")", 0)); }},
        {"nn::load_safetensors", "dtype F32", Expect::runtime, "dtype F32 is not supported",
         [&] { load(st("f32.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)); }},
        {"nn::load_safetensors", "a shape of 3 elements over 16 bytes", Expect::runtime, "hold 16 bytes, but shape [3] of F64 needs 24",
         [&] { load(st("bytes.safetensors", R"({"w":{"dtype":"F64","shape":[3],"data_offsets":[0,16]}})", 16)); }},
        {"nn::load_safetensors", "overlapping data_offsets", Expect::runtime, "overlaps 'w' at [0, 16]",
         [&] { load(st("overlap.safetensors", "{" + w16 + R"(,"v":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})", 16)); }},
        {"nn::load_safetensors", "data_offsets past the data (truncated)", Expect::runtime, "out of range: the data section holds 15 bytes",
         [&] { load(st("range.safetensors", "{" + w16 + "}", 15)); }},
        {"nn::load_safetensors", "a hole before the first tensor", Expect::runtime, "data bytes [0, 8) belong to no tensor",
         [&] { load(st("hole.safetensors", R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})", 16)); }},
        {"nn::load_safetensors", "bytes after the last tensor", Expect::runtime, "after the last tensor belong to no tensor",
         [&] { load(st("tail.safetensors", "{" + w16 + "}", 24)); }},
        {"nn::load_safetensors", "a name stored twice", Expect::runtime, "'w' is stored twice",
         [&] { load(st("twice.safetensors", "{" + w16 + "," + w16 + "}", 16)); }},
        {"nn::load_safetensors", "metadata that is not strings", Expect::runtime, "__metadata__ \"n\"",
         [&] { load(st("meta.safetensors", R"({"__metadata__":{"n":1}})", 0)); }},
        {"nn::load_safetensors", "a [3, 2] weight for a [2, 3] parameter", Expect::runtime, "tensor 'weight' has shape [3, 2], the model expects [2, 3]",
         [&] { load(wrong_shape); }},
        {"nn::load_safetensors", "a file without the model's tensor", Expect::runtime, "the file has no tensor 'weight'",
         [&] { load(missing); }},
        {"nn::load_safetensors", "a tensor the model does not have", Expect::runtime, "a tensor 'extra' of shape [1] that the model does not have",
         [&] { load(unexpected); }},
        {"nn::save_safetensors", "a name used twice", Expect::invalid_argument, "the name 'w' is used twice",
         [&] { nn::save_safetensors((dir / "dup.safetensors").string(), Named{{"w", &v1}, {"w", &v1}}); }},
    };
    run_table(rows);
    fs::remove_all(dir);
}

TEST_CASE("flows layer: bijectors, flows, objectives and training reject bad sizes, data and parameters") {
    const std::vector<Row> rows{
        // Construction.
        {"flows::Planar", "D = 0", Expect::invalid_argument, "Planar",
         [] { Rng rng(0); flows::Planar(0, rng); }},
        {"flows::Planar", "init_std = −1", Expect::invalid_argument, "init_std",
         [] { Rng rng(0); flows::Planar(2, rng, {.init_std = -1.0}); }},
        {"flows::Radial", "D = 0", Expect::invalid_argument, "Radial",
         [] { Rng rng(0); flows::Radial(0, rng); }},
        {"flows::Affine", "loc [2] and log_scale [3]", Expect::invalid_argument, "Affine",
         [] { flows::Affine(Tensor{0.0, 0.0}, Tensor{0.0, 0.0, 0.0}); }},
        {"flows::StandardNormal", "D = 0", Expect::invalid_argument, "StandardNormal",
         [] { flows::StandardNormal(0); }},
        {"flows::Squeeze", "an image of odd height", Expect::invalid_argument, "even height",
         [] { flows::Squeeze({1, 3, 4}); }},
        {"flows::image_mask", "a channel mask on 3 channels", Expect::invalid_argument, "3 channels",
         [] { (void)flows::image_mask({3, 2, 2}, flows::ImageMask::channel, 0); }},
        {"flows::ImageAffineCoupling::inverse", "a batch [2, 5] for images [1, 2, 2]", Expect::invalid_argument,
         "[1, 2, 2]",
         [] { Rng rng(0); flows::ImageAffineCoupling c({1, 2, 2}, flows::ImageMask::checkerboard, 0, rng);
              (void)c.inverse(Var(Tensor::ones({2, 5}))); }},
        {"flows::ChannelActNorm::inverse", "one value per channel to initialize from", Expect::invalid_argument,
         "N·H·W = 1", [] { flows::ChannelActNorm a({1, 1, 1}); (void)a.inverse(Var(Tensor::ones({1, 1}))); }},
        {"flows::MultiScale", "a last level that factors out", Expect::invalid_argument, "last level",
         [] { std::vector<flows::Level> levels(1); flows::MultiScale(8, std::move(levels)); }},
        {"flows::make_multiscale_realnvp", "a 6 × 6 image squeezed twice", Expect::invalid_argument, "divisible by 4",
         [] { (void)flows::make_multiscale_realnvp({.image = {1, 6, 6}, .scales = 2}); }},
        {"flows::sample_at_temperature", "T = 0", Expect::invalid_argument, "temperature",
         [] { auto f = flows::make_multiscale_realnvp({.image = {1, 4, 4}, .scales = 1, .hidden = {2}});
              Rng rng(0); (void)flows::sample_at_temperature(*f, 2, 0.0, rng); }},
        {"flows::Uniform", "lo = hi", Expect::invalid_argument, "Uniform",
         [] { flows::Uniform(2, 1.0, 1.0); }},
        {"flows::Uniform", "hi = NaN", Expect::invalid_argument, "Uniform",
         [] { flows::Uniform(2, 0.0, kNaN); }},
        {"flows::Permutation", "{0, 0} (not a permutation)", Expect::invalid_argument, "Permutation",
         [] { flows::Permutation({0, 0}); }},
        {"flows::ActNorm", "D = 0", Expect::invalid_argument, "ActNorm",
         [] { flows::ActNorm(0); }},
        {"flows::BatchNorm", "momentum = 2", Expect::invalid_argument, "momentum",
         [] { flows::BatchNorm(2, {.momentum = 2.0}); }},
        {"flows::LogitPreprocessing", "α = 0.5", Expect::invalid_argument, "alpha",
         [] { flows::LogitPreprocessing(0.5); }},
        // Masks and couplings.
        {"flows::alternating_mask", "D = 1", Expect::invalid_argument, "alternating_mask",
         [] { (void)flows::alternating_mask(1, 0); }},
        {"flows::alternating_mask", "parity 2", Expect::invalid_argument, "parity",
         [] { (void)flows::alternating_mask(4, 2); }},
        {"flows::checkerboard_mask", "a 1 × 1 image", Expect::invalid_argument, "checkerboard_mask",
         [] { (void)flows::checkerboard_mask(1, 1, 0); }},
        {"flows::AffineCoupling", "an all-ones mask", Expect::invalid_argument, "mask",
         [] { Rng rng(0); flows::AffineCoupling(Tensor{1.0, 1.0}, {8}, rng); }},
        {"flows::AffineCoupling", "an all-zeros mask", Expect::invalid_argument, "mask",
         [] { Rng rng(0); flows::AffineCoupling(Tensor{0.0, 0.0}, {8}, rng); }},
        {"flows::AffineCoupling", "a mask with a 0.5", Expect::invalid_argument, "mask",
         [] { Rng rng(0); flows::AffineCoupling(Tensor{1.0, 0.5}, {8}, rng); }},
        {"flows::AffineCoupling", "a 2-D mask", Expect::invalid_argument, "mask",
         [] { Rng rng(0); flows::AffineCoupling(Tensor(Shape{1, 2}, {1.0, 0.0}), {8}, rng); }},
        {"flows::AffineCoupling", "a null conditioner", Expect::invalid_argument, "conditioner",
         [] { flows::AffineCoupling(Tensor{1.0, 0.0}, std::unique_ptr<nn::Layer>()); }},
        {"flows::AffineCoupling", "an MLP conditioner 2 → 8 → 2 (needs 2D = 4 outputs)", Expect::invalid_argument, "conditioner",
         [] { Rng rng(0); flows::AffineCoupling(Tensor{1.0, 0.0}, std::make_unique<nn::MLP>(std::vector<std::size_t>{2, 8, 2}, rng)); }},
        {"AffineCoupling::inverse", "x [4, 3] for D = 2", Expect::invalid_argument, "[4, 3]",
         [] { Rng rng(0); flows::AffineCoupling c(Tensor{1.0, 0.0}, {8}, rng); (void)c.inverse(Var(Tensor::ones({4, 3}))); }},
        {"flows::make_realnvp", "checkerboard height · width ≠ dim", Expect::invalid_argument, "width",
         [] { (void)flows::make_realnvp({.dim = 6, .mask = flows::CouplingMask::checkerboard, .height = 2, .width = 2}); }},
        // Dimensions between the pieces of a flow.
        {"flows::Flow", "a Planar(3) layer on a 2-D base", Expect::invalid_argument, "layer 0",
         [] { Rng rng(0); std::vector<std::unique_ptr<flows::Bijector>> v;
              v.push_back(std::make_unique<flows::Planar>(3, rng));
              flows::Flow(std::make_unique<flows::StandardNormal>(2), std::move(v)); }},
        {"flows::Flow", "a null base", Expect::invalid_argument, "base",
         [] { flows::Flow(nullptr); }},
        {"Flow::add", "a null layer", Expect::invalid_argument, "null",
         [] { flows::Flow f(std::make_unique<flows::StandardNormal>(2)); f.add(nullptr); }},
        {"Flow::log_prob", "x [5, 3] for D = 2", Expect::invalid_argument, "[5, 3]",
         [] { (void)planar_flow()->log_prob(Var(Tensor::ones({5, 3}))); }},
        {"Flow::log_prob", "an empty batch [0, 2]", Expect::invalid_argument, "[0, 2]",
         [] { (void)planar_flow()->log_prob(Var(Tensor::zeros({0, 2}))); }},
        {"Flow::log_prob", "a single sample [2] (rank 1)", Expect::invalid_argument, "[2]",
         [] { (void)planar_flow()->log_prob(Var(Tensor::zeros({2}))); }},
        {"Flow::forward", "z [3, 2, 1] (rank 3)", Expect::invalid_argument, "[3, 2, 1]",
         [] { (void)planar_flow()->forward(Var(Tensor::zeros({3, 2, 1}))); }},
        {"StandardNormal::log_prob", "x [4, 1] for D = 2", Expect::invalid_argument, "StandardNormal",
         [] { flows::StandardNormal d(2); (void)d.log_prob(Var(Tensor::zeros({4, 1}))); }},
        {"Planar::inverse", "x [4, 5] for D = 2", Expect::invalid_argument, "Planar",
         [] { Rng rng(0); flows::Planar p(2, rng); (void)p.inverse(Var(Tensor::zeros({4, 5}))); }},
        {"Logit::forward", "z = 1.5 outside (0, 1)", Expect::invalid_argument, "Logit",
         [] { flows::Logit l; (void)l.forward(Var(Tensor(Shape{1, 2}, {0.5, 1.5}))); }},
        {"Sigmoid::inverse", "x = 0 (the boundary of (0, 1))", Expect::invalid_argument, "Sigmoid",
         [] { flows::Sigmoid l; (void)l.inverse(Var(Tensor(Shape{1, 2}, {0.5, 0.0}))); }},
        {"BatchNorm::inverse", "a batch of 1 in training mode", Expect::invalid_argument, "BatchNorm",
         [] { flows::BatchNorm b(2); (void)b.inverse(Var(Tensor(Shape{1, 2}, {0.5, 1.5}))); }},
        // Objectives, data and targets.
        {"flows::forward_kl", "x [8, 3] for D = 2", Expect::invalid_argument, "[8, 3]",
         [] { (void)flows::forward_kl(*planar_flow(), Var(Tensor::ones({8, 3}))); }},
        {"flows::reverse_kl", "n = 0 samples", Expect::invalid_argument, "reverse_kl",
         [] { Rng rng(0); (void)flows::reverse_kl(*planar_flow(), flows::U1, 0, 1.0, rng); }},
        {"flows::reverse_kl", "β = NaN", Expect::invalid_argument, "β must be finite, got nan",
         [] { Rng rng(0); (void)flows::reverse_kl(*planar_flow(), flows::U1, 4, kNaN, rng); }},
        {"flows::reverse_kl", "an energy returning [n, 1] instead of [n]", Expect::invalid_argument, "[4, 1]",
         [] { Rng rng(0); (void)flows::reverse_kl(*planar_flow(), [](const Var& z) { return narrow(z, 1, 0, 1); }, 4, 1.0, rng); }},
        {"flows::U1", "z [4, 3]", Expect::invalid_argument, "[4, 3]",
         [] { (void)flows::U1(Var(Tensor::zeros({4, 3}))); }},
        {"flows::dataset", "an unknown name", Expect::invalid_argument, "moons",
         [] { (void)flows::dataset("spiral_galaxy"); }},
        {"flows::target", "an unknown name", Expect::invalid_argument, "u1",
         [] { (void)flows::target("u9"); }},
        {"flows::sample_moons", "noise = −0.1", Expect::invalid_argument, "noise",
         [] { Rng rng(0); (void)flows::sample_moons(4, rng, -0.1); }},
        {"flows::box_grid", "box = 0", Expect::invalid_argument, "box",
         [] { (void)flows::box_grid(0.0, 10); }},
        {"flows::evaluate_nll", "data [10, 3] for D = 2", Expect::invalid_argument, "[10, 3]",
         [] { (void)flows::evaluate_nll(*planar_flow(), Tensor::ones({10, 3})); }},
        // Training: bad options, and NaN appearing in the loss or the gradient.
        {"flows::train_forward_kl", "steps = 0", Expect::invalid_argument, "steps",
         [] { (void)flows::train_forward_kl(*planar_flow(), moons, {.steps = 0}); }},
        {"flows::train_forward_kl", "batch = 0", Expect::invalid_argument, "batch",
         [] { (void)flows::train_forward_kl(*planar_flow(), moons, {.batch = 0}); }},
        {"flows::train_forward_kl", "learning_rate = NaN", Expect::invalid_argument, "learning",
         [] { (void)flows::train_forward_kl(*planar_flow(), moons, {.steps = 1, .learning_rate = kNaN}); }},
        {"flows::train_forward_kl", "clip_norm = 0", Expect::invalid_argument, "clip",
         [] { (void)flows::train_forward_kl(*planar_flow(), moons, {.steps = 1, .clip_norm = 0.0}); }},
        {"flows::train_forward_kl", "annealing (meaningless for maximum likelihood)", Expect::invalid_argument, "annealing",
         [] { (void)flows::train_forward_kl(*planar_flow(), moons, {.steps = 1, .annealing = flows::AnnealingSchedule{}}); }},
        {"flows::train_forward_kl", "an empty sampler", Expect::invalid_argument, "sampler",
         [] { (void)flows::train_forward_kl(*planar_flow(), flows::Sampler(), {.steps = 1}); }},
        {"flows::train_forward_kl", "a sampler that returns NaN data", Expect::runtime, "step",
         [] { (void)flows::train_forward_kl(*planar_flow(), [](std::size_t n, Rng&) { return Tensor::full({n, 2}, kNaN); },
                                            {.steps = 3, .batch = 8}); }},
        {"flows::train_forward_kl", "a sampler returning [n, 3] for D = 2", Expect::invalid_argument, "[8, 3]",
         [] { (void)flows::train_forward_kl(*planar_flow(), [](std::size_t n, Rng&) { return Tensor::ones({n, 3}); },
                                            {.steps = 3, .batch = 8}); }},
        {"flows::train_forward_kl", "a coupling whose conditioner has a NaN weight", Expect::runtime, "step 1",
         [] {
             Rng rng(0);
             std::vector<std::unique_ptr<flows::Bijector>> v;
             auto coupling = std::make_unique<flows::AffineCoupling>(Tensor{1.0, 0.0}, std::vector<std::size_t>{8}, rng);
             auto& mlp = dynamic_cast<nn::MLP&>(coupling->conditioner());
             mlp.linear(0).weight().value[0] = kNaN;
             v.push_back(std::move(coupling));
             flows::Flow f(std::make_unique<flows::StandardNormal>(2), std::move(v));
             (void)flows::train_forward_kl(f, moons, {.steps = 3, .batch = 8});
         }},
        {"flows::train_reverse_kl", "a Planar layer whose u is NaN", Expect::runtime, "step 1",
         [] {
             auto f = planar_flow();
             dynamic_cast<flows::Planar&>(f->layer(0)).u().value[0] = kNaN;
             (void)flows::train_reverse_kl(*f, flows::U1, {.steps = 3, .batch = 8});
         }},
        {"flows::train_reverse_kl", "an energy that is +inf everywhere", Expect::runtime, "step",
         [] { (void)flows::train_reverse_kl(*planar_flow(), [](const Var& z) { return sum(z, 1) * 0.0 + kInf; },
                                            {.steps = 3, .batch = 8}); }},
        {"flows::train_reverse_kl", "an empty energy", Expect::invalid_argument, "energy",
         [] { (void)flows::train_reverse_kl(*planar_flow(), flows::Energy(), {.steps = 1}); }},
        {"flows::pushforward_log_prob", "x [4, 3] for a 2-D base", Expect::invalid_argument, "expects dimension D = 2, got shape [4, 3]",
         [] { flows::StandardNormal base(2); (void)flows::pushforward_log_prob(*planar_flow(), base, Var(Tensor::ones({4, 3}))); }},
        {"flows::check_bijector", "gradcheck_at [1, 3] for points [1, 2]", Expect::invalid_argument, "gradcheck_at must be a non-empty batch [M, 2]",
         [] { flows::ConformanceOptions o; o.gradcheck_at = Tensor::ones({1, 3});
              (void)flows::check_bijector(*planar_flow(), Tensor::ones({1, 2}), o); }},
        {"flows::MADE", "a hidden layer of 0 units", Expect::invalid_argument, "at least 1 unit",
         [] { Rng rng(0); flows::MADE m(2, rng, {.hidden = {0}}); }},
        {"MADE::forward", "a context given to a MADE without one", Expect::invalid_argument, "takes no context",
         [] { Rng rng(0); flows::MADE m(2, rng); (void)m.forward(Var(Tensor::ones({3, 2})), Var(Tensor::ones({3, 1}))); }},
        {"MAF::inverse", "x [4, 3] for D = 2", Expect::invalid_argument, "expects dimension D = 2, got shape [4, 3]",
         [] { Rng rng(0); flows::MAF f(2, rng); (void)f.inverse(Var(Tensor::ones({4, 3}))); }},
        {"IAF::forward", "a conditional IAF called without its context", Expect::invalid_argument, "takes a context of C = 1",
         [] { Rng rng(0); flows::IAF f(2, rng, {.context_dim = 1}); (void)f.forward(Var(Tensor::ones({4, 2}))); }},
        {"flows::ConditionalFlow::log_prob", "contexts [3, 1] for x [4, 2]", Expect::invalid_argument, "expects a context [4, 1]",
         [] { Rng rng(0); flows::ConditionalFlow f(std::make_unique<flows::StandardNormal>(2), 1);
              f.add(std::make_unique<flows::MAF>(2, rng, flows::AutoregressiveOptions{.context_dim = 1}));
              (void)f.log_prob(Var(Tensor::ones({4, 2})), Var(Tensor::ones({3, 1}))); }},
        {"flows::AtContext", "a context of 2 entries for C = 1", Expect::invalid_argument, "expects one context [1]",
         [] { Rng rng(0); flows::MAF f(2, rng, {.context_dim = 1}); flows::AtContext at(f, Tensor{1.0, 2.0}); }},
        {"flows::check_conditional_bijector", "contexts [2, 3] for C = 1", Expect::invalid_argument, "contexts must be a non-empty batch [K, 1]",
         [] { Rng rng(0); flows::MAF f(2, rng, {.context_dim = 1});
              (void)flows::check_conditional_bijector(f, Tensor::ones({2, 2}), Tensor::ones({2, 3})); }},
    };
    run_table(rows);
}

TEST_CASE("a NaN is never swallowed on its way through relu, maximum and minimum") {
    // relu(x) = x > 0 ? x : 0 and std::fmax would turn NaN into a number: a NaN weight behind a
    // ReLU would then train "fine" forever. Like PyTorch, NaN propagates.
    CHECK(std::isnan(relu(Tensor{kNaN})[0]));
    CHECK(std::isnan(maximum(Tensor{kNaN}, Tensor{1.0})[0]));
    CHECK(std::isnan(maximum(Tensor{1.0}, Tensor{kNaN})[0]));
    CHECK(std::isnan(minimum(Tensor{kNaN}, Tensor{1.0})[0]));
    CHECK(std::isnan(minimum(Tensor{1.0}, Tensor{kNaN})[0]));
    CHECK(std::isnan(clamp(Tensor{kNaN}, 0.0, 1.0)[0]));
    CHECK(relu(Tensor{-2.0, 0.0, 3.0}).to_vector() == std::vector<double>{0.0, 0.0, 3.0});
    CHECK(maximum(Tensor{1.0, -kInf}, Tensor{2.0, 0.0}).to_vector() == std::vector<double>{2.0, 0.0});
}

TEST_CASE("optimizer steps with NaN gradients: the documented behaviour") {
    // An optimizer applies what it is given, as torch.optim does: a NaN gradient makes a NaN weight.
    // The guards sit one level up: clip_grad_norm returns the non-finite norm (or throws with
    // error_if_nonfinite), and flows::train_* check it and throw naming the step before the update.
    Parameter p(Tensor{1.0, 2.0});
    p.grad = Tensor{kNaN, 0.5};
    nn::Adam adam({&p}, {.lr = 0.1});
    adam.step();
    CHECK(std::isnan(p.value[0]));
    CHECK(std::isfinite(p.value[1]));
    CHECK(std::isnan(nn::grad_norm({&p})));
}

// ---- the tutorials' command lines ------------------------------------------------------------------

namespace {

struct Run {
    int exit_code;
    std::string err;
};

// Runs `exe args` with stdout discarded and stderr captured.
Run run(const fs::path& exe, const std::string& args) {
    const fs::path err_file = fs::temp_directory_path() / fmt::format("tapeflow_cli_{}.err", ::getpid());
    const std::string command = fmt::format("'{}' {} >/dev/null 2>'{}'", exe.string(), args, err_file.string());
    const int status = std::system(command.c_str());
    std::ifstream in(err_file);
    std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fs::remove(err_file);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, err};
}

// The tutorial executables in the build directory (passed by meson as TAPEFLOW_TUTORIALS_DIR).
std::vector<fs::path> tutorial_executables() {
    const char* dir = std::getenv("TAPEFLOW_TUTORIALS_DIR");
    if (!dir) return {};
    std::vector<fs::path> exes;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        const bool numbered = name.size() > 3 && std::isdigit(static_cast<unsigned char>(name[0])) &&
                              std::isdigit(static_cast<unsigned char>(name[1])) && name[2] == '_';
        if (numbered && entry.is_regular_file() && name.find('.') == std::string::npos) exes.push_back(entry.path());
    }
    std::sort(exes.begin(), exes.end());
    return exes;
}

}  // namespace

TEST_CASE("tutorials: a bad command line exits with code 2, the problem and a usage line on stderr") {
    const std::vector<fs::path> exes = tutorial_executables();
    if (!std::getenv("TAPEFLOW_TUTORIALS_DIR")) {
        MESSAGE("TAPEFLOW_TUTORIALS_DIR is not set (run through meson test): tutorial rows skipped");
        return;
    }
    REQUIRE(exes.size() >= 5);
    struct CliRow {
        const char* bad_input;
        std::string args;
        std::string message;
    };
    const std::vector<CliRow> rows{
        {"an unknown option", "--no-such-option", "unknown option '--no-such-option'"},
        {"a seed that is not a number", "--seed twelve", "--seed"},
        {"a negative seed", "--seed -3", "--seed"},
        {"an option without its value", "--out", "--out"},
        {"a stray argument", "stray", "stray"},
    };
    for (const fs::path& exe : exes) {
        const std::string name = exe.filename().string();
        for (const CliRow& row : rows) {
            INFO(name << " with " << row.bad_input << " (" << row.args << ")");
            const Run r = run(exe, row.args);
            INFO("stderr: " << r.err);
            CHECK(r.exit_code == 2);
            CHECK(r.err.find(row.message) != std::string::npos);
            CHECK(r.err.find("usage: " + name) != std::string::npos);
        }
    }
}

// ---- writes the disk refuses -----------------------------------------------------------------------

TEST_CASE("tutorial 00 on a disk that refuses writes fails naming tape.dot and the reason, leaving no file") {
    const char* dir = std::getenv("TAPEFLOW_TUTORIALS_DIR");
    if (!dir) {
        MESSAGE("TAPEFLOW_TUTORIALS_DIR is not set (run through meson test): skipped");
        return;
    }
    const fs::path out = fs::temp_directory_path() / fmt::format("tapeflow_full_disk_{}", ::getpid());
    fs::remove_all(out);
    const test::ChildResult r = test::run_child((fs::path(dir) / "00_tensors_and_the_tape").string(),
                                                {"--quick", "--out", out.string()}, {.refuse_writes = true});
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find((out / "tape.dot").string()) != std::string::npos);
    CHECK(r.err.find("File too large") != std::string::npos);
    CHECK(!fs::exists(out / "tape.dot"));  // not a 0-byte file claiming to be the graph
    fs::remove_all(out);
}

TEST_CASE("tutorial 07 with a hidden size memory cannot hold is refused by its range, naming the option") {
    const char* dir = std::getenv("TAPEFLOW_TUTORIALS_DIR");
    if (!dir) {
        MESSAGE("TAPEFLOW_TUTORIALS_DIR is not set (run through meson test): skipped");
        return;
    }
    const fs::path out = fs::temp_directory_path() / fmt::format("tapeflow_hidden_{}", ::getpid());
    // A 100000 × 100000 weight would be 80 GB: the option's bounds refuse it before anything is allocated
    // (an allocation that fails anyway is named by AllocationError: see the memory-safety table).
    const test::ChildResult r = test::run_child((fs::path(dir) / "07_realnvp").string(),
                                                {"--quick", "--out", out.string(), "--hidden", "100000"});
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("option --hidden: 100000 is out of range 1..4096") != std::string::npos);
    fs::remove_all(out);
}
