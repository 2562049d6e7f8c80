// mat_writer.cpp — MAT 7.3 through matio (appending row blocks) and MAT 5 written and parsed here
// (N is known at commit, so the 2 GB limit is checked before anything is written).
#include <matio.h>

#include <cstring>
#include <fmt/format.h>
#include <set>

#include "core/compat.hpp"
#include "thingsvision/error.hpp"
#include "storage/writers/writer_backend.hpp"

namespace fs = std::filesystem;

namespace thingsvision::detail {

namespace {

// The 116-byte text of the MAT header: fixed (no date) so that output is reproducible.
const char kHeaderText[] = "MATLAB 5.0 MAT-file, Platform: thingsvision-cpp, Created by: thingsvision-cpp";
const char kHeaderText73[] = "MATLAB 7.3 MAT-file, Platform: thingsvision-cpp, Created by: thingsvision-cpp "
                             "HDF5 schema 1.00 .";

constexpr std::uint32_t miINT8 = 1, miUINT8 = 2, miINT16 = 3, miUINT16 = 4, miINT32 = 5,
                        miUINT32 = 6, miSINGLE = 7, miDOUBLE = 9, miINT64 = 12, miUINT64 = 13,
                        miMATRIX = 14, miCOMPRESSED = 15, miUTF8 = 16, miUTF16 = 17, miUTF32 = 18;
constexpr std::uint32_t mxCELL = 1, mxCHAR = 4, mxDOUBLE = 6, mxSINGLE = 7;
constexpr std::uint64_t kMat5Limit = 0x7fffffffull;  // the uint32 size field; MATLAB's "2 GB"

std::uint64_t padded(std::uint64_t n) { return (n + 7) / 8 * 8; }

// Bytes of a miMATRIX payload (without its own 8-byte tag).
std::uint64_t matrix_payload(std::size_t rank, std::size_t name_length, std::uint64_t data_bytes) {
  return 16 + 8 + padded(4 * rank) + 8 + padded(name_length) + 8 + padded(data_bytes);
}

std::uint64_t char_payload(std::size_t bytes) { return matrix_payload(2, 0, bytes); }

// Column-major (MATLAB) order of one row: source index (C order) of each Fortran position.
std::vector<std::size_t> fortran_permutation(const std::vector<std::int64_t>& row_shape) {
  const std::size_t size = shape_product(row_shape);
  std::vector<std::size_t> perm(size);
  const std::size_t rank = row_shape.size();
  std::vector<std::size_t> index(rank, 0), c_stride(rank, 1);
  for (std::size_t k = rank - 1; k-- > 0;) c_stride[k] = c_stride[k + 1] * static_cast<std::size_t>(row_shape[k + 1]);
  for (std::size_t f = 0; f < size; ++f) {
    std::size_t c = 0;
    for (std::size_t k = 0; k < rank; ++k) c += index[k] * c_stride[k];
    perm[f] = c;
    for (std::size_t k = 0; k < rank; ++k) {  // Fortran order: first index fastest
      if (++index[k] < static_cast<std::size_t>(row_shape[k])) break;
      index[k] = 0;
    }
  }
  return perm;
}

class Mat5Writer {
 public:
  explicit Mat5Writer(const fs::path& path) : out_(path) {
    char header[128];
    std::memset(header, ' ', 116);
    std::memcpy(header, kHeaderText, sizeof kHeaderText - 1);
    std::memset(header + 116, ' ', 8);  // subsystem data offset, as scipy writes it
    header[124] = 0x00;
    header[125] = 0x01;  // version 0x0100
    header[126] = 'I';
    header[127] = 'M';  // little-endian
    out_.write(header, 128);
  }
  void tag(std::uint32_t type, std::uint64_t size) {
    const std::uint32_t words[2] = {type, static_cast<std::uint32_t>(size)};
    out_.write(words, 8);
  }
  void pad(std::uint64_t size) {
    static const char zeros[8] = {};
    if (size % 8) out_.write(zeros, 8 - size % 8);
  }
  void matrix_header(std::uint64_t payload, std::uint32_t mx_class, const std::vector<std::uint64_t>& dims,
                     const std::string& name) {
    tag(miMATRIX, payload);
    tag(miUINT32, 8);
    const std::uint32_t flags[2] = {mx_class, 0};
    out_.write(flags, 8);
    tag(miINT32, 4 * dims.size());
    for (auto d : dims) {
      const auto v = static_cast<std::int32_t>(d);
      out_.write(&v, 4);
    }
    pad(4 * dims.size());
    tag(miINT8, name.size());
    out_.write(name.data(), name.size());
    pad(name.size());
  }
  // A char row vector stored as miUTF8, as scipy.io.savemat writes it (scipy reads miUINT16
  // with the system codec, so UTF-16 would garble non-ASCII names there); dims count UTF-16 units.
  void char_matrix(const std::string& utf8, std::size_t units) {
    const std::vector<std::uint64_t> dims =
        units == 0 ? std::vector<std::uint64_t>{0, 0} : std::vector<std::uint64_t>{1, units};
    matrix_header(char_payload(utf8.size()), mxCHAR, dims, "");
    tag(miUTF8, utf8.size());
    out_.write(utf8.data(), utf8.size());
    pad(utf8.size());
  }
  OutputFile& out() { return out_; }

