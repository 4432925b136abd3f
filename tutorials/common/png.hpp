// A minimal PNG encoder (8-bit RGBA, no interlacing) for rasters embedded in SVG figures: one
// <image> with a PNG data URI stays a few kilobytes where one <rect> per cell would take megabytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tapeflow::plot {

// PNG file bytes for a width × height image; rgba holds 4 bytes per pixel, rows top to bottom.
std::vector<std::uint8_t> encode_png(int width, int height, std::span<const std::uint8_t> rgba);

// "data:image/png;base64,..." for the same image.
std::string png_data_uri(int width, int height, std::span<const std::uint8_t> rgba);

}  // namespace tapeflow::plot
