// Squeeze (RealNVP Sec. 3.6, Fig. 3): every 2 × 2 block of pixels of a channel becomes 4 channels of
// one pixel, [C, H, W] → [4C, H/2, W/2] ("space to depth"). Channel 4c + 2a + b of the squeezed image
// holds pixel (2i + a, 2j + b) of channel c. It only reorders coordinates, so its Jacobian is a
// permutation matrix, |det| = 1 and the log-det is exactly 0 in both directions. It lets the next
// couplings mix pixels that a checkerboard would never let condition on each other, and halves the
// resolution the convolutions work at.
//
// Direction: the data side is the unsqueezed image. `inverse` (data → latent) squeezes,
// `forward` (latent → data) unsqueezes. Batches are flattened images (flows/image.hpp).
#pragma once

#include <string>

#include "flows/bijector.hpp"
#include "flows/image.hpp"

namespace tapeflow::flows {

class Squeeze : public Bijector {
public:
    // `image` is the data-side shape; throws std::invalid_argument unless H and W are even.
    explicit Squeeze(ImageShape image);

    Transformed forward(const Var& z) override;  // [4C, H/2, W/2] → [C, H, W]
    Transformed inverse(const Var& x) override;  // [C, H, W] → [4C, H/2, W/2]
    std::size_t dim() const override { return image_.numel(); }
    std::string name() const override;

    const ImageShape& data_shape() const { return image_; }
    ImageShape latent_shape() const { return {4 * image_.channels, image_.height / 2, image_.width / 2}; }

private:
    ImageShape image_;
};

// The tensor-level maps, on image batches [N, C, H, W] (the tutorial prints them on a small image).
Var squeeze2x2(const Var& images);
Var unsqueeze2x2(const Var& images);

}  // namespace tapeflow::flows
