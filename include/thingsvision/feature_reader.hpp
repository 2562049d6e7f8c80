// feature_reader.hpp — read_features for npy/hdf5/mat/txt and merge_features for splits and shards.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
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
  /// True when read from a MAT file in the per-image layout (one variable per row, no names).
  bool mat_variable_per_image = false;

  std::int64_t num_rows() const noexcept { return shape.empty() ? 0 : shape[0]; }
  std::int64_t row_size() const noexcept {
    std::int64_t n = 1;
    for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
    return n;
  }
};

/// Reads a feature file written by FeatureWriter (or numpy/h5py/scipy in the same layout); the
/// format comes from the content. Throws Error(input) naming the file if damaged or foreign.
/// `dataset` selects the HDF5 dataset / MAT variable (default "features"). A MAT file without
/// `features` whose variables are all single/double of one shape (the per-image layout) gives
/// them as rows in stored order (a 1×D variable is a row of D), with no file names.
FeatureArray read_features(const std::filesystem::path& file, const std::string& dataset = "features");

/// The provenance of a feature file: the root group's string attributes of an HDF5 or MAT 7.3
/// file, by name; empty for npy, txt and MAT 5. Throws Error(input) naming the file.
std::vector<std::pair<std::string, std::string>> read_feature_attributes(const std::filesystem::path& file);

/// Reads an output directory: features.<ext>, or features_01 … features_K concatenated.
FeatureArray read_feature_directory(const std::filesystem::path& directory, OutputFormat format);

/// The names of `features_file`'s rows: those the file holds (hdf5, mat), else the lines of the
/// file_names.txt beside it (tv-extract's npy/txt layout) when it lists one per row; else none.
std::vector<std::string> row_names(const std::filesystem::path& features_file, const FeatureArray& array);

/// Merges the feature directories `inputs` (splits within each, then shards in the given order)
/// into `output` as one features.<ext> file, bit for bit; also concatenates file_names.txt.
/// HDF5 / MAT 7.3 output keeps the inputs' root string attributes (values that differ between
/// input files are joined by " | " in input order).
void merge_features(const std::vector<std::filesystem::path>& inputs,
                    const std::filesystem::path& output, OutputFormat format);

}  // namespace thingsvision
