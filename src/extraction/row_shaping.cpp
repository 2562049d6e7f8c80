// row_shaping.cpp — a module's activations → rows: token selection, pooling, flattening, and the
// seeded random projection.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "extraction/job.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"

namespace thingsvision {

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<float> random_projection(const std::vector<float>& values, std::size_t num_rows,
                                     std::size_t input_dim, std::size_t output_dim, std::uint64_t seed) {
  if (values.size() != num_rows * input_dim || output_dim == 0) {
    throw Error(ErrorKind::internal, "random_projection: size mismatch (internal error, please report)");
  }
  std::vector<float> out(num_rows * output_dim, 0.0f);
  for (std::size_t d = 0; d < input_dim; ++d) {
    std::uint64_t word_index = ~std::uint64_t{0}, word = 0;
    for (std::size_t k = 0; k < output_dim; ++k) {
      const std::uint64_t bit = static_cast<std::uint64_t>(d) * output_dim + k;
      if (bit / 64 != word_index) {
        word_index = bit / 64;
        word = splitmix64(seed + word_index);
      }
      const bool negative = (word >> (bit % 64)) & 1u;
      for (std::size_t n = 0; n < num_rows; ++n) {
        const float x = values[n * input_dim + d];
        out[n * output_dim + k] += negative ? -x : x;
      }
    }
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(output_dim)));
  for (auto& v : out) v *= scale;
  return out;
}

}  // namespace thingsvision

namespace thingsvision::detail {

RowOptions row_options_for(const ExtractionOptions& options, TokenMode token) {
  RowOptions row_options;
  row_options.token = token;
  row_options.pool = options.pool;
  row_options.flatten = options.flatten;
  row_options.projection = options.random_projection;
  row_options.seed = options.seed;
  return row_options;
}

/// Turns a module's activations into rows: token selection, pooling, flattening, projection.
void shape_rows(Activations& a, const RowOptions& o) {
  auto& shape = a.shape;
  const std::int64_t n = a.num_rows();
  if (o.token != TokenMode::none && shape.size() == 3) {
    const std::int64_t t = shape[1], d = shape[2];
    const bool cls = o.token == TokenMode::cls || o.token == TokenMode::cls_avg;
    const bool avg = o.token == TokenMode::avg || o.token == TokenMode::cls_avg;
    const std::int64_t width = (cls ? d : 0) + (avg ? d : 0);
    std::vector<float> out(static_cast<std::size_t>(n * width));
    for (std::int64_t i = 0; i < n; ++i) {
      const float* in = a.values.data() + i * t * d;
      float* row = out.data() + i * width;
      if (cls) std::copy(in, in + d, row);
      if (avg) {
        for (std::int64_t j = 0; j < d; ++j) {
          double sum = 0;
          for (std::int64_t k = 1; k < t; ++k) sum += in[k * d + j];
          row[(cls ? d : 0) + j] = t > 1 ? static_cast<float>(sum / static_cast<double>(t - 1)) : 0.0f;
        }
      }
    }
    a.values = std::move(out);
    shape = {n, width};
  }
  if (o.pool != Pooling::none && shape.size() >= 3) {
    const std::int64_t c = shape[1];
    const std::int64_t spatial = a.row_size() / std::max<std::int64_t>(1, c);
    std::vector<float> out(static_cast<std::size_t>(n * c));
    for (std::int64_t i = 0; i < n * c; ++i) {
      const float* in = a.values.data() + i * spatial;
      if (o.pool == Pooling::max) {
        out[i] = spatial > 0 ? *std::max_element(in, in + spatial) : 0.0f;
      } else {
        double sum = 0;
        for (std::int64_t k = 0; k < spatial; ++k) sum += in[k];
        out[i] = spatial > 0 ? static_cast<float>(sum / static_cast<double>(spatial)) : 0.0f;
      }
    }
    a.values = std::move(out);
    shape = {n, c};
  }
  if ((o.flatten || o.projection > 0) && shape.size() != 2) shape = {n, a.row_size()};
  if (o.projection > 0) {
    a.values = random_projection(a.values, static_cast<std::size_t>(n), static_cast<std::size_t>(shape[1]),
                                 static_cast<std::size_t>(o.projection), o.seed);
    shape = {n, o.projection};
  }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

}  // namespace thingsvision::detail
