#include "flows/conformance.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <iterator>
#include <limits>
#include <memory>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/conditional.hpp"
#include "flows/distributions.hpp"
#include "flows/flow.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// The largest error seen and where; a NaN sticks, so that it fails the check.
struct Worst {
    double value = 0;
    std::size_t where = 0;
    void add(double v, std::size_t at) {
        if (std::isnan(value)) return;
        if (std::isnan(v) || v > value) {
            value = v;
            where = at;
        }
    }
};

ConformanceCheck verdict(std::string name, double worst, double tolerance, std::string detail) {
    return {std::move(name), worst <= tolerance, worst, tolerance, std::move(detail)};
}

// A bijector's outputs as plain tensors, with their shapes checked: a bijector returning the wrong
// shapes fails the check that called it (through the exception) instead of being misread.
struct Values {
    Tensor value;    // [N, D]
    Tensor log_det;  // [N]
};

Values evaluate(Bijector& b, const Tensor& in, bool inverse) {
    NoGrad no_grad;
    const Transformed t = inverse ? b.inverse(Var(in)) : b.forward(Var(in));
    const char* which = inverse ? "inverse" : "forward";
    if (!t.value.value().defined() || !(t.value.shape() == in.shape()))
        throw std::runtime_error(fmt::format("{} returned a value of shape {} for an input of shape {}", which,
                                             t.value.value().defined() ? t.value.shape().str() : "(undefined)", in.shape()));
    if (!t.log_abs_det_jacobian.value().defined() || !(t.log_abs_det_jacobian.shape() == Shape{in.shape()[0]}))
        throw std::runtime_error(fmt::format("{} returned a log-det of shape {}, expected [{}]", which,
                                             t.log_abs_det_jacobian.value().defined() ? t.log_abs_det_jacobian.shape().str()
                                                                                      : "(undefined)",
                                             in.shape()[0]));
    return {t.value.value(), t.log_abs_det_jacobian.value()};
}

Tensor row(const Tensor& t, std::size_t i) { return narrow(t, 0, i, 1).clone(); }

double row_max_abs(const Tensor& t, std::size_t i) {
    const std::size_t d = t.shape()[1];
    double m = 0;
    for (std::size_t j = 0; j < d; ++j) m = std::max(m, std::abs(t[i * d + j]));
    return m;
}

// max_j |a_ij − b_ij| / max(1, max_j |b_ij|) for each row i, into `worst`.
void compare_rows(const Tensor& a, const Tensor& b, Worst& worst) {
    const std::size_t n = b.shape()[0], d = b.shape()[1];
    for (std::size_t i = 0; i < n; ++i) {
        double err = 0;
        for (std::size_t j = 0; j < d; ++j) {
            const double e = std::abs(a[i * d + j] - b[i * d + j]);
            err = std::isnan(e) || std::isnan(err) ? NAN : std::max(err, e);
        }
        worst.add(err / std::max(1.0, row_max_abs(b, i)), i);
    }
}

// The parameters the map reads: all of b's, except those of a Flow's base, which only log_prob and
// sample use (forward and inverse never touch them, so they could not get a gradient here); for a
// conditional bijector at a fixed context (which owns nothing), those of the conditional bijector.
std::vector<std::pair<std::string, Parameter*>> map_parameters(Bijector& b) {
    if (auto* at = dynamic_cast<AtContext*>(&b)) return at->conditional().named_parameters();
    auto all = b.named_parameters();
    if (auto* flow = dynamic_cast<Flow*>(&b)) {
        const std::vector<Parameter*> base = flow->base().parameters();
        std::erase_if(all, [&base](const auto& named) { return std::ranges::find(base, named.second) != base.end(); });
    }
    return all;
}

std::vector<Parameter*> pointers(const std::vector<std::pair<std::string, Parameter*>>& named) {
    std::vector<Parameter*> out;
    for (const auto& [name, p] : named) out.push_back(p);
    return out;
}

// The density the density check integrates: a Flow's own (its base through its layers), otherwise
// the standard normal pushed through b.
class PushForward {
public:
    PushForward(Bijector& b, std::size_t d) : b_(b), flow_(dynamic_cast<Flow*>(&b)), normal_(d) {}
    Distribution& base() { return flow_ ? flow_->base() : static_cast<Distribution&>(normal_); }

