// Grid lines pushed through a map of the plane, the crossing counter that tells a homeomorphism from
// a fold, and the figure and checks tutorials 04 and 07 draw and run with them (the RealNVP paper's
// Figure 1: a bijection smooth both ways may bend a grid but never make two of its lines cross).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/verify.hpp"

namespace tapeflow::tutorial {

// A polyline in the plane.
struct Polyline {
    std::vector<double> xs, ys;
};

// The lines of a grid on [x0, x1] × [y0, y1]: `lines` horizontal lines (first) and as many vertical
// ones, each a polyline of `per_cell` segments per grid cell running half a cell past the grid.
// per_cell is odd, so no vertex falls on a grid crossing: every crossing is inside a segment.
// Throws std::invalid_argument unless lines ≥ 2, per_cell is odd and x0 < x1, y0 < y1.
std::vector<Polyline> grid_polylines(double x0, double x1, double y0, double y1, int lines, int per_cell);

// A batch [N, 2] → [N, 2], nothing recorded (e.g. a flow's forward or inverse under NoGrad).
using PlaneMap = std::function<Tensor(const Tensor&)>;
// Every polyline pushed through `f`, as one batch. With max_image_segment > 0, a segment whose image
// is longer than that is split (at √2 − 1 of its length) before the map (and again, up to 10 rounds), so that
// the polyline follows the image of a strongly stretching map closely enough for crossings() to see
// only what the map does: a chord across a stretched bend could cross a neighbouring line that the
// true image never meets.
std::vector<Polyline> map_lines(const std::vector<Polyline>& lines, const PlaneMap& f, double max_image_segment = 0);

// The number of proper crossings of two polylines (segments whose endpoints lie strictly on
// opposite sides of each other's line).
int crossings(const Polyline& p, const Polyline& q);

// What a homeomorphism promises for the image of a grid (first half of the lines one family, second
// half the other): two lines of one family never meet, and two lines of different families meet
// exactly once, as they did before the map.
struct GridTopology {
    int same_family_crossings = 0;  // 0 for a homeomorphism
    int cross_pairs_not_once = 0;   // pairs (horizontal, vertical) that do not meet exactly once; 0 likewise
    int pairs = 0;         // all pairs of lines
    int across_pairs = 0;  // the (horizontal, vertical) pairs among them
};
GridTopology grid_topology(const std::vector<Polyline>& lines);

// Prints the table of both directions' counts and checks the four promises (each can fail: the fold
// of tutorial 04's section 6 fails them). With slack > 0, the across-family check becomes a labelled
// sanity bound: at most that fraction of the (horizontal, vertical) pairs may meet other than once.
// For a map that squeezes lines into a thin filament, a polyline can cross a near-parallel
// neighbour it does not meet (chord error); a fold makes far more pairs fail.
void check_grid_topology(Verifier& verifier, const GridTopology& forward, const GridTopology& inverse,
                         const std::string& forward_label = "z grid → x", const std::string& inverse_label = "x grid → z",
                         double slack = 0, bool check_forward = true);
// check_forward = false prints the forward counts without checking them: where the map squeezes a
// region into a filament thinner than the polylines' chord error, their count measures the drawing
// rather than the map.

// The lines on `ax`, the two families in two colours: the horizontal lines of the grid before the map
// (and their images) in blue, the vertical ones in orange, dark enough to stand out on the axes' grid.
void draw_grid(plot::Axes& ax, const std::vector<Polyline>& lines);

}  // namespace tapeflow::tutorial
