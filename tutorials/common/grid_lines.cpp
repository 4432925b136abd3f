#include "tutorials/common/grid_lines.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "tutorials/common/console.hpp"
#include "tutorials/common/text_view.hpp"

namespace tapeflow::tutorial {

std::vector<Polyline> grid_polylines(double x0, double x1, double y0, double y1, int lines, int per_cell) {
    if (lines < 2) throw std::invalid_argument(fmt::format("grid_polylines: lines must be at least 2, got {}", lines));
    if (per_cell < 1 || per_cell % 2 == 0)
        throw std::invalid_argument(fmt::format("grid_polylines: per_cell must be odd, got {}", per_cell));
    if (!(x0 < x1) || !(y0 < y1))
        throw std::invalid_argument(fmt::format("grid_polylines: empty window [{}, {}] × [{}, {}]", x0, x1, y0, y1));
    const double dx = (x1 - x0) / (lines - 1), dy = (y1 - y0) / (lines - 1);
    const int vertices = lines * per_cell + 1;
    std::vector<Polyline> grid;
    for (int family = 0; family < 2; ++family)
        for (int j = 0; j < lines; ++j) {
            Polyline p;
            for (int k = 0; k < vertices; ++k) {
                if (family == 0) {  // horizontal: y fixed
                    p.xs.push_back(x0 - dx / 2 + k * dx / per_cell);
                    p.ys.push_back(y0 + j * dy);
                } else {
                    p.xs.push_back(x0 + j * dx);
                    p.ys.push_back(y0 - dy / 2 + k * dy / per_cell);
                }
            }
            grid.push_back(std::move(p));
        }
    return grid;
}

namespace {

// All vertices of all lines through f in one batch.
std::vector<Polyline> map_vertices(const std::vector<Polyline>& lines, const PlaneMap& f) {
    std::vector<double> flat;
    for (const Polyline& p : lines)
        for (std::size_t k = 0; k < p.xs.size(); ++k) {
            flat.push_back(p.xs[k]);
            flat.push_back(p.ys[k]);
        }
    const Tensor out = f(Tensor(Shape{flat.size() / 2, 2}, flat));
    std::vector<Polyline> mapped;
    std::size_t row = 0;
    for (const Polyline& p : lines) {
        Polyline q;
        for (std::size_t k = 0; k < p.xs.size(); ++k, ++row) {
            q.xs.push_back(out.at({row, 0}));
            q.ys.push_back(out.at({row, 1}));
        }
        mapped.push_back(std::move(q));
    }
    return mapped;
}

}  // namespace

std::vector<Polyline> map_lines(const std::vector<Polyline>& lines, const PlaneMap& f, double max_image_segment) {
    constexpr double split_at = 0.41421356237309515;  // √2 − 1
    std::vector<Polyline> domain = lines;
    std::vector<Polyline> image = map_vertices(domain, f);
    for (int round = 0; max_image_segment > 0 && round < 10; ++round) {
        bool split = false;
        for (std::size_t l = 0; l < domain.size(); ++l) {
            Polyline refined;
            const Polyline &p = domain[l], &q = image[l];
            for (std::size_t k = 0; k < p.xs.size(); ++k) {
                if (k > 0 && std::hypot(q.xs[k] - q.xs[k - 1], q.ys[k] - q.ys[k - 1]) > max_image_segment) {
                    // Not at the midpoint: grid_polylines puts every crossing of the grid at the
                    // midpoint of a segment, and a vertex on a crossing would hide it.
                    refined.xs.push_back(p.xs[k - 1] + split_at * (p.xs[k] - p.xs[k - 1]));
                    refined.ys.push_back(p.ys[k - 1] + split_at * (p.ys[k] - p.ys[k - 1]));
                    split = true;
                }
                refined.xs.push_back(p.xs[k]);
                refined.ys.push_back(p.ys[k]);
            }
            domain[l] = std::move(refined);
        }
        if (!split) break;
        image = map_vertices(domain, f);
    }
    return image;
}

namespace {

// The sign of the cross product (b − a) × (c − a): which side of the line ab the point c is on.
double orientation(double ax, double ay, double bx, double by, double cx, double cy) {
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
}

}  // namespace

int crossings(const Polyline& p, const Polyline& q) {
    int count = 0;
    for (std::size_t i = 0; i + 1 < p.xs.size(); ++i) {
        const double ax = p.xs[i], ay = p.ys[i], bx = p.xs[i + 1], by = p.ys[i + 1];
        const double lo_x = std::min(ax, bx), hi_x = std::max(ax, bx), lo_y = std::min(ay, by), hi_y = std::max(ay, by);
        for (std::size_t j = 0; j + 1 < q.xs.size(); ++j) {
            const double cx = q.xs[j], cy = q.ys[j], dx = q.xs[j + 1], dy = q.ys[j + 1];
            // Far-apart segments cannot cross: a bounding-box test first.
            if (std::max(cx, dx) < lo_x || std::min(cx, dx) > hi_x || std::max(cy, dy) < lo_y || std::min(cy, dy) > hi_y)
                continue;
            const double o1 = orientation(ax, ay, bx, by, cx, cy), o2 = orientation(ax, ay, bx, by, dx, dy);
            const double o3 = orientation(cx, cy, dx, dy, ax, ay), o4 = orientation(cx, cy, dx, dy, bx, by);
            if (((o1 > 0 && o2 < 0) || (o1 < 0 && o2 > 0)) && ((o3 > 0 && o4 < 0) || (o3 < 0 && o4 > 0))) ++count;
        }
    }
    return count;
}

GridTopology grid_topology(const std::vector<Polyline>& lines) {
    GridTopology t;
    const std::size_t half = lines.size() / 2;
    for (std::size_t a = 0; a < lines.size(); ++a)
        for (std::size_t b = a + 1; b < lines.size(); ++b) {
            const int c = crossings(lines[a], lines[b]);
            ++t.pairs;
            if ((a < half) == (b < half))
                t.same_family_crossings += c;
            else {
                ++t.across_pairs;
                if (c != 1) ++t.cross_pairs_not_once;
            }
        }
    return t;
}

void check_grid_topology(Verifier& verifier, const GridTopology& forward, const GridTopology& inverse,
                         const std::string& forward_label, const std::string& inverse_label, double slack,
                         bool check_forward) {
    print_indented(plot::ascii_table(
        {"grid", "line pairs", "crossings within a family", "pairs across families not meeting once"},
        {{forward_label, fmt::format("{}", forward.pairs), fmt::format("{}", forward.same_family_crossings),
          fmt::format("{}", forward.cross_pairs_not_once)},
         {inverse_label, fmt::format("{}", inverse.pairs), fmt::format("{}", inverse.same_family_crossings),
          fmt::format("{}", inverse.cross_pairs_not_once)}}));
    fmt::print("\n");
    for (const auto& [label, t] : {std::pair{forward_label, forward}, std::pair{inverse_label, inverse}}) {
        if (!check_forward && label == forward_label) continue;
        verifier.check(label + ": lines of one family never meet", t.same_family_crossings == 0,
                       fmt::format("{} crossings", t.same_family_crossings));
        if (slack == 0) {
            verifier.check(label + ": every horizontal meets every vertical once", t.cross_pairs_not_once == 0,
                           fmt::format("{} pairs do not", t.cross_pairs_not_once));
        } else {
            const auto allowed = static_cast<int>(slack * t.across_pairs);
            verifier.check(fmt::format("{}: sanity bound, pairs across families not meeting once ≤ {:g}% of {}", label,
                                       100 * slack, t.across_pairs),
                           t.cross_pairs_not_once <= allowed, fmt::format("{} pairs", t.cross_pairs_not_once));
        }
    }
}

void draw_grid(plot::Axes& ax, const std::vector<Polyline>& lines) {
    const std::size_t half = lines.size() / 2;
    for (std::size_t k = 0; k < lines.size(); ++k)
        ax.line(lines[k].xs, lines[k].ys, {.colour = k < half ? "#1f4e9c" : "#d9650b", .width = 1.0, .opacity = 0.9});
}

}  // namespace tapeflow::tutorial
