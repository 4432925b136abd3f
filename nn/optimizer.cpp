#include "nn/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::nn {

namespace {

// `value` must be finite and ≥ 0 (NaN fails every comparison, so it is caught too).
void require_nonnegative(double value, const char* what, const char* who) {
    if (!(value >= 0) || !std::isfinite(value))
        throw std::invalid_argument(fmt::format("{}: {} must be finite and ≥ 0, got {}", who, what, value));
}

void require_unit_interval(double value, const char* what, const char* who) {
    if (!(value >= 0 && value < 1))
        throw std::invalid_argument(fmt::format("{}: {} must be in [0, 1), got {}", who, what, value));
}

void require_shape(const Tensor& t, const Parameter& p, std::size_t index, const char* what, const char* who) {
    if (!t.defined())
        throw std::invalid_argument(
            fmt::format("{}.step: parameter {} (shape {}) has no {}", who, index, p.shape(), what));
    if (!(t.shape() == p.shape()))
        throw std::invalid_argument(fmt::format("{}.step: parameter {} has shape {} but its {} has shape {}", who,
                                                index, p.shape(), what, t.shape()));
}

std::vector<std::pair<std::string, Tensor*>> named_buffers(const char* prefix, std::vector<Tensor>& buffers) {
    std::vector<std::pair<std::string, Tensor*>> out;
    for (std::size_t i = 0; i < buffers.size(); ++i) out.emplace_back(fmt::format("{}.{}", prefix, i), &buffers[i]);
    return out;
}

// One Adam update of n elements. The loop has no branch and no aliasing, so it vectorizes (nn is
// compiled with -fno-math-errno, so √ is the hardware instruction: v ≥ 0, errno is never needed).
struct AdamConstants {
    double b1, b2, eps, step_size, bias_correction2_sqrt, shrink, l2;
};

void adam_kernel(std::size_t n, double* __restrict p, const double* __restrict grad, double* __restrict m,
                 double* __restrict v, AdamConstants c) {
    for (std::size_t i = 0; i < n; ++i) {
        const double pi = p[i] * c.shrink;
        const double g = grad[i] + c.l2 * pi;
        const double mi = c.b1 * m[i] + (1 - c.b1) * g;
        const double vi = c.b2 * v[i] + (1 - c.b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - c.step_size * (mi / (std::sqrt(vi) / c.bias_correction2_sqrt + c.eps));
    }
}

}  // namespace

// ---- Optimizer ----------------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<Parameter*> parameters, double learning_rate, const char* who)
    : parameters_(std::move(parameters)), learning_rate_(learning_rate), who_(who) {
    if (parameters_.empty()) throw std::invalid_argument(fmt::format("{}: the parameter list is empty", who));
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        if (!parameters_[i]) throw std::invalid_argument(fmt::format("{}: parameter {} is null", who, i));
        require_defined(parameters_[i]->value, who);
    }
    // A parameter listed twice would be updated twice per step: a silent wrong number.
    std::vector<Parameter*> sorted = parameters_;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
        const Parameter* dup = *std::adjacent_find(sorted.begin(), sorted.end());
        const auto first = std::find(parameters_.begin(), parameters_.end(), dup);
        const auto second = std::find(first + 1, parameters_.end(), dup);
        throw std::invalid_argument(fmt::format("{}: parameter {} appears again at position {}", who,
                                                first - parameters_.begin(), second - parameters_.begin()));
    }
    require_nonnegative(learning_rate, "the learning rate", who);
}

void Optimizer::step() {
    for (std::size_t i = 0; i < parameters_.size(); ++i)
        require_shape(parameters_[i]->grad, *parameters_[i], i, "gradient", who_);
    check_state();
    ++step_count_;
    update();
}

void Optimizer::zero_grad() {
    for (Parameter* p : parameters_) p->zero_grad();
}

void Optimizer::set_learning_rate(double lr) {
    require_nonnegative(lr, "the learning rate", who_);
    learning_rate_ = lr;
}

void Optimizer::require_buffer_shapes(const std::vector<Tensor>& buffers, const char* what) const {
    for (std::size_t i = 0; i < buffers.size(); ++i) require_shape(buffers[i], *parameters_[i], i, what, who_);
}

std::vector<Tensor> Optimizer::zeros_like_parameters() const {
    std::vector<Tensor> out;
    for (const Parameter* p : parameters_) out.push_back(Tensor::zeros(p->shape()));
    return out;
}

// ---- SGD ----------------------------------------------------------------------------------------

SGD::SGD(std::vector<Parameter*> parameters, SGDOptions options)
    : Optimizer(std::move(parameters), options.lr, "SGD"), options_(options) {
    require_nonnegative(options.momentum, "momentum", "SGD");
    require_nonnegative(options.dampening, "dampening", "SGD");
    require_nonnegative(options.weight_decay, "weight_decay", "SGD");
    if (options.nesterov && (options.momentum <= 0 || options.dampening != 0))
        throw std::invalid_argument(fmt::format(
            "SGD: Nesterov momentum requires momentum > 0 and dampening = 0, got momentum {} and dampening {}",
            options.momentum, options.dampening));
    if (options.momentum != 0) momentum_ = zeros_like_parameters();
}

