#include "tutorials/common/svg_plot.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tensor/testing/save_faults.hpp"

using namespace tapeflow::plot;

namespace {

struct SvgRect {
    double x, y, width, height;
    std::string fill;
};

// The value of attribute `name` in the tag starting at `tag_begin`. (std::regex
// is avoided: GCC 12 warns inside it under -O1 with sanitizers.)
std::string attribute(const std::string& svg, std::size_t tag_begin, const std::string& name) {
    const auto tag_end = svg.find('>', tag_begin);
    const auto key = svg.find(" " + name + "=\"", tag_begin);
    REQUIRE(key < tag_end);
    const auto value_begin = key + name.size() + 3;
    return svg.substr(value_begin, svg.find('"', value_begin) - value_begin);
}

SvgRect rect_at(const std::string& svg, std::size_t tag_begin) {
    return {std::stod(attribute(svg, tag_begin, "x")), std::stod(attribute(svg, tag_begin, "y")),
            std::stod(attribute(svg, tag_begin, "width")), std::stod(attribute(svg, tag_begin, "height")),
            attribute(svg, tag_begin, "fill")};
}

// The <rect>s inside the first crispEdges group, i.e. the heatmap cells or image pixels.
std::vector<SvgRect> cell_rects(const std::string& svg) {
    const auto begin = svg.find("<g shape-rendering=\"crispEdges\">");
    REQUIRE(begin != std::string::npos);
    const auto end = svg.find("</g>", begin);
    std::vector<SvgRect> rects;
    for (auto pos = svg.find("<rect ", begin); pos < end; pos = svg.find("<rect ", pos + 1)) {
        rects.push_back(rect_at(svg, pos));
    }
    return rects;
}

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
}

void check_ticks(const std::vector<double>& actual, const std::vector<double>& expected) {
    REQUIRE(actual.size() == expected.size());
    for (std::size_t i = 0; i < actual.size(); ++i) CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-12));
}

}  // namespace

TEST_CASE("nice_ticks uses 1-2-5 steps inside the range") {
    check_ticks(nice_ticks(0, 1), {0, 0.2, 0.4, 0.6, 0.8, 1.0});
    check_ticks(nice_ticks(-3, 3), {-3, -2, -1, 0, 1, 2, 3});
    check_ticks(nice_ticks(-0.05, 1050), {0, 200, 400, 600, 800, 1000});
    check_ticks(nice_ticks(0.013, 0.052), {0.02, 0.03, 0.04, 0.05});
    CHECK_THROWS_AS(nice_ticks(1, 1), std::invalid_argument);
}

TEST_CASE("log_ticks gives decades, thinned over wide ranges") {
    check_ticks(log_ticks(1e-3, 1e2), {1e-3, 1e-2, 1e-1, 1, 1e1, 1e2});
    check_ticks(log_ticks(1e-12, 0.5), {1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2});
    check_ticks(log_ticks(2, 9), {2, 4, 6, 8});  // less than a decade: linear ticks
    CHECK_THROWS_AS(log_ticks(0, 1), std::invalid_argument);
}

TEST_CASE("colormaps hit matplotlib's end points") {
    CHECK(colormap_colour(Colormap::viridis, 0) == "#440154");
    CHECK(colormap_colour(Colormap::viridis, 1) == "#fde725");
    CHECK(colormap_colour(Colormap::viridis, 0.5) == "#21918c");
    CHECK(colormap_colour(Colormap::magma, 0) == "#000004");
    CHECK(colormap_colour(Colormap::greys, 0) == "#ffffff");
    CHECK(colormap_colour(Colormap::greys, 1) == "#000000");
    CHECK(colormap_colour(Colormap::viridis, -3) == "#440154");  // clamped
    CHECK(colormap_colour(Colormap::viridis, NAN) == "#440154");
}