    // log p(x) for a large batch, evaluated in chunks to keep memory bounded.
    Tensor log_prob(const Tensor& x) {
        NoGrad no_grad;
        constexpr std::size_t chunk = 8192;
        const std::size_t n = x.shape()[0];
        Tensor out(Shape{n});
        for (std::size_t start = 0; start < n; start += chunk) {
            const std::size_t len = std::min(chunk, n - start);
            const Tensor lp = pushforward_log_prob(b_, base(), Var(narrow(x, 0, start, len))).value();
            std::copy_n(lp.data(), len, out.data() + start);
        }
        return out;
    }
    Tensor sample(std::size_t n, Rng& rng) {
        NoGrad no_grad;
        return b_.forward(base().sample(n, rng)).value.value();
    }

private:
    Bijector& b_;
    Flow* flow_;
    StandardNormal normal_;
};

// ---- the checks ------------------------------------------------------------------------------------

ConformanceCheck check_round_trip(Bijector& b, const Tensor& z, const ConformanceOptions& o, bool from_z) {
    const Values x = evaluate(b, z, false);
    Worst worst;
    if (from_z) {
        compare_rows(evaluate(b, x.value, true).value, z, worst);
    } else {
        const Values back = evaluate(b, x.value, true);
        compare_rows(evaluate(b, back.value, false).value, x.value, worst);
    }
    return verdict(from_z ? "round_trip_z" : "round_trip_x", worst.value, o.round_trip_tol,
                   fmt::format("worst at sample {}", worst.where));
}

// log|det| of the central-difference Jacobian of forward at one point z [1, D].
SignLogDet finite_difference_slogdet(Bijector& b, const Tensor& z, double eps) {
    const std::size_t d = z.shape()[1];
    Tensor batch(Shape{2 * d, d});
    std::vector<double> step(d);
    for (std::size_t j = 0; j < d; ++j) {
        for (std::size_t k = 0; k < d; ++k) batch[2 * j * d + k] = batch[(2 * j + 1) * d + k] = z[k];
        const double h = eps * std::max(1.0, std::abs(z[j]));
        batch[2 * j * d + j] = z[j] + h;
        batch[(2 * j + 1) * d + j] = z[j] - h;
        step[j] = batch[2 * j * d + j] - batch[(2 * j + 1) * d + j];  // the step actually taken
    }
    const Tensor f = evaluate(b, batch, false).value;
    Tensor J(Shape{d, d});
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < d; ++j) J[i * d + j] = (f[2 * j * d + i] - f[(2 * j + 1) * d + i]) / step[j];
    return slogdet(J);
}

ConformanceCheck check_log_det(Bijector& b, const Tensor& z, const ConformanceOptions& o, bool autodiff) {
    const Values x = evaluate(b, z, false);
    const std::size_t n = std::min(z.shape()[0], o.jacobian_points);
    Worst worst;
    std::vector<double> independent(n);
    for (std::size_t i = 0; i < n; ++i) {
        const Tensor zi = row(z, i);
        const SignLogDet s =
            autodiff ? slogdet(jacobian([&b](const Var& v) { return b.forward(v).value; }, zi))
                     : finite_difference_slogdet(b, zi, o.finite_diff_eps);
        independent[i] = s.sign == 0 ? -inf : s.log_abs_det;  // a singular Jacobian fails the check
        worst.add(std::abs(x.log_det[i] - independent[i]), i);
    }
    return verdict(autodiff ? "log_det_autodiff" : "log_det_finite_diff", worst.value,
                   autodiff ? o.log_det_tol : o.finite_diff_log_det_tol,
                   fmt::format("worst at sample {}: forward says {:.12g}, slogdet of the {} Jacobian {:.12g}", worst.where,
                               x.log_det[worst.where], autodiff ? "autodiff" : "finite-difference",
                               independent[worst.where]));
}

ConformanceCheck check_inverse_log_det(Bijector& b, const Tensor& z, const ConformanceOptions& o) {
    const Values x = evaluate(b, z, false);
    const Values back = evaluate(b, x.value, true);
    Worst worst;
    for (std::size_t i = 0; i < z.shape()[0]; ++i)
        worst.add(std::abs(back.log_det[i] + x.log_det[i]) / std::max(1.0, std::abs(x.log_det[i])), i);
    const std::size_t w = worst.where;
    return verdict("inverse_log_det", worst.value, o.inverse_log_det_tol,
                   fmt::format("worst at sample {}: forward {:.12g}, inverse {:.12g}", w, x.log_det[w], back.log_det[w]));
}

