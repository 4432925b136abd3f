#include "flows/cnf.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/distributions.hpp"

namespace tapeflow::flows {

// ---- the vector field ---------------------------------------------------------------------------

TimeDependentField::TimeDependentField(std::size_t dim, const std::vector<std::size_t>& hidden, Rng& rng) : dim_(dim) {
    if (dim == 0) throw std::invalid_argument("TimeDependentField: dim must be at least 1");
    std::vector<std::size_t> sizes{dim};
    for (const std::size_t h : hidden) {
        if (h == 0) throw std::invalid_argument("TimeDependentField: hidden widths must be at least 1");
        sizes.push_back(h);
    }
    sizes.push_back(dim);
    for (std::size_t k = 0; k + 1 < sizes.size(); ++k)
        layers_.push_back(&register_module(fmt::format("layers.{}", k),
                                           std::make_unique<nn::Linear>(sizes[k] + 1, sizes[k + 1], rng)));
}

Var TimeDependentField::forward(const Var& z, double t) { return forward_with_tangents(z, t, {}).value; }

FieldTangents TimeDependentField::forward_with_tangents(const Var& z, double t, const std::vector<Var>& tangents) {
    require_batch(z, dim_, "TimeDependentField::forward");
    if (!std::isfinite(t)) throw std::invalid_argument(fmt::format("TimeDependentField::forward: t = {} is not finite", t));
    for (const Var& v : tangents)
        if (v.shape() != z.shape())
            throw std::invalid_argument(
                fmt::format("TimeDependentField::forward_with_tangents: a tangent has shape {}, z has {}", v.shape(), z.shape()));
    const Var time(Tensor::full(Shape{z.shape()[0], 1}, t));
    FieldTangents out{z, tangents};
    for (std::size_t k = 0; k < layers_.size(); ++k) {
        // matmul + add rather than nn::linear's fused node: these ops have rules of every order.
        nn::Linear& layer = *layers_[k];
        const Var w = layer.weight().var();
        out.value = matmul(concat({out.value, time}, 1), w) + layer.bias()->var();
        // The tangent of [h, t] is [ḣ, 0] (t is not varied): only the weight's rows for h act on it.
        const Var w_h = out.tangents.empty() ? Var() : narrow(w, 0, 0, layer.in_features() - 1);
        for (Var& v : out.tangents) v = matmul(v, w_h);
        if (k + 1 < layers_.size()) {
            out.value = tanh(out.value);
            if (out.tangents.empty()) continue;
            const Var slope = 1.0 - square(out.value);  // tanh' = 1 − tanh²
            for (Var& v : out.tangents) v = slope * v;
        }
    }
    return out;
}

std::string TimeDependentField::name() const {
    std::string sizes = fmt::format("{}", dim_);
    for (const nn::Linear* layer : layers_) sizes += fmt::format(" → {}", layer->out_features());
    return fmt::format("TimeDependentField({}, tanh, t at every layer)", sizes);
}

// ---- the trace ----------------------------------------------------------------------------------

Var exact_trace(TimeDependentField& field, const Var& z, double t, Var* fz) {
    require_batch(z, field.dim(), "exact_trace");
    const std::size_t n = z.shape()[0], d = z.shape()[1];
    std::vector<Var> basis;
    for (std::size_t j = 0; j < d; ++j) {
        Tensor e = Tensor::zeros(Shape{n, d});
        for (std::size_t i = 0; i < n; ++i) e[i * d + j] = 1.0;
        basis.emplace_back(std::move(e));
    }
    const FieldTangents out = field.forward_with_tangents(z, t, basis);
    // (∂f/∂z) e_j is column j of the Jacobian; its j-th entry is the diagonal element.
    Var trace = narrow(out.tangents[0], 1, 0, 1);
    for (std::size_t j = 1; j < d; ++j) trace = trace + narrow(out.tangents[j], 1, j, 1);
    if (fz) *fz = out.value;
    return reshape(trace, Shape{n});
}

Var hutchinson_trace(TimeDependentField& field, const Var& z, double t, const Tensor& eps, Var* fz) {
    require_batch(z, field.dim(), "hutchinson_trace");
    if (eps.shape() != z.shape())
        throw std::invalid_argument(fmt::format("hutchinson_trace: ε has shape {}, z has {}", eps.shape(), z.shape()));
    const Var e(eps);
    const FieldTangents out = field.forward_with_tangents(z, t, {e});
    if (fz) *fz = out.value;
    return sum(e * out.tangents[0], 1);
}

Tensor hutchinson_noise(TraceEstimator trace, std::size_t n, std::size_t d, Rng& rng) {
    Tensor eps(Shape{n, d});
    for (double& v : eps.span()) {
        if (trace == TraceEstimator::hutchinson_rademacher) v = rng.uniform() < 0.5 ? -1.0 : 1.0;
        else if (trace == TraceEstimator::hutchinson_gaussian) v = rng.normal();
        else throw std::invalid_argument("hutchinson_noise: the exact trace draws no noise");
    }
    return eps;
}

std::string_view to_string(TraceEstimator trace) {
    switch (trace) {
        case TraceEstimator::exact: return "exact trace";
        case TraceEstimator::hutchinson_rademacher: return "Hutchinson, Rademacher";
        case TraceEstimator::hutchinson_gaussian: return "Hutchinson, Gaussian";
    }
    return "?";
}

// ---- the flow -----------------------------------------------------------------------------------

namespace {
std::unique_ptr<TimeDependentField> make_field(const CNFOptions& options) {
    Rng rng(options.seed);
    return std::make_unique<TimeDependentField>(options.dim, options.hidden, rng);
}
}  // namespace

CNF::CNF(const CNFOptions& options)
    : field_(&register_module("field", make_field(options))),
      steps_(options.steps),
      trace_(options.trace),
      noise_rng_(options.noise_seed) {
    set_steps(options.steps);
}

void CNF::set_steps(std::size_t steps) {
    if (steps == 0) throw std::invalid_argument("CNF: steps must be at least 1");
    steps_ = steps;
}

std::string CNF::name() const {
    return fmt::format("CNF({}-D, {} RK4 steps, {})", field_->dim(), steps_, to_string(trace_));
}

ode::State CNF::augmented_field(const ode::State& y, double t, const Tensor& eps) {
    Var fz;
    const Var trace = trace_ == TraceEstimator::exact ? exact_trace(*field_, y[0], t, &fz)
                                                      : hutchinson_trace(*field_, y[0], t, eps, &fz);
    return {fz, trace};
}

Transformed CNF::integrate(const Var& start, double t0, double t1, const std::string& who) {
    require_batch(start, dim(), who);
    const std::size_t n = start.shape()[0];
    const Tensor eps = trace_ == TraceEstimator::exact ? Tensor() : hutchinson_noise(trace_, n, dim(), noise_rng_);
    const ode::Field f = [&](const ode::State& y, double t) { return augmented_field(y, t, eps); };
    // ℓ(t0) = 0 and dℓ/dt = tr: ℓ(t1) = ∫_{t0}^{t1} tr dt, the log-det of the map t0 → t1 (eq. 4).
    const ode::State end = ode::rk4(f, {start, Var(Tensor::zeros(Shape{n}))}, t0, t1, steps_);
    return {end[0], end[1]};
}

Transformed CNF::forward(const Var& z) { return integrate(z, 0.0, 1.0, "CNF::forward"); }
Transformed CNF::inverse(const Var& x) { return integrate(x, 1.0, 0.0, "CNF::inverse"); }

std::vector<Tensor> CNF::trajectory(const Tensor& start, double t0, double t1) {
    const Var first(start);
    require_batch(first, dim(), "CNF::trajectory");
    // Positions only: the field alone, without the trace, and nothing recorded.
    NoGrad no_grad;
    const ode::Field f = [&](const ode::State& y, double t) { return ode::State{field_->forward(y[0], t)}; };
    std::vector<Tensor> out;
    for (const ode::State& y : ode::rk4_trajectory(f, {first}, t0, t1, steps_)) out.push_back(y[0].value());
    return out;
}

std::unique_ptr<Flow> make_cnf(const CNFOptions& options) {
    std::vector<std::unique_ptr<Bijector>> layers;
    layers.push_back(std::make_unique<CNF>(options));
    return std::make_unique<Flow>(std::make_unique<StandardNormal>(options.dim), std::move(layers));
}

}  // namespace tapeflow::flows
