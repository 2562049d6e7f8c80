// feature_reader.cpp — read_features (format from content), directories of splits, bit-exact merge.
#include "thingsvision/feature_reader.hpp"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <sstream>

#include "thingsvision/error.hpp"
#include "core/hdf5_support.hpp"
#include "storage/writers/writer_backend.hpp"

namespace fs = std::filesystem;

namespace thingsvision {

namespace {

[[noreturn]] void bad(const fs::path& file, const std::string& why) {
  throw Error(ErrorKind::input, fmt::format("cannot read '{}': {}", file.string(), why));
}

std::string read_prefix(const fs::path& file, std::size_t size) {
  std::ifstream in(file, std::ios::binary);
  if (!in) bad(file, "cannot open the file");
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) bad(file, "cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

enum class Detected { npy, hdf5, mat5, mat73, txt };

Detected detect(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) bad(file, "no such file");
  const std::string head = read_prefix(file, 4096);
  if (head.compare(0, 6, std::string("\x93NUMPY", 6)) == 0) return Detected::npy;
  if (head.compare(0, 8, std::string("\x89HDF\r\n\x1a\n", 8)) == 0) return Detected::hdf5;
  if (head.size() >= 128 && head.compare(0, 6, "MATLAB") == 0 && head.compare(126, 2, "IM") == 0) {
    if (head[124] == 0 && head[125] == 2) return Detected::mat73;
    return Detected::mat5;
  }
  for (unsigned char c : head) {
    if (c == 0 || (c < 32 && c != '\n' && c != '\r' && c != '\t')) {
      bad(file, "not a feature file (npy, hdf5, mat or txt)");
    }
  }
  return Detected::txt;
}

// The feature files of one output directory: features.<ext>, or features_01 … features_K.
std::vector<fs::path> feature_files(const fs::path& directory, OutputFormat format) {
  const std::string ext = std::string(".") + file_extension(format);
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': not a directory", directory.string()));
  }
  const fs::path single = directory / ("features" + ext);
  if (fs::exists(single)) return {single};
  std::map<long, fs::path> splits;
  for (const auto& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= 9 + ext.size() || name.compare(0, 9, "features_") != 0 ||
        name.compare(name.size() - ext.size(), ext.size(), ext) != 0) {
      continue;
    }
    const std::string digits = name.substr(9, name.size() - 9 - ext.size());
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), is_digit)) {
      continue;
    }
    splits[std::stol(digits)] = entry.path();
  }
  if (splits.empty()) {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': no features{} or features_01{} in it",
                                              directory.string(), ext, ext));
  }
  std::vector<fs::path> files;
  long expected = 1;
  for (const auto& [index, path] : splits) {
    if (index != expected) {
      throw Error(ErrorKind::input,
                  fmt::format("cannot read '{}': split file {} is missing (found {})", directory.string(),
                              (directory / fmt::format("features_{:02d}{}", expected, ext)).filename().string(),
                              path.filename().string()));
    }
    files.push_back(path);
    ++expected;
  }
  return files;
}

std::vector<std::string> read_names(const fs::path& file) {
  std::vector<std::string> names;
  std::ifstream in(file);
  if (!in) return names;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    names.push_back(line);
  }
  return names;
}

void check_same_rows(const FeatureArray& first, const FeatureArray& next, const fs::path& file) {
  if (next.shape.size() != first.shape.size() ||
      !std::equal(first.shape.begin() + 1, first.shape.end(), next.shape.begin() + 1)) {
    bad(file, fmt::format("its rows have shape {}, earlier files {}",
                          detail::shape_repr({next.shape.begin() + 1, next.shape.end()}),
                          detail::shape_repr({first.shape.begin() + 1, first.shape.end()})));
  }
  if (next.stored_type != first.stored_type) {
    bad(file, fmt::format("it stores {}, earlier files {}", to_string(next.stored_type),
                          to_string(first.stored_type)));
  }
}

// Reads the arrays of `files` one at a time (merging keeps only one in memory).
class MergeRowSource final : public detail::RowSource {
 public:
  MergeRowSource(const std::vector<fs::path>& files, DataType dtype, std::size_t row_size)
      : files_(files), dtype_(dtype), row_size_(row_size) {}
  std::size_t read(void* out, std::size_t max_rows) override {
    while (row_ >= rows_in_current()) {
      if (next_file_ >= files_.size()) return 0;
      current_ = read_features(files_[next_file_++]);
      row_ = 0;
    }
    const std::size_t n = std::min(max_rows, rows_in_current() - row_);
    detail::convert_from_double(current_.values.data() + row_ * row_size_, n * row_size_, dtype_, out);
    row_ += n;
    return n;
  }
  void rewind() override {
    next_file_ = 0;
    row_ = 0;
    current_ = FeatureArray{};
  }