TEST_CASE("heatmap puts row 0 at y_min: the smallest value is the bottom-left cell") {
    // 3 columns x 2 rows, increasing along the rows: the minimum is row 0, column 0.
    const std::vector<double> values = {0, 1, 2, 3, 4, 5};
    Figure fig(1, 1);
    fig.axes(0, 0).heatmap(values, 3, 2, 0, 3, 0, 2, {.colorbar_label = "p(x)"});
    const std::string svg = fig.to_svg();
    const auto rects = cell_rects(svg);
    REQUIRE(rects.size() == 6);

    double min_x = 1e9, max_x = -1e9, min_y = 1e9, max_y = -1e9;
    for (const auto& r : rects) {
        min_x = std::min(min_x, r.x);
        max_x = std::max(max_x, r.x);
        min_y = std::min(min_y, r.y);
        max_y = std::max(max_y, r.y);
    }
    int darkest = 0, brightest = 0;
    for (const auto& r : rects) {
        if (r.fill == "#440154") {
            ++darkest;
            CHECK(r.x == min_x);
            CHECK(r.y == max_y);  // pixel y grows downward, so the bottom row has the largest y
        }
        if (r.fill == "#fde725") {
            ++brightest;
            CHECK(r.x == max_x);
            CHECK(r.y == min_y);
        }
    }
    CHECK(darkest == 1);
    CHECK(brightest == 1);
    CHECK(svg.find("linearGradient id=\"colorbar-0\"") != std::string::npos);
    CHECK(svg.find(">p(x)</text>") != std::string::npos);
}

TEST_CASE("heatmap log_scale colours by log10 and leaves non-positive cells blank") {
    const std::vector<double> values = {1e-4, 1e-2, 1, 0};
    Figure fig(1, 1);
    fig.axes(0, 0).heatmap(values, 4, 1, 0, 4, 0, 1, {.log_scale = true});
    const auto rects = cell_rects(fig.to_svg());
    REQUIRE(rects.size() == 3);
    CHECK(rects[0].fill == "#440154");
    CHECK(rects[1].fill == colormap_colour(Colormap::viridis, 0.5));
    CHECK(rects[2].fill == "#fde725");
}

TEST_CASE("image draws row 0 at the top, 0 black, 1 white, non-finite red") {
    const std::vector<double> pixels = {0, 1, 0.5, NAN};
    Figure fig(1, 1, 200, 200);
    fig.axes(0, 0).image(pixels, 2, 2);
    const auto rects = cell_rects(fig.to_svg());
    REQUIRE(rects.size() == 4);
    CHECK(rects[0].fill == "#000000");
    CHECK(rects[1].fill == "#ffffff");
    CHECK(rects[2].fill == "#808080");
    CHECK(rects[3].fill == "#ff0000");
    CHECK(rects[0].y < rects[2].y);
    CHECK(rects[0].x < rects[1].x);
}

TEST_CASE("legend shows labelled series with escaped text") {
    const std::vector<double> xs = {0, 1, 2}, ys = {1, 0, 1};
    Figure fig(1, 1);
    fig.title("flows & <friends>");
    fig.axes(0, 0).line(xs, ys, {.label = "exact <p>"}).scatter(xs, ys, {.label = "samples"}).line(xs, xs).legend();
    const std::string svg = fig.to_svg();
    CHECK(svg.find("class=\"legend\"") != std::string::npos);
    CHECK(svg.find(">exact &lt;p&gt;</text>") != std::string::npos);
    CHECK(svg.find(">samples</text>") != std::string::npos);
    CHECK(svg.find("flows &amp; &lt;friends&gt;") != std::string::npos);
    CHECK(svg.find("<p>") == std::string::npos);
    CHECK(svg.find("<friends>") == std::string::npos);
}