 private:
  OutputFile out_;
};

void write_names_cell5(Mat5Writer& w, const FileJob& job) {
  std::uint64_t payload = matrix_payload(2, 10, 0) - 8;  // no data element for a cell
  for (std::size_t i = 0; i < job.num_rows; ++i) payload += 8 + char_payload(job.file_names[i].size());
  w.matrix_header(payload, mxCELL, {job.num_rows, 1}, "file_names");
  for (std::size_t i = 0; i < job.num_rows; ++i) {
    w.char_matrix(job.file_names[i], utf8_to_utf16(job.file_names[i]).size());
  }
}

void write_mat5(const FileJob& job, RowSource& rows) {
  Mat5Writer w(job.temporary_path);
  const std::size_t row_size = job.row_size();
  const std::size_t elem = element_size(job.dtype);
  const std::uint32_t mi_type = job.dtype == DataType::float64 ? miDOUBLE : miSINGLE;
  const std::uint32_t mx_class = job.dtype == DataType::float64 ? mxDOUBLE : mxSINGLE;
  const auto perm = fortran_permutation(job.row_shape);
  const std::size_t chunk_rows = rows_per_chunk(job.row_bytes());
  std::vector<char> buffer(chunk_rows * job.row_bytes());
  if (job.mat_variable_per_image) {
    std::vector<std::uint64_t> dims(job.row_shape.begin(), job.row_shape.end());
    if (dims.size() == 1) dims.insert(dims.begin(), 1);  // a 1×D row vector, as scipy saves 1-D
    std::vector<char> row(job.row_bytes());
    std::size_t index = 0;
    while (const std::size_t n = rows.read(buffer.data(), chunk_rows)) {
      for (std::size_t r = 0; r < n; ++r, ++index) {
        const std::string name = mat_variable_name(job.file_names[index]);
        const char* source = buffer.data() + r * job.row_bytes();
        for (std::size_t f = 0; f < row_size; ++f) std::memcpy(&row[f * elem], source + perm[f] * elem, elem);
        w.matrix_header(matrix_payload(dims.size(), name.size(), job.row_bytes()), mx_class, dims, name);
        w.tag(mi_type, job.row_bytes());
        w.out().write(row.data(), row.size());
        w.pad(row.size());
      }
    }
    w.out().close();
    return;
  }
  std::vector<std::uint64_t> dims{job.num_rows};
  dims.insert(dims.end(), job.row_shape.begin(), job.row_shape.end());
  const std::uint64_t data_bytes = static_cast<std::uint64_t>(job.num_rows) * job.row_bytes();
  w.matrix_header(matrix_payload(dims.size(), 8, data_bytes), mx_class, dims, "features");
  w.tag(mi_type, data_bytes);
  // Column-major order needs every row for each column: write blocks of columns, one pass over
  // the rows per block, so memory stays within ~64 MiB whatever N is.
  const std::size_t block = std::max<std::size_t>(1, (64u << 20) / std::max<std::size_t>(1, job.num_rows * elem));
  std::vector<char> columns;
  for (std::size_t first = 0; first < row_size; first += block) {
    const std::size_t width = std::min(block, row_size - first);
    columns.assign(width * job.num_rows * elem, 0);
    rows.rewind();
    std::size_t i = 0;
    while (const std::size_t n = rows.read(buffer.data(), chunk_rows)) {
      for (std::size_t r = 0; r < n; ++r, ++i) {
        const char* source = buffer.data() + r * job.row_bytes();
        for (std::size_t f = 0; f < width; ++f) {
          std::memcpy(&columns[(f * job.num_rows + i) * elem], source + perm[first + f] * elem, elem);
        }
      }
    }
    w.out().write(columns.data(), columns.size());
  }
  w.pad(data_bytes);
  if (job.file_names != nullptr) write_names_cell5(w, job);
  w.out().close();
}

// matio reports through a log function; keep its last message for our error text.
thread_local std::string matio_message;

void matio_log(int /*level*/, compat::matio_log_text message) { matio_message = message ? message : ""; }

void install_matio_log() {
  static const bool installed = [] {
    Mat_LogInitFunc("thingsvision", matio_log);
    return true;
  }();
  (void)installed;
}

[[noreturn]] void matio_failed(const FileJob& job, const char* call) {
  throw Error(ErrorKind::io, fmt::format("cannot write '{}': matio {} failed{}{}", job.final_path.string(),
                                         call, matio_message.empty() ? "" : ": ", matio_message));
}

struct MatFile {
  mat_t* mat = nullptr;
  ~MatFile() {
    if (mat) Mat_Close(mat);
  }
};

struct MatVar {
  matvar_t* var = nullptr;
  ~MatVar() {
    if (var) Mat_VarFree(var);
  }
};

void write_mat73(const FileJob& job, RowSource& rows) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  install_matio_log();
  matio_message.clear();
  MatFile file;
  file.mat = Mat_CreateVer(job.temporary_path.c_str(), kHeaderText73, MAT_FT_MAT73);
  if (!file.mat) matio_failed(job, "Mat_CreateVer");
  if (job.mat_variable_per_image) {
    // matio's root group lists links by name only: recreate it tracking creation order, so that
    // readers get the variables in row order.
    const int rc = Mat_Close(file.mat);
    file.mat = nullptr;
    if (rc != 0) matio_failed(job, "Mat_Close");
    track_mat73_creation_order(job.temporary_path);
    file.mat = Mat_Open(job.temporary_path.c_str(), MAT_ACC_RDWR);
    if (!file.mat) matio_failed(job, "Mat_Open");
  }
  const std::size_t row_size = job.row_size();
  const std::size_t elem = element_size(job.dtype);
  const auto mx_class = job.dtype == DataType::float64 ? MAT_C_DOUBLE : MAT_C_SINGLE;
  const auto mat_type = job.dtype == DataType::float64 ? MAT_T_DOUBLE : MAT_T_SINGLE;
  const auto perm = fortran_permutation(job.row_shape);
  const std::size_t chunk_rows = rows_per_chunk(job.row_bytes());
  std::vector<char> buffer(chunk_rows * job.row_bytes()), block(buffer.size());
  std::size_t index = 0;
  while (const std::size_t n = rows.read(buffer.data(), chunk_rows)) {
    if (job.mat_variable_per_image) {
      std::vector<std::size_t> dims(job.row_shape.begin(), job.row_shape.end());
      if (dims.size() == 1) dims.insert(dims.begin(), 1);
      for (std::size_t r = 0; r < n; ++r, ++index) {
        const char* source = buffer.data() + r * job.row_bytes();
        for (std::size_t f = 0; f < row_size; ++f) std::memcpy(&block[f * elem], source + perm[f] * elem, elem);
        const std::string name = mat_variable_name(job.file_names[index]);
        MatVar var;
        var.var = Mat_VarCreate(name.c_str(), mx_class, mat_type, static_cast<int>(dims.size()),
                                dims.data(), block.data(), MAT_F_DONT_COPY_DATA);
        if (!var.var) matio_failed(job, "Mat_VarCreate");
        if (Mat_VarWrite(file.mat, var.var, MAT_COMPRESSION_NONE) != 0) matio_failed(job, "Mat_VarWrite");
      }
      continue;
    }
    // Column-major block of n rows: element (i, f) at f * n + i.
    for (std::size_t r = 0; r < n; ++r) {
      const char* source = buffer.data() + r * job.row_bytes();
      for (std::size_t f = 0; f < row_size; ++f) std::memcpy(&block[(f * n + r) * elem], source + perm[f] * elem, elem);
    }
    std::vector<std::size_t> dims{n};
    dims.insert(dims.end(), job.row_shape.begin(), job.row_shape.end());
    MatVar var;
    var.var = Mat_VarCreate("features", mx_class, mat_type, static_cast<int>(dims.size()), dims.data(),
                            block.data(), MAT_F_DONT_COPY_DATA);
    if (!var.var) matio_failed(job, "Mat_VarCreate");
    if (Mat_VarWriteAppend(file.mat, var.var, MAT_COMPRESSION_NONE, 1) != 0) {
      matio_failed(job, "Mat_VarWriteAppend");
    }
    index += n;
  }
  if (job.file_names != nullptr && !job.mat_variable_per_image) {
    std::vector<std::vector<std::uint16_t>> units(job.num_rows);
    std::vector<matvar_t*> cells(job.num_rows, nullptr);
    for (std::size_t i = 0; i < job.num_rows; ++i) {
      units[i] = utf8_to_utf16(job.file_names[i]);
      std::size_t dims[2] = {units[i].empty() ? 0u : 1u, units[i].size()};
      cells[i] = Mat_VarCreate(nullptr, MAT_C_CHAR, MAT_T_UINT16, 2, dims,
                               units[i].empty() ? nullptr : units[i].data(), 0);
      if (!cells[i]) {
        for (auto* c : cells) Mat_VarFree(c);
        matio_failed(job, "Mat_VarCreate");
      }
    }
    std::size_t dims[2] = {job.num_rows, 1};
    MatVar cell;
    cell.var = Mat_VarCreate("file_names", MAT_C_CELL, MAT_T_CELL, 2, dims, cells.data(), 0);
    if (!cell.var) matio_failed(job, "Mat_VarCreate");
    if (Mat_VarWrite(file.mat, cell.var, MAT_COMPRESSION_NONE) != 0) matio_failed(job, "Mat_VarWrite");
  }
  const int rc = Mat_Close(file.mat);
  file.mat = nullptr;
  if (rc != 0) matio_failed(job, "Mat_Close");
  if (job.attributes != nullptr) add_hdf5_root_attributes(job.temporary_path, *job.attributes);
  sync_path(job.temporary_path);
}

}  // namespace

