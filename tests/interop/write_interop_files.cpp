// Writes the files tests/interop/check_python_reader.py reads back with the Python standard
// library: an untrained tutorial-07 RealNVP (whose names and shapes, unit scales and zero last
// layers the check knows) and tensors of values given by formulas, as safetensors and .npy.
//
//     write_interop_files DIR
#include <bit>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "flows/realnvp.hpp"
#include "nn/safetensors.hpp"
#include "tensor/npy.hpp"

using namespace tapeflow;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: write_interop_files DIR\n");
        return 2;
    }
    try {
        const std::filesystem::path dir = argv[1];
        // Tutorial 07's model: 8 couplings, conditioners 2 → 64 → 64 → 4.
        const auto flow = flows::make_realnvp({.dim = 2, .couplings = 8, .hidden = {64, 64}, .seed = 7});
        nn::save_safetensors((dir / "realnvp.safetensors").string(), *flow);

        // ramp[i] = (i − 5) / 4, exact in binary; the special values a careless format loses.
        Tensor ramp(Shape{3, 4});
        for (std::size_t i = 0; i < ramp.numel(); ++i) ramp[i] = (static_cast<double>(i) - 5) / 4;
        const Tensor special(Shape{7}, {-0.0, std::bit_cast<double>(std::uint64_t{0x7ff8000000000123}),
                                        std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::infinity(),
                                        -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::max(), 0.1});
        const Tensor scalar = Tensor::scalar(-2.5), empty = Tensor::zeros({0, 3});
        const std::vector<std::pair<std::string, const Tensor*>> probe{
            {"ramp", &ramp}, {"special", &special}, {"scalar", &scalar}, {"empty", &empty}};
        nn::save_safetensors((dir / "probe.safetensors").string(), probe, {{"purpose", "interop check"}});
        for (const auto& [name, t] : probe) save_npy((dir / (name + ".npy")).string(), *t);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "write_interop_files: %s\n", e.what());
        return 1;
    }
    return 0;
}