bool usable_gradient(const Parameter& p) {
    if (!p.grad.defined() || !(p.grad.shape() == p.value.shape())) return false;
    bool nonzero = false;
    for (double g : p.grad.span()) {
        if (!std::isfinite(g)) return false;
        nonzero = nonzero || g != 0;
    }
    return nonzero;
}

ConformanceCheck check_parameter_gradients(Bijector& b, const Tensor& z, const ConformanceOptions& o) {
    const auto params = map_parameters(b);
    if (params.empty()) return verdict("parameter_gradients", 0, 0, "no parameters");
    const Tensor x = evaluate(b, z, false).value;
    Rng rng(o.seed);
    std::string missing;
    double count = 0;
    for (const bool inverse : {false, true}) {
        Tape tape;
        TapeScope scope(tape);
        for (const auto& [name, p] : params) p->zero_grad();
        const Var in = tape.variable((inverse ? x : z).clone());
        const Transformed t = inverse ? b.inverse(in) : b.forward(in);
        // A random projection: no parameter's contribution can cancel by symmetry.
        const Var loss = sum(t.value * Var(randn(t.value.shape(), rng))) +
                         sum(t.log_abs_det_jacobian * Var(randn(t.log_abs_det_jacobian.shape(), rng)));
        if (loss.requires_grad()) tape.backward(loss);
        std::vector<std::string> names;
        for (const auto& [name, p] : params)
            if (!loss.requires_grad() || !usable_gradient(*p)) names.push_back(name);
        if (!names.empty())
            missing += fmt::format("{}{}: {}", missing.empty() ? "" : "; ", inverse ? "inverse" : "forward",
                                   fmt::join(names, ", "));
        count += static_cast<double>(names.size());
    }
    return verdict("parameter_gradients", count, 0,
                   missing.empty() ? fmt::format("all {} parameters get a gradient both ways", params.size())
                                   : "no (or a non-finite) gradient in " + missing);
}

// gradcheck of (f(z), log-det) at the latent points `at` [M, D], or of the inverse at x = f(at).
ConformanceCheck check_gradcheck(Bijector& b, Tensor at, const ConformanceOptions& o, bool inverse, const char* name,
                                 const char* which) {
    if (inverse) at = evaluate(b, at, false).value;
    const VarFunction f = [&b, inverse](const std::vector<Var>& v) {
        const Transformed t = inverse ? b.inverse(v[0]) : b.forward(v[0]);
        return concat({flatten(t.value), t.log_abs_det_jacobian}, 0);
    };
    const GradcheckResult r = gradcheck(
        f, {at}, {.atol = o.gradcheck_atol, .rtol = o.gradcheck_rtol, .parameters = pointers(map_parameters(b))});
    // The verdict and any problem lines; the tape dump that follows a failure is too long for a table.
    std::string detail = r.report.substr(0, r.report.find("recorded tape"));
    while (!detail.empty() && detail.back() == '\n') detail.pop_back();
    ConformanceCheck c =
        verdict(name, r.error / r.tolerance, 1.0, fmt::format("on {} {}point(s): {}", at.shape()[0], which, detail));
    c.passed = r.ok;
    return c;
}

ConformanceCheck check_batch_independence(Bijector& b, const Tensor& z, const ConformanceOptions& o) {
    const Values fx = evaluate(b, z, false);
    const Values fz = evaluate(b, fx.value, true);
    Worst worst;
    std::string where;
    const std::size_t n = z.shape()[0];
    for (const bool inverse : {false, true}) {
        const Values& all = inverse ? fz : fx;
        const Tensor& in = inverse ? fx.value : z;
        for (std::size_t i = 0; i < n; ++i) {
            const Values one = evaluate(b, row(in, i), inverse);
            Worst w;
            compare_rows(one.value, row(all.value, i), w);
            w.add(std::abs(one.log_det[0] - all.log_det[i]) / std::max(1.0, std::abs(all.log_det[i])), 0);
            const double before = worst.value;
            worst.add(w.value, i);
            if (worst.value != before) where = fmt::format("{} of sample {}", inverse ? "inverse" : "forward", i);
        }
    }
    return verdict("batch_independence", worst.value, o.batch_tol,
                   where.empty() ? std::string("every sample alone gives identical outputs") : "worst at " + where);
}

    // The fraction of n samples of p outside the box [−w, w]^D: the mass the quadrature cannot see.
