// batch_layout.hpp — where a module's output holds the images of a batch: the rule every backend
// applies (issue #10 part 3). Header-only and torch-free, so that the TorchScript plugin and the
// graph backends (OpenCV DNN, ONNX Runtime) share it; private.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "thingsvision/error.hpp"

namespace thingsvision::batch_layout {

/// first: dimension 0 holds the images; second: a 3-D sequence-first (L, N, D) output; merged:
/// (N·k, ...), the images' rows one image after another, as TNT's inner blocks return their "pixel"
/// tokens (THINGSvision 2.7.3 refuses these).
enum class Layout { first, second, merged };

/// "[2, 197, 768]".
inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

/// Whether dimension 0 of `shape` can hold `batch_size` images merged image by image.
inline bool mergeable(const std::vector<std::int64_t>& shape, std::int64_t batch_size) {
  return !shape.empty() && shape[0] > batch_size && shape[0] % batch_size == 0;
}

/// The layout of an output of `shape` for `batch_size` images where its shape decides it, else
/// `known` (what the module showed for an earlier batch), else a batch of one's rows (merged);
/// nullopt: the shape allows more than one layout and a probe must decide (from_probe).
/// Error(model) naming `module` of `model` when no dimension can hold the images.
inline std::optional<Layout> from_shape(const std::vector<std::int64_t>& shape, std::int64_t batch_size,
                                        std::optional<Layout> known, const std::string& module,
                                        const std::string& model) {
  const bool first = !shape.empty() && shape[0] == batch_size;
  const bool second = shape.size() == 3 && shape[1] == batch_size;
  const bool merge = mergeable(shape, batch_size);
  const bool ambiguous = (first && second && batch_size > 1) || (!first && second && merge && batch_size > 1) ||
                         (!first && !second && merge);
  if (ambiguous) {
    if (known) return known;
    if (batch_size == 1) return Layout::merged;  // one image: (k, ...) is its k rows, as view(1, -1)
    return std::nullopt;
  }
  if (first) return Layout::first;
  if (second) return Layout::second;
  throw Error(ErrorKind::model,
              "the output of module '" + module + "' of " + model + " has shape " + shape_text(shape) +
                  ": no dimension holds the " + std::to_string(batch_size) +
                  " images of the batch (expected it first, second in a sequence-first 3-D output, "
                  "or merged image by image into the first)");
}

/// The layout that `alone` (the shape of the first image's output by itself) shows for an output of
/// `shape` for `batch_size` images; `same_rows()` tells whether its rows equal the batch's first
/// rows. Error(model) naming `module` of `model` when it shows none.
inline Layout from_probe(const std::vector<std::int64_t>& shape, std::int64_t batch_size,
                         const std::vector<std::int64_t>& alone, const std::function<bool()>& same_rows,
                         const std::string& module, const std::string& model) {
  const bool same_trailing = alone.size() == shape.size() &&
                             std::equal(alone.begin() + (alone.empty() ? 0 : 1), alone.end(),
                                        shape.begin() + (shape.empty() ? 0 : 1));
  if (mergeable(shape, batch_size) && same_trailing && alone[0] * batch_size == shape[0]) {
    if (same_rows()) return Layout::merged;
    throw Error(ErrorKind::model,
                "cannot tell where the images are in the output of module '" + module + "' of " + model +
                    ": shape " + shape_text(shape) + " for " + std::to_string(batch_size) + " images and " +
                    shape_text(alone) + " for the first alone, but its " + std::to_string(alone[0]) +
                    " rows alone differ from the batch's first " + std::to_string(alone[0]) +
                    " (the batch is merged into dimension 0 in another order)");
  }
  if (!alone.empty() && alone[0] == 1) return Layout::first;
  if (alone.size() == 3 && alone[1] == 1) return Layout::second;
  throw Error(ErrorKind::model, "cannot tell the batch dimension of the output of module '" + module + "' of " +
                                    model + ": shape " + shape_text(shape) + " for " +
                                    std::to_string(batch_size) + " images, " + shape_text(alone) + " for one");
}

/// Whether a module's later batches should follow this layout (a batch of one decides nothing; 3-D
/// and merged outputs may be ambiguous again).
inline bool worth_remembering(const std::vector<std::int64_t>& shape, std::int64_t batch_size, Layout layout) {
  return batch_size > 1 && (shape.size() == 3 || layout == Layout::merged);
}

/// The batch-first shape of an output of `shape` in `layout`: (N, k, ...) for merged, (N, L, D)
/// for second.
inline std::vector<std::int64_t> batch_first_shape(std::vector<std::int64_t> shape, std::int64_t batch_size,
                                                   Layout layout) {
  if (layout == Layout::merged) {
    shape[0] /= batch_size;
    shape.insert(shape.begin(), batch_size);
  } else if (layout == Layout::second) {
    std::swap(shape[0], shape[1]);
  }
  return shape;
}

/// Whether rows that differ by at most `max_abs_diff` agree, `scale` being the batch rows' largest
/// magnitude (a batch and a single image may take different kernels); false for NaN.
inline bool rows_agree(double max_abs_diff, double scale) { return max_abs_diff <= 1e-3 * scale + 1e-6; }

}  // namespace thingsvision::batch_layout