TEST_CASE("the SVG is self-contained and clipped") {
    const std::vector<double> xs = {0, 1}, ys = {0, 1};
    Figure fig(2, 3);
    fig.axes(1, 2).line(xs, ys);
    const std::string svg = fig.to_svg();
    CHECK(svg.find("xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
    CHECK(svg.find("viewBox=\"0 0 1260.00 680.00\"") != std::string::npos);
    CHECK(count(svg, "<clipPath id=") == 6);
    CHECK(svg.find("clip-path=\"url(#clip-5)\"") != std::string::npos);
    CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
}

TEST_CASE("identical inputs give byte-identical SVG") {
    auto build = [] {
        std::vector<double> xs, ys;
        for (int i = 0; i < 50; ++i) {
            xs.push_back(i * 0.1);
            ys.push_back(std::sin(i * 0.1));
        }
        Figure fig(1, 2);
        fig.axes(0, 0).line(xs, ys, {.label = "sin"}).scatter(xs, ys).legend().set_title("t");
        fig.axes(0, 1).heatmap(ys, 10, 5, 0, 1, 0, 1);
        return fig.to_svg();
    };
    CHECK(build() == build());
}

TEST_CASE("non-finite points break lines and do not disturb the limits") {
    const std::vector<double> xs = {0, 1, 2, 3, 4}, ys = {0, 1, NAN, 3, INFINITY};
    Figure fig(1, 1);
    fig.axes(0, 0).line(xs, ys);
    const std::string svg = fig.to_svg();
    CHECK(count(svg, "<polyline") == 1);  // [0, 1]; the runs [3] and [] are too short for a line
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf") == std::string::npos);

    const std::vector<double> ys2 = {0, 1, NAN, 3, 4};
    Figure fig2(1, 1);
    fig2.axes(0, 0).line(xs, ys2);
    CHECK(count(fig2.to_svg(), "<polyline") == 2);
}

TEST_CASE("log axes skip non-positive values and label decades") {
    const std::vector<double> eps = {1e-8, 1e-6, 1e-4, 1e-2}, err = {1e-3, 0, 1e-9, 1e-5};
    Figure fig(1, 1);
    fig.axes(0, 0).line(eps, err).set_log_x().set_log_y();
    const std::string svg = fig.to_svg();
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("10<tspan dy=\"-5\" font-size=\"8\">-6</tspan>") != std::string::npos);
    CHECK(count(svg, "<polyline") == 1);  // broken at the zero: only the run 1e-4, 1e-2 is long enough

    Figure bad(1, 1);
    bad.axes(0, 0).line(eps, err).set_log_y().set_ylim(-1, 1);
    CHECK_THROWS_WITH_AS(bad.to_svg(), "Axes: log y axis needs positive limits, got [-1, 1]", std::invalid_argument);
}

TEST_CASE("size mismatches name the function and both sizes") {
    const std::vector<double> three = {1, 2, 3}, two = {1, 2};
    Figure fig(1, 1);
    auto& ax = fig.axes(0, 0);
    CHECK_THROWS_WITH_AS(ax.line(three, two), "Axes::line: xs has 3 values but ys has 2", std::invalid_argument);
    CHECK_THROWS_WITH_AS(ax.scatter(two, three), "Axes::scatter: xs has 2 values but ys has 3", std::invalid_argument);
    CHECK_THROWS_WITH_AS(ax.heatmap(three, 2, 2, 0, 1, 0, 1), "Axes::heatmap: values has 3 entries but nx*ny = 2*2 = 4",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ax.image(three, 1, 2), "Axes::image: gray has 3 pixels but height*width = 1*2 = 2",
                         std::invalid_argument);
    CHECK_THROWS_AS(ax.set_xlim(1, 1), std::invalid_argument);
    CHECK_THROWS_AS(ax.line(two, two, {.opacity = 2}), std::invalid_argument);
    CHECK_THROWS_AS(fig.axes(1, 0), std::invalid_argument);
    CHECK_THROWS_AS(Figure(0, 1), std::invalid_argument);
}

TEST_CASE("equal_aspect makes a unit the same length on both axes") {
    const std::vector<double> xs = {0, 1}, ys = {0, 1};
    Figure fig(1, 1, 500, 300);
    fig.axes(0, 0).scatter(xs, ys).equal_aspect();
    const std::string svg = fig.to_svg();
    const auto clip = svg.find("<clipPath id=\"clip-0\"><rect ");
    REQUIRE(clip != std::string::npos);
    const SvgRect box = {std::stod(attribute(svg, clip + 23, "x")), std::stod(attribute(svg, clip + 23, "y")),
                         std::stod(attribute(svg, clip + 23, "width")), std::stod(attribute(svg, clip + 23, "height")), ""};
    CHECK(box.width == doctest::Approx(box.height).epsilon(1e-3));
}

TEST_CASE("hide_axes drops ticks and the frame") {
    const std::vector<double> xs = {0, 1}, ys = {0, 1};
    Figure shown(1, 1), hidden(1, 1);
    shown.axes(0, 0).line(xs, ys);
    hidden.axes(0, 0).line(xs, ys).hide_axes();
    CHECK(shown.to_svg().find("text-anchor=\"end\"") != std::string::npos);
    CHECK(hidden.to_svg().find("text-anchor=\"end\"") == std::string::npos);
}

TEST_CASE("save creates parent directories and names the path on failure") {
    const auto dir = std::filesystem::temp_directory_path() / "tapeflow_svg_plot_test";
    std::filesystem::remove_all(dir);
    Figure fig(1, 1);
    const std::vector<double> xs = {0, 1};
    fig.axes(0, 0).line(xs, xs);
    const std::string path = (dir / "nested" / "fig.svg").string();
    fig.save(path);
    std::ifstream in(path);
    const std::string saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(saved == fig.to_svg());

    // A regular file where a directory should be: creating the parent must fail.
    const std::string blocked = (dir / "nested" / "fig.svg" / "inside.svg").string();
    try {
        fig.save(blocked);
        FAIL("save into a file's path should throw");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find(blocked) != std::string::npos);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("a failed save leaves the previous figure whole, never a truncated one") {
    const auto dir = std::filesystem::temp_directory_path() / fmt::format("tapeflow_svg_save_{}", ::getpid());
    std::filesystem::remove_all(dir);
    const std::string path = (dir / "fig.svg").string();
    Figure before(1, 1), after(1, 2);
    const std::vector<double> xs = {0, 1};
    before.axes(0, 0).line(xs, xs);
    after.axes(0, 1).scatter(xs, xs);
    before.save(path);
    for (const auto stage : {tapeflow::testing::SaveStage::write, tapeflow::testing::SaveStage::flush,
                             tapeflow::testing::SaveStage::fsync, tapeflow::testing::SaveStage::rename}) {
        tapeflow::testing::SaveFaultInjection full_disk(stage, ENOSPC);
        CHECK_THROWS_WITH_AS(after.save(path), doctest::Contains("No space left on device"), std::runtime_error);
    }
    std::ifstream in(path);
    const std::string saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(saved == before.to_svg());
    CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator{}) == 1);
    std::filesystem::remove_all(dir);
}

