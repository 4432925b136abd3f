#include "tutorials/common/svg_plot.hpp"

#include "tutorials/common/png.hpp"

#include "tensor/file_io.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace tapeflow::plot {

namespace {

// ---------------------------------------------------------------- text output

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

// Every coordinate goes through here: fixed precision keeps the output
// byte-identical across runs, and the clamp keeps a point at 1e300 (a
// diverged loss) from printing 300 digits. The clip path hides such points.
std::string px(double v) {
    v = std::clamp(v, -1e6, 1e6);
    if (std::abs(v) < 0.005) v = 0.0;  // avoid "-0.00"
    return fmt::format("{:.2f}", v);
}

// Rough width of a label in px; SVG cannot measure text, so legends and
// margins use the average glyph width of a sans-serif font.
double text_width(std::string_view text, double font_size) {
    const auto glyphs = std::count_if(text.begin(), text.end(),
                                      [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
    return static_cast<double>(glyphs) * 0.6 * font_size;
}

// ------------------------------------------------------------------- palettes

// Matplotlib's default colour cycle: distinguishable and familiar to readers.
// Above this many cells a heatmap or image is embedded as one PNG rather than drawn cell by cell
// (a 28×28 image stays as <rect>s, which tests and text tools can read).
constexpr long max_rect_cells = 4096;

constexpr std::array<const char*, 10> kPalette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// Colormaps sampled at t = 0, 0.1, ..., 1 (matplotlib's values); linear
// interpolation between samples is visually indistinguishable from the full tables.
constexpr std::array<std::uint32_t, 11> kViridis = {0x440154, 0x482475, 0x414487, 0x355f8d, 0x2a788e, 0x21918c,
                                                    0x22a884, 0x44bf70, 0x7ad151, 0xbddf26, 0xfde725};
constexpr std::array<std::uint32_t, 11> kMagma = {0x000004, 0x140e36, 0x3b0f70, 0x641a80, 0x8c2981, 0xb73779,
                                                  0xde4968, 0xf7705c, 0xfe9f6d, 0xfecf92, 0xfcfdbf};
constexpr std::array<std::uint32_t, 11> kGreys = {0xffffff, 0xe6e6e6, 0xcccccc, 0xb3b3b3, 0x999999, 0x808080,
                                                  0x666666, 0x4d4d4d, 0x333333, 0x1a1a1a, 0x000000};

const std::array<std::uint32_t, 11>& colormap_table(Colormap map) {
    switch (map) {
        case Colormap::magma: return kMagma;
        case Colormap::greys: return kGreys;
        case Colormap::viridis: break;
    }
    return kViridis;
}

std::string gray_colour(double value) {
    if (!std::isfinite(value)) return "#ff0000";
    const int level = static_cast<int>(std::lround(std::clamp(value, 0.0, 1.0) * 255.0));
    return fmt::format("#{0:02x}{0:02x}{0:02x}", level);
}

// ---------------------------------------------------------------- validation

void require_same_size(std::string_view function, std::span<const double> xs, std::span<const double> ys) {
    if (xs.size() != ys.size()) {
        throw std::invalid_argument(
            fmt::format("{}: xs has {} values but ys has {}", function, xs.size(), ys.size()));
    }
}

void require_valid_style(std::string_view function, const Style& style) {
    if (!(style.width >= 0 && std::isfinite(style.width)) || !(style.radius >= 0 && std::isfinite(style.radius))) {
        throw std::invalid_argument(fmt::format("{}: style width ({}) and radius ({}) must be finite and >= 0",
                                                function, style.width, style.radius));
    }
    if (!(style.opacity >= 0 && style.opacity <= 1)) {
        throw std::invalid_argument(fmt::format("{}: style opacity must be in [0, 1], got {}", function, style.opacity));
    }
}

void require_range(std::string_view function, std::string_view what, double lo, double hi) {
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi)) {
        throw std::invalid_argument(fmt::format("{}: {} range must be finite with min < max, got [{}, {}]",
                                                function, what, lo, hi));
    }
}

void require_finite(std::string_view function, std::string_view what, double v) {
    if (!std::isfinite(v)) throw std::invalid_argument(fmt::format("{}: {} must be finite, got {}", function, what, v));
}

// ---------------------------------------------------------------- ticks

std::string format_tick(double value, double step) {
    if (std::abs(value) < step * 1e-6) return "0";
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    if (decimals > 4 || std::abs(value) >= 1e6) return fmt::format("{:.3g}", value);
    return fmt::format("{:.{}f}", value, decimals);
}

// Powers of ten read best as 10 with a superscript exponent.
std::string format_log_tick(double value) {
    const double exponent = std::round(std::log10(value));
    if (std::abs(value - std::pow(10.0, exponent)) <= 1e-9 * value) {
        return fmt::format("10<tspan dy=\"-5\" font-size=\"8\">{}</tspan>", static_cast<int>(exponent));
    }
    return fmt::format("{:g}", value);
}

struct Tick {
    double value;       // in data units
    std::string label;  // SVG markup
};

std::vector<Tick> make_ticks(double lo, double hi, bool log) {
    std::vector<Tick> ticks;
    if (log) {
        for (double v : log_ticks(std::pow(10.0, lo), std::pow(10.0, hi))) ticks.push_back({v, format_log_tick(v)});
        return ticks;
    }
    const auto values = nice_ticks(lo, hi);
    const double step = values.size() >= 2 ? values[1] - values[0] : std::abs(hi - lo);
    for (double v : values) ticks.push_back({v, format_tick(v, step)});
    return ticks;
}

// ---------------------------------------------------------------- geometry

struct Rect {
    double x, y, w, h;
    double right() const { return x + w; }
    double bottom() const { return y + h; }
};

// Maps data values to pixels along one axis. `lo`/`hi` are in log10 units on a log axis.
struct Scale {
    double lo = 0, hi = 1;
    bool log = false;
    double pixel_lo = 0, pixel_hi = 1;

