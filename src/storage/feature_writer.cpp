// feature_writer.cpp — factory, append-only journal, commit (temporary name + rename), K-way split.
#include "thingsvision/feature_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

#include "thingsvision/error.hpp"
#include "storage/writers/writer_backend.hpp"

namespace fs = std::filesystem;

namespace thingsvision {

// --- names -------------------------------------------------------------------------------------

OutputFormat parse_output_format(std::string_view text) {
  if (text == "npy") return OutputFormat::npy;
  if (text == "hdf5") return OutputFormat::hdf5;
  if (text == "mat") return OutputFormat::mat;
  if (text == "txt") return OutputFormat::txt;
  throw Error(ErrorKind::usage,
              fmt::format("unknown output format '{}'; expected npy, hdf5, mat or txt", text));
}

const char* to_string(OutputFormat format) noexcept {
  switch (format) {
    case OutputFormat::npy: return "npy";
    case OutputFormat::hdf5: return "hdf5";
    case OutputFormat::mat: return "mat";
    case OutputFormat::txt: return "txt";
  }
  return "npy";
}

const char* file_extension(OutputFormat format) noexcept { return to_string(format); }

DataType parse_data_type(std::string_view text) {
  if (text == "float32") return DataType::float32;
  if (text == "float16") return DataType::float16;
  if (text == "float64") return DataType::float64;
  throw Error(ErrorKind::usage,
              fmt::format("unknown dtype '{}'; expected float32, float16 or float64", text));
}

const char* to_string(DataType type) noexcept {
  switch (type) {
    case DataType::float32: return "float32";
    case DataType::float16: return "float16";
    case DataType::float64: return "float64";
  }
  return "float32";
}

std::size_t FeatureWriter::row_size() const noexcept { return detail::shape_product(row_shape()); }

void FeatureWriter::append_batch(const float* values, const std::vector<std::int64_t>& batch_shape) {
  const auto& rows = row_shape();
  if (batch_shape.size() != rows.size() + 1 ||
      !std::equal(rows.begin(), rows.end(), batch_shape.begin() + 1) || batch_shape[0] < 0) {
    throw Error(ErrorKind::usage,
                fmt::format("cannot append a batch of shape {}: rows have shape {}",
                            detail::shape_repr(batch_shape), detail::shape_repr(rows)));
  }
  append_rows(values, static_cast<std::size_t>(batch_shape[0]));
}

// --- shared helpers ----------------------------------------------------------------------------

namespace detail {

std::size_t element_size(DataType type) noexcept {
  switch (type) {
    case DataType::float16: return 2;
    case DataType::float32: return 4;
    case DataType::float64: return 8;
  }
  return 4;
}

std::uint16_t float_to_half(float value) noexcept {
  std::uint32_t x;
  std::memcpy(&x, &value, 4);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf, or NaN keeping its top payload bits (as numpy does)
    if (abs == 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
    std::uint32_t payload = (abs >> 13) & 0x3ffu;
    if (payload == 0) payload = 1;
    return static_cast<std::uint16_t>(sign | 0x7c00u | payload);
  }
  if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {  // result is subnormal or zero
    if (abs < 0x33000000u) return static_cast<std::uint16_t>(sign);  // below half of min subnormal
    const std::uint32_t exponent = abs >> 23;
    const std::uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - exponent;  // 14..24 → value = mantissa >> shift
    std::uint32_t half = mantissa >> shift;
    const std::uint32_t remainder = mantissa & ((1u << shift) - 1);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (half & 1u))) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = ((abs - 0x38000000u) >> 13);  // rebias exponent 127 → 15
  const std::uint32_t remainder = abs & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u))) ++half;
  return static_cast<std::uint16_t>(sign | half);
}

