#include "tutorials/common/python_export.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "autograd/tape.hpp"
#include "flows/realnvp.hpp"
#include "nn/safetensors.hpp"
#include "tensor/npy.hpp"

using namespace tapeflow;
namespace fs = std::filesystem;

TEST_CASE("write_npy_beside: one .npy per array next to the figure, named after it") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("tapeflow_python_export_{}", ::getpid()) / "07_x";
    const std::string figure = (dir / "samples.svg").string();
    const Tensor data{{1.0, 2.0}, {3.0, 4.0}}, flow{{-1.0, 0.5}};
    const auto written = tutorial::write_npy_beside(figure, {{"data", data}, {"flow", flow}, {"", Tensor{7.0}}});
    CHECK(written == std::vector<std::string>{(dir / "samples_data.npy").string(), (dir / "samples_flow.npy").string(),
                                              (dir / "samples.npy").string()});
    CHECK(equal(load_npy(written[0]), data));  // the output folder did not exist: it was created
    CHECK(equal(load_npy(written[1]), flow));
    CHECK(equal(load_npy(written[2]), Tensor{7.0}));
    fs::remove_all(dir.parent_path());
}

TEST_CASE("export_flow: the parameters, the points and log q of each point, as the flow computes it") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("tapeflow_export_flow_{}", ::getpid());
    auto flow = flows::make_realnvp({.dim = 2, .couplings = 2, .hidden = {8}, .seed = 3});
    for (auto& [name, p] : flow->named_parameters())
        for (double& v : p->value.span()) v += 0.01 * static_cast<double>(name.size() % 7);  // off the identity
    const Tensor points{{0.5, -1.0}, {2.0, 0.25}, {-0.75, 1.5}};
    const auto written = tutorial::export_flow(dir, "m", *flow, points);
    CHECK(written == std::vector<std::string>{(dir / "m.safetensors").string(), (dir / "m_points.npy").string(),
                                              (dir / "m_log_prob.npy").string()});
    CHECK(equal(load_npy(written[1]), points));
    const Tensor log_prob = load_npy(written[2]);
    REQUIRE(log_prob.shape() == Shape{3});
    auto reloaded = flows::make_realnvp({.dim = 2, .couplings = 2, .hidden = {8}, .seed = 4});
    nn::load_safetensors(written[0], *reloaded);
    NoGrad no_grad;
    CHECK(equal(reloaded->log_prob(Var(points)).value(), log_prob));
    fs::remove_all(dir);
}
