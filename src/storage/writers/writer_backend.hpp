// writer_backend.hpp — private interface between FeatureWriter/readers and the per-format files.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "thingsvision/feature_reader.hpp"
#include "thingsvision/feature_writer.hpp"

namespace thingsvision::detail {

/// Size in bytes of one element of `type` on disk.
std::size_t element_size(DataType type) noexcept;
/// IEEE binary16 from binary32, round to nearest even (numpy's astype(float16)).
std::uint16_t float_to_half(float value) noexcept;
/// IEEE binary32 from binary16 (exact).
float half_to_float(std::uint16_t bits) noexcept;
/// Converts `count` float32 values to `type` (little-endian bytes) into `out`.
void convert_from_float(const float* in, std::size_t count, DataType type, void* out) noexcept;
/// Converts `count` float64 values (exactly representable in `type`) to `type` bytes.
void convert_from_double(const double* in, std::size_t count, DataType type, void* out) noexcept;
/// Converts `count` elements of `type` to float64.
void convert_to_double(const void* in, std::size_t count, DataType type, double* out) noexcept;

/// "(3, 4)" — Python's repr of a shape tuple ("(3,)" for one dimension).
std::string shape_repr(const std::vector<std::int64_t>& shape);
/// The product of the dimensions.
std::size_t shape_product(const std::vector<std::int64_t>& shape) noexcept;

/// The text of errno `errnum` ("No space left on device").
std::string errno_text(int errnum);

/// A file written through a POSIX descriptor; every failure is Error(io) naming the path.
class OutputFile {
 public:
  explicit OutputFile(std::filesystem::path path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  void write(const void* data, std::size_t size);
  /// Flushes to disk (fsync) and closes; throws on failure.
  void close();
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

/// fsyncs an existing file (written by a third-party library) or directory.
void sync_path(const std::filesystem::path& path);

/// Rows pulled sequentially, already converted to the file's dtype (little-endian bytes).
class RowSource {
 public:
  virtual ~RowSource() = default;
  /// Reads up to `max_rows` rows into `out`; returns how many (0 only at the end).
  virtual std::size_t read(void* out, std::size_t max_rows) = 0;
  /// Starts again at the first row (multi-pass writers: MAT 5 column-major order).
  virtual void rewind() = 0;
};

/// One final file to write: everything a backend needs.
struct FileJob {
  std::filesystem::path temporary_path;  ///< where to write
  std::filesystem::path final_path;      ///< the name it will get (for messages)
  std::vector<std::int64_t> row_shape;
  std::size_t num_rows = 0;
  DataType dtype = DataType::float32;
  MatVersion mat_version = MatVersion::v73;
  bool mat_variable_per_image = false;
  /// num_rows names, or nullptr when none are known (merging files without names).
  const std::string* file_names = nullptr;
  const std::vector<std::pair<std::string, std::string>>* attributes = nullptr;

  std::size_t row_size() const noexcept { return shape_product(row_shape); }
  std::size_t row_bytes() const noexcept { return row_size() * element_size(dtype); }
};

/// Rows per read chunk so that a chunk holds about `target_bytes` (at least one row).
std::size_t rows_per_chunk(std::size_t row_bytes, std::size_t target_bytes = 4u << 20);

/// The NPY header np.save (numpy 1.24) writes for `shape` and `dtype`; its length does not depend
/// on shape[0] (numpy pads the row count to 21 digits).
std::string npy_header(const std::vector<std::int64_t>& shape, DataType dtype);
void write_npy_file(const FileJob& job, RowSource& rows);
void write_txt_file(const FileJob& job, RowSource& rows);
void write_hdf5_file(const FileJob& job, RowSource& rows);
/// Adds string attributes to the root group of an existing HDF5 file (MAT 7.3 provenance).
void add_hdf5_root_attributes(const std::filesystem::path& file,
                              const std::vector<std::pair<std::string, std::string>>& attributes);
/// The scalar string attributes of the root group of HDF5 file `file` (features.hdf5, MAT 7.3) by
/// name; other attributes are skipped. Throws Error(input) naming the file.
std::vector<std::pair<std::string, std::string>> read_hdf5_root_attributes(const std::filesystem::path& file);
void write_mat_file(const FileJob& job, RowSource& rows);
/// Throws Error(usage) before anything is written if a MAT 5 variable of `job` exceeds 2 GB.
void check_mat5_limits(const FileJob& job);
/// The MATLAB variable name THINGSvision's per-image layout gives `file_name` (sanitised).
std::string mat_variable_name(const std::string& file_name);

// --- readers ---------------------------------------------------------------------------------
/// Parsed NPY header: shape, dtype, and the offset of the data.
struct NpyHeader {
  std::vector<std::int64_t> shape;
  DataType dtype = DataType::float32;
  bool fortran_order = false;
  std::size_t data_offset = 0;
};
/// Parses the NPY header at the start of `bytes`; throws Error(input) naming `file`.
NpyHeader parse_npy_header(std::string_view bytes, const std::string& file);
/// Parses an NPY file held in memory; throws Error(input) naming `file`.
FeatureArray parse_npy(std::string_view bytes, const std::string& file);
/// Parses numpy.savetxt text (2-D) or the slice layout; throws Error(input) naming `file`, line.
FeatureArray parse_txt(std::string_view text, const std::string& file);
/// Parses a MAT 5 file held in memory, variable `name` (+ `file_names` if present).
FeatureArray parse_mat5(std::string_view bytes, const std::string& name, const std::string& file);
/// Reorders `values` of an array of `shape` from Fortran (column-major) to C order.
void fortran_to_c_order(std::vector<double>& values, const std::vector<std::int64_t>& shape);
/// Reads an HDF5 file (features.hdf5 layout); the signature is checked before libhdf5 sees it.
FeatureArray read_hdf5_file(const std::filesystem::path& file, const std::string& dataset);
/// One numeric variable of a per-image MAT file: MATLAB dims, values in C order of those dims.
struct MatVariable {
  std::string name;
  std::vector<std::int64_t> dims;
  DataType stored_type = DataType::float32;
  std::vector<double> values;
};
/// The per-image layout's rows from its variables in stored order; Error(input) naming `file` and
/// the variable whose shape or class differs from the first's. All dims 1×D give rows of D.
FeatureArray per_image_rows(std::vector<MatVariable> variables, const std::string& file);
/// Recreates the just-created, still empty MAT 7.3 file `file` (from Mat_CreateVer) with a root
/// group that tracks link creation order, keeping its 512-byte user block (the MAT header).
void track_mat73_creation_order(const std::filesystem::path& file);
/// Reads a MAT 7.3 file through libhdf5 (the per-image layout when `name` is "features" and the
/// file has no such variable: creation order where tracked, else name order).
FeatureArray read_mat73_file(const std::filesystem::path& file, const std::string& name);
/// True if an HDF5 superblock signature is at offset 0, 512, 1024, … within `bytes`.
bool has_hdf5_signature(const std::filesystem::path& file);

/// UTF-16 code units to UTF-8 (surrogate pairs joined).
std::string utf16_to_utf8(const std::uint16_t* units, std::size_t count);
/// UTF-8 to UTF-16 code units (invalid bytes become U+FFFD).
std::vector<std::uint16_t> utf8_to_utf16(const std::string& text);

/// libhdf5 (and matio 7.3) is not thread-safe in Debian's build: every call holds this lock.
std::recursive_mutex& hdf5_mutex();

}  // namespace thingsvision::detail
