#include "autograd/gradcheck.hpp"

#include "autograd/forward.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "autograd/elementwise.hpp"
#include "autograd/forward.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"

namespace tapeflow {

Tensor jacobian(const std::function<Var(const Var&)>& f, const Tensor& x) {
    require_defined(x, "jacobian");
    Tape tape;
    TapeScope scope(tape);
    const Var xv = tape.variable(x.clone());
    const Var y = f(xv);
    Tensor J = Tensor::zeros(Shape{y.numel(), x.numel()});
    if (!y.requires_grad()) return J;  // f does not depend on x
    Tensor seed = Tensor::zeros(y.shape());
    for (std::size_t i = 0; i < y.numel(); ++i) {
        seed[i] = 1;
        tape.backward(y, seed, false);
        seed[i] = 0;
        const Tensor g = tape.grad(xv);
        std::copy_n(g.data(), g.numel(), J.data() + i * x.numel());
    }
    return J;
}

namespace {

// Rows are output elements, columns the elements of one input (or parameter).
struct Jacobians {
    std::vector<Tensor> blocks;  // one [out, in_k] block per differentiated tensor
};

Tensor evaluate_value(const VarFunction& f, const std::vector<Tensor>& inputs) {
    NoGrad no_grad;
    std::vector<Var> vars(inputs.begin(), inputs.end());
    return f(vars).value().clone();
}

// Central differences: column j of block k is (f(x + eps·e_j) − f(x − eps·e_j)) / 2eps.
Jacobians numeric_jacobians(const VarFunction& f, std::vector<Tensor>& inputs, const GradcheckOptions& o,
                            std::size_t out_numel) {
    Jacobians J;
    std::vector<Tensor*> targets;
    for (Tensor& t : inputs) targets.push_back(&t);
    for (Parameter* p : o.parameters) targets.push_back(&p->value);
    for (Tensor* target : targets) {
        Tensor block = Tensor::zeros(Shape{out_numel, target->numel()});
        for (std::size_t j = 0; j < target->numel(); ++j) {
            const double saved = (*target)[j];
            (*target)[j] = saved + o.eps;
            const Tensor plus = evaluate_value(f, inputs);
            (*target)[j] = saved - o.eps;
            const Tensor minus = evaluate_value(f, inputs);
            (*target)[j] = saved;  // restored exactly: the same double is written back
            for (std::size_t i = 0; i < out_numel; ++i)
                block[i * target->numel() + j] = (plus[i] - minus[i]) / (2 * o.eps);
        }
        J.blocks.push_back(std::move(block));
    }
    return J;
}

// Rows by one-hot backward passes: row i of block k is d out_i / d input_k.
Jacobians analytic_jacobians(Tape& tape, const Var& out, const std::vector<Var>& vars, const GradcheckOptions& o) {
    Jacobians J;
    for (const Var& v : vars) J.blocks.push_back(Tensor::zeros(Shape{out.numel(), v.numel()}));
    for (Parameter* p : o.parameters) J.blocks.push_back(Tensor::zeros(Shape{out.numel(), p->numel()}));
    if (!out.requires_grad()) return J;
    Tensor seed = Tensor::zeros(out.shape());
    for (std::size_t i = 0; i < out.numel(); ++i) {
        for (Parameter* p : o.parameters) p->zero_grad();
        seed[i] = 1;
        tape.backward(out, seed);
        seed[i] = 0;
        std::size_t k = 0;
        auto put_row = [&](const Tensor& g) {
            std::copy_n(g.data(), g.numel(), J.blocks[k].data() + i * g.numel());
            ++k;
        };
        for (const Var& v : vars) put_row(tape.grad(v));
        for (Parameter* p : o.parameters) put_row(p->grad);
    }
    return J;
}

// The checks zero and fill the parameters' gradients: the caller's gradient tensors are set aside
// (not copied, so a handle the caller holds is never written to) and put back afterwards, even if f
// throws.
class SetAsideGrads {
public:
    explicit SetAsideGrads(const std::vector<Parameter*>& parameters) : parameters_(parameters) {
        for (Parameter* p : parameters_) saved_.push_back(std::exchange(p->grad, Tensor::zeros(p->shape())));
    }
    ~SetAsideGrads() {
        for (std::size_t i = 0; i < parameters_.size(); ++i) parameters_[i]->grad = std::move(saved_[i]);
    }
    SetAsideGrads(const SetAsideGrads&) = delete;
    SetAsideGrads& operator=(const SetAsideGrads&) = delete;

private:
    const std::vector<Parameter*>& parameters_;
    std::vector<Tensor> saved_;
};

std::string describe_target(std::size_t k, std::size_t n_inputs) {
    return k < n_inputs ? fmt::format("input {}", k) : fmt::format("parameter {}", k - n_inputs);
}

}  // namespace

GradcheckResult gradcheck(const VarFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& o) {
    for (const Tensor& t : inputs) require_defined(t, "gradcheck");
    std::vector<Tensor> work;
    for (const Tensor& t : inputs) work.push_back(t.clone());
    const SetAsideGrads set_aside(o.parameters);

    Tape tape;
    TapeScope scope(tape);
    std::vector<Var> vars;
    for (const Tensor& t : work) vars.push_back(tape.variable(t));
    const Var out = f(vars);
    const Jacobians analytic = analytic_jacobians(tape, out, vars, o);

    GradcheckResult r;
    std::string problems;
    if (o.check_reentrant && out.requires_grad()) {
        const Jacobians again = analytic_jacobians(tape, out, vars, o);
        for (std::size_t k = 0; k < analytic.blocks.size(); ++k)
            if (!equal(analytic.blocks[k], again.blocks[k])) {
                r.ok = false;
                problems += fmt::format("  backward is not re-entrant: a second pass gave different gradients for {}\n",
                                        describe_target(k, vars.size()));
            }
    }
    if (o.check_zero_upstream && out.requires_grad()) {
        for (Parameter* p : o.parameters) p->zero_grad();
        tape.backward(out, Tensor::zeros(out.shape()));
        bool all_zero = true;
        for (const Var& v : vars) all_zero = all_zero && max_abs_diff(tape.grad(v), Tensor::zeros(v.shape())) == 0;
        for (Parameter* p : o.parameters) all_zero = all_zero && max_abs_diff(p->grad, Tensor::zeros(p->shape())) == 0;
        if (!all_zero) {
            r.ok = false;
            problems += "  a zero upstream gradient produced non-zero gradients\n";
        }
    }

    const Jacobians numeric = numeric_jacobians(f, work, o, out.numel());
    double worst_ratio = -1;
    for (std::size_t k = 0; k < analytic.blocks.size(); ++k) {
        const Tensor& a = analytic.blocks[k];
        const Tensor& n = numeric.blocks[k];
        const std::size_t cols = a.shape()[1];
        for (std::size_t e = 0; e < a.numel(); ++e) {
            const double err = std::abs(a[e] - n[e]);
            const double tol = o.atol + o.rtol * std::abs(n[e]);
            const double ratio = std::isnan(err) ? INFINITY : err / tol;
            if (ratio > worst_ratio) {
                worst_ratio = ratio;
                r.input = k;
                r.output_element = e / cols;
                r.input_element = e % cols;
                r.analytic = a[e];
                r.numeric = n[e];
                r.error = err;
                r.tolerance = tol;
            }
        }
    }
    if (worst_ratio > 1) r.ok = false;

    const std::string where =
        worst_ratio < 0 ? std::string("no input elements")
                        : fmt::format("{} element {} (d output[{}])", describe_target(r.input, vars.size()),
                                      r.input_element, r.output_element);
    r.report = fmt::format("gradcheck {}: worst at {}: analytic {:.10g}, numeric {:.10g}, |diff| {:.3g} {} tolerance {:.3g}\n",
                           r.ok ? "passed" : "FAILED", where, r.analytic, r.numeric, r.error,
                           worst_ratio > 1 ? ">" : "≤", r.tolerance);
    r.report += problems;
    if (!r.ok) r.report += "recorded tape (execution order):\n" + tape.dump();
    return r;
}

}  // namespace tapeflow


