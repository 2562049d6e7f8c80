// npy_writer.cpp — NumPy .npy format 1.0/2.0 (little-endian, C order): writer and header parser.
#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <limits>

#include "thingsvision/error.hpp"
#include "storage/writers/writer_backend.hpp"

namespace thingsvision::detail {

namespace {

constexpr std::size_t kArrayAlign = 64;       // = numpy.lib.format.ARRAY_ALIGN
constexpr std::size_t kGrowthAxisDigits = 21;  // = numpy.lib.format.GROWTH_AXIS_MAX_DIGITS

const char* descr(DataType type) {
  switch (type) {
    case DataType::float16: return "<f2";
    case DataType::float32: return "<f4";
    case DataType::float64: return "<f8";
  }
  return "<f4";
}

}  // namespace

// The complete header exactly as numpy 1.24's np.save writes it (format.py _write_array_header).
std::string npy_header(const std::vector<std::int64_t>& shape, DataType dtype) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 descr(dtype), shape_repr(shape));
  dict.append(kGrowthAxisDigits - std::to_string(shape[0]).size(), ' ');
  const std::size_t hlen = dict.size() + 1;  // + '\n'
  for (int major = 1; major <= 2; ++major) {
    const std::size_t prefix = major == 1 ? 10 : 12;
    const std::size_t padlen = kArrayAlign - ((prefix + hlen) % kArrayAlign);
    const std::size_t total = hlen + padlen;
    if (major == 1 && total > 0xffff) continue;
    std::string out("\x93NUMPY", 6);
    out += static_cast<char>(major);
    out += '\0';
    for (std::size_t b = 0; b < prefix - 8; ++b) out += static_cast<char>((total >> (8 * b)) & 0xff);
    out += dict;
    out.append(padlen, ' ');
    out += '\n';
    return out;
  }
  throw Error(ErrorKind::internal, "npy header too large; internal error, please report");
}

namespace {

[[noreturn]] void bad(const std::string& file, const std::string& why) {
  throw Error(ErrorKind::input, fmt::format("cannot read '{}': {}", file, why));
}

// A tiny parser for the Python dict literal of the NPY header.
class DictParser {
 public:
  DictParser(std::string_view text, const std::string& file) : s_(text), file_(file) {}

  NpyHeader parse() {
    NpyHeader header;
    bool have_descr = false, have_order = false, have_shape = false;
    skip();
    expect('{');
    for (;;) {
      skip();
      if (peek() == '}') break;
      const std::string key = string_literal();
      skip();
      expect(':');
      skip();
      if (key == "descr") {
        const std::string d = string_literal();
        if (d == "<f4" || d == "=f4") {
          header.dtype = DataType::float32;
        } else if (d == "<f8" || d == "=f8") {
          header.dtype = DataType::float64;
        } else if (d == "<f2" || d == "=f2") {
          header.dtype = DataType::float16;
        } else {
          bad(file_, fmt::format("unsupported npy dtype '{}' (expected little-endian float16, "
                                 "float32 or float64)", printable(d)));
        }
        have_descr = true;
      } else if (key == "fortran_order") {
        if (s_.substr(pos_, 4) == "True") {
          header.fortran_order = true;
          pos_ += 4;
        } else if (s_.substr(pos_, 5) == "False") {
          header.fortran_order = false;
          pos_ += 5;
        } else {
          bad(file_, "npy header: fortran_order is not True or False");
        }
        have_order = true;
      } else if (key == "shape") {
        header.shape = tuple();
        have_shape = true;
      } else {
        bad(file_, fmt::format("npy header: unexpected key '{}'", printable(key)));
      }
      skip();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip();
      if (peek() != '}') bad(file_, "npy header: expected ',' or '}'");
    }
    if (!have_descr || !have_order || !have_shape) {
      bad(file_, "npy header lacks 'descr', 'fortran_order' or 'shape'");
    }
    return header;
  }

 private:
  static std::string printable(const std::string& text) {
    std::string out;
    for (char c : text.substr(0, 40)) out += (c >= 32 && c < 127) ? c : '?';
    return out;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c) bad(file_, fmt::format("npy header: expected '{}'", c));
    ++pos_;
  }
  std::string string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') bad(file_, "npy header: expected a quoted key");
    ++pos_;
    const std::size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) bad(file_, "npy header: unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  std::vector<std::int64_t> tuple() {
    std::vector<std::int64_t> shape;
    expect('(');
    for (;;) {
      skip();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') bad(file_, "npy header: bad shape");
      std::int64_t value = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (value > (std::numeric_limits<std::int64_t>::max() - 9) / 10) {
          bad(file_, "npy header: shape dimension too large");
        }
        value = value * 10 + (peek() - '0');
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long
      shape.push_back(value);
      if (shape.size() > 32) bad(file_, "npy header: too many dimensions");
      skip();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip();
      if (peek() != ')') bad(file_, "npy header: bad shape");
    }
    ++pos_;
    return shape;
  }

  std::string_view s_;
  const std::string& file_;
  std::size_t pos_ = 0;
};

}  // namespace