double mass_outside_box(PushForward& p, std::size_t d, const ConformanceOptions& o) {
    Rng rng(o.seed + 1);
    const Tensor x = p.sample(o.mc_samples, rng);
    std::size_t outside = 0;
    for (std::size_t i = 0; i < o.mc_samples; ++i) {
        bool out = false;
        for (std::size_t k = 0; k < d; ++k) out = out || !(std::abs(x[i * d + k]) <= o.box_half_width);
        outside += out ? 1 : 0;
    }
    return static_cast<double>(outside) / static_cast<double>(o.mc_samples);
}

ConformanceCheck check_density(Bijector& b, std::size_t d, const ConformanceOptions& o, std::vector<std::string>& warnings) {
    PushForward flow(b, d);
    const std::string of = fmt::format("the density of {} → {}", flow.base().name(), b.name());

    if (d <= 2) {
        const std::size_t m = d == 1 ? o.grid_points_1d : o.grid_points_2d;
        const double w = o.box_half_width, h = 2 * w / static_cast<double>(m - 1);
        const Tensor nodes = Tensor::linspace(-w, w, m);
        const std::size_t total = d == 1 ? m : m * m;
        Tensor x(Shape{total, d});
        for (std::size_t i = 0; i < total; ++i) {
            x[i * d] = nodes[i % m];
            if (d == 2) x[i * d + 1] = nodes[i / m];
        }
        const Tensor lp = flow.log_prob(x);
        // The trapezoid rule: weight ½ on each edge node, per axis.
        auto weight = [m](std::size_t k) { return k == 0 || k == m - 1 ? 0.5 : 1.0; };
        double integral = 0;
        for (std::size_t i = 0; i < total; ++i)
            integral += weight(i % m) * (d == 2 ? weight(i / m) : 1.0) * std::exp(lp[i]);
        integral *= d == 1 ? h : h * h;
        // Mass outside the box is invisible to the quadrature and reads as a density that does not
        // integrate to 1: say how much there is, so the fix (a wider box) is not a guess.
        const double outside = mass_outside_box(flow, d, o);
        if (outside >= o.density_tol / 10)
            warnings.push_back(fmt::format(
                "density: {:.3g} of the mass ({} of {} samples) lies outside the quadrature box [−{}, {}]{}, where the "
                "trapezoid rule does not look; widen options.box_half_width",
                outside, static_cast<std::size_t>(std::lround(outside * static_cast<double>(o.mc_samples))), o.mc_samples,
                w, w, d == 1 ? "" : "²"));
        return verdict("density", std::abs(integral - 1), o.density_tol,
                       fmt::format("∫ p = {:.8f} by the trapezoid rule on {} over [−{}, {}]{} (spacing {:.3g}), {}; "
                                   "{:.3g} of the samples fall outside the box",
                                   integral, d == 1 ? fmt::format("{} nodes", m) : fmt::format("a {} × {} grid", m, m), w,
                                   w, d == 1 ? "" : "²", h, of, outside));
    }

    // Importance sampling: ∫ p = E_q[p(x)/q(x)] with x ~ q = N(m, diag(c s)²), where m and s are the
    // per-coordinate mean and standard deviation of samples of the flow and c = mc_scale widens q so
    // that its tails cover p's. Choosing q from the flow's samples keeps the estimate unbiased (q is
    // any density we can evaluate) while its variance stays small when the flow moves or scales mass.
    Rng rng(o.seed);
    std::vector<double> m(d, 0.0), sd(d, 1.0);
    {
        const std::size_t n_fit = std::min<std::size_t>(2000, o.mc_samples);
        const Tensor fit = flow.sample(n_fit, rng);
        for (std::size_t k = 0; k < d; ++k) {
            double mean = 0, sq = 0;
            for (std::size_t i = 0; i < n_fit; ++i) mean += fit[i * d + k];
            mean /= static_cast<double>(n_fit);
            for (std::size_t i = 0; i < n_fit; ++i) sq += (fit[i * d + k] - mean) * (fit[i * d + k] - mean);
            const double std = std::sqrt(sq / static_cast<double>(n_fit - 1));
            // A broken forward (NaN, inf, collapse) leaves the standard normal as the proposal.
            if (std::isfinite(mean) && std::isfinite(std) && std > 0) m[k] = mean, sd[k] = std;
        }
    }
    Tensor x = randn(Shape{o.mc_samples, d}, rng);
    double log_norm = 0.5 * static_cast<double>(d) * std::log(2 * std::numbers::pi);
    for (std::size_t k = 0; k < d; ++k) log_norm += std::log(o.mc_scale * sd[k]);
    std::vector<double> log_q(o.mc_samples);
    for (std::size_t i = 0; i < o.mc_samples; ++i) {
        double q = 0;
        for (std::size_t k = 0; k < d; ++k) {
            const double e = x[i * d + k];
            q += e * e;
            x[i * d + k] = m[k] + o.mc_scale * sd[k] * e;
        }
        log_q[i] = -0.5 * q - log_norm;
    }
    const Tensor lp = flow.log_prob(x);
    double sum_w = 0, sum_w2 = 0;
    for (std::size_t i = 0; i < o.mc_samples; ++i) {
        const double w = std::exp(lp[i] - log_q[i]);
        sum_w += w;
        sum_w2 += w * w;
    }
    const double n = static_cast<double>(o.mc_samples);
    const double integral = sum_w / n;
    const double stderr_ = std::sqrt(std::max(0.0, sum_w2 / n - integral * integral) / (n - 1));
    return verdict("density", std::abs(integral - 1), std::max(o.density_tol, 4 * stderr_),
                   fmt::format("∫ p = {:.6f} ± {:.2g} (standard error) by importance sampling: {} draws from a normal "
                               "{}× as wide as the flow's samples, {}",
                               integral, stderr_, o.mc_samples, o.mc_scale, of));
}

