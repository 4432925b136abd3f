#include "tutorials/common/console.hpp"

#include <time.h>

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

namespace tapeflow::tutorial {

double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

void print_indented(const std::string& text, const std::string& prefix) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) fmt::print("{}{}\n", prefix, line);
}

std::string side_by_side(const std::vector<std::string>& titles, const std::vector<std::string>& blocks) {
    std::vector<std::vector<std::string>> lines(blocks.size());
    std::size_t height = 0;
    std::vector<std::size_t> widths(blocks.size(), 0);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        std::istringstream in(blocks[i]);
        lines[i].push_back(titles[i]);
        for (std::string line; std::getline(in, line);) lines[i].push_back(line);
        for (const std::string& line : lines[i]) widths[i] = std::max(widths[i], line.size());
        height = std::max(height, lines[i].size());
    }
    std::string out;
    for (std::size_t row = 0; row < height; ++row) {
        std::string line;
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const std::string cell = row < lines[i].size() ? lines[i][row] : "";
            line += cell + std::string(widths[i] - cell.size() + 3, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, ',')) parts.push_back(part);
    return parts;
}

}  // namespace tapeflow::tutorial
