// feature_writer.hpp — FeatureWriter: streaming npy/hdf5/mat/txt writers; rows in, complete file out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace thingsvision {

/// On-disk feature format.
enum class OutputFormat { npy, hdf5, mat, txt };

/// Element type written to disk (rows are always given as float32).
enum class DataType { float32, float16, float64 };

/// MAT-file version for OutputFormat::mat.
enum class MatVersion {
  v73,  ///< HDF5-based, any size (default)
  v5,   ///< scipy.io.loadmat / Octave; a variable over 2 GB is refused before writing
};

/// Parses "npy", "hdf5", "mat", "txt"; throws Error(usage) naming the value.
OutputFormat parse_output_format(std::string_view text);
/// "npy", "hdf5", "mat" or "txt".
const char* to_string(OutputFormat format) noexcept;
/// The file extension without the dot ("npy", "hdf5", "mat", "txt").
const char* file_extension(OutputFormat format) noexcept;
/// Parses "float32", "float16", "float64"; throws Error(usage) naming the value.
DataType parse_data_type(std::string_view text);
const char* to_string(DataType type) noexcept;

/// Options for open_feature_writer.
struct WriterOptions {
  DataType dtype = DataType::float32;
  MatVersion mat_version = MatVersion::v73;
  /// Split the rows into exactly n_splits files features_01 … features_K of (nearly) equal
  /// row counts instead of one file; 1 = one file `features.<ext>`.
  int n_splits = 1;
  /// MAT only: THINGSvision's layout, one variable per image named from its file name.
  bool mat_variable_per_image = false;
  /// Continue an unfinished writer in the same directory from its last complete row.
  bool resume = false;
  /// Provenance recorded as attributes (HDF5, MAT 7.3) — model, module, versions, preprocessing.
  std::vector<std::pair<std::string, std::string>> attributes;
};

/// Streams rows of a fixed shape to disk; memory does not grow with the number of rows.
/// Rows go to a journal in the output directory (features.<ext>.journal + .journal.log, synced per
/// batch); commit() builds the final file(s) in one pass under a temporary name and renames them.
/// Without commit() no final file ever appears: the destructor of an uncommitted writer never
/// throws, removes temporaries and keeps the journal, which WriterOptions::resume continues.
/// Format details, split rule and merge guarantees: docs/formats.md.
class FeatureWriter {
 public:
  virtual ~FeatureWriter() = default;

  /// Appends `num_rows` rows of row_size() float32 values each (C order); durable when it returns.
  /// Throws Error(io) on write failure (disk full names the path).
  virtual void append_rows(const float* values, std::size_t num_rows) = 0;
  /// Appends a batch of shape (n, row_shape()...); throws Error(usage) naming both shapes if the
  /// batch does not match the rows, then forwards to append_rows.
  void append_batch(const float* values, const std::vector<std::int64_t>& batch_shape);
  /// Writes the final file(s) and file_names.txt with `file_names` (one per row) and removes the
  /// journal. Throws Error(usage) if file_names.size() != rows_written(), if no rows were appended
  /// (empty files are never written) or n_splits > rows; Error(io) on failure (no final file then).
  virtual void commit(const std::vector<std::string>& file_names) = 0;

  /// Rows appended so far (after a resume: the complete rows found in the journal).
  virtual std::size_t rows_written() const noexcept = 0;
  /// The shape of one row, e.g. {512} or {64, 56, 56}.
  virtual const std::vector<std::int64_t>& row_shape() const noexcept = 0;
  /// Number of float values in one row.
  std::size_t row_size() const noexcept;
  /// The final files commit() writes (or has written).
  virtual std::vector<std::filesystem::path> output_files() const = 0;
};

/// Opens a writer for rows of `row_shape` whose final file(s) go into `directory`
/// (`features.<ext>`, or `features_01.<ext>` … with n_splits). Creates the directory.
/// Throws Error(usage) for float16 + mat, Error(io) for an unwritable directory.
std::unique_ptr<FeatureWriter> open_feature_writer(OutputFormat format,
                                                   const std::filesystem::path& directory,
                                                   std::vector<std::int64_t> row_shape,
                                                   const WriterOptions& options = {});

}  // namespace thingsvision
