#include "tutorials/common/fit_figures.hpp"

#include <cmath>

#include <fmt/format.h>

#include "flows/evaluation.hpp"
#include "flows/targets.hpp"
#include "tensor/reduce.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/python_export.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"

namespace tapeflow::tutorial {

void draw_fit_figures(Verifier& verifier, const std::vector<std::string>& targets, const std::vector<FigureFit>& fits,
                      std::size_t cells, const FitFigures& text, const std::filesystem::path& out_dir, std::uint64_t seed) {
    const double box = fit_box;
    const int n = static_cast<int>(cells);
    int columns = 1;
    for (const std::string& name : targets) {
        int in_row = 1;
        for (const FigureFit& e : fits)
            if (e.panel && e.fit->target == &flows::target(name)) ++in_row;
        columns = std::max(columns, in_row);
    }
    plot::Figure fig(static_cast<int>(targets.size()), columns, 360, 300);
    fig.title(text.density_title);
    plot::Figure curves(1, static_cast<int>(targets.size()), 420, 320);
    curves.title(text.curves_title);
    const std::vector<std::string> palette = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
    std::vector<NamedArray> grids;  // the panels' numbers, as .npy beside the figure
    for (std::size_t t = 0; t < targets.size(); ++t) {
        const flows::Target& target = flows::target(targets[t]);
        const Tensor truth = flows::energy_density_grid(target.energy, box, cells);
        grids.push_back({fmt::format("{}_truth", target.name), truth});
        std::vector<std::string> titles = {fmt::format("{} exp(-U)/Z", target.name)}, blocks;
        blocks.push_back(plot::ascii_heatmap(truth.span(), n, n, text.ascii_width, text.ascii_height));
        const plot::HeatmapOptions scale{.value_min = 0.0, .value_max = max(truth).item()};
        fig.axes(static_cast<int>(t), 0)
            .heatmap(truth.span(), n, n, -box, box, -box, box, scale)
            .set_title(fmt::format("{}: exp(−U)/Z", target.name))
            .equal_aspect();
        plot::Axes& curve = curves.axes(0, static_cast<int>(t));
        curve.set_title(fmt::format("{} (2048 samples at β = 1)", target.name)).set_xlabel("step").set_ylabel("KL (nats)").set_log_y();
        int column = 1;
        std::size_t solid = 0, dashed = 0;
        for (const FigureFit& e : fits) {
            Fit& f = *e.fit;
            if (f.target != &target) continue;
            if (e.panel) {
                const Tensor q = flows::density_grid(*f.flow, box, cells);
                grids.push_back({fmt::format("{}_{}", target.name, e.array_name), q});
                titles.push_back(e.label);
                blocks.push_back(plot::ascii_heatmap(q.span(), n, n, text.ascii_width, text.ascii_height));
                fig.axes(static_cast<int>(t), column++)
                    .heatmap(q.span(), n, n, -box, box, -box, box, scale)
                    .set_title(fmt::format("{}: KL {:.3f}", e.label, f.box_after.kl))
                    .equal_aspect();
                // The inverse-pass density must hold the mass that samples put in the box.
                check_box_mass(verifier, f, cells / 2, seed);
            }
            // On the log axis a KL estimate at or below 0 (Monte-Carlo noise near a perfect fit) is a gap.
            std::vector<double> positive_kl;
            for (double v : f.curve_kl) positive_kl.push_back(v > 0 ? v : NAN);
            std::size_t& colour = e.dashed ? dashed : solid;
            plot::Style line{.colour = palette[colour++ % palette.size()], .label = e.label};
            if (e.dashed) {
                line.width = 1.2;
                line.dashed = true;
            }
            curve.line(f.curve_step, positive_kl, line);
        }
        curve.legend();
        print_indented(side_by_side(titles, blocks));
        fmt::print("\n");
    }
    const std::string density_path = (out_dir / "densities.svg").string();
    const std::string curves_path = (out_dir / "training_curves.svg").string();
    fig.save(density_path);
    write_npy_beside(density_path, grids);
    curves.save(curves_path);
    fmt::print("Figures: {} and {}\n\n", density_path, curves_path);
    verifier.check("figures written", std::filesystem::file_size(density_path) > 0 && std::filesystem::file_size(curves_path) > 0);
}

}  // namespace tapeflow::tutorial
