// Compact terminal views, so a reader sees a tutorial's result without
// opening the SVG: a shaded heatmap, a character plot and an aligned table.
// Each returns the text (ending in a newline) instead of printing it, so a
// tutorial decides where it goes and a test can inspect it.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace tapeflow::plot {

// `values` is row-major ny x nx with row 0 at the bottom (y grows upward, as in
// Axes::heatmap). The grid is block-averaged to width x height characters and
// shaded with " .:-=+*#%@" from the smallest to the largest block; a block
// with no finite value shows as '?'. The picture is framed by +--+ and |.
std::string ascii_heatmap(std::span<const double> values, int nx, int ny, int width, int height);

// The points (xs[i], ys[i]) as '*', joined by '.' in data order, in a
// width x height character box annotated with the axis minima and maxima.
// Non-finite points (and non-positive ones on a log axis) are skipped and
// break the line.
std::string ascii_plot(std::span<const double> xs, std::span<const double> ys, int width, int height,
                       bool log_x = false, bool log_y = false);

// Columns padded to their widest cell, separated by two spaces, with a rule
// under the header. A column whose cells all read as numbers is
// right-aligned so its digits line up; other columns are left-aligned.
// Every row must have as many cells as the header.
std::string ascii_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace tapeflow::plot