std::vector<std::uint16_t> utf8_to_utf16(const std::string& text) {
  std::vector<std::uint16_t> out;
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < text.size()) {
    const unsigned char c = byte(i);
    std::uint32_t cp = 0xfffd;
    std::size_t length = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 6 && i + 1 < text.size() && (byte(i + 1) >> 6) == 2) {
      cp = ((c & 0x1fu) << 6) | (byte(i + 1) & 0x3fu);
      length = 2;
    } else if ((c >> 4) == 14 && i + 2 < text.size() && (byte(i + 1) >> 6) == 2 && (byte(i + 2) >> 6) == 2) {
      cp = ((c & 0x0fu) << 12) | ((byte(i + 1) & 0x3fu) << 6) | (byte(i + 2) & 0x3fu);
      length = 3;
    } else if ((c >> 3) == 30 && i + 3 < text.size() && (byte(i + 1) >> 6) == 2 &&
               (byte(i + 2) >> 6) == 2 && (byte(i + 3) >> 6) == 2) {
      cp = ((c & 0x07u) << 18) | ((byte(i + 1) & 0x3fu) << 12) | ((byte(i + 2) & 0x3fu) << 6) |
           (byte(i + 3) & 0x3fu);
      length = 4;
    }
    i += length;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<std::uint16_t>(0xd800 + (cp >> 10)));
      out.push_back(static_cast<std::uint16_t>(0xdc00 + (cp & 0x3ff)));
    } else {
      out.push_back(static_cast<std::uint16_t>(cp));
    }
  }
  return out;
}