void write_npy_file(const FileJob& job, RowSource& rows) {
  std::vector<std::int64_t> shape{static_cast<std::int64_t>(job.num_rows)};
  shape.insert(shape.end(), job.row_shape.begin(), job.row_shape.end());
  OutputFile out(job.temporary_path);
  const std::string header = npy_header(shape, job.dtype);
  out.write(header.data(), header.size());
  const std::size_t chunk_rows = rows_per_chunk(job.row_bytes());
  std::vector<char> buffer(chunk_rows * job.row_bytes());
  std::size_t total = 0;
  while (const std::size_t n = rows.read(buffer.data(), chunk_rows)) {
    out.write(buffer.data(), n * job.row_bytes());
    total += n;
  }
  if (total != job.num_rows) {
    throw Error(ErrorKind::internal, "npy writer: row count changed; internal error, please report");
  }
  out.close();
}

NpyHeader parse_npy_header(std::string_view bytes, const std::string& file) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != std::string_view("\x93NUMPY", 6)) {
    bad(file, "not an npy file (no \\x93NUMPY magic)");
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  if (major < 1 || major > 3) bad(file, fmt::format("unsupported npy version {}", major));
  const std::size_t prefix = major == 1 ? 10 : 12;
  if (bytes.size() < prefix) bad(file, "npy header is truncated");
  std::size_t hlen = 0;
  for (std::size_t b = 0; b < prefix - 8; ++b) {
    hlen |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + b])) << (8 * b);
  }
  if (bytes.size() < prefix + hlen) bad(file, "npy header is truncated");
  NpyHeader header = DictParser(bytes.substr(prefix, hlen), file).parse();
  header.data_offset = prefix + hlen;
  return header;
}

namespace {

// Total element count of `shape`, or an error if it overflows or exceeds `limit`.
std::size_t checked_count(const std::vector<std::int64_t>& shape, std::size_t limit,
                          const std::string& file) {
  std::size_t n = 1;
  for (auto d : shape) {
    if (d < 0) bad(file, "negative dimension");
    if (d != 0 && n > limit / static_cast<std::size_t>(d)) bad(file, "shape is too large");
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

}  // namespace

// Fortran (column-major) order to C order, in place of a copy.
void fortran_to_c_order(std::vector<double>& values, const std::vector<std::int64_t>& shape) {
  if (shape.size() < 2 || values.empty()) return;
  std::vector<double> out(values.size());
  const std::size_t rank = shape.size();
  std::vector<std::size_t> index(rank, 0);
  // Walk the C-order destination; the Fortran source offset is sum index[k] * prod(shape[<k]).
  std::vector<std::size_t> stride(rank, 1);
  for (std::size_t k = 1; k < rank; ++k) stride[k] = stride[k - 1] * static_cast<std::size_t>(shape[k - 1]);
  std::size_t source = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = values[source];
    for (std::size_t k = rank; k-- > 0;) {
      ++index[k];
      source += stride[k];
      if (index[k] < static_cast<std::size_t>(shape[k])) break;
      source -= index[k] * stride[k];
      index[k] = 0;
    }
  }
  values.swap(out);
}

FeatureArray parse_npy(std::string_view bytes, const std::string& file) {
  const NpyHeader header = parse_npy_header(bytes, file);
  if (header.shape.empty()) bad(file, "npy array is a scalar, not a feature matrix");
  const std::size_t elem = element_size(header.dtype);
  const std::size_t available = bytes.size() - header.data_offset;
  const std::size_t count = checked_count(header.shape, (std::size_t{1} << 62) / elem, file);
  if (count * elem != available) {
    bad(file, fmt::format("npy data is {} bytes, shape {} needs {}", available,
                          shape_repr(header.shape), count * elem));
  }
  FeatureArray array;
  array.shape = header.shape;
  array.stored_type = header.dtype;
  array.values.resize(count);
  convert_to_double(bytes.data() + header.data_offset, count, header.dtype, array.values.data());
  if (header.fortran_order) fortran_to_c_order(array.values, array.shape);
  return array;
}

}  // namespace thingsvision::detail
