// feature_reader.hpp — read_features for npy/hdf5/mat/txt and merge_features for splits and shards.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "thingsvision/feature_writer.hpp"

namespace thingsvision {

/// A feature array read back: shape (rows first) and values converted to float64, C order.
struct FeatureArray {
  std::vector<std::int64_t> shape;
  DataType stored_type = DataType::float32;
  std::vector<double> values;
  /// The file names stored beside the features, if the file holds them (hdf5, mat).
  std::vector<std::string> file_names;

  std::int64_t num_rows() const noexcept { return shape.empty() ? 0 : shape[0]; }
  std::int64_t row_size() const noexcept {
    std::int64_t n = 1;
    for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
    return n;
  }
};

/// Reads a feature file written by FeatureWriter (or numpy/h5py/scipy in the same layout); the
/// format comes from the content. Throws Error(input) naming the file if damaged or foreign.
/// `dataset` selects the HDF5 dataset / MAT variable (default "features").
FeatureArray read_features(const std::filesystem::path& file, const std::string& dataset = "features");

/// Reads an output directory: features.<ext>, or features_01 … features_K concatenated.
FeatureArray read_feature_directory(const std::filesystem::path& directory, OutputFormat format);

/// Merges the feature directories `inputs` (splits within each, then shards in the given order)
/// into `output` as one features.<ext> file, bit for bit; also concatenates file_names.txt.
void merge_features(const std::vector<std::filesystem::path>& inputs,
                    const std::filesystem::path& output, OutputFormat format);

}  // namespace thingsvision