    bool usable(double v) const { return std::isfinite(v) && (!log || v > 0); }
    double to_pixel(double v) const {
        const double t = log ? std::log10(v) : v;
        return pixel_lo + (t - lo) / (hi - lo) * (pixel_hi - pixel_lo);
    }
};

}  // namespace

// ==================================================================== public helpers

std::string colormap_colour(Colormap map, double t) {
    if (!(t >= 0)) t = 0;  // also catches NaN
    t = std::min(t, 1.0);
    const auto& table = colormap_table(map);
    const double position = t * 10.0;
    const int i = std::min(static_cast<int>(position), 9);
    const double f = position - i;
    auto channel = [&](int shift) {
        const double a = (table[i] >> shift) & 0xff;
        const double b = (table[i + 1] >> shift) & 0xff;
        return static_cast<int>(std::lround(a + (b - a) * f));
    };
    return fmt::format("#{:02x}{:02x}{:02x}", channel(16), channel(8), channel(0));
}

std::vector<double> nice_ticks(double lo, double hi, int target_count) {
    require_range("nice_ticks", "axis", lo, hi);
    if (target_count < 1) throw std::invalid_argument(fmt::format("nice_ticks: target_count must be >= 1, got {}", target_count));
    const double raw = (hi - lo) / target_count;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double r = raw / magnitude;
    const double step = magnitude * (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10);
    // Integer multiples of the step, so no rounding error accumulates along the axis.
    const auto first = static_cast<long long>(std::ceil(lo / step - 1e-9));
    const auto last = static_cast<long long>(std::floor(hi / step + 1e-9));
    std::vector<double> ticks;
    for (long long k = first; k <= last; ++k) ticks.push_back(static_cast<double>(k) * step);
    return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
    require_range("log_ticks", "axis", lo, hi);
    if (!(lo > 0)) throw std::invalid_argument(fmt::format("log_ticks: range must be positive, got [{}, {}]", lo, hi));
    const auto first = static_cast<long long>(std::ceil(std::log10(lo) - 1e-9));
    const auto last = static_cast<long long>(std::floor(std::log10(hi) + 1e-9));
    const long long decades = last - first + 1;
    if (decades < 2) {
        std::vector<double> ticks;
        for (double v : nice_ticks(lo, hi, 4)) {
            if (v > 0) ticks.push_back(v);
        }
        return ticks;
    }
    // Thin to at most ~7 labels, on exponents that are multiples of the stride (1e-12, 1e-8, ...).
    const long long stride = (decades + 6) / 7;
    std::vector<double> ticks;
    for (long long k = first; k <= last; ++k) {
        if (k % stride == 0) ticks.push_back(std::pow(10.0, static_cast<double>(k)));
    }
    return ticks;
}

// ==================================================================== Axes: recording

Style Axes::with_default_colour(Style style) {
    if (style.colour.empty()) {
        style.colour = kPalette[static_cast<std::size_t>(next_palette_colour_) % kPalette.size()];
        ++next_palette_colour_;
    }
    return style;
}

Axes& Axes::line(std::span<const double> xs, std::span<const double> ys, Style style) {
    require_same_size("Axes::line", xs, ys);
    require_valid_style("Axes::line", style);
    series_.push_back({Mark::line, {xs.begin(), xs.end()}, {ys.begin(), ys.end()}, with_default_colour(std::move(style))});
    return *this;
}