namespace tapeflow {

namespace {
// A fixed upstream gradient with distinct entries (so that no symmetry hides an error).
Tensor upstream(const Shape& shape) {
    Tensor u(shape);
    for (std::size_t i = 0; i < u.numel(); ++i) u[i] = 0.6 + 0.37 * std::sin(1.3 * static_cast<double>(i) + 0.4);
    return u;
}

Var joined_flat(const std::vector<Var>& parts) {
    std::vector<Var> flat;
    for (const Var& p : parts) flat.push_back(flatten(p));
    return concat(flat, 0);
}
}  // namespace

GradcheckResult gradgradcheck(const VarFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& o) {
    for (const Tensor& t : inputs) require_defined(t, "gradgradcheck");
    Shape out_shape;
    {
        NoGrad no_grad;
        std::vector<Var> vars(inputs.begin(), inputs.end());
        out_shape = f(vars).shape();
    }
    const Tensor u = upstream(out_shape);
    // G(x) = Σ_i u_i ∇f_i(x). gradcheck calls it recording (analytic side: with create_graph) and
    // under NoGrad (numeric side: first-order gradients on a private tape, returned as constants).
    const VarFunction G = [&](const std::vector<Var>& vars) -> Var {
        if (grad_enabled()) {
            const Var y = f(vars);
            if (!y.requires_grad()) return Var(Tensor::zeros(Shape{0}));
            return joined_flat(grad(y, vars, u, {.create_graph = true}));
        }
        EnableGrad on;
        Tape tape;
        TapeScope scope(tape);
        std::vector<Var> leaves;
        for (const Var& v : vars) leaves.push_back(tape.variable(v.value().clone()));
        const Var y = f(leaves);
        if (!y.requires_grad()) return Var(Tensor::zeros(Shape{0}));
        std::vector<Var> gs = grad(y, leaves, u);
        return Var(joined_flat(gs).value());
    };
    GradcheckResult r;
    try {
        r = gradcheck(G, inputs, o);
    } catch (const std::logic_error& e) {
        r.ok = false;
        r.report = fmt::format("gradgradcheck FAILED: {}\n", e.what());
        return r;
    }
    r.report = "grad" + r.report;
    return r;
}

GradcheckResult jvpcheck(const VarFunction& f, const std::vector<Tensor>& inputs, const std::vector<Tensor>& tangents,
                         const GradcheckOptions& o) {
    if (tangents.size() != inputs.size())
        throw std::invalid_argument(
            fmt::format("jvpcheck: {} tangents for {} inputs; give one per input", tangents.size(), inputs.size()));
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        require_defined(inputs[k], "jvpcheck");
        require_defined(tangents[k], "jvpcheck");
        if (!(inputs[k].shape() == tangents[k].shape()))
            throw std::invalid_argument(fmt::format("jvpcheck: tangent {} has shape {}, input {} has {}", k,
                                                    tangents[k].shape(), k, inputs[k].shape()));
    }
    // Analytic: J·v by forward mode (autograd/forward.hpp): one pass of f with every input's tangent
    // seeded, each op's tangent rule run as it is recorded.
    Tensor analytic;
    {
        EnableGrad on;
        Tape tape;
        TapeScope scope(tape);
        std::vector<Var> vars;
        for (const Tensor& t : inputs) vars.push_back(tape.variable(t.clone()));
        ForwardLevel level(tape);
        for (std::size_t k = 0; k < vars.size(); ++k) level.seed(vars[k], tangents[k]);
        try {
            analytic = level.tangent(f(vars));
        } catch (const std::logic_error& e) {
            GradcheckResult r;
            r.ok = false;
            r.report = fmt::format("jvpcheck FAILED: {}\n", e.what());
            return r;
        }
    }
    // Numeric: the central difference along v.
    const auto shifted = [&](double s) {
        NoGrad no_grad;
        std::vector<Var> vars;
        for (std::size_t k = 0; k < inputs.size(); ++k) vars.push_back(Var(inputs[k] + tangents[k] * s));
        return f(vars).value().clone();
    };
    const Tensor plus = shifted(o.eps), minus = shifted(-o.eps);
    GradcheckResult r;
    double worst = -1;
    for (std::size_t i = 0; i < analytic.numel(); ++i) {
        const double numeric = (plus[i] - minus[i]) / (2 * o.eps);
        const double err = std::abs(analytic[i] - numeric);
        const double tol = o.atol + o.rtol * std::abs(numeric);
        const double ratio = std::isnan(err) ? INFINITY : err / tol;
        if (ratio > worst) {
            worst = ratio;
            r.output_element = i;
            r.analytic = analytic[i];
            r.numeric = numeric;
            r.error = err;
            r.tolerance = tol;
        }
    }
    r.ok = worst <= 1;
    r.report = fmt::format("jvpcheck {}: worst at output element {}: J·v {:.10g}, central difference {:.10g}, |diff| {:.3g} "
                           "{} tolerance {:.3g}\n",
                           r.ok ? "passed" : "FAILED", r.output_element, r.analytic, r.numeric, r.error,
                           worst > 1 ? ">" : "≤", r.tolerance);
    return r;
}

}  // namespace tapeflow
