// pil_resample.cpp — Pillow's ImagingResample (bilinear/bicubic, 8 bits per channel), ported exactly.
#include "pil_resample.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace thingsvision::detail {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // = Pillow's PRECISION_BITS

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/// Pillow's clip8: (acc >> PRECISION_BITS) clamped to 0..255 (its lookup table does the same).
inline std::uint8_t clip8(std::int32_t acc) {
  const std::int32_t v = acc >> kPrecisionBits;  // arithmetic shift, as in C on every target we build
  return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

ResampleAxis make_resample_axis(int in_size, int out_size, Interpolation interpolation) {
  ResampleAxis axis;
  axis.in_size = in_size;
  axis.out_size = out_size;
  double (*filter)(double) = interpolation == Interpolation::bicubic ? bicubic_filter : bilinear_filter;
  const double filter_support = interpolation == Interpolation::bicubic ? 2.0 : 1.0;
  // in1 - in0 is computed in float in Pillow (box coordinates are floats); exact for our sizes.
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  axis.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.first.resize(out_size);
  axis.count.resize(out_size);
  axis.weights.assign(std::size_t(out_size) * axis.ksize, 0);
  std::vector<double> k(axis.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = 0.0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      const double w = filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    std::int32_t* out = axis.weights.data() + std::size_t(xx) * axis.ksize;
    for (int x = 0; x < xmax; ++x) {
      out[x] = k[x] < 0 ? static_cast<std::int32_t>(-0.5 + k[x] * (1 << kPrecisionBits))
                        : static_cast<std::int32_t>(0.5 + k[x] * (1 << kPrecisionBits));
    }
    axis.first[xx] = xmin;
    axis.count[xx] = xmax;
  }
  return axis;
}

void resample_region(const Image& src, int out_w, int out_h, Interpolation interpolation, int x0, int y0,
                     int w, int h, std::uint8_t* dst, std::size_t dst_stride) {
  if (w <= 0 || h <= 0) return;
  const bool need_horizontal = out_w != src.width;
  const bool need_vertical = out_h != src.height;
  if (!need_horizontal && !need_vertical) {
    for (int y = 0; y < h; ++y) std::memcpy(dst + y * dst_stride, src.row(y0 + y) + 3 * x0, std::size_t(w) * 3);
    return;
  }
  // Rows of the (intermediate) image the vertical pass reads for output rows [y0, y0 + h).
  ResampleAxis vertical;
  int row_first = y0, row_end = y0 + h;
  if (need_vertical) {
    vertical = make_resample_axis(src.height, out_h, interpolation);
    row_first = vertical.first[y0];
    row_end = vertical.first[y0 + h - 1] + vertical.count[y0 + h - 1];
    for (int y = y0; y < y0 + h; ++y) {  // taps can start earlier for later rows only in theory
      row_first = std::min(row_first, vertical.first[y]);
      row_end = std::max(row_end, vertical.first[y] + vertical.count[y]);
    }
  }
  // Horizontal pass into a uint8 intermediate holding columns [x0, x0 + w) of rows [row_first, row_end).
  std::vector<std::uint8_t> intermediate;
  const std::uint8_t* rows = nullptr;  // row r of the intermediate, column x0, at rows + (r - row_first) * stride
  std::size_t stride = 0;
  if (need_horizontal) {
    const ResampleAxis horizontal = make_resample_axis(src.width, out_w, interpolation);
    stride = std::size_t(w) * 3;
    intermediate.resize(stride * std::size_t(row_end - row_first));
    const int ksize = horizontal.ksize;
    for (int r = row_first; r < row_end; ++r) {
      const std::uint8_t* in = src.row(r);
      std::uint8_t* out = intermediate.data() + std::size_t(r - row_first) * stride;
      for (int xx = x0; xx < x0 + w; ++xx) {
        const int xmin = horizontal.first[xx], xmax = horizontal.count[xx];
        const std::int32_t* k = horizontal.weights.data() + std::size_t(xx) * ksize;
        std::int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        const std::uint8_t* p = in + 3 * xmin;
        for (int x = 0; x < xmax; ++x, p += 3) {
          s0 += p[0] * k[x];
          s1 += p[1] * k[x];
          s2 += p[2] * k[x];
        }
        out[0] = clip8(s0);
        out[1] = clip8(s1);
        out[2] = clip8(s2);
        out += 3;
      }
    }
    rows = intermediate.data();
  } else {
    stride = std::size_t(src.width) * 3;
    rows = src.row(row_first) + 3 * x0;
  }
  if (!need_vertical) {
    for (int y = 0; y < h; ++y) std::memcpy(dst + y * dst_stride, rows + std::size_t(y0 + y - row_first) * stride, std::size_t(w) * 3);
    return;
  }
  const std::size_t n = std::size_t(w) * 3;
  std::vector<std::int32_t> acc(n);
  for (int yy = y0; yy < y0 + h; ++yy) {
    const int ymin = vertical.first[yy], ymax = vertical.count[yy];
    const std::int32_t* k = vertical.weights.data() + std::size_t(yy) * vertical.ksize;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < ymax; ++y) {
      const std::uint8_t* in = rows + std::size_t(ymin + y - row_first) * stride;
      const std::int32_t weight = k[y];
      std::int32_t* a = acc.data();
      for (std::size_t i = 0; i < n; ++i) a[i] += in[i] * weight;
    }
    std::uint8_t* out = dst + std::size_t(yy - y0) * dst_stride;
    for (std::size_t i = 0; i < n; ++i) out[i] = clip8(acc[i]);
  }
}

}  // namespace thingsvision::detail
