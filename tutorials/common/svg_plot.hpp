// A small SVG plotting helper for the tutorials' figures.
//
// Deliberately tiny: a grid of panels (Figure), each panel an Axes holding
// lines, scatters, one heatmap or one grayscale image, reference lines and
// text. Output is plain SVG text, byte-identical for identical inputs, so a
// figure can be diffed or checked in a test.
//
//   tapeflow::plot::Figure fig(1, 2);
//   fig.axes(0, 0).line(xs, ys, {.label = "exact"}).legend();
//   fig.axes(0, 1).heatmap(density, nx, ny, -3, 3, -3, 3);
//   fig.save("out/03_change_of_variables/density.svg");
#pragma once

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tapeflow::plot {

struct Style {
    std::string colour{};    // any SVG colour; empty = next colour of the palette
    double width = 1.6;      // line width in px
    double radius = 2.5;     // scatter marker radius in px
    double opacity = 1.0;    // 0..1
    bool dashed = false;
    std::string label{};     // shown by legend(); empty = not in the legend
};

enum class Colormap { viridis, magma, greys };

struct HeatmapOptions {
    Colormap colormap = Colormap::viridis;
    std::string colorbar_label{};
    bool log_scale = false;            // colour by log10(value); non-positive cells stay blank
    std::optional<double> value_min{}; // fix the colour range, e.g. to compare two panels
    std::optional<double> value_max{};
};

// Colour of `t` in [0, 1] (clamped) as "#rrggbb". Low values are dark for
// viridis and magma; greys goes from white (low) to black (high).
std::string colormap_colour(Colormap map, double t);

// Tick positions on a linear axis: multiples of a 1-2-5 step that fall in
// [lo, hi], about `target_count` of them.
std::vector<double> nice_ticks(double lo, double hi, int target_count = 5);

// Tick positions on a log10 axis over [lo, hi] (both > 0): the powers of ten
// inside, thinned when there are many; 1-2-5 ticks when less than a decade.
std::vector<double> log_ticks(double lo, double hi);

class Axes {
public:
    Axes& line(std::span<const double> xs, std::span<const double> ys, Style style = {});
    Axes& scatter(std::span<const double> xs, std::span<const double> ys, Style style = {});

    // `values` is row-major ny x nx; row 0 is at y_min, column 0 at x_min.
    // One heatmap (or one image) per Axes.
    Axes& heatmap(std::span<const double> values, int nx, int ny, double x_min, double x_max,
                  double y_min, double y_max, HeatmapOptions options = {});

    // A grayscale picture, row 0 at the top, 0 = black, 1 = white (values are
    // clamped; non-finite pixels are drawn red so they cannot go unnoticed).
    // Pixel indices are not data, so this also sets equal_aspect() and hide_axes().
    Axes& image(std::span<const double> gray, int height, int width);

    Axes& hline(double y, Style style = {});
    Axes& vline(double x, Style style = {});
    Axes& text(double x, double y, std::string content, double font_size = 11);

    Axes& set_title(std::string title);
    Axes& set_xlabel(std::string label);
    Axes& set_ylabel(std::string label);
    Axes& set_xlim(double lo, double hi);
    Axes& set_ylim(double lo, double hi);
    Axes& set_log_x(bool on = true);
    Axes& set_log_y(bool on = true);
    Axes& equal_aspect(bool on = true);  // one data unit is as long in x as in y
    Axes& legend(bool on = true);
    Axes& hide_axes(bool on = true);     // no frame, ticks or axis labels

private:
    friend class AxesRenderer;

    enum class Mark { line, scatter };
    struct Series {
        Mark mark;
        std::vector<double> xs, ys;
        Style style;
    };
    struct ReferenceLine {
        bool horizontal;
        double at;
        Style style;
    };
    struct Note {
        double x, y;
        std::string content;
        double font_size;
    };
    struct Heatmap {
        std::vector<double> values;
        int nx, ny;
        double x_min, x_max, y_min, y_max;
        HeatmapOptions options;
        double value_lo, value_hi;  // colour range, in log10 when log_scale
    };
    struct Image {
        std::vector<double> pixels;
        int height, width;
    };

    Style with_default_colour(Style style);

    std::vector<Series> series_;
    std::vector<ReferenceLine> reference_lines_;
    std::vector<Note> notes_;
    std::optional<Heatmap> heatmap_;
    std::optional<Image> image_;
    std::string title_, xlabel_, ylabel_;
    std::optional<std::pair<double, double>> xlim_, ylim_;
    bool log_x_ = false, log_y_ = false;
    bool equal_aspect_ = false, legend_ = false, hide_axes_ = false;
    int next_palette_colour_ = 0;
};

class Figure {
public:
    Figure(int rows, int cols, double panel_width = 420, double panel_height = 340);

    Axes& axes(int row, int col);
    Figure& title(std::string title);

    std::string to_svg() const;
    // Creates missing parent directories; throws std::runtime_error naming the path on failure.
    void save(const std::string& path) const;

private:
    int rows_, cols_;
    double panel_width_, panel_height_;
    std::string title_;
    std::vector<Axes> axes_;  // row-major; never resized, so references stay valid
};

}  // namespace tapeflow::plot
