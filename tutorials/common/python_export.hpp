// What a tutorial computed, in files Python opens (README, "Use tapeflow from your own project"):
// the numbers behind a figure as NumPy .npy files beside its SVG, and a trained flow as
// safetensors with points and their log-density, for examples/python/load_realnvp_in_pytorch.py.
//
//     write_npy_beside("out/07_realnvp/samples.svg", {{"data", shown}, {"flow", generated}});
//     // → out/07_realnvp/samples_data.npy, out/07_realnvp/samples_flow.npy
//     export_flow("out/07_realnvp", "realnvp", flow, test_points);
//     // → realnvp.safetensors, realnvp_points.npy, realnvp_log_prob.npy
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "flows/flow.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::tutorial {

struct NamedArray {
    std::string name;  // the file is <figure stem>_<name>.npy; empty: <figure stem>.npy
    Tensor values;
};

// Writes each array beside `figure_path` (tensor/npy.hpp, atomically) and returns the paths
// written, in order. Throws what save_npy throws, naming the path.
std::vector<std::string> write_npy_beside(const std::string& figure_path, const std::vector<NamedArray>& arrays);

// Writes <dir>/<name>.safetensors (nn/safetensors.hpp: the flow's parameters), <name>_points.npy
// (`points` [N, D]) and <name>_log_prob.npy (the flow's log q(x) of each point [N]); returns the paths.
std::vector<std::string> export_flow(const std::filesystem::path& dir, std::string_view name, flows::Flow& flow,
                                     const Tensor& points);

}  // namespace tapeflow::tutorial
