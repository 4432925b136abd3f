#include "tutorials/common/text_view.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

using namespace tapeflow::plot;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST_CASE("ascii_heatmap puts row 0 at the bottom") {
    // value = row index: smallest at the bottom of the picture, largest at the top.
    std::vector<double> values;
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) values.push_back(i);
    }
    const auto lines = lines_of(ascii_heatmap(values, 4, 4, 4, 4));
    REQUIRE(lines.size() == 7);  // frame, 4 rows, frame, legend
    CHECK(lines[0] == "+----+");
    CHECK(lines[1] == "|@@@@|");
    CHECK(lines[4] == "|    |");
    CHECK(lines[5] == "+----+");
    CHECK(lines[6] == "' ' = 0 .. '@' = 3");
}

TEST_CASE("ascii_heatmap block-averages columns and marks empty blocks") {
    // x gradient 0..7 squeezed into 2 characters: means 1.5 and 5.5.
    std::vector<double> values = {0, 1, 2, 3, 4, 5, 6, 7};
    auto lines = lines_of(ascii_heatmap(values, 8, 1, 2, 1));
    CHECK(lines[1] == "| @|");

    values = {NAN, 1, 2, 3};
    lines = lines_of(ascii_heatmap(values, 4, 1, 4, 1));
    CHECK(lines[1] == "|? +@|");

    CHECK_THROWS_WITH_AS(ascii_heatmap(values, 3, 2, 10, 5), "ascii_heatmap: values has 4 entries but nx*ny = 3*2 = 6",
                         std::invalid_argument);
}

TEST_CASE("ascii_plot draws points with y increasing upward and annotates the range") {
    const std::vector<double> xs = {0, 1, 2}, ys = {0, 1, 2};
    const auto lines = lines_of(ascii_plot(xs, ys, 3, 3));
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] == "2 |  *|");
    CHECK(lines[1] == "  | * |");
    CHECK(lines[2] == "0 |*  |");
    CHECK(lines[3] == "  +---+");
    CHECK(lines[4] == "   0 2");
}

TEST_CASE("ascii_plot joins points and skips what a log axis cannot show") {
    const std::vector<double> xs = {0, 10}, ys = {0, 0};
    CHECK(lines_of(ascii_plot(xs, ys, 6, 2))[1] == "0 |*....*|");

    const std::vector<double> eps = {1e-6, 1e-4, 1e-2}, err = {1e-2, 0, 1e-8};
    const std::string text = ascii_plot(eps, err, 20, 5, true, true);
    CHECK(text.find("(log x, log y)") != std::string::npos);
    CHECK(text.find("1e-06") != std::string::npos);
    for (const auto& line : lines_of(text)) {  // the zero breaks the line, so nothing is joined
        const auto first = line.find('|'), last = line.rfind('|');
        if (first != std::string::npos) CHECK(line.substr(first, last - first).find('.') == std::string::npos);
    }

    const std::vector<double> nan = {NAN};
    CHECK(ascii_plot(nan, nan, 10, 5) == "(ascii_plot: no finite points to plot)\n");
    CHECK_THROWS_WITH_AS(ascii_plot(xs, nan, 10, 5), "ascii_plot: xs has 2 values but ys has 1", std::invalid_argument);
}

TEST_CASE("ascii_table aligns columns, numbers to the right") {
    const std::string table = ascii_table({"method", "log p"}, {{"exact", "-1.25"}, {"monte carlo", "-1.3"}});
    CHECK(table ==
          "method       log p\n"
          "-----------  -----\n"
          "exact        -1.25\n"
          "monte carlo   -1.3\n");
    CHECK_THROWS_WITH_AS(ascii_table({"a", "b"}, {{"1", "2"}, {"3"}}), "ascii_table: row 1 has 1 cells but the header has 2",
                         std::invalid_argument);
}
