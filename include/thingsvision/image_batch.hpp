// image_batch.hpp — ImageBatch: N×3×H×W float pixels (model input) plus their dataset indices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace thingsvision {

/// A batch of preprocessed images in NCHW layout, contiguous, float32; torch-free.
struct ImageBatch {
  std::int64_t num_images = 0;
  std::int64_t channels = 0;
  std::int64_t height = 0;
  std::int64_t width = 0;
  /// num_images × channels × height × width values, C order.
  std::vector<float> pixels;
  /// For each image of the batch, its index in the dataset (extraction order).
  std::vector<std::size_t> indices;

  /// Number of floats of one image: channels × height × width.
  std::size_t image_size() const noexcept {
    return static_cast<std::size_t>(channels * height * width);
  }
  /// Pointer to the first pixel of image `i` of the batch.
  const float* image(std::size_t i) const noexcept { return pixels.data() + i * image_size(); }
};

}  // namespace thingsvision
