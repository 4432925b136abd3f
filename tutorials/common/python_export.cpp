#include "tutorials/common/python_export.hpp"

#include "autograd/tape.hpp"
#include "nn/safetensors.hpp"
#include "tensor/npy.hpp"

namespace tapeflow::tutorial {

std::vector<std::string> write_npy_beside(const std::string& figure_path, const std::vector<NamedArray>& arrays) {
    const std::filesystem::path figure(figure_path);
    std::vector<std::string> written;
    for (const NamedArray& a : arrays) {
        const std::string stem = figure.stem().string() + (a.name.empty() ? "" : "_" + a.name);
        written.push_back((figure.parent_path() / (stem + ".npy")).string());
        save_npy(written.back(), a.values);
    }
    return written;
}

std::vector<std::string> export_flow(const std::filesystem::path& dir, std::string_view name, flows::Flow& flow,
                                     const Tensor& points) {
    const std::string stem = (dir / name).string();
    Tensor log_prob;
    {
        NoGrad no_grad;
        log_prob = flow.log_prob(Var(points)).value();
    }
    nn::save_safetensors(stem + ".safetensors", flow);
    save_npy(stem + "_points.npy", points);
    save_npy(stem + "_log_prob.npy", log_prob);
    return {stem + ".safetensors", stem + "_points.npy", stem + "_log_prob.npy"};
}

}  // namespace tapeflow::tutorial