Axes& Axes::scatter(std::span<const double> xs, std::span<const double> ys, Style style) {
    require_same_size("Axes::scatter", xs, ys);
    require_valid_style("Axes::scatter", style);
    series_.push_back(
        {Mark::scatter, {xs.begin(), xs.end()}, {ys.begin(), ys.end()}, with_default_colour(std::move(style))});
    return *this;
}

Axes& Axes::heatmap(std::span<const double> values, int nx, int ny, double x_min, double x_max, double y_min,
                    double y_max, HeatmapOptions options) {
    if (nx < 1 || ny < 1) throw std::invalid_argument(fmt::format("Axes::heatmap: nx and ny must be >= 1, got {} x {}", nx, ny));
    const auto expected = static_cast<std::size_t>(nx) * static_cast<std::size_t>(ny);
    if (values.size() != expected) {
        throw std::invalid_argument(fmt::format("Axes::heatmap: values has {} entries but nx*ny = {}*{} = {}",
                                                values.size(), nx, ny, expected));
    }
    require_range("Axes::heatmap", "x", x_min, x_max);
    require_range("Axes::heatmap", "y", y_min, y_max);
    if (heatmap_ || image_) throw std::invalid_argument("Axes::heatmap: this Axes already holds a heatmap or an image");

    // The colour range is fixed now, so a bad range fails at the call that caused it.
    const bool log = options.log_scale;
    auto colour_value = [log](double v) { return log ? std::log10(v) : v; };
    double lo = INFINITY, hi = -INFINITY;
    for (double v : values) {
        if (std::isfinite(v) && (!log || v > 0)) {
            lo = std::min(lo, colour_value(v));
            hi = std::max(hi, colour_value(v));
        }
    }
    if (options.value_min) lo = colour_value(*options.value_min);
    if (options.value_max) hi = colour_value(*options.value_max);
    if (!std::isfinite(lo) || !std::isfinite(hi)) {
        throw std::invalid_argument(log ? "Axes::heatmap: log_scale needs positive finite values (or positive value_min/value_max)"
                                        : "Axes::heatmap: no finite values to colour");
    }
    if (lo > hi) throw std::invalid_argument(fmt::format("Axes::heatmap: colour range is empty, min {} > max {}", lo, hi));
    if (lo == hi) {  // a constant field still gets a readable colour bar
        lo -= 0.5;
        hi += 0.5;
    }
    heatmap_ = Heatmap{{values.begin(), values.end()}, nx, ny, x_min, x_max, y_min, y_max, std::move(options), lo, hi};
    return *this;
}

Axes& Axes::image(std::span<const double> gray, int height, int width) {
    if (height < 1 || width < 1) {
        throw std::invalid_argument(fmt::format("Axes::image: height and width must be >= 1, got {} x {}", height, width));
    }
    const auto expected = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
    if (gray.size() != expected) {
        throw std::invalid_argument(fmt::format("Axes::image: gray has {} pixels but height*width = {}*{} = {}",
                                                gray.size(), height, width, expected));
    }
    if (heatmap_ || image_) throw std::invalid_argument("Axes::image: this Axes already holds a heatmap or an image");
    image_ = Image{{gray.begin(), gray.end()}, height, width};
    equal_aspect_ = true;
    hide_axes_ = true;
    return *this;
}

Axes& Axes::hline(double y, Style style) {
    require_finite("Axes::hline", "y", y);
    require_valid_style("Axes::hline", style);
    if (style.colour.empty()) style.colour = "#555555";  // reference lines should not steal a palette colour
    reference_lines_.push_back({true, y, std::move(style)});
    return *this;
}

Axes& Axes::vline(double x, Style style) {
    require_finite("Axes::vline", "x", x);
    require_valid_style("Axes::vline", style);
    if (style.colour.empty()) style.colour = "#555555";
    reference_lines_.push_back({false, x, std::move(style)});
    return *this;
}

Axes& Axes::text(double x, double y, std::string content, double font_size) {
    require_finite("Axes::text", "x", x);
    require_finite("Axes::text", "y", y);
    if (!(font_size > 0) || !std::isfinite(font_size)) {
        throw std::invalid_argument(fmt::format("Axes::text: font_size must be > 0, got {}", font_size));
    }
    notes_.push_back({x, y, std::move(content), font_size});
    return *this;
}

Axes& Axes::set_title(std::string title) { title_ = std::move(title); return *this; }
Axes& Axes::set_xlabel(std::string label) { xlabel_ = std::move(label); return *this; }
Axes& Axes::set_ylabel(std::string label) { ylabel_ = std::move(label); return *this; }

Axes& Axes::set_xlim(double lo, double hi) {
    require_range("Axes::set_xlim", "x", lo, hi);
    xlim_ = {lo, hi};
    return *this;
}

