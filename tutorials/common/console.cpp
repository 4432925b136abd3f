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
    for (std::string line; std::getline(lines, line);) {
        line.erase(line.find_last_not_of(' ') + 1);  // pictures built cell by cell end in blanks
        fmt::print("{}{}\n", prefix, line);
    }
}

std::string side_by_side(const std::vector<std::string>& titles, const std::vector<std::string>& blocks) {
    // Display width in characters: UTF-8 continuation bytes (10xxxxxx) do not count.
    auto width = [](const std::string& s) {
        return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
    };
    std::vector<std::vector<std::string>> lines(blocks.size());
    std::size_t height = 0;
    std::vector<std::size_t> widths(blocks.size(), 0);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        std::istringstream in(blocks[i]);
        lines[i].push_back(i < titles.size() ? titles[i] : "");
        for (std::string line; std::getline(in, line);) lines[i].push_back(line);
        for (const std::string& line : lines[i]) widths[i] = std::max(widths[i], width(line));
        height = std::max(height, lines[i].size());
    }
    std::string out;
    for (std::size_t row = 0; row < height; ++row) {
        std::string line;
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const std::string cell = row < lines[i].size() ? lines[i][row] : "";
            line += cell + std::string(widths[i] - width(cell) + 3, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}


}  // namespace tapeflow::tutorial