std::string mat_variable_name(const std::string& file_name) {
  // THINGSvision: the file_names.txt line without its image extension; made a valid MATLAB name
  // (letters, digits, '_', starting with a letter, at most 63 characters).
  std::string stem = file_name;
  const auto slash = stem.find_last_of('/');
  const auto dot = stem.find_last_of('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) stem.erase(dot);
  std::string name;
  for (char c : stem) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    name += ok ? c : '_';
  }
  if (name.empty() || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'))) {
    name = "x" + name;
  }
  if (name.size() > 63) name.resize(63);
  return name;
}

FeatureArray per_image_rows(std::vector<MatVariable> variables, const std::string& file) {
  FeatureArray array;
  array.mat_variable_per_image = true;
  if (variables.empty()) {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': no variable 'features' and no "
                                              "per-image variables", file));
  }
  const MatVariable& first = variables.front();
  for (const auto& v : variables) {
    if (v.dims != first.dims || v.stored_type != first.stored_type) {
      throw Error(ErrorKind::input,
                  fmt::format("cannot read '{}' (one variable per image): variable '{}' is {} {}, "
                              "variable '{}' {} {}", file, v.name, to_string(v.stored_type),
                              shape_repr(v.dims), first.name, to_string(first.stored_type),
                              shape_repr(first.dims)));
    }
  }
  const bool row_vector = first.dims.size() == 2 && first.dims[0] == 1;
  array.shape.push_back(static_cast<std::int64_t>(variables.size()));
  array.shape.insert(array.shape.end(), first.dims.begin() + (row_vector ? 1 : 0), first.dims.end());
  array.stored_type = first.stored_type;
  array.values.reserve(variables.size() * first.values.size());
  for (auto& v : variables) {
    array.values.insert(array.values.end(), v.values.begin(), v.values.end());
    std::vector<double>().swap(v.values);
  }
  return array;
}