Axes& Axes::set_ylim(double lo, double hi) {
    require_range("Axes::set_ylim", "y", lo, hi);
    ylim_ = {lo, hi};
    return *this;
}

Axes& Axes::set_log_x(bool on) { log_x_ = on; return *this; }
Axes& Axes::set_log_y(bool on) { log_y_ = on; return *this; }
Axes& Axes::equal_aspect(bool on) { equal_aspect_ = on; return *this; }
Axes& Axes::legend(bool on) { legend_ = on; return *this; }
Axes& Axes::hide_axes(bool on) { hide_axes_ = on; return *this; }

// ==================================================================== Axes: rendering

// Turns one Axes into SVG inside its panel rectangle. Kept out of the header:
// readers of svg_plot.hpp only need the recording API.
class AxesRenderer {
public:
    AxesRenderer(const Axes& axes, Rect panel, int index) : a_(axes), panel_(panel), index_(index) {
        const auto x_limits = limits(true), y_limits = limits(false);
        plot_ = plot_area();
        if (a_.equal_aspect_) plot_ = equal_aspect_box(x_limits, y_limits);
        x_ = Scale{x_limits.first, x_limits.second, a_.log_x_, plot_.x, plot_.right()};
        y_ = Scale{y_limits.first, y_limits.second, a_.log_y_, plot_.bottom(), plot_.y};  // pixel y grows downward
    }

    void write(std::string& out) const {
        out += fmt::format("<g id=\"panel-{}\">\n", index_);
        out += fmt::format("<clipPath id=\"clip-{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>\n",
                           index_, px(plot_.x), px(plot_.y), px(plot_.w), px(plot_.h));
        if (!a_.hide_axes_) write_grid(out);
        out += fmt::format("<g clip-path=\"url(#clip-{})\">\n", index_);
        if (a_.heatmap_) write_heatmap(out);
        if (a_.image_) write_image(out);
        for (const auto& s : a_.series_) {
            if (s.mark == Axes::Mark::line) {
                write_line(out, s);
            } else {
                write_scatter(out, s);
            }
        }
        for (const auto& r : a_.reference_lines_) write_reference_line(out, r);
        out += "</g>\n";
        if (!a_.hide_axes_) write_frame_and_ticks(out);
        if (a_.heatmap_) write_colorbar(out);
        write_labels(out);
        write_notes(out);
        if (a_.legend_) write_legend(out);
        out += "</g>\n";
    }

private:
    static constexpr double kColorbarGap = 12, kColorbarWidth = 14, kColorbarSpace = 92;

    // ------------------------------------------------------------- layout

    Rect plot_area() const {
        const bool titled = !a_.title_.empty();
        double left = 64, right = 18, top = titled ? 30 : 14, bottom = 46;
        if (a_.hide_axes_) {
            left = right = bottom = 6;
            top = titled ? 24 : 6;
        }
        if (a_.heatmap_) right += kColorbarSpace;
        const Rect area{panel_.x + left, panel_.y + top, panel_.w - left - right, panel_.h - top - bottom};
        if (area.w < 20 || area.h < 20) {
            throw std::invalid_argument(fmt::format(
                "Figure: a {}x{} px panel leaves no room to plot; use larger panels or hide_axes()", panel_.w, panel_.h));
        }
        return area;
    }

    // Limits in scale units (log10 on a log axis): user limits, else the
    // heatmap/image extent, else the data with a 5% margin.
    std::pair<double, double> limits(bool is_x) const {
        const bool log = is_x ? a_.log_x_ : a_.log_y_;
        const char* axis = is_x ? "x" : "y";
        auto to_scale = [&](double lo, double hi) {
            if (!log) return std::pair{lo, hi};
            if (!(lo > 0)) {
                throw std::invalid_argument(
                    fmt::format("Axes: log {} axis needs positive limits, got [{}, {}]", axis, lo, hi));
            }
            return std::pair{std::log10(lo), std::log10(hi)};
        };
        if (const auto& user = is_x ? a_.xlim_ : a_.ylim_) return to_scale(user->first, user->second);
        if (a_.heatmap_) {
            const auto& h = *a_.heatmap_;
            return is_x ? to_scale(h.x_min, h.x_max) : to_scale(h.y_min, h.y_max);
        }
        if (a_.image_) return to_scale(0, is_x ? a_.image_->width : a_.image_->height);
        return padded_data_range(is_x, log);
    }