 private:
  std::size_t rows_in_current() const { return static_cast<std::size_t>(current_.num_rows()); }
  const std::vector<fs::path>& files_;
  DataType dtype_;
  std::size_t row_size_;
  std::size_t next_file_ = 0, row_ = 0;
  FeatureArray current_;
};

// The root string attributes of `files` (in order): a key keeps its value where every file holding
// it agrees; otherwise its distinct values are joined by " | " in the order they first appear.
std::vector<std::pair<std::string, std::string>> merged_attributes(const std::vector<fs::path>& files) {
  std::vector<std::pair<std::string, std::vector<std::string>>> values;
  for (const auto& file : files) {
    for (auto& [key, value] : read_feature_attributes(file)) {
      auto it = std::find_if(values.begin(), values.end(), [&](const auto& e) { return e.first == key; });
      if (it == values.end()) {
        values.emplace_back(key, std::vector<std::string>{value});
      } else if (std::find(it->second.begin(), it->second.end(), value) == it->second.end()) {
        it->second.push_back(value);
      }
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, distinct] : values) {
    std::string joined = distinct.front();
    for (std::size_t i = 1; i < distinct.size(); ++i) joined += " | " + distinct[i];
    out.emplace_back(key, std::move(joined));
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> read_feature_attributes(const fs::path& file) {
  switch (detect(file)) {
    case Detected::hdf5: return detail::read_hdf5_root_attributes(file);
    case Detected::mat73:
      if (!detail::has_hdf5_signature(file)) bad(file, "MAT 7.3 file without an HDF5 signature");
      return detail::read_hdf5_root_attributes(file);
    case Detected::npy:
    case Detected::mat5:
    case Detected::txt: break;
  }
  return {};
}

FeatureArray read_features(const fs::path& file, const std::string& dataset) {
  FeatureArray array;
  switch (detect(file)) {
    case Detected::npy: array = detail::parse_npy(read_all(file), file.string()); break;
    case Detected::hdf5: array = detail::read_hdf5_file(file, dataset); break;
    case Detected::mat73:
      if (!detail::has_hdf5_signature(file)) bad(file, "MAT 7.3 file without an HDF5 signature");
      array = detail::read_mat73_file(file, dataset);
      break;
    case Detected::mat5: array = detail::parse_mat5(read_all(file), dataset, file.string()); break;
    case Detected::txt: array = detail::parse_txt(read_all(file), file.string()); break;
  }
  if (array.shape.empty()) bad(file, "the array has no dimensions");
  if (!array.file_names.empty() && array.file_names.size() != static_cast<std::size_t>(array.num_rows())) {
    bad(file, fmt::format("it holds {} file names for {} rows", array.file_names.size(), array.num_rows()));
  }
  return array;
}

std::vector<std::string> row_names(const fs::path& features_file, const FeatureArray& array) {
  if (!array.file_names.empty()) return array.file_names;
  const fs::path names_file = features_file.parent_path() / "file_names.txt";
  std::error_code ec;
  if (!fs::is_regular_file(names_file, ec)) return {};
  std::vector<std::string> names = read_names(names_file);
  if (names.size() != static_cast<std::size_t>(array.num_rows())) return {};
  return names;
}

FeatureArray read_feature_directory(const fs::path& directory, OutputFormat format) {
  const auto files = feature_files(directory, format);
  FeatureArray all;
  bool names_complete = true;
  for (std::size_t i = 0; i < files.size(); ++i) {
    FeatureArray part = read_features(files[i]);
    if (i == 0) {
      all.shape = part.shape;
      all.shape[0] = 0;
      all.stored_type = part.stored_type;
    } else {
      check_same_rows(all, part, files[i]);
    }
    all.shape[0] += part.shape[0];
    all.values.insert(all.values.end(), part.values.begin(), part.values.end());
    if (part.file_names.empty()) names_complete = false;
    all.file_names.insert(all.file_names.end(), part.file_names.begin(), part.file_names.end());
  }
  if (!names_complete) all.file_names.clear();
  if (all.file_names.empty()) {
    const fs::path names_file = directory / "file_names.txt";
    if (fs::exists(names_file)) {
      all.file_names = read_names(names_file);
      if (all.file_names.size() != static_cast<std::size_t>(all.num_rows())) {
        bad(names_file, fmt::format("it lists {} file names for {} rows", all.file_names.size(),
                                    all.num_rows()));
      }
    }
  }
  return all;
}

void merge_features(const std::vector<fs::path>& inputs, const fs::path& output, OutputFormat format) {
  if (inputs.empty()) throw Error(ErrorKind::usage, "merge_features: no input directories");
  // Pass 1: shapes, dtypes, names (one file in memory at a time).
  std::vector<fs::path> files;
  std::vector<std::string> names;
  bool have_names = true;
  FeatureArray first;
  std::size_t total = 0;
  MatVersion mat_version = MatVersion::v73;
  for (std::size_t d = 0; d < inputs.size(); ++d) {
    const auto dir_files = feature_files(inputs[d], format);
    std::vector<std::string> dir_names;
    bool dir_complete = true;
    std::size_t dir_rows = 0;
    for (const auto& file : dir_files) {
      FeatureArray part = read_features(file);
      if (files.empty()) {
        first = part;
        first.values.clear();
        if (format == OutputFormat::mat) {
          const std::string head = read_prefix(file, 128);
          mat_version = head.size() == 128 && head[125] == 1 ? MatVersion::v5 : MatVersion::v73;
        }
      } else {
        check_same_rows(first, part, file);
        if (part.mat_variable_per_image != first.mat_variable_per_image) {
          const auto layout = [](bool per_image) { return per_image ? "one variable per image" : "'features'"; };
          bad(file, fmt::format("it holds {}, {} holds {}", layout(part.mat_variable_per_image),
                                files.front().string(), layout(first.mat_variable_per_image)));
        }
      }
      files.push_back(file);
      dir_rows += static_cast<std::size_t>(part.num_rows());
      if (part.file_names.empty()) dir_complete = false;
      dir_names.insert(dir_names.end(), part.file_names.begin(), part.file_names.end());
    }
    if (!dir_complete) {
      const fs::path names_file = inputs[d] / "file_names.txt";
      dir_names.clear();
      if (fs::exists(names_file)) {
        dir_names = read_names(names_file);
        if (dir_names.size() != dir_rows) {
          bad(names_file, fmt::format("it lists {} file names for {} rows", dir_names.size(), dir_rows));
        }
      } else {
        have_names = false;
      }
    }
    names.insert(names.end(), dir_names.begin(), dir_names.end());
    total += dir_rows;
  }
  if (!have_names) names.clear();
  if (first.mat_variable_per_image && names.empty()) {
    bad(files.front(), "the per-image MAT layout names its variables from file_names.txt, which an "
                       "input directory lacks");
  }
  std::error_code ec;
  fs::create_directories(output, ec);
  if (ec || !fs::is_directory(output)) {
    throw Error(ErrorKind::io, fmt::format("cannot create output directory '{}': {}", output.string(),
                                           ec ? ec.message() : "not a directory"));
  }
  // Pass 2: stream into one file under a temporary name, then rename.
  detail::FileJob job;
  job.final_path = output / fmt::format("features.{}", file_extension(format));
  job.temporary_path = job.final_path.string() + ".partial";
  job.row_shape.assign(first.shape.begin() + 1, first.shape.end());
  job.num_rows = total;
  job.dtype = first.stored_type;
  if (format == OutputFormat::mat && job.dtype == DataType::float16) job.dtype = DataType::float32;
  job.mat_version = mat_version;
  job.mat_variable_per_image = first.mat_variable_per_image;
  job.file_names = names.empty() ? nullptr : names.data();
  const bool with_attributes =
      format == OutputFormat::hdf5 || (format == OutputFormat::mat && mat_version == MatVersion::v73);
  const std::vector<std::pair<std::string, std::string>> attributes =
      with_attributes ? merged_attributes(files) : std::vector<std::pair<std::string, std::string>>{};
  job.attributes = &attributes;
  if (job.row_shape.empty()) bad(files.front(), "features must have at least two dimensions");
  if (format == OutputFormat::mat) detail::check_mat5_limits(job);
  MergeRowSource source(files, job.dtype, job.row_size());
  const fs::path names_path = output / "file_names.txt";
  const fs::path names_temporary = names_path.string() + ".partial";
  try {
    switch (format) {
      case OutputFormat::npy: detail::write_npy_file(job, source); break;
      case OutputFormat::txt: detail::write_txt_file(job, source); break;
      case OutputFormat::hdf5: detail::write_hdf5_file(job, source); break;
      case OutputFormat::mat: detail::write_mat_file(job, source); break;
    }
    if (!names.empty()) {
      detail::OutputFile out(names_temporary);
      std::string text;
      for (const auto& name : names) text += name + "\n";
      out.write(text.data(), text.size());
      out.close();
    }
    fs::rename(job.temporary_path, job.final_path);
    if (!names.empty()) fs::rename(names_temporary, names_path);
    detail::sync_path(output);
  } catch (const fs::filesystem_error& e) {
    fs::remove(job.temporary_path, ec);
    fs::remove(names_temporary, ec);
    throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", job.final_path.string(), e.what()));
  } catch (...) {
    fs::remove(job.temporary_path, ec);
    fs::remove(names_temporary, ec);
    throw;
  }
}

}  // namespace thingsvision