void check_mat5_limits(const FileJob& job) {
  if (job.mat_variable_per_image || job.file_names != nullptr) {
    std::set<std::string> seen;
    for (std::size_t i = 0; job.mat_variable_per_image && i < job.num_rows; ++i) {
      const std::string name = mat_variable_name(job.file_names[i]);
      if (!seen.insert(name).second) {
        throw Error(ErrorKind::usage,
                    fmt::format("cannot write '{}' with one variable per image: '{}' and another file "
                                "name both map to the MATLAB variable '{}'",
                                job.final_path.string(), job.file_names[i], name));
      }
    }
  }
  if (job.mat_version != MatVersion::v5) return;
  const std::uint64_t bytes = matrix_payload(job.row_shape.size() + 1, 8,
                                             static_cast<std::uint64_t>(job.num_rows) * job.row_bytes());
  if (!job.mat_variable_per_image && bytes > kMat5Limit) {
    throw Error(ErrorKind::usage,
                fmt::format("cannot write '{}' as MAT 5: variable 'features' would take {} bytes, over "
                            "the format's 2 GB limit; use MAT 7.3 (the default) or n_splits",
                            job.final_path.string(), bytes));
  }
  if (job.file_names != nullptr) {
    std::uint64_t names = 0;
    for (std::size_t i = 0; i < job.num_rows; ++i) names += 8 + char_payload(job.file_names[i].size());
    if (names > kMat5Limit) {
      throw Error(ErrorKind::usage,
                  fmt::format("cannot write '{}' as MAT 5: variable 'file_names' would exceed the "
                              "format's 2 GB limit; use MAT 7.3", job.final_path.string()));
    }
  }
}

void write_mat_file(const FileJob& job, RowSource& rows) {
  if (job.dtype == DataType::float16) {
    throw Error(ErrorKind::usage, "dtype float16 cannot be written as mat");
  }
  check_mat5_limits(job);
  if (job.mat_version == MatVersion::v5) {
    write_mat5(job, rows);
  } else {
    write_mat73(job, rows);
  }
}

// --- MAT 5 parser --------------------------------------------------------------------------------

namespace {

class Mat5Parser {
 public:
  Mat5Parser(std::string_view bytes, const std::string& file) : b_(bytes), file_(file) {}

  [[noreturn]] void bad(const std::string& why) const {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': {}", file_, why));
  }

  struct Element {
    std::uint32_t type = 0;
    std::string_view data;
  };

  // Reads the data element at `pos` within `region`; advances pos past it (8-byte aligned).
  Element element(std::string_view region, std::size_t& pos) const {
    if (pos > region.size() || region.size() - pos < 8) bad("MAT 5 data element is truncated");
    std::uint32_t first, second;
    std::memcpy(&first, region.data() + pos, 4);
    std::memcpy(&second, region.data() + pos + 4, 4);
    Element e;
    if ((first >> 16) != 0) {  // small data element: type and size in 4 bytes, data in the next 4
      e.type = first & 0xffff;
      const std::uint32_t size = first >> 16;
      if (size > 4) bad("MAT 5 small data element larger than 4 bytes");
      e.data = region.substr(pos + 4, size);
      pos += 8;
      return e;
    }
    e.type = first;
    if (second > region.size() - pos - 8) bad("MAT 5 data element runs past the end of the file");
    e.data = region.substr(pos + 8, second);
    pos += 8 + (e.type == miMATRIX || e.type == miCOMPRESSED ? second : padded(second));
    if (pos > region.size()) pos = region.size();
    return e;
  }

