// txt_writer.cpp — numpy.savetxt text (%.18e, space separated) and the THINGSvision slice layout.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>

#include "thingsvision/error.hpp"
#include "storage/writers/writer_backend.hpp"

namespace thingsvision::detail {

namespace {

// Appends `value` as Python's '%.18e' % value does (nan/inf spelled like Python).
void append_value(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "nan";
  } else if (std::isinf(value)) {
    out += value > 0 ? "inf" : "-inf";
  } else {
    char buffer[64];
    const int n = std::snprintf(buffer, sizeof buffer, "%.18e", value);
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

[[noreturn]] void bad(const std::string& file, std::size_t line, const std::string& why) {
  throw Error(ErrorKind::input, fmt::format("cannot read '{}': line {}: {}", file, line, why));
}

}  // namespace

void write_txt_file(const FileJob& job, RowSource& rows) {
  OutputFile out(job.temporary_path);
  const std::size_t row_size = job.row_size();
  const std::size_t width = static_cast<std::size_t>(job.row_shape.back());
  const bool sliced = job.row_shape.size() >= 2;
  std::string text;
  if (sliced) {
    std::vector<std::int64_t> shape{static_cast<std::int64_t>(job.num_rows)};
    shape.insert(shape.end(), job.row_shape.begin(), job.row_shape.end());
    text = "# Array shape: " + shape_repr(shape) + "\n";
  }
  const std::size_t slice_size = sliced ? width * static_cast<std::size_t>(job.row_shape[job.row_shape.size() - 2]) : 0;
  const std::size_t chunk_rows = rows_per_chunk(job.row_bytes(), 1u << 20);
  std::vector<char> buffer(chunk_rows * job.row_bytes());
  std::vector<double> values(chunk_rows * row_size);
  while (const std::size_t n = rows.read(buffer.data(), chunk_rows)) {
    convert_to_double(buffer.data(), n * row_size, job.dtype, values.data());
    for (std::size_t i = 0; i < n * row_size; ++i) {
      append_value(text, values[i]);
      const std::size_t in_row = i % row_size;
      const bool line_end = (in_row + 1) % width == 0;
      text += line_end ? '\n' : ' ';
      if (sliced && (in_row + 1) % slice_size == 0) text += "# New slice\n";
      if (text.size() > (1u << 20)) {
        out.write(text.data(), text.size());
        text.clear();
      }
    }
  }
  out.write(text.data(), text.size());
  out.close();
}

FeatureArray parse_txt(std::string_view text, const std::string& file) {
  FeatureArray array;
  array.stored_type = DataType::float64;  // text keeps no dtype; values are exact in float64
  std::vector<std::int64_t> declared;     // from "# Array shape: (...)"
  std::size_t width = 0, data_lines = 0, slices = 0, line_number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) continue;  // blank line
    line.remove_prefix(start);
    if (line[0] == '#') {
      constexpr std::string_view kShape = "# Array shape:";
      if (line.substr(0, kShape.size()) == kShape) {
        if (line_number != 1) bad(file, line_number, "'# Array shape' must be the first line");
        std::string_view tuple = line.substr(kShape.size());
        const auto open = tuple.find('('), close = tuple.find(')');
        if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
          bad(file, line_number, "bad '# Array shape' line");
        }
        tuple = tuple.substr(open + 1, close - open - 1);
        std::size_t p = 0;
        while (p < tuple.size()) {
          while (p < tuple.size() && (tuple[p] == ' ' || tuple[p] == ',')) ++p;
          if (p >= tuple.size()) break;
          std::int64_t d = 0;
          const auto r = std::from_chars(tuple.data() + p, tuple.data() + tuple.size(), d);
          if (r.ec != std::errc() || d <= 0 || d > (std::int64_t{1} << 40)) {
            bad(file, line_number, "bad '# Array shape' line");
          }
          declared.push_back(d);
          p = static_cast<std::size_t>(r.ptr - tuple.data());
          if (declared.size() > 32) bad(file, line_number, "bad '# Array shape' line");
        }
        if (declared.size() < 3) bad(file, line_number, "'# Array shape' needs at least 3 dimensions");
        width = static_cast<std::size_t>(declared.back());
      } else if (line.substr(0, 11) == "# New slice") {
        ++slices;
      }
      continue;
    }
    std::size_t count = 0;
    std::size_t p = 0;
    while (p < line.size()) {
      while (p < line.size() && (line[p] == ' ' || line[p] == '\t')) ++p;
      if (p >= line.size()) break;
      if (line[p] == '#') break;  // trailing comment
      std::size_t q = p;
      while (q < line.size() && line[q] != ' ' && line[q] != '\t') ++q;
      std::string_view token = line.substr(p, q - p);
      if (!token.empty() && token[0] == '+') token.remove_prefix(1);
      double value = 0;
      const auto r = std::from_chars(token.data(), token.data() + token.size(), value);
      if (r.ec == std::errc::result_out_of_range) {
        bad(file, line_number, fmt::format("value out of range in column {}", count + 1));
      }
      if (r.ec != std::errc() || r.ptr != token.data() + token.size()) {
        bad(file, line_number, fmt::format("column {} is not a number", count + 1));
      }
      array.values.push_back(value);
      ++count;
      p = q;
    }
    if (count == 0) continue;
    if (width == 0) width = count;
    if (count != width) {
      bad(file, line_number, fmt::format("expected {} values, found {}", width, count));
    }
    ++data_lines;
  }
  if (data_lines == 0) {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': no numbers in the file", file));
  }
  if (declared.empty()) {
    array.shape = {static_cast<std::int64_t>(data_lines), static_cast<std::int64_t>(width)};
    return array;
  }
  // Slice layout: the declared shape must account for every value and every slice.
  std::size_t expected = 1;
  for (auto d : declared) {
    if (expected > (std::size_t{1} << 40) / static_cast<std::size_t>(d)) expected = 0;
    expected *= static_cast<std::size_t>(d);
  }
  const std::size_t slice_lines = static_cast<std::size_t>(declared[declared.size() - 2]);
  if (expected != array.values.size() || data_lines % slice_lines != 0 ||
      slices != data_lines / slice_lines) {
    throw Error(ErrorKind::input,
                fmt::format("cannot read '{}': '# Array shape: {}' does not match the {} values in "
                            "{} slices found", file, shape_repr(declared), array.values.size(), slices));
  }
  array.shape = declared;
  return array;
}

}  // namespace thingsvision::detail
