// The affine coupling of RealNVP on images (Dinh et al. 2017, Sec. 3.4), with the paper's two masks:
//
//   checkerboard  b[c, i, j] = 1 where i + j + parity is odd (every channel alike): each updated pixel
//                 is conditioned on its four neighbours, which a 3 × 3 convolution of b ⊙ x reads;
//   channel       b[c, i, j] = 1 for the first C/2 channels (parity 0) or the last C/2 (parity 1):
//                 after a squeeze, half of every 2 × 2 block conditions the other half.
//
// The same masked formulas as flows/coupling.hpp, per coordinate of the image:
//
//     z = b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s) + t),   log|det ∂z/∂x| = Σ_{c,i,j} (1 − b) ⊙ s   (inverse)
//     x = b ⊙ z + (1 − b) ⊙ (z − t) ⊙ exp(−s),   log|det ∂x/∂z| = −Σ (1 − b) ⊙ s          (forward)
//
// with (s_raw, t) = conditioner(b ⊙ u) split by channel ([N, 2C, H, W] → two [N, C, H, W]) and the
// log-scale bounded as in flows/coupling.hpp: s = (1 − b) ⊙ scale_c ⊙ tanh(s_raw), a learned scale
// per channel starting at 1. s and t depend only on b ⊙ u, which both directions share, so the
// Jacobian is triangular whatever the conditioner is — a convolution may mix every pixel of b ⊙ u.
// Batches are flattened images (flows/image.hpp).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "flows/bijector.hpp"
#include "flows/image.hpp"
#include "nn/module.hpp"
#include "nn/resnet.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

enum class ImageMask { checkerboard, channel };

// The mask b [C, H, W] described above. Throws std::invalid_argument for a parity other than 0 or 1,
// a checkerboard on fewer than 2 pixels, or a channel mask on an odd number of channels.
Tensor image_mask(const ImageShape& image, ImageMask kind, std::size_t parity);

class ImageAffineCoupling : public Bijector {
public:
    // The conditioner maps [N, C, H, W] to [N, 2C, H, W] (s_raw, then t). Parameters: "scale" [C],
    // then the conditioner's as "conditioner.*". Throws std::invalid_argument for a null conditioner
    // or an invalid mask (see image_mask).
    ImageAffineCoupling(ImageShape image, ImageMask kind, std::size_t parity, std::unique_ptr<nn::Layer> conditioner);
    // With nn::make_resnet(C, 2C, rng, resnet) as the conditioner (zero last layer: the identity).
    ImageAffineCoupling(ImageShape image, ImageMask kind, std::size_t parity, Rng& rng,
                        const nn::ResNetOptions& resnet = {});

    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return image_.numel(); }
    // "ImageAffineCoupling([4, 14, 14], channel mask, parity 1)".
    std::string name() const override;

    const Tensor& mask() const { return mask_; }
    const ImageShape& image() const { return image_; }
    Parameter& scale() { return scale_; }
    nn::Layer& conditioner() { return conditioner_; }

    // s and t [N, C, H, W] at the images u (zero on the copied coordinates); throws
    // std::invalid_argument if the conditioner's output is not [N, 2C, H, W].
    struct ScaleShift {
        Var s, t;
    };
    ScaleShift scale_shift(const Var& images);

private:
    ImageShape image_;
    ImageMask kind_;
    std::size_t parity_;
    Tensor mask_;        // b [C, H, W]
    Tensor complement_;  // 1 − b
    Parameter& scale_;
    nn::Layer& conditioner_;
};

}  // namespace tapeflow::flows