// ---- argument checks -------------------------------------------------------------------------------

void require_options(const ConformanceOptions& o) {
    const std::pair<const char*, double> nonnegative[] = {
        {"round_trip_tol", o.round_trip_tol},     {"log_det_tol", o.log_det_tol},
        {"finite_diff_log_det_tol", o.finite_diff_log_det_tol}, {"inverse_log_det_tol", o.inverse_log_det_tol},
        {"batch_tol", o.batch_tol},               {"gradcheck_atol", o.gradcheck_atol},
        {"gradcheck_rtol", o.gradcheck_rtol},     {"density_tol", o.density_tol}};
    for (const auto& [name, v] : nonnegative)
        if (!(v >= 0)) throw std::invalid_argument(fmt::format("check_bijector: options.{} must be ≥ 0, got {}", name, v));
    const std::pair<const char*, double> positive[] = {
        {"finite_diff_eps", o.finite_diff_eps}, {"box_half_width", o.box_half_width}, {"mc_scale", o.mc_scale}};
    for (const auto& [name, v] : positive)
        if (!(v > 0 && std::isfinite(v)))
            throw std::invalid_argument(fmt::format("check_bijector: options.{} must be finite and > 0, got {}", name, v));
    const std::pair<const char*, std::size_t> counts[] = {
        {"grid_points_1d", o.grid_points_1d}, {"grid_points_2d", o.grid_points_2d}, {"mc_samples", o.mc_samples}};
    for (const auto& [name, v] : counts)
        if (v < 2) throw std::invalid_argument(fmt::format("check_bijector: options.{} must be ≥ 2, got {}", name, v));
    if (o.jacobian_points == 0 || o.gradcheck_points == 0)
        throw std::invalid_argument("check_bijector: options.jacobian_points and options.gradcheck_points must be ≥ 1");
}

void require_chosen_points(const Tensor& at, std::size_t d) {
    if (!at.defined()) return;
    if (at.rank() != 2 || at.shape()[0] == 0 || at.shape()[1] != d)
        throw std::invalid_argument(fmt::format(
            "check_bijector: options.gradcheck_at must be a non-empty batch [M, {}] like the points, got shape {}", d,
            at.shape()));
    if (!all_finite(at)) throw std::invalid_argument("check_bijector: options.gradcheck_at must be finite");
}

}  // namespace

const ConformanceCheck* ConformanceReport::find(std::string_view name) const {
    for (const ConformanceCheck& c : checks)
        if (c.name == name) return &c;
    return nullptr;
}

std::string ConformanceReport::to_string() const {
    std::size_t failed = 0;
    for (const ConformanceCheck& c : checks) failed += c.passed ? 0 : 1;
    std::string out = fmt::format("conformance of {} on {} point(s) in D = {}: {}\n", bijector, points, dim,
                                  ok ? fmt::format("all {} checks passed", checks.size())
                                     : fmt::format("FAILED ({} of {} checks)", failed, checks.size()));
    auto it = std::back_inserter(out);
    fmt::format_to(it, "  {:<20} {:<6} {:>10} {:>10}  {}\n", "check", "result", "worst", "tolerance", "detail");
    for (const ConformanceCheck& c : checks)
        fmt::format_to(it, "  {:<20} {:<6} {:>10.3g} {:>10.3g}  {}\n", c.name, c.passed ? "pass" : "FAIL", c.worst,
                       c.tolerance, c.detail);
    for (const std::string& w : warnings) fmt::format_to(it, "  warning: {}\n", w);
    return out;
}