float half_to_float(std::uint16_t bits) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1fu;
  std::uint32_t mantissa = bits & 0x3ffu;
  std::uint32_t x;
  if (exponent == 0x1f) {
    x = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    x = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    x = sign;
  } else {  // subnormal: normalise
    std::uint32_t e = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    x = sign | (e << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float value;
  std::memcpy(&value, &x, 4);
  return value;
}

void convert_from_float(const float* in, std::size_t count, DataType type, void* out) noexcept {
  switch (type) {
    case DataType::float32:
      if (count > 0) std::memcpy(out, in, count * 4);
      break;
    case DataType::float64: {
      auto* o = static_cast<double*>(out);
      for (std::size_t i = 0; i < count; ++i) o[i] = in[i];
      break;
    }
    case DataType::float16: {
      auto* o = static_cast<std::uint16_t*>(out);
      for (std::size_t i = 0; i < count; ++i) o[i] = float_to_half(in[i]);
      break;
    }
  }
}

void convert_from_double(const double* in, std::size_t count, DataType type, void* out) noexcept {
  switch (type) {
    case DataType::float64:
      if (count > 0) std::memcpy(out, in, count * 8);
      break;
    case DataType::float32: {
      auto* o = static_cast<float*>(out);
      for (std::size_t i = 0; i < count; ++i) o[i] = static_cast<float>(in[i]);
      break;
    }
    case DataType::float16: {
      auto* o = static_cast<std::uint16_t*>(out);
      for (std::size_t i = 0; i < count; ++i) o[i] = float_to_half(static_cast<float>(in[i]));
      break;
    }
  }
}

void convert_to_double(const void* in, std::size_t count, DataType type, double* out) noexcept {
  // memcpy per element: `in` may be unaligned (data inside a file buffer).
  const auto* p = static_cast<const unsigned char*>(in);
  switch (type) {
    case DataType::float64:
      if (count > 0) std::memcpy(out, in, count * 8);
      break;
    case DataType::float32:
      for (std::size_t i = 0; i < count; ++i) {
        float v;
        std::memcpy(&v, p + 4 * i, 4);
        out[i] = v;
      }
      break;
    case DataType::float16:
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        out[i] = half_to_float(v);
      }
      break;
  }
}

std::string shape_repr(const std::vector<std::int64_t>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

std::size_t shape_product(const std::vector<std::int64_t>& shape) noexcept {
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

std::string errno_text(int errnum) { return std::strerror(errnum); }

std::size_t rows_per_chunk(std::size_t row_bytes, std::size_t target_bytes) {
  return std::max<std::size_t>(1, target_bytes / std::max<std::size_t>(1, row_bytes));
}

OutputFile::OutputFile(fs::path path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw Error(ErrorKind::io,
                fmt::format("cannot create '{}': {}", path_.string(), errno_text(errno)));
  }
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::write(const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, std::min<std::size_t>(size, 1u << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(ErrorKind::io,
                  fmt::format("cannot write '{}': {}", path_.string(), errno_text(errno)));
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void OutputFile::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", path_.string(), errno_text(e)));
  }
  if (::close(fd) != 0) {
    throw Error(ErrorKind::io,
                fmt::format("cannot write '{}': {}", path_.string(), errno_text(errno)));
  }
}

void sync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(ErrorKind::io, fmt::format("cannot open '{}': {}", path.string(), errno_text(errno)));
  }
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) {
    throw Error(ErrorKind::io, fmt::format("cannot sync '{}': {}", path.string(), errno_text(e)));
  }
}

}  // namespace detail

// --- the journal -------------------------------------------------------------------------------
//
// Two files in the output directory:
//  features.<ext>.journal      a reserved region of R bytes, then the rows as float32, C order,
//                              contiguous (R = the npy header length for float32 npy without
//                              splits, so that commit can turn this file into features.npy in
//                              place; else 0).
//  features.<ext>.journal.log  header "TVJRNL02", u64 R, u64 rank, u64 dims[rank], u64 checksum;
//                              then one 40-byte record per batch: magic "TVBATCH1", first row,
//                              row count, checksum of the rows, checksum of the record.
// append_rows writes the rows, fdatasyncs them, then appends the record and fdatasyncs the log.
// A batch counts only if its record is complete, follows the previous one and both checksums
// match; anything after the last good batch (a torn tail) is truncated away on resume.