std::vector<std::pair<std::string, Tensor*>> SGD::state() { return named_buffers("sgd.momentum", momentum_); }

void SGD::check_state() const { require_buffer_shapes(momentum_, "momentum buffer"); }

std::string SGD::name() const {
    return fmt::format("SGD(lr={:g}, momentum={:g}, dampening={:g}, weight_decay={:g}, nesterov={})", learning_rate(),
                       options_.momentum, options_.dampening, options_.weight_decay, options_.nesterov);
}

void SGD::update() {
    const double lr = learning_rate(), mu = options_.momentum, damp = options_.dampening, wd = options_.weight_decay;
    const bool first = step_count() == 1;  // PyTorch starts the buffer at the gradient itself
    for (std::size_t k = 0; k < parameters().size(); ++k) {
        Parameter& param = *parameters()[k];
        double* p = param.value.data();
        const double* grad = param.grad.data();
        double* b = mu != 0 ? momentum_[k].data() : nullptr;
        for (std::size_t i = 0, n = param.numel(); i < n; ++i) {
            double g = wd != 0 ? grad[i] + wd * p[i] : grad[i];
            if (b) {
                b[i] = first ? g : mu * b[i] + (1 - damp) * g;
                g = options_.nesterov ? g + mu * b[i] : b[i];
            }
            p[i] -= lr * g;
        }
    }
}

// ---- Adam and AdamW -----------------------------------------------------------------------------

Adam::Adam(std::vector<Parameter*> parameters, AdamOptions options) : Adam(std::move(parameters), options, false, "Adam") {}

Adam::Adam(std::vector<Parameter*> parameters, AdamOptions options, bool decoupled, const char* who)
    : Optimizer(std::move(parameters), options.lr, who), options_(options), decoupled_(decoupled) {
    require_unit_interval(options.beta1, "beta1", who);
    require_unit_interval(options.beta2, "beta2", who);
    if (!(options.eps > 0) || !std::isfinite(options.eps))
        throw std::invalid_argument(fmt::format("{}: eps must be finite and > 0, got {}", who, options.eps));
    require_nonnegative(options.weight_decay, "weight_decay", who);
    m_ = zeros_like_parameters();
    v_ = zeros_like_parameters();
}

std::vector<std::pair<std::string, Tensor*>> Adam::state() {
    auto out = named_buffers(decoupled_ ? "adamw.m" : "adam.m", m_);
    auto v = named_buffers(decoupled_ ? "adamw.v" : "adam.v", v_);
    out.insert(out.end(), v.begin(), v.end());
    return out;
}

void Adam::check_state() const {
    require_buffer_shapes(m_, "first moment m");
    require_buffer_shapes(v_, "second moment v");
}

std::string Adam::name() const {
    return fmt::format("Adam(lr={:g}, betas=({:g}, {:g}), eps={:g}, weight_decay={:g})", learning_rate(),
                       options_.beta1, options_.beta2, options_.eps, options_.weight_decay);
}

void Adam::update() {
    const double lr = learning_rate(), b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps;
    const double t = static_cast<double>(step_count());
    // The bias corrections of Kingma & Ba, folded into a step size and a divisor as PyTorch does.
    const double step_size = lr / (1 - std::pow(b1, t));
    const double bias_correction2_sqrt = std::sqrt(1 - std::pow(b2, t));
    // AdamW shrinks p first and has no L2 term; Adam has the L2 term and no shrink. With λ = 0 both
    // reduce to p·1 and g + 0·p, exact for finite p, so one branch-free loop serves every case.
    const double shrink = decoupled_ ? 1 - lr * options_.weight_decay : 1.0;
    const double l2 = decoupled_ ? 0.0 : options_.weight_decay;
    for (std::size_t k = 0; k < parameters().size(); ++k) {
        Parameter& param = *parameters()[k];
        adam_kernel(param.numel(), param.value.data(), param.grad.data(), m_[k].data(), v_[k].data(),
                    {b1, b2, eps, step_size, bias_correction2_sqrt, shrink, l2});
    }
}

AdamW::AdamW(std::vector<Parameter*> parameters, AdamWOptions o)
    : Adam(std::move(parameters), {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}, true, "AdamW") {}

std::string AdamW::name() const {
    const AdamOptions& o = options();
    return fmt::format("AdamW(lr={:g}, betas=({:g}, {:g}), eps={:g}, weight_decay={:g})", learning_rate(), o.beta1,
                       o.beta2, o.eps, o.weight_decay);
}

}  // namespace tapeflow::nn