TEST_CASE("a large heatmap is embedded as one PNG with row 0 at the bottom") {
    // 100 × 60 cells (above the rect limit), increasing along the rows: the minimum is the bottom-left.
    const int nx = 100, ny = 60;
    std::vector<double> values(static_cast<std::size_t>(nx) * ny);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i);
    Figure fig(1, 1);
    fig.axes(0, 0).heatmap(values, nx, ny, 0, 1, 0, 1);
    const std::string svg = fig.to_svg();
    CHECK(svg.find("<g shape-rendering=\"crispEdges\">") == std::string::npos);
    CHECK(count(svg, "<image ") == 1);
    CHECK(svg.size() < 60000);
    const std::string prefix = "href=\"data:image/png;base64,";
    const auto start = svg.find(prefix);
    REQUIRE(start != std::string::npos);
    const std::string b64 = svg.substr(start + prefix.size(), svg.find('"', start + prefix.size()) - start - prefix.size());

    // Decode base64 and the PNG's single IDAT chunk, then read the corner pixels.
    auto value_of = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        return c == '+' ? 62 : 63;
    };
    std::vector<std::uint8_t> png;
    for (std::size_t i = 0; i + 3 < b64.size(); i += 4) {
        const int triple = value_of(b64[i]) << 18 | value_of(b64[i + 1]) << 12 |
                           (b64[i + 2] == '=' ? 0 : value_of(b64[i + 2]) << 6) | (b64[i + 3] == '=' ? 0 : value_of(b64[i + 3]));
        png.push_back(static_cast<std::uint8_t>(triple >> 16));
        if (b64[i + 2] != '=') png.push_back(static_cast<std::uint8_t>(triple >> 8));
        if (b64[i + 3] != '=') png.push_back(static_cast<std::uint8_t>(triple));
    }
    REQUIRE(png.size() > 33);
    auto u32 = [&](std::size_t at) { return std::uint32_t{png[at]} << 24 | std::uint32_t{png[at + 1]} << 16 | std::uint32_t{png[at + 2]} << 8 | png[at + 3]; };
    CHECK(u32(16) == static_cast<std::uint32_t>(nx));  // IHDR width
    CHECK(u32(20) == static_cast<std::uint32_t>(ny));  // IHDR height
    const std::size_t idat = 33;
    const std::uint32_t length = u32(idat);
    REQUIRE(std::string(png.begin() + idat + 4, png.begin() + idat + 8) == "IDAT");
    std::vector<std::uint8_t> raw(static_cast<std::size_t>(ny) * (1 + 4 * nx));
    uLongf raw_size = raw.size();
    REQUIRE(uncompress(raw.data(), &raw_size, png.data() + idat + 8, length) == Z_OK);
    REQUIRE(raw_size == raw.size());
    auto pixel = [&](int row, int col) {
        const std::uint8_t* p = raw.data() + static_cast<std::size_t>(row) * (1 + 4 * nx) + 1 + 4 * col;
        return fmt::format("#{:02x}{:02x}{:02x}", p[0], p[1], p[2]);
    };
    CHECK(pixel(ny - 1, 0) == "#440154");   // bottom-left: the smallest value
    CHECK(pixel(0, nx - 1) == "#fde725");   // top-right: the largest
}