ConformanceReport check_bijector(Bijector& b, const Tensor& points, const ConformanceOptions& options) {
    require_defined(points, "check_bijector");
    if (points.rank() != 2 || points.shape()[0] == 0 || points.shape()[1] == 0)
        throw std::invalid_argument(
            fmt::format("check_bijector: points must be a non-empty batch [N, D], got shape {}", points.shape()));
    const std::size_t d = points.shape()[1];
    if (b.dim() != 0 && b.dim() != d)
        throw std::invalid_argument(
            fmt::format("check_bijector: {} acts on D = {}, but the points have D = {}", b.name(), b.dim(), d));
    if (!all_finite(points)) throw std::invalid_argument("check_bijector: the points must be finite");
    require_options(options);
    require_chosen_points(options.gradcheck_at, d);

    const Tensor z = points.clone();
    ConformanceReport report{.bijector = b.name(), .points = z.shape()[0], .dim = d};
    // The caller's gradients are put back afterwards; the checks accumulate into them.
    std::vector<Tensor> saved;
    const std::vector<Parameter*> params = pointers(map_parameters(b));
    for (Parameter* p : params) saved.push_back(p->grad.defined() ? p->grad.clone() : Tensor());

    auto run = [&report](const char* name, auto&& check) {
        try {
            report.checks.push_back(check());
        } catch (const std::exception& e) {
            report.checks.push_back({name, false, NAN, 0, fmt::format("threw: {}", e.what())});
        }
    };
    const ConformanceOptions& o = options;
    if (o.round_trip) {
        run("round_trip_z", [&] { return check_round_trip(b, z, o, true); });
        run("round_trip_x", [&] { return check_round_trip(b, z, o, false); });
    }
    if (o.log_det) {
        run("log_det_autodiff", [&] { return check_log_det(b, z, o, true); });
        run("log_det_finite_diff", [&] { return check_log_det(b, z, o, false); });
    }
    if (o.inverse_log_det) run("inverse_log_det", [&] { return check_inverse_log_det(b, z, o); });
    if (o.gradients) {
        run("parameter_gradients", [&] { return check_parameter_gradients(b, z, o); });
        const Tensor first = narrow(z, 0, 0, std::min(z.shape()[0], o.gradcheck_points)).clone();
        run("gradcheck_forward", [&] { return check_gradcheck(b, first, o, false, "gradcheck_forward", ""); });
        run("gradcheck_inverse", [&] { return check_gradcheck(b, first, o, true, "gradcheck_inverse", ""); });
        if (o.gradcheck_at.defined()) {
            const Tensor chosen = o.gradcheck_at.clone();
            run("gradcheck_chosen_forward",
                [&] { return check_gradcheck(b, chosen, o, false, "gradcheck_chosen_forward", "chosen "); });
            run("gradcheck_chosen_inverse",
                [&] { return check_gradcheck(b, chosen, o, true, "gradcheck_chosen_inverse", "chosen "); });
        }
    }
    if (o.batch_independence) run("batch_independence", [&] { return check_batch_independence(b, z, o); });
    if (o.density) run("density", [&] { return check_density(b, d, o, report.warnings); });

    for (std::size_t i = 0; i < params.size() && i < saved.size(); ++i) params[i]->grad = saved[i];
    for (const ConformanceCheck& c : report.checks) report.ok = report.ok && c.passed;
    return report;
}

std::vector<ConformanceReport> check_conditional_bijector(ConditionalBijector& b, const Tensor& points,
                                                          const Tensor& contexts, const ConformanceOptions& options) {
    require_defined(contexts, "check_conditional_bijector");
    if (b.context_dim() == 0)
        throw std::invalid_argument(fmt::format("check_conditional_bijector: {} takes no context; use check_bijector", b.name()));
    if (contexts.rank() != 2 || contexts.shape()[0] == 0 || contexts.shape()[1] != b.context_dim())
        throw std::invalid_argument(fmt::format(
            "check_conditional_bijector: contexts must be a non-empty batch [K, {}] (one context a row), got shape {}",
            b.context_dim(), contexts.shape()));
    std::vector<ConformanceReport> reports;
    for (std::size_t k = 0; k < contexts.shape()[0]; ++k) {
        AtContext at(b, narrow(contexts, 0, k, 1).clone());
        reports.push_back(check_bijector(at, points, options));
    }
    return reports;
}

}  // namespace tapeflow::flows