    std::pair<double, double> padded_data_range(bool is_x, bool log) const {
        double lo = INFINITY, hi = -INFINITY;
        auto include = [&](double v) {
            if (!std::isfinite(v) || (log && !(v > 0))) return;  // a log of 0 must not wreck the limits
            const double t = log ? std::log10(v) : v;
            lo = std::min(lo, t);
            hi = std::max(hi, t);
        };
        for (const auto& s : a_.series_) {
            for (double v : is_x ? s.xs : s.ys) include(v);
        }
        for (const auto& r : a_.reference_lines_) {
            if (r.horizontal != is_x) include(r.at);
        }
        if (lo > hi) return {0, 1};
        if (lo == hi) {
            const double pad = log ? 0.5 : (lo == 0 ? 1.0 : std::abs(lo) * 0.1);
            return {lo - pad, hi + pad};
        }
        const double margin = 0.05 * (hi - lo);
        return {lo - margin, hi + margin};
    }

    // Shrink the plot box (keeping it centred) so a unit spans the same pixels
    // on both axes. Shrinking, rather than widening a range, keeps a heatmap
    // flush with its frame and colour bar.
    Rect equal_aspect_box(std::pair<double, double> x_limits, std::pair<double, double> y_limits) const {
        const double x_span = x_limits.second - x_limits.first, y_span = y_limits.second - y_limits.first;
        const double pixels_per_unit = std::min(plot_.w / x_span, plot_.h / y_span);
        const double w = pixels_per_unit * x_span, h = pixels_per_unit * y_span;
        return Rect{plot_.x + (plot_.w - w) / 2, plot_.y + (plot_.h - h) / 2, w, h};
    }

    // ------------------------------------------------------------- data

    static std::string stroke_attributes(const Style& style) {
        std::string attrs = fmt::format("fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"", xml_escape(style.colour),
                                        px(style.width));
        if (style.opacity < 1) attrs += fmt::format(" stroke-opacity=\"{}\"", px(style.opacity));
        if (style.dashed) attrs += " stroke-dasharray=\"6 4\"";
        return attrs;
    }

    // Non-finite points (and non-positive ones on a log axis) break the line
    // instead of being joined across, so a gap in the data shows as a gap.
    void write_line(std::string& out, const Axes::Series& s) const {
        out += fmt::format("<g {} stroke-linejoin=\"round\" stroke-linecap=\"round\">\n", stroke_attributes(s.style));
        std::string points;
        int count = 0;
        auto flush = [&] {
            if (count >= 2) out += fmt::format("<polyline points=\"{}\"/>\n", points);
            points.clear();
            count = 0;
        };
        for (std::size_t i = 0; i < s.xs.size(); ++i) {
            if (!x_.usable(s.xs[i]) || !y_.usable(s.ys[i])) {
                flush();
                continue;
            }
            if (count > 0) points += ' ';
            points += px(x_.to_pixel(s.xs[i])) + ',' + px(y_.to_pixel(s.ys[i]));
            ++count;
        }
        flush();
        out += "</g>\n";
    }