namespace {

constexpr char kJournalMagic[8] = {'T', 'V', 'J', 'R', 'N', 'L', '0', '2'};
constexpr std::uint64_t kBatchMagic = 0x3148435441425654ull;  // "TVBATCH1" little-endian

inline std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// A fast 64-bit checksum (xxHash64-style lanes); detects torn or stale data in the journal.
std::uint64_t checksum(const void* data, std::size_t size) {
  constexpr std::uint64_t p1 = 0x9E3779B185EBCA87ull, p2 = 0xC2B2AE3D27D4EB4Full,
                          p3 = 0x165667B19E3779F9ull;
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t lanes[4] = {p1 + p2, p2, 0, 0 - p1};
  std::size_t i = 0;
  for (; i + 32 <= size; i += 32) {
    for (int l = 0; l < 4; ++l) {
      std::uint64_t v;
      std::memcpy(&v, p + i + 8 * l, 8);
      lanes[l] = rotl(lanes[l] + v * p2, 31) * p1;
    }
  }
  std::uint64_t h = rotl(lanes[0], 1) + rotl(lanes[1], 7) + rotl(lanes[2], 12) + rotl(lanes[3], 18);
  h += size;
  for (; i < size; ++i) h = rotl(h ^ (p[i] * p3), 11) * p1;
  h ^= h >> 33;
  h *= p2;
  h ^= h >> 29;
  h *= p3;
  return h ^ (h >> 32);
}

[[noreturn]] void throw_io(const std::string& what, const fs::path& path, int errnum) {
  throw Error(ErrorKind::io,
              fmt::format("cannot {} '{}': {}", what, path.string(), detail::errno_text(errnum)));
}

void pwrite_all(int fd, const void* data, std::size_t size, off_t offset, const fs::path& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, p, std::min<std::size_t>(size, 1u << 30), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("write", path, errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
}

// Returns the bytes read (short only at end of file).
std::size_t pread_all(int fd, void* data, std::size_t size, off_t offset, const fs::path& path) {
  char* p = static_cast<char*>(data);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, p + done, std::min<std::size_t>(size - done, 1u << 30), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("read", path, errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
    offset += n;
  }
  return done;
}

void sync_fd(int fd, const fs::path& path) {
  if (::fdatasync(fd) != 0) throw_io("write", path, errno);
}

struct BatchRecord {
  std::uint64_t magic, first_row, num_rows, data_checksum, record_checksum;
};

// Rows [first, first + count) of the journal, converted to `dtype`.
class JournalRowSource final : public detail::RowSource {
 public:
  JournalRowSource(int fd, const fs::path& path, std::size_t reserved, std::size_t first,
                   std::size_t count, std::size_t row_size, DataType dtype)
      : fd_(fd), path_(path), reserved_(reserved), first_(first), count_(count), row_size_(row_size),
        dtype_(dtype) {}
  std::size_t read(void* out, std::size_t max_rows) override {
    const std::size_t n = std::min(max_rows, count_ - done_);
    if (n == 0) return 0;
    float* target = static_cast<float*>(out);
    if (dtype_ != DataType::float32) {
      buffer_.resize(n * row_size_);
      target = buffer_.data();
    }
    const std::size_t bytes = n * row_size_ * 4;
    const auto offset = static_cast<off_t>(reserved_ + (first_ + done_) * row_size_ * 4);
    if (pread_all(fd_, target, bytes, offset, path_) != bytes) {
      throw Error(ErrorKind::io, fmt::format("journal '{}' shrank while reading", path_.string()));
    }
    if (dtype_ != DataType::float32) detail::convert_from_float(target, n * row_size_, dtype_, out);
    done_ += n;
    return n;
  }
  void rewind() override { done_ = 0; }

 private:
  int fd_;
  const fs::path& path_;
  std::size_t reserved_, first_, count_, row_size_;
  DataType dtype_;
  std::size_t done_ = 0;
  std::vector<float> buffer_;
};

std::string split_file_name(int index, int n_splits, OutputFormat format) {
  const int width = std::max(2, static_cast<int>(std::to_string(n_splits).size()));
  return fmt::format("features_{:0{}d}.{}", index, width, file_extension(format));
}

class JournalFeatureWriter final : public FeatureWriter {
 public:
  JournalFeatureWriter(OutputFormat format, fs::path directory, std::vector<std::int64_t> row_shape,
                       const WriterOptions& options)
      : format_(format),
        directory_(std::move(directory)),
        row_shape_(std::move(row_shape)),
        options_(options) {
    journal_path_ = directory_ / fmt::format("features.{}.journal", file_extension(format_));
    log_path_ = journal_path_.string() + ".log";
    std::error_code ec;
    fs::create_directories(directory_, ec);
    if (ec || !fs::is_directory(directory_)) {
      throw Error(ErrorKind::io, fmt::format("cannot create output directory '{}': {}",
                                             directory_.string(), ec ? ec.message() : "not a directory"));
    }
    if (in_place_npy()) reserved_ = detail::npy_header(full_shape(0), DataType::float32).size();
    const bool resume = options_.resume && fs::exists(log_path_) && fs::exists(journal_path_);
    const int truncate = resume ? 0 : O_TRUNC;
    fd_ = ::open(journal_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | truncate, 0644);
    if (fd_ >= 0) log_fd_ = ::open(log_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | truncate, 0644);
    if (fd_ < 0 || log_fd_ < 0) {
      const int e = errno;
      close_files();
      throw Error(ErrorKind::io, fmt::format("cannot write to output directory '{}': {}",
                                             directory_.string(), detail::errno_text(e)));
    }
    try {
      if (resume) {
        recover();
      } else {
        start();
      }
    } catch (...) {
      close_files();
      throw;
    }
  }

  ~JournalFeatureWriter() override {
    // Never creates a final file; keeps the journal for a later resume. Removes temporaries of
    // an interrupted commit.
    for (const auto& t : temporaries_) {
      std::error_code ec;
      fs::remove(t, ec);
    }
    close_files();
  }

  void append_rows(const float* values, std::size_t num_rows) override {
    if (committed_) {
      throw Error(ErrorKind::usage,
                  fmt::format("cannot append to '{}': the writer was already committed",
                              directory_.string()));
    }
    if (num_rows == 0) return;
    if (values == nullptr) throw Error(ErrorKind::usage, "append_rows: values is null");
    const std::size_t bytes = num_rows * row_bytes();
    BatchRecord record{kBatchMagic, rows_, num_rows, checksum(values, bytes), 0};
    record.record_checksum = checksum(&record, 32);
    try {
      pwrite_all(fd_, values, bytes, static_cast<off_t>(data_end()), journal_path_);
      sync_fd(fd_, journal_path_);
      pwrite_all(log_fd_, &record, sizeof record, static_cast<off_t>(log_end_), log_path_);
      sync_fd(log_fd_, log_path_);
    } catch (const Error&) {
      // Drop the partial batch so that both files end at the last complete batch.
      if (::ftruncate(fd_, static_cast<off_t>(data_end())) != 0 ||
          ::ftruncate(log_fd_, static_cast<off_t>(log_end_)) != 0) {
        // Keep the original error; a torn tail is discarded on resume anyway.
      }
      throw;
    }
    log_end_ += sizeof record;
    rows_ += num_rows;
  }

  void commit(const std::vector<std::string>& file_names) override {
    if (committed_) {
      throw Error(ErrorKind::usage, fmt::format("'{}' was already committed", directory_.string()));
    }
    if (file_names.size() != rows_) {
      throw Error(ErrorKind::usage,
                  fmt::format("cannot commit '{}': {} file names for {} rows",
                              directory_.string(), file_names.size(), rows_));
    }
    if (rows_ == 0) {
      throw Error(ErrorKind::usage,
                  fmt::format("cannot commit '{}': no rows were appended (empty feature files "
                              "are not written)", directory_.string()));
    }
    const auto n_splits = static_cast<std::size_t>(options_.n_splits);
    if (n_splits > rows_) {
      throw Error(ErrorKind::usage,
                  fmt::format("cannot split {} rows into {} files in '{}': n_splits exceeds the "
                              "number of rows", rows_, n_splits, directory_.string()));
    }
    for (std::size_t i = 0; i < file_names.size(); ++i) {
      if (file_names[i].find_first_of("\r\n") != std::string::npos) {
        throw Error(ErrorKind::usage,
                    fmt::format("file name {} contains a line break; it cannot go into file_names.txt", i));
      }
    }
    const auto outputs = output_files();
    // Build the jobs first: every check that can fail before writing does so here.
    std::vector<detail::FileJob> jobs;
    std::size_t first = 0;
    for (std::size_t k = 0; k < n_splits; ++k) {
      detail::FileJob job;
      job.num_rows = rows_ / n_splits + (k < rows_ % n_splits ? 1 : 0);  // numpy.array_split
      job.final_path = outputs[k];
      job.temporary_path = outputs[k].string() + ".partial";
      job.row_shape = row_shape_;
      job.dtype = options_.dtype;
      job.mat_version = options_.mat_version;
      job.mat_variable_per_image = options_.mat_variable_per_image;
      job.file_names = file_names.data() + first;
      job.attributes = &options_.attributes;
      if (format_ == OutputFormat::mat) detail::check_mat5_limits(job);
      first += job.num_rows;
      jobs.push_back(std::move(job));
    }
    const fs::path names_path = directory_ / "file_names.txt";
    const fs::path names_temporary = names_path.string() + ".partial";
    // float32 npy without splits: the journal already is the file, less its header.
    const std::string header = in_place_npy() ? detail::npy_header(full_shape(rows_), DataType::float32) : "";
    const bool in_place = in_place_npy() && header.size() == reserved_;
    try {
      if (in_place) {
        pwrite_all(fd_, header.data(), header.size(), 0, journal_path_);
        if (::fsync(fd_) != 0) throw_io("write", journal_path_, errno);
      } else {
        first = 0;
        for (auto& job : jobs) {
          temporaries_.push_back(job.temporary_path);
          JournalRowSource source(fd_, journal_path_, reserved_, first, job.num_rows, row_size(),
                                  options_.dtype);
          write_file(job, source);
          first += job.num_rows;
        }
      }
      temporaries_.push_back(names_temporary);
      {
        detail::OutputFile out(names_temporary);
        std::string text;
        for (const auto& name : file_names) {
          text += name;
          text += '\n';
          if (text.size() > (1u << 20)) {
            out.write(text.data(), text.size());
            text.clear();
          }
        }
        out.write(text.data(), text.size());
        out.close();
      }
      if (in_place) {
        rename_into_place(journal_path_, jobs[0].final_path);
      } else {
        for (auto& job : jobs) rename_into_place(job.temporary_path, job.final_path);
      }
      rename_into_place(names_temporary, names_path);
      temporaries_.clear();
      detail::sync_path(directory_);
    } catch (...) {
      for (const auto& t : temporaries_) {
        std::error_code ec;
        fs::remove(t, ec);
      }
      temporaries_.clear();
      throw;
    }
    committed_ = true;
    close_files();
    std::error_code ec;
    if (!in_place) fs::remove(journal_path_, ec);
    fs::remove(log_path_, ec);
  }

  std::size_t rows_written() const noexcept override { return rows_; }
  const std::vector<std::int64_t>& row_shape() const noexcept override { return row_shape_; }

  std::vector<fs::path> output_files() const override {
    std::vector<fs::path> files;
    if (options_.n_splits <= 1) {
      files.push_back(directory_ / fmt::format("features.{}", file_extension(format_)));
    } else {
      for (int k = 1; k <= options_.n_splits; ++k) {
        files.push_back(directory_ / split_file_name(k, options_.n_splits, format_));
      }
    }
    return files;
  }

 private:
  bool in_place_npy() const {
    return format_ == OutputFormat::npy && options_.n_splits <= 1 && options_.dtype == DataType::float32;
  }
  std::vector<std::int64_t> full_shape(std::size_t rows) const {
    std::vector<std::int64_t> shape{static_cast<std::int64_t>(rows)};
    shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
    return shape;
  }
  std::size_t row_bytes() const { return row_size() * 4; }
  std::size_t data_end() const { return reserved_ + rows_ * row_bytes(); }

  void close_files() {
    if (fd_ >= 0) ::close(fd_);
    if (log_fd_ >= 0) ::close(log_fd_);
    fd_ = log_fd_ = -1;
  }

  void write_file(const detail::FileJob& job, detail::RowSource& source) {
    switch (format_) {
      case OutputFormat::npy: detail::write_npy_file(job, source); break;
      case OutputFormat::txt: detail::write_txt_file(job, source); break;
      case OutputFormat::hdf5: detail::write_hdf5_file(job, source); break;
      case OutputFormat::mat: detail::write_mat_file(job, source); break;
    }
  }

  static void rename_into_place(const fs::path& from, const fs::path& to) {
    if (::rename(from.c_str(), to.c_str()) != 0) throw_io("rename into", to, errno);
  }

  std::vector<std::uint64_t> header_words(std::uint64_t reserved) const {
    std::vector<std::uint64_t> words;
    std::uint64_t magic;
    std::memcpy(&magic, kJournalMagic, 8);
    words.push_back(magic);
    words.push_back(reserved);
    words.push_back(row_shape_.size());
    for (auto d : row_shape_) words.push_back(static_cast<std::uint64_t>(d));
    words.push_back(checksum(words.data(), words.size() * 8));
    return words;
  }

  void start() {
    const std::vector<char> zeros(reserved_, ' ');  // the npy header goes here at commit
    pwrite_all(fd_, zeros.data(), zeros.size(), 0, journal_path_);
    sync_fd(fd_, journal_path_);
    const auto words = header_words(reserved_);
    pwrite_all(log_fd_, words.data(), words.size() * 8, 0, log_path_);
    sync_fd(log_fd_, log_path_);
    log_end_ = words.size() * 8;
  }

  void recover() {
    std::vector<std::uint64_t> found(3, 0);
    const std::size_t got = pread_all(log_fd_, found.data(), 24, 0, log_path_);
    if (got == 0) {  // created but empty (crash before the header was synced)
      start();
      return;
    }
    std::uint64_t magic;
    std::memcpy(&magic, kJournalMagic, 8);
    bool ok = got == 24 && found[0] == magic && found[2] < 64 && found[1] < (1u << 20);
    if (ok) {
      found.resize(4 + found[2]);
      const std::size_t rest = (found.size() - 3) * 8;
      ok = pread_all(log_fd_, found.data() + 3, rest, 24, log_path_) == rest &&
           found.back() == checksum(found.data(), (found.size() - 1) * 8);
    }
    if (!ok) {
      throw Error(ErrorKind::input, fmt::format("cannot resume from '{}': not a thingsvision journal "
                                                "or its header is damaged; delete it to start over",
                                                log_path_.string()));
    }
    const std::vector<std::int64_t> shape(found.begin() + 3, found.end() - 1);
    if (shape != row_shape_) {
      throw Error(ErrorKind::usage,
                  fmt::format("cannot resume from '{}': it holds rows of shape {}, not {}",
                              journal_path_.string(), detail::shape_repr(shape),
                              detail::shape_repr(row_shape_)));
    }
    reserved_ = found[1];  // as written (the options may have changed since)
    log_end_ = found.size() * 8;
    std::vector<char> buffer;
    for (;;) {
      BatchRecord record{};
      if (pread_all(log_fd_, &record, sizeof record, static_cast<off_t>(log_end_), log_path_) != sizeof record) break;
      if (record.magic != kBatchMagic || record.record_checksum != checksum(&record, 32) ||
          record.first_row != rows_ || record.num_rows == 0 ||
          record.num_rows > (std::uint64_t{1} << 40) / std::max<std::size_t>(1, row_bytes())) {
        break;
      }
      const std::size_t bytes = record.num_rows * row_bytes();
      buffer.resize(bytes);  // one batch, as the caller held it
      if (pread_all(fd_, buffer.data(), bytes, static_cast<off_t>(data_end()), journal_path_) != bytes ||
          checksum(buffer.data(), bytes) != record.data_checksum) {
        break;
      }
      log_end_ += sizeof record;
      rows_ += record.num_rows;
    }
    if (::ftruncate(fd_, static_cast<off_t>(data_end())) != 0 ||
        ::ftruncate(log_fd_, static_cast<off_t>(log_end_)) != 0) {
      throw_io("truncate", journal_path_, errno);
    }
    sync_fd(fd_, journal_path_);
    sync_fd(log_fd_, log_path_);
  }

  OutputFormat format_;
  fs::path directory_;
  std::vector<std::int64_t> row_shape_;
  WriterOptions options_;
  fs::path journal_path_, log_path_;
  int fd_ = -1, log_fd_ = -1;
  std::size_t reserved_ = 0, log_end_ = 0, rows_ = 0;
  bool committed_ = false;
  std::vector<fs::path> temporaries_;
};

}  // namespace

std::unique_ptr<FeatureWriter> open_feature_writer(OutputFormat format, const fs::path& directory,
                                                   std::vector<std::int64_t> row_shape,
                                                   const WriterOptions& options) {
  if (row_shape.empty()) {
    throw Error(ErrorKind::usage, fmt::format("cannot write '{}': the row shape is empty",
                                              directory.string()));
  }
  for (auto d : row_shape) {
    if (d <= 0) {
      throw Error(ErrorKind::usage,
                  fmt::format("cannot write '{}': row shape {} has a dimension <= 0",
                              directory.string(), detail::shape_repr(row_shape)));
    }
  }
  if (options.n_splits < 1) {
    throw Error(ErrorKind::usage, fmt::format("n_splits must be at least 1, got {}", options.n_splits));
  }
  if (format == OutputFormat::mat && options.dtype == DataType::float16) {
    throw Error(ErrorKind::usage,
                "dtype float16 cannot be written as mat (MATLAB has no half type); use float32 "
                "or float64, or another format");
  }
  return std::make_unique<JournalFeatureWriter>(format, directory, std::move(row_shape), options);
}

}  // namespace thingsvision
