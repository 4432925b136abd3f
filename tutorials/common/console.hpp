// Console helpers the reverse-KL tutorials (05, 06) share: CPU time for timings on a shared machine,
// indented text, text blocks side by side, and comma-separated option lists.
#pragma once

#include <string>
#include <vector>

namespace tapeflow::tutorial {

// Seconds of CPU time used by the whole process (all threads).
double cpu_seconds();
// Prints each line of `text` after `prefix`.
void print_indented(const std::string& text, const std::string& prefix = "    ");
// Text blocks (each several lines) printed next to each other, with a title over each.
std::string side_by_side(const std::vector<std::string>& titles, const std::vector<std::string>& blocks);
// "u1,u2" → {"u1", "u2"}.
std::vector<std::string> split_list(const std::string& text);

}  // namespace tapeflow::tutorial
