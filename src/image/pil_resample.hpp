// pil_resample.hpp — private port of Pillow's separable resampling (src/libImaging/Resample.c, 9.4).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "thingsvision/image.hpp"
#include "thingsvision/transforms.hpp"

namespace thingsvision::detail {

/// Pillow's precomputed filter along one axis: output i reads `count` inputs from `first` with
/// 22-bit fixed-point weights (PRECISION_BITS = 32 - 8 - 2).
struct ResampleAxis {
  int in_size = 0;
  int out_size = 0;
  int ksize = 0;                       ///< weights per output (ceil(support) * 2 + 1)
  std::vector<int> first;              ///< Pillow's bounds[2i]   (xmin)
  std::vector<int> count;              ///< Pillow's bounds[2i+1] (xmax - xmin)
  std::vector<std::int32_t> weights;   ///< out_size × ksize, normalize_coeffs_8bpc
};

/// precompute_coeffs + normalize_coeffs_8bpc for `in_size` → `out_size` (box = whole axis).
ResampleAxis make_resample_axis(int in_size, int out_size, Interpolation interpolation);

/// Writes rows [y0, y0 + h) and columns [x0, x0 + w) of Image.resize((out_w, out_h), filter)
/// to `dst` (RGB, `dst_stride` bytes per row), bit-exact with Pillow: horizontal pass first into a
/// uint8 intermediate, then vertical. Only the requested region is computed.
void resample_region(const Image& src, int out_w, int out_h, Interpolation interpolation, int x0, int y0,
                     int w, int h, std::uint8_t* dst, std::size_t dst_stride);

/// Tests only: false forces the scalar kernels (default: AVX2 when the CPU has it). Same results.
void enable_simd_resampling(bool enable);

}  // namespace thingsvision::detail