    void write_scatter(std::string& out, const Axes::Series& s) const {
        out += fmt::format("<g fill=\"{}\"", xml_escape(s.style.colour));
        if (s.style.opacity < 1) out += fmt::format(" fill-opacity=\"{}\"", px(s.style.opacity));
        out += ">\n";
        for (std::size_t i = 0; i < s.xs.size(); ++i) {
            if (!x_.usable(s.xs[i]) || !y_.usable(s.ys[i])) continue;
            out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\"/>\n", px(x_.to_pixel(s.xs[i])),
                               px(y_.to_pixel(s.ys[i])), px(s.style.radius));
        }
        out += "</g>\n";
    }

    void write_reference_line(std::string& out, const Axes::ReferenceLine& r) const {
        const Scale& scale = r.horizontal ? y_ : x_;
        if (!scale.usable(r.at)) return;
        const double p = scale.to_pixel(r.at);
        if (r.horizontal) {
            out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {}/>\n", px(plot_.x), px(p),
                               px(plot_.right()), px(p), stroke_attributes(r.style));
        } else {
            out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {}/>\n", px(p), px(plot_.y), px(p),
                               px(plot_.bottom()), stroke_attributes(r.style));
        }
    }

    // Rectangle covering [x0, x1] x [y0, y1] in data units.
    std::string data_rect(double x0, double x1, double y0, double y1, const std::string& fill) const {
        const double left = x_.to_pixel(x0), right = x_.to_pixel(x1);
        const double top = y_.to_pixel(y1), bottom = y_.to_pixel(y0);
        return fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n", px(left), px(top),
                           px(right - left), px(bottom - top), fill);
    }

    std::optional<std::string> heatmap_colour(double v) const {
        const auto& h = *a_.heatmap_;
        if (!std::isfinite(v) || (h.options.log_scale && !(v > 0))) return std::nullopt;  // left blank
        const double c = h.options.log_scale ? std::log10(v) : v;
        return colormap_colour(h.options.colormap, (c - h.value_lo) / (h.value_hi - h.value_lo));
    }

    void write_heatmap(std::string& out) const {
        const auto& h = *a_.heatmap_;
        if (static_cast<long>(h.nx) * h.ny > max_rect_cells) {
            write_raster(out, h.nx, h.ny, h.x_min, h.x_max, h.y_min, h.y_max, [&](int row, int col) {
                // Raster rows run top to bottom; heatmap row 0 sits at y_min, the bottom.
                return heatmap_colour(h.values[static_cast<std::size_t>(h.ny - 1 - row) * h.nx + col]);
            });
            return;
        }
        const double dx = (h.x_max - h.x_min) / h.nx, dy = (h.y_max - h.y_min) / h.ny;
        // crispEdges: anti-aliased neighbouring cells would otherwise show hairline seams.
        out += "<g shape-rendering=\"crispEdges\">\n";
        for (int i = 0; i < h.ny; ++i) {
            for (int j = 0; j < h.nx; ++j) {
                const auto colour = heatmap_colour(h.values[static_cast<std::size_t>(i) * h.nx + j]);
                if (!colour) continue;
                out += data_rect(h.x_min + j * dx, h.x_min + (j + 1) * dx, h.y_min + i * dy, h.y_min + (i + 1) * dy,
                                 *colour);
            }
        }
        out += "</g>\n";
    }

    void write_image(std::string& out) const {
        const auto& img = *a_.image_;
        if (static_cast<long>(img.width) * img.height > max_rect_cells) {
            write_raster(out, img.width, img.height, 0, img.width, 0, img.height, [&](int row, int col) {
                return std::optional<std::string>(gray_colour(img.pixels[static_cast<std::size_t>(row) * img.width + col]));
            });
            return;
        }
        out += "<g shape-rendering=\"crispEdges\">\n";
        for (int r = 0; r < img.height; ++r) {
            const double y_top = img.height - r;  // row 0 is the top row of the picture
            for (int c = 0; c < img.width; ++c) {
                out += data_rect(c, c + 1, y_top - 1, y_top,
                                 gray_colour(img.pixels[static_cast<std::size_t>(r) * img.width + c]));
            }
        }
        out += "</g>\n";
    }

    // Large rasters become one embedded PNG (pixelated, stretched over the data extent) instead of a
    // <rect> per cell, which would make a 200×200 density heatmap several megabytes of SVG.
    template <class ColourAt>
    void write_raster(std::string& out, int width, int height, double x0, double x1, double y0, double y1,
                      ColourAt colour_at) const {
        std::vector<std::uint8_t> rgba(static_cast<std::size_t>(width) * height * 4, 0);  // blank = transparent
        for (int row = 0; row < height; ++row)
            for (int col = 0; col < width; ++col) {
                const std::optional<std::string> colour = colour_at(row, col);
                if (!colour) continue;
                std::uint8_t* px = rgba.data() + (static_cast<std::size_t>(row) * width + col) * 4;
                for (int k = 0; k < 3; ++k) px[k] = static_cast<std::uint8_t>(std::stoi(colour->substr(1 + 2 * k, 2), nullptr, 16));
                px[3] = 255;
            }
        const double left = x_.to_pixel(x0), right = x_.to_pixel(x1);
        const double top = y_.to_pixel(y1), bottom = y_.to_pixel(y0);
        out += fmt::format("<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\" "
                           "style=\"image-rendering:pixelated\" href=\"{}\"/>\n",
                           px(left), px(top), px(right - left), px(bottom - top), png_data_uri(width, height, rgba));
    }

    // ------------------------------------------------------------- decorations

    void write_grid(std::string& out) const {
        out += "<g stroke=\"#e8e8e8\" stroke-width=\"1\">\n";
        for (const auto& t : make_ticks(x_.lo, x_.hi, x_.log)) {
            const double p = x_.to_pixel(t.value);
            out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", px(p), px(plot_.y),
                               px(plot_.bottom()));
        }
        for (const auto& t : make_ticks(y_.lo, y_.hi, y_.log)) {
            const double p = y_.to_pixel(t.value);
            out += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", px(p), px(plot_.x),
                               px(plot_.right()));
        }
        out += "</g>\n";
    }

    void write_frame_and_ticks(std::string& out) const {
        out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333333\"/>\n",
                           px(plot_.x), px(plot_.y), px(plot_.w), px(plot_.h));
        out += "<g font-size=\"11\" fill=\"#333333\">\n";
        for (const auto& t : make_ticks(x_.lo, x_.hi, x_.log)) {
            const double p = x_.to_pixel(t.value);
            out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333333\"/>\n", px(p),
                               px(plot_.bottom()), px(plot_.bottom() + 4));
            out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(p),
                               px(plot_.bottom() + 17), t.label);
        }
        for (const auto& t : make_ticks(y_.lo, y_.hi, y_.log)) {
            const double p = y_.to_pixel(t.value);
            out += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\" stroke=\"#333333\"/>\n", px(p),
                               px(plot_.x - 4), px(plot_.x));
            out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", px(plot_.x - 7),
                               px(p + 4), t.label);
        }
        out += "</g>\n";
    }

    void write_colorbar(std::string& out) const {
        const auto& h = *a_.heatmap_;
        const Rect bar{plot_.right() + kColorbarGap, plot_.y, kColorbarWidth, plot_.h};
        // A vertical gradient through the colormap's own sample points reproduces it exactly.
        out += fmt::format("<linearGradient id=\"colorbar-{}\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n", index_);
        for (int k = 0; k <= 10; ++k) {
            out += fmt::format("<stop offset=\"{}\" stop-color=\"{}\"/>\n", px(k / 10.0),
                               colormap_colour(h.options.colormap, k / 10.0));
        }
        out += "</linearGradient>\n";
        out += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"url(#colorbar-{})\" stroke=\"#333333\"/>\n",
            px(bar.x), px(bar.y), px(bar.w), px(bar.h), index_);

        const Scale scale{h.value_lo, h.value_hi, h.options.log_scale, bar.bottom(), bar.y};
        out += "<g font-size=\"10\" fill=\"#333333\">\n";
        for (const auto& t : make_ticks(h.value_lo, h.value_hi, h.options.log_scale)) {
            const double p = scale.to_pixel(t.value);
            out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#333333\"/>\n",
                               px(bar.right()), px(p), px(bar.right() + 4));
            out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", px(bar.right() + 6), px(p + 3.5), t.label);
        }
        out += "</g>\n";
        if (!h.options.colorbar_label.empty()) {
            const double x = bar.right() + 58, y = bar.y + bar.h / 2;  // past the widest tick labels
            out += fmt::format(
                "<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
                px(x), px(y), xml_escape(h.options.colorbar_label));
        }
    }

    void write_labels(std::string& out) const {
        const double centre_x = plot_.x + plot_.w / 2;
        if (!a_.title_.empty()) {
            out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
                               px(centre_x), px(plot_.y - 9), xml_escape(a_.title_));
        }
        if (a_.hide_axes_) return;
        if (!a_.xlabel_.empty()) {
            out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
                               px(centre_x), px(plot_.bottom() + 36), xml_escape(a_.xlabel_));
        }
        if (!a_.ylabel_.empty()) {
            out += fmt::format(
                "<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
                px(panel_.x + 16), px(plot_.y + plot_.h / 2), xml_escape(a_.ylabel_));
        }
    }

    void write_notes(std::string& out) const {
        for (const auto& n : a_.notes_) {
            if (!x_.usable(n.x) || !y_.usable(n.y)) continue;
            out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"#222222\">{}</text>\n",
                               px(x_.to_pixel(n.x)), px(y_.to_pixel(n.y)), px(n.font_size), xml_escape(n.content));
        }
    }

    // Number of data points (and points along line segments) that fall inside `box`.
    int points_inside(const Rect& box) const {
        auto inside = [&](double x, double y) {
            return x >= box.x && x <= box.right() && y >= box.y && y <= box.bottom();
        };
        int count = 0;
        for (const auto& s : a_.series_) {
            bool has_previous = false;
            double px0 = 0, py0 = 0;
            for (std::size_t i = 0; i < s.xs.size(); ++i) {
                if (!x_.usable(s.xs[i]) || !y_.usable(s.ys[i])) {
                    has_previous = false;
                    continue;
                }
                const double px1 = x_.to_pixel(s.xs[i]), py1 = y_.to_pixel(s.ys[i]);
                const int samples = (s.mark == Axes::Mark::line && has_previous) ? 8 : 1;
                for (int k = 1; k <= samples; ++k) {
                    const double f = static_cast<double>(k) / samples;
                    count += inside(px0 + (px1 - px0) * f, py0 + (py1 - py0) * f);
                }
                px0 = px1;
                py0 = py1;
                has_previous = true;
            }
        }
        return count;
    }

    // The corner where the legend hides the least data; top right on a tie.
    Rect legend_box(double w, double h) const {
        const double left = plot_.x + 8, right = plot_.right() - 8 - w;
        const double top = plot_.y + 8, bottom = plot_.bottom() - 8 - h;
        const std::array<Rect, 4> corners = {Rect{right, top, w, h}, Rect{left, top, w, h},
                                             Rect{right, bottom, w, h}, Rect{left, bottom, w, h}};
        Rect best = corners[0];
        int best_count = points_inside(best);
        for (std::size_t i = 1; i < corners.size(); ++i) {
            const int count = points_inside(corners[i]);
            if (count < best_count) {
                best = corners[i];
                best_count = count;
            }
        }
        return best;
    }

    void write_legend(std::string& out) const {
        struct Entry {
            const Style* style;
            bool marker;  // scatter: a dot instead of a line sample
        };
        std::vector<Entry> entries;
        for (const auto& s : a_.series_) {
            if (!s.style.label.empty()) entries.push_back({&s.style, s.mark == Axes::Mark::scatter});
        }
        for (const auto& r : a_.reference_lines_) {
            if (!r.style.label.empty()) entries.push_back({&r.style, false});
        }
        if (entries.empty()) return;

        constexpr double kRow = 17, kSample = 22, kPad = 7, kFont = 11;
        double widest = 0;
        for (const auto& e : entries) widest = std::max(widest, text_width(e.style->label, kFont));
        const double w = kPad + kSample + 6 + widest + kPad;
        const double h = kPad + kRow * static_cast<double>(entries.size()) + kPad - 4;
        const Rect box = legend_box(w, h);
        const double x = box.x, y = box.y;
        out += fmt::format("<g class=\"legend\" font-size=\"{}\">\n", kFont);
        out += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbbbbb\"/>\n",
            px(x), px(y), px(w), px(h));
        for (std::size_t i = 0; i < entries.size(); ++i) {
            const auto& e = entries[i];
            const double row_y = y + kPad + kRow * static_cast<double>(i) + kRow / 2 - 2;
            if (e.marker) {
                out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"/>\n", px(x + kPad + kSample / 2),
                                   px(row_y), px(std::max(e.style->radius, 3.0)), xml_escape(e.style->colour));
            } else {
                out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {}/>\n", px(x + kPad), px(row_y),
                                   px(x + kPad + kSample), px(row_y), stroke_attributes(*e.style));
            }
            out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", px(x + kPad + kSample + 6), px(row_y + 4),
                               xml_escape(e.style->label));
        }
        out += "</g>\n";
    }

    const Axes& a_;
    Rect panel_;
    int index_;
    Rect plot_{};
    Scale x_, y_;
};

