// The last section of tutorials 05 and 06, drawn once: per target a row of panels, exp(−U)/Z_box
// first and then the density q of each drawn fit on one colour scale (Rezende & Mohamed 2015, Fig. 3),
// the same panels as terminal heatmaps, and per target the curves of KL(q_box ‖ p_box) during training.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tutorials/common/reverse_kl_fits.hpp"
#include "tutorials/common/verify.hpp"

namespace tapeflow::tutorial {

// One fit in the figures: a panel (its density, and check_box_mass on it) unless `panel` is false,
// and always a KL curve, dashed and a little wider when `dashed`. `label` titles the panel and the
// curve ("K = 8", "radial K = 8"); `array_name` names the panel's .npy array beside the figure.
struct FigureFit {
    Fit* fit = nullptr;
    std::string label, array_name;
    bool panel = true, dashed = false;
};

struct FitFigures {
    std::string density_title, curves_title;
    int ascii_width = 24, ascii_height = 12;  // each terminal heatmap, in characters
};

// Draws the fits of `targets` (each row in the order of `fits`; a curve's colour counts the solid and
// the dashed curves of its row apart), prints each row's heatmaps side by side, and writes
// densities.svg (with the panels' numbers as .npy beside it) and training_curves.svg in `out_dir`,
// checking that both were written. `cells` is the panels' grid (cells × cells over the fit box);
// check_box_mass uses cells / 2 and `seed`.
void draw_fit_figures(Verifier& verifier, const std::vector<std::string>& targets, const std::vector<FigureFit>& fits,
                      std::size_t cells, const FitFigures& text, const std::filesystem::path& out_dir, std::uint64_t seed);

}  // namespace tapeflow::tutorial
