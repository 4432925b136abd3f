// Console helpers every tutorial shares: CPU time for timings on a shared machine, indented text,
// and text blocks side by side.
#pragma once

#include <string>
#include <vector>

namespace tapeflow::tutorial {

// Seconds of CPU time used by the whole process (all threads).
double cpu_seconds();
// Prints each line of `text` after `prefix`, without trailing blanks.
void print_indented(const std::string& text, const std::string& prefix = "    ");
// Text blocks (each several lines) next to each other, a title over each, columns aligned by display
// width (UTF-8 aware), three blanks apart.
std::string side_by_side(const std::vector<std::string>& titles, const std::vector<std::string>& blocks);

}  // namespace tapeflow::tutorial