// ==================================================================== Figure

namespace {
constexpr double kFigureTitleHeight = 34;
}

Figure::Figure(int rows, int cols, double panel_width, double panel_height)
    : rows_(rows), cols_(cols), panel_width_(panel_width), panel_height_(panel_height) {
    if (rows < 1 || cols < 1) throw std::invalid_argument(fmt::format("Figure: rows and cols must be >= 1, got {} x {}", rows, cols));
    if (!(panel_width > 0) || !(panel_height > 0) || !std::isfinite(panel_width) || !std::isfinite(panel_height)) {
        throw std::invalid_argument(
            fmt::format("Figure: panel size must be positive, got {} x {}", panel_width, panel_height));
    }
    axes_.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols));
}

Axes& Figure::axes(int row, int col) {
    if (row < 0 || row >= rows_ || col < 0 || col >= cols_) {
        throw std::invalid_argument(
            fmt::format("Figure::axes: ({}, {}) is outside the {} x {} grid", row, col, rows_, cols_));
    }
    return axes_[static_cast<std::size_t>(row) * cols_ + col];
}

Figure& Figure::title(std::string title) {
    title_ = std::move(title);
    return *this;
}

std::string Figure::to_svg() const {
    const double top = title_.empty() ? 0 : kFigureTitleHeight;
    const double width = panel_width_ * cols_, height = top + panel_height_ * rows_;
    std::string out;
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
        "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
        px(width), px(height));
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    if (!title_.empty()) {
        out += fmt::format("<text x=\"{}\" y=\"23\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{}</text>\n",
                           px(width / 2), xml_escape(title_));
    }
    for (int r = 0; r < rows_; ++r) {
        for (int c = 0; c < cols_; ++c) {
            const int index = r * cols_ + c;
            const Rect panel{c * panel_width_, top + r * panel_height_, panel_width_, panel_height_};
            AxesRenderer(axes_[static_cast<std::size_t>(index)], panel, index).write(out);
        }
    }
    out += "</svg>\n";
    return out;
}

void Figure::save(const std::string& path) const {
    // Render first: a rendering error must not touch the file. The write is atomic (tensor/file_io):
    // a failure leaves the previous figure at `path` whole, never a truncated one.
    write_file_atomically(path, to_svg(), "figure");
}

}  // namespace tapeflow::plot
