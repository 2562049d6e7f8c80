// pil_resample.cpp — Pillow's ImagingResample (bilinear/bicubic, 8 bits per channel), ported exactly.
#include "image/pil_resample.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace thingsvision::detail {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // = Pillow's PRECISION_BITS

std::atomic<bool> simd_enabled{true};

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


// The two passes' inner loops. Integer arithmetic only, so the order of the additions does not
// change the result: the AVX2 versions are bit-identical to Pillow's scalar C (which they replace
// when the CPU has AVX2; the tests run whichever this machine uses).

/// Horizontal pass of one row: columns [x0, x0 + w) into `out` (RGB).
void horizontal_row_scalar(const std::uint8_t* in, const ResampleAxis& axis, int x0, int w, std::uint8_t* out) {
  const int ksize = axis.ksize;
  for (int xx = x0; xx < x0 + w; ++xx, out += 3) {
    const int xmin = axis.first[xx], xmax = axis.count[xx];
    const std::int32_t* k = axis.weights.data() + std::size_t(xx) * ksize;
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
  }
}

/// Vertical pass of one output row: `count` rows from `rows` (stride bytes apart), n bytes wide.
void vertical_row_scalar(const std::uint8_t* rows, std::size_t stride, int count, const std::int32_t* k,
                         std::size_t n, std::uint8_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t sum = 1 << (kPrecisionBits - 1);
    for (int y = 0; y < count; ++y) sum += rows[std::size_t(y) * stride + i] * k[y];
    out[i] = clip8(sum);
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TV_RESAMPLE_AVX2 1

/// As horizontal_row_scalar, two taps per step; reads up to 2 bytes past the last pixel it uses.
__attribute__((target("avx2"))) void horizontal_row_avx2(const std::uint8_t* in, const ResampleAxis& axis,
                                                          int x0, int w, std::uint8_t* out) {
  const int ksize = axis.ksize;
  const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  for (int xx = x0; xx < x0 + w; ++xx, out += 3) {
    const int xmax = axis.count[xx];
    const std::int32_t* k = axis.weights.data() + std::size_t(xx) * ksize;
    const std::uint8_t* p = in + 3 * axis.first[xx];
    __m256i pair_sum = _mm256_setzero_si256();
    int x = 0;
    for (; x + 2 <= xmax; x += 2, p += 6) {
      const __m128i bytes = _mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), spread);
      const __m256i weights = _mm256_set_m128i(_mm_set1_epi32(k[x + 1]), _mm_set1_epi32(k[x]));
      pair_sum = _mm256_add_epi32(pair_sum, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(bytes), weights));
    }
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(pair_sum), _mm256_extracti128_si256(pair_sum, 1));
    sum = _mm_add_epi32(sum, _mm_set1_epi32(1 << (kPrecisionBits - 1)));
    if (x < xmax) {
      std::int32_t pixel;
      std::memcpy(&pixel, p, 4);
      sum = _mm_add_epi32(sum, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(pixel)), _mm_set1_epi32(k[x])));
    }
    sum = _mm_srai_epi32(sum, kPrecisionBits);
    const __m128i packed = _mm_packus_epi16(_mm_packs_epi32(sum, sum), sum);  // saturates = clip to 0..255
    const std::uint32_t rgbx = static_cast<std::uint32_t>(_mm_cvtsi128_si32(packed));
    out[0] = static_cast<std::uint8_t>(rgbx);
    out[1] = static_cast<std::uint8_t>(rgbx >> 8);
    out[2] = static_cast<std::uint8_t>(rgbx >> 16);
  }
}

/// As vertical_row_scalar, 16 bytes per step.
__attribute__((target("avx2"))) void vertical_row_avx2(const std::uint8_t* rows, std::size_t stride, int count,
                                                        const std::int32_t* k, std::size_t n, std::uint8_t* out) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i low = _mm256_set1_epi32(1 << (kPrecisionBits - 1)), high = low;
    for (int y = 0; y < count; ++y) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + std::size_t(y) * stride + i));
      const __m256i weight = _mm256_set1_epi32(k[y]);
      low = _mm256_add_epi32(low, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(bytes), weight));
      high = _mm256_add_epi32(high, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)), weight));
    }
    low = _mm256_srai_epi32(low, kPrecisionBits);
    high = _mm256_srai_epi32(high, kPrecisionBits);
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(low, high), 0xD8);
    const __m128i packed = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), packed);
  }
  if (i < n) vertical_row_scalar(rows + i, stride, count, k, n - i, out + i);
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has && simd_enabled.load(std::memory_order_relaxed);
}
#endif

void horizontal_row(const std::uint8_t* in, const ResampleAxis& axis, int x0, int w, std::uint8_t* out) {
#ifdef TV_RESAMPLE_AVX2
  if (cpu_has_avx2()) return horizontal_row_avx2(in, axis, x0, w, out);
#endif
  horizontal_row_scalar(in, axis, x0, w, out);
}

void vertical_row(const std::uint8_t* rows, std::size_t stride, int count, const std::int32_t* k, std::size_t n,
                  std::uint8_t* out) {
#ifdef TV_RESAMPLE_AVX2
  if (cpu_has_avx2()) return vertical_row_avx2(rows, stride, count, k, n, out);
#endif
  vertical_row_scalar(rows, stride, count, k, n, out);
}

}  // namespace

void enable_simd_resampling(bool enable) { simd_enabled.store(enable, std::memory_order_relaxed); }

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
    // The last source row is copied with padding: the AVX2 kernel reads 2 bytes past a pixel.
    std::vector<std::uint8_t> last_row;
    for (int r = row_first; r < row_end; ++r) {
      const std::uint8_t* in = src.row(r);
      if (r == src.height - 1) {
        last_row.assign(in, in + std::size_t(src.width) * 3);
        last_row.resize(last_row.size() + 8, 0);
        in = last_row.data();
      }
      horizontal_row(in, horizontal, x0, w, intermediate.data() + std::size_t(r - row_first) * stride);
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
  for (int yy = y0; yy < y0 + h; ++yy) {
    vertical_row(rows + std::size_t(vertical.first[yy] - row_first) * stride, stride, vertical.count[yy],
                 vertical.weights.data() + std::size_t(yy) * vertical.ksize, std::size_t(w) * 3,
                 dst + std::size_t(yy - y0) * dst_stride);
  }
}

}  // namespace thingsvision::detail