  struct Matrix {
    std::uint32_t mx_class = 0;
    bool complex = false;
    std::vector<std::int64_t> dims;
    std::string name;
    std::string_view payload;  // everything after the name
  };

  Matrix matrix(std::string_view payload) const {
    Matrix m;
    std::size_t pos = 0;
    const Element flags = element(payload, pos);
    if (flags.type != miUINT32 || flags.data.size() < 8) bad("MAT 5 array flags missing");
    std::uint32_t f;
    std::memcpy(&f, flags.data.data(), 4);
    m.mx_class = f & 0xff;
    m.complex = (f & 0x800) != 0;
    const Element dims = element(payload, pos);
    if (dims.type != miINT32 || dims.data.size() % 4 != 0 || dims.data.size() < 8 ||
        dims.data.size() > 4 * 32) {
      bad("MAT 5 dimensions missing or malformed");
    }
    for (std::size_t k = 0; k < dims.data.size(); k += 4) {
      std::int32_t d;
      std::memcpy(&d, dims.data.data() + k, 4);
      if (d < 0) bad("MAT 5 negative dimension");
      m.dims.push_back(d);
    }
    const Element name = element(payload, pos);
    if (name.type != miINT8 && name.type != miUINT8) bad("MAT 5 array name missing");
    m.name = std::string(name.data);
    m.payload = payload.substr(std::min(pos, payload.size()));
    return m;
  }

  std::size_t count(const Matrix& m) const {
    std::size_t n = 1;
    for (auto d : m.dims) {
      if (d != 0 && n > (std::size_t{1} << 40) / static_cast<std::size_t>(d)) bad("MAT 5 array too large");
      n *= static_cast<std::size_t>(d);
    }
    return n;
  }

  // Numeric data of any MAT 5 storage type, as float64.
  std::vector<double> numbers(const Element& e, std::size_t n) const {
    std::size_t size = 0;
    switch (e.type) {
      case miINT8: case miUINT8: size = 1; break;
      case miINT16: case miUINT16: size = 2; break;
      case miINT32: case miUINT32: case miSINGLE: size = 4; break;
      case miDOUBLE: case miINT64: case miUINT64: size = 8; break;
      default: bad(fmt::format("MAT 5 numeric data of unsupported type {}", e.type));
    }
    if (e.data.size() != n * size) {
      bad(fmt::format("MAT 5 array holds {} bytes, its dimensions need {}", e.data.size(), n * size));
    }
    std::vector<double> out(n);
    const char* p = e.data.data();
    for (std::size_t i = 0; i < n; ++i, p += size) {
      switch (e.type) {
        case miINT8: { std::int8_t v; std::memcpy(&v, p, 1); out[i] = v; break; }
        case miUINT8: { std::uint8_t v; std::memcpy(&v, p, 1); out[i] = v; break; }
        case miINT16: { std::int16_t v; std::memcpy(&v, p, 2); out[i] = v; break; }
        case miUINT16: { std::uint16_t v; std::memcpy(&v, p, 2); out[i] = v; break; }
        case miINT32: { std::int32_t v; std::memcpy(&v, p, 4); out[i] = v; break; }
        case miUINT32: { std::uint32_t v; std::memcpy(&v, p, 4); out[i] = v; break; }
        case miSINGLE: { float v; std::memcpy(&v, p, 4); out[i] = v; break; }
        case miDOUBLE: { double v; std::memcpy(&v, p, 8); out[i] = v; break; }
        case miINT64: { std::int64_t v; std::memcpy(&v, p, 8); out[i] = static_cast<double>(v); break; }
        default: { std::uint64_t v; std::memcpy(&v, p, 8); out[i] = static_cast<double>(v); break; }
      }
    }
    return out;
  }

