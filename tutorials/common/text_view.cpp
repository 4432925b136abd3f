#include "tutorials/common/text_view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string_view>

namespace tapeflow::plot {

namespace {

constexpr std::string_view kShades = " .:-=+*#%@";

// Glyphs, not bytes, so a UTF-8 label such as "σ" pads correctly.
std::size_t display_width(std::string_view text) {
    return static_cast<std::size_t>(std::count_if(
        text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string pad(std::string_view text, std::size_t width, bool right_align) {
    const std::string fill(width - std::min(width, display_width(text)), ' ');
    return right_align ? fill + std::string(text) : std::string(text) + fill;
}

bool reads_as_number(std::string_view cell) {
    if (cell.empty()) return false;
    double value = 0;
    const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
    return ec == std::errc() && end == cell.data() + cell.size();
}

// Closed range [lo, hi] along one axis, in log10 units on a log axis.
struct Range {
    double lo = INFINITY, hi = -INFINITY;
    bool log = false;

    bool usable(double v) const { return std::isfinite(v) && (!log || v > 0); }
    double scaled(double v) const { return log ? std::log10(v) : v; }
    void include(double v) {
        lo = std::min(lo, scaled(v));
        hi = std::max(hi, scaled(v));
    }
    // Position of v in [0, 1]; a single-valued range puts everything in the middle.
    double fraction(double v) const { return hi > lo ? (scaled(v) - lo) / (hi - lo) : 0.5; }
    double value_at(double scaled_value) const { return log ? std::pow(10.0, scaled_value) : scaled_value; }
};

// Mean of the finite values in rows [i0, i1) and columns [j0, j1); NaN if none.
double block_mean(std::span<const double> values, int nx, int i0, int i1, int j0, int j1) {
    double sum = 0;
    int count = 0;
    for (int i = i0; i < i1; ++i) {
        for (int j = j0; j < j1; ++j) {
            const double v = values[static_cast<std::size_t>(i) * nx + j];
            if (std::isfinite(v)) {
                sum += v;
                ++count;
            }
        }
    }
    return count > 0 ? sum / count : NAN;
}

// Cells [first, last) of an n-cell axis covered by character k of `chars`;
// at least one cell, so a view larger than the grid repeats cells.
std::pair<int, int> block(int k, int chars, int n) {
    const int first = static_cast<int>(static_cast<long long>(k) * n / chars);
    const int last = static_cast<int>(static_cast<long long>(k + 1) * n / chars);
    return {first, std::max(first + 1, last)};
}

std::string framed(const std::vector<std::string>& lines, int width, const std::string& margin) {
    const std::string rule = margin + "+" + std::string(static_cast<std::size_t>(width), '-') + "+\n";
    std::string out = rule;
    for (const auto& line : lines) out += margin + "|" + line + "|\n";
    return out + rule;
}

}  // namespace

std::string ascii_heatmap(std::span<const double> values, int nx, int ny, int width, int height) {
    if (nx < 1 || ny < 1) throw std::invalid_argument(fmt::format("ascii_heatmap: nx and ny must be >= 1, got {} x {}", nx, ny));
    if (width < 1 || height < 1) {
        throw std::invalid_argument(fmt::format("ascii_heatmap: width and height must be >= 1, got {} x {}", width, height));
    }
    const auto expected = static_cast<std::size_t>(nx) * static_cast<std::size_t>(ny);
    if (values.size() != expected) {
        throw std::invalid_argument(fmt::format("ascii_heatmap: values has {} entries but nx*ny = {}*{} = {}",
                                                values.size(), nx, ny, expected));
    }

    // Average first, then normalise: the shades then span the blocks actually shown.
    std::vector<double> means(static_cast<std::size_t>(width) * height);
    Range range;
    for (int r = 0; r < height; ++r) {
        const auto [i0, i1] = block(height - 1 - r, height, ny);  // the first text line is the top (largest y)
        for (int c = 0; c < width; ++c) {
            const auto [j0, j1] = block(c, width, nx);
            const double mean = block_mean(values, nx, i0, i1, j0, j1);
            means[static_cast<std::size_t>(r) * width + c] = mean;
            if (std::isfinite(mean)) range.include(mean);
        }
    }

    std::vector<std::string> lines(static_cast<std::size_t>(height), std::string(static_cast<std::size_t>(width), '?'));
    for (int r = 0; r < height; ++r) {
        for (int c = 0; c < width; ++c) {
            const double mean = means[static_cast<std::size_t>(r) * width + c];
            if (!std::isfinite(mean)) continue;
            const auto shade = std::min<std::size_t>(kShades.size() - 1,
                                                     static_cast<std::size_t>(range.fraction(mean) * kShades.size()));
            lines[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = kShades[shade];
        }
    }
    std::string out = framed(lines, width, "");
    if (range.lo <= range.hi) out += fmt::format("' ' = {:.4g} .. '@' = {:.4g}\n", range.lo, range.hi);
    return out;
}

std::string ascii_plot(std::span<const double> xs, std::span<const double> ys, int width, int height, bool log_x,
                       bool log_y) {
    if (xs.size() != ys.size()) {
        throw std::invalid_argument(fmt::format("ascii_plot: xs has {} values but ys has {}", xs.size(), ys.size()));
    }
    if (width < 2 || height < 2) {
        throw std::invalid_argument(fmt::format("ascii_plot: width and height must be >= 2, got {} x {}", width, height));
    }
    Range x_range{INFINITY, -INFINITY, log_x}, y_range{INFINITY, -INFINITY, log_y};
    for (std::size_t i = 0; i < xs.size(); ++i) {
        if (x_range.usable(xs[i]) && y_range.usable(ys[i])) {
            x_range.include(xs[i]);
            y_range.include(ys[i]);
        }
    }
    if (x_range.lo > x_range.hi) return "(ascii_plot: no finite points to plot)\n";

    std::vector<std::string> grid(static_cast<std::size_t>(height), std::string(static_cast<std::size_t>(width), ' '));
    auto column = [&](double x) { return static_cast<int>(std::lround(x_range.fraction(x) * (width - 1))); };
    auto row = [&](double y) { return static_cast<int>(std::lround((1 - y_range.fraction(y)) * (height - 1))); };
    auto put = [&](int c, int r, char mark) { grid[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = mark; };

    // Join consecutive points first, then draw the points over the joins.
    bool has_previous = false;
    int c0 = 0, r0 = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        if (!x_range.usable(xs[i]) || !y_range.usable(ys[i])) {
            has_previous = false;
            continue;
        }
        const int c1 = column(xs[i]), r1 = row(ys[i]);
        const int steps = std::max(std::abs(c1 - c0), std::abs(r1 - r0));
        for (int k = 1; has_previous && k < steps; ++k) {
            put(c0 + (c1 - c0) * k / steps, r0 + (r1 - r0) * k / steps, '.');
        }
        c0 = c1;
        r0 = r1;
        has_previous = true;
    }
    for (std::size_t i = 0; i < xs.size(); ++i) {
        if (x_range.usable(xs[i]) && y_range.usable(ys[i])) put(column(xs[i]), row(ys[i]), '*');
    }

    const std::string y_max = fmt::format("{:.4g}", y_range.value_at(y_range.hi));
    const std::string y_min = fmt::format("{:.4g}", y_range.value_at(y_range.lo));
    const std::size_t label_width = std::max(y_max.size(), y_min.size());
    std::string out;
    for (int r = 0; r < height; ++r) {
        const std::string label = r == 0 ? y_max : r == height - 1 ? y_min : "";
        out += pad(label, label_width, true) + " |" + grid[static_cast<std::size_t>(r)] + "|\n";
    }
    out += std::string(label_width + 1, ' ') + "+" + std::string(static_cast<std::size_t>(width), '-') + "+\n";

    const std::string x_min = fmt::format("{:.4g}", x_range.value_at(x_range.lo));
    const std::string x_max = fmt::format("{:.4g}", x_range.value_at(x_range.hi));
    // x_min starts under the first column, x_max ends under the last one.
    const auto room = static_cast<long long>(width) - static_cast<long long>(x_min.size() + x_max.size());
    const auto gap = static_cast<std::size_t>(std::max(1LL, room));
    std::string x_line = std::string(label_width + 2, ' ') + x_min + std::string(gap, ' ') + x_max;
    if (log_x || log_y) x_line += log_x && log_y ? "   (log x, log y)" : log_x ? "   (log x)" : "   (log y)";
    return out + x_line + "\n";
}

std::string ascii_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
    if (header.empty()) throw std::invalid_argument("ascii_table: the header has no columns");
    for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].size() != header.size()) {
            throw std::invalid_argument(fmt::format("ascii_table: row {} has {} cells but the header has {}", r,
                                                    rows[r].size(), header.size()));
        }
    }
    std::vector<std::size_t> widths(header.size());
    std::vector<bool> numeric(header.size(), !rows.empty());
    for (std::size_t c = 0; c < header.size(); ++c) {
        widths[c] = display_width(header[c]);
        for (const auto& row : rows) {
            widths[c] = std::max(widths[c], display_width(row[c]));
            numeric[c] = numeric[c] && reads_as_number(row[c]);
        }
    }

    auto format_row = [&](auto cell_text) {
        std::string line;
        for (std::size_t c = 0; c < header.size(); ++c) {
            if (c > 0) line += "  ";
            line += pad(cell_text(c), widths[c], numeric[c]);
        }
        line.erase(line.find_last_not_of(' ') + 1);  // no trailing blanks after a left-aligned last column
        return line + "\n";
    };
    std::string out = format_row([&](std::size_t c) { return header[c]; });
    out += format_row([&](std::size_t c) { return std::string(widths[c], '-'); });
    for (const auto& row : rows) out += format_row([&](std::size_t c) { return row[c]; });
    return out;
}

}  // namespace tapeflow::plot
