// reference_arrays.hpp — loaders for what the Python fixture scripts write: index.json files, raw
// native-endian arrays (.bin/.f32) and NCHW input batches.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "test_support.hpp"
#include "thingsvision/image_batch.hpp"

namespace tv_test {

/// Parses the JSON file at `path` (a fixture's index.json).
inline nlohmann::json read_json(const std::filesystem::path& path) { return nlohmann::json::parse(read_file(path)); }

/// The raw native-endian array of T in `path` (numpy's `tofile`); a trailing partial element is dropped.
template <typename T = float>
std::vector<T> read_array(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  std::vector<T> values(bytes.size() / sizeof(T));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

/// An ImageBatch of NCHW `pixels` with `shape` {N, C, H, W} and indices 0..N-1.
inline thingsvision::ImageBatch image_batch(std::vector<float> pixels, const std::vector<std::int64_t>& shape) {
  thingsvision::ImageBatch batch;
  batch.num_images = shape.at(0);
  batch.channels = shape.at(1);
  batch.height = shape.at(2);
  batch.width = shape.at(3);
  batch.pixels = std::move(pixels);
  for (std::int64_t i = 0; i < batch.num_images; ++i) batch.indices.push_back(static_cast<std::size_t>(i));
  return batch;
}

}  // namespace tv_test
