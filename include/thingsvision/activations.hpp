// activations.hpp — Activations: one module's output for a batch, shape kept; torch-free.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace thingsvision {

/// The output of one module (for one of its calls) for a batch, as the forward hook saw it.
/// `shape` is the module's output shape, batch dimension first (moved first if the module
/// works sequence-first); `values` holds prod(shape) float32 values in C order.
struct Activations {
  std::string module_name;
  /// Which call of the module this is, 0-based, in call order (the last call by default).
  int call_index = 0;
  /// How many times the module was called in this forward pass.
  int num_calls = 1;
  std::vector<std::int64_t> shape;
  std::vector<float> values;

  /// Number of rows (images): shape[0], or 0 for an empty shape.
  std::int64_t num_rows() const noexcept { return shape.empty() ? 0 : shape[0]; }
  /// Number of values per row: the product of shape[1:].
  std::int64_t row_size() const noexcept {
    std::int64_t n = 1;
    for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
    return n;
  }
};

}  // namespace thingsvision