  std::string text(const Matrix& m) const {
    if (m.mx_class != mxCHAR) bad("MAT 5 cell 'file_names' holds a non-char entry");
    std::size_t pos = 0;
    if (m.payload.empty()) return "";
    const Element e = element(m.payload, pos);
    const std::size_t n = count(m);
    if (e.type == miUTF8 || (e.type == miUINT8 && e.data.size() == n) || (e.type == miINT8 && e.data.size() == n)) {
      return std::string(e.data);
    }
    if (e.type == miUINT16 || e.type == miUTF16) {
      std::vector<std::uint16_t> units(e.data.size() / 2);
      if (!units.empty()) std::memcpy(units.data(), e.data.data(), units.size() * 2);
      return utf16_to_utf8(units.data(), units.size());
    }
    bad(fmt::format("MAT 5 char data of unsupported type {}", e.type));
  }

  FeatureArray parse(const std::string& wanted) const {
    if (b_.size() < 128) bad("not a MAT 5 file (shorter than its 128-byte header)");
    if (b_.substr(126, 2) == "MI") bad("big-endian MAT 5 files are not supported");
    if (b_.substr(126, 2) != "IM" || b_[124] != 0 || b_[125] != 1) {
      bad("not a MAT 5 file (no version 0x0100 / 'IM' marker in its header)");
    }
    std::string_view body = b_.substr(128);
    std::size_t pos = 0;
    bool saw_compressed = false, found = false;
    FeatureArray array;
    std::vector<MatVariable> per_image;  // the variables, in case there is no `features`
    std::string other;                   // the first variable that is not real single/double
    while (pos < body.size()) {
      const Element e = element(body, pos);
      if (e.type == miCOMPRESSED) {
        saw_compressed = true;
        continue;
      }
      if (e.type != miMATRIX) bad(fmt::format("MAT 5 top-level element of type {}", e.type));
      const Matrix m = matrix(e.data);
      if (m.name == wanted) {
        if (m.mx_class != mxSINGLE && m.mx_class != mxDOUBLE) {
          bad(fmt::format("MAT variable '{}' is of class {}, not single or double", wanted, m.mx_class));
        }
        if (m.complex) bad(fmt::format("MAT variable '{}' is complex", wanted));
        std::size_t p = 0;
        const std::size_t n = count(m);
        const Element real = element(m.payload, p);
        array.values = numbers(real, n);
        array.shape = m.dims;
        array.stored_type = m.mx_class == mxSINGLE ? DataType::float32 : DataType::float64;
        fortran_to_c_order(array.values, array.shape);
        found = true;
      } else if (wanted == "features" && m.name != "file_names") {
        if ((m.mx_class != mxSINGLE && m.mx_class != mxDOUBLE) || m.complex) {
          if (other.empty()) other = fmt::format("'{}' (class {})", m.name, m.mx_class);
          continue;
        }
        if (found) continue;
        MatVariable v;
        v.name = m.name;
        v.dims = m.dims;
        v.stored_type = m.mx_class == mxSINGLE ? DataType::float32 : DataType::float64;
        std::size_t p = 0;
        v.values = numbers(element(m.payload, p), count(m));
        fortran_to_c_order(v.values, v.dims);
        per_image.push_back(std::move(v));
      } else if (m.name == "file_names" && wanted == "features") {
        if (m.mx_class != mxCELL) bad("MAT variable 'file_names' is not a cell array");
        std::size_t p = 0;
        const std::size_t n = count(m);
        for (std::size_t i = 0; i < n; ++i) {
          const Element cell = element(m.payload, p);
          if (cell.type != miMATRIX) bad("MAT 5 cell entry is not an array");
          array.file_names.push_back(text(matrix(cell.data)));
        }
      }
    }
    if (!found && !per_image.empty() && !saw_compressed && array.file_names.empty()) {
      if (!other.empty()) {
        bad(fmt::format("no variable 'features', and variable {} is not a real single or double "
                        "array as the per-image layout needs", other));
      }
      return per_image_rows(std::move(per_image), file_);
    }
    if (!found) {
      bad(fmt::format("no variable '{}'{}", wanted,
                      saw_compressed ? " (compressed MAT 5 variables are not supported: save "
                                       "with do_compression=False or Octave's -v6)" : ""));
    }
    return array;
  }

 private:
  std::string_view b_;
  const std::string& file_;
};

}  // namespace

FeatureArray parse_mat5(std::string_view bytes, const std::string& name, const std::string& file) {
  return Mat5Parser(bytes, file).parse(name);
}

}  // namespace thingsvision::detail
