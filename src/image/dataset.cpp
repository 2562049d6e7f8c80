// dataset.cpp — folder walk in THINGSvision's order, file lists, class indices, file_names.txt.
#include "thingsvision/dataset.hpp"

#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <system_error>

#include "core/atomic_file.hpp"
#include "core/hdf5_support.hpp"
#include "thingsvision/error.hpp"

namespace thingsvision {
namespace fs = std::filesystem;

namespace {

constexpr const char* kExtensionsText = "jpg, jpeg, png, tif, tiff, bmp, webp; any case";

bool is_hidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

// Python's sorted() on str orders by code point; for valid UTF-8 that is the order of the
// bytes compared as unsigned values, which std::string::compare gives (char_traits<char>).
void sort_names(std::vector<std::string>& names) { std::sort(names.begin(), names.end()); }

// The names in `dir`, split into sub-directories and files (symbolic links followed, as
// os.walk(followlinks=True) and os.path.isfile do). Entries that are neither (broken links,
// sockets) are left out, as THINGSvision does.
struct DirectoryListing {
  std::vector<std::string> directories;
  std::vector<std::string> files;
};

DirectoryListing list_directory(const fs::path& dir, const std::string& shown_name) {
  DirectoryListing listing;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    throw Error(ErrorKind::input, fmt::format("cannot read folder '{}': {}", shown_name, ec.message()));
  }
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    std::error_code status_ec;
    const fs::file_status status = fs::status(it->path(), status_ec);  // follows links
    if (status_ec) continue;                                           // broken link
    if (fs::is_directory(status)) {
      listing.directories.push_back(name);
    } else if (fs::is_regular_file(status)) {
      listing.files.push_back(name);
    }
  }
  if (ec) {
    throw Error(ErrorKind::input, fmt::format("cannot read folder '{}': {}", shown_name, ec.message()));
  }
  sort_names(listing.directories);
  sort_names(listing.files);
  return listing;
}

std::string join_relative(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "/" + name;
}

// "a.jpg, b.png, c.png and 4 more"
std::string name_list(const std::vector<std::string>& names, std::size_t max_shown = 5) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < max_shown; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > max_shown) out += fmt::format(" and {} more", names.size() - max_shown);
  return out;
}

// One directory reached by the walk of a class folder: its path relative to the root and the
// sorted names of its files.
struct WalkedDirectory {
  std::string relative;
  std::vector<std::string> files;
};

// Collects `relative` and every sub-directory below it (links followed); hidden directories
// are not entered and are reported. A link that leads back to an ancestor is an error
// (os.walk would recurse until the path is too long).
void walk_class_folder(const fs::path& root, const std::string& relative,
                       std::vector<fs::path>& ancestors, std::vector<WalkedDirectory>& out,
                       std::vector<std::string>& hidden) {
  const fs::path dir = root / fs::u8path(relative);
  std::error_code ec;
  const fs::path canonical = fs::canonical(dir, ec);
  if (!ec) {
    for (const auto& ancestor : ancestors) {
      if (ancestor == canonical) {
        throw Error(ErrorKind::input,
                    fmt::format("symbolic link loop in image folder '{}': '{}' leads back to '{}'",
                                root.string(), relative, ancestor.string()));
      }
    }
  }
  DirectoryListing listing = list_directory(dir, (root / fs::u8path(relative)).string());
  ancestors.push_back(canonical);
  WalkedDirectory walked{relative, {}};
  for (auto& file : listing.files) {
    if (is_hidden(file)) {
      hidden.push_back(join_relative(relative, file));
    } else {
      walked.files.push_back(std::move(file));
    }
  }
  out.push_back(std::move(walked));
  for (const auto& sub : listing.directories) {
    if (is_hidden(sub)) {
      hidden.push_back(join_relative(relative, sub) + "/");
      continue;
    }
    walk_class_folder(root, join_relative(relative, sub), ancestors, out, hidden);
  }
  ancestors.pop_back();
}

// A file-list entry made relative and '/'-separated: "cat\x.jpg" and "./cat/x.jpg" → "cat/x.jpg".
std::string normalize_entry(std::string entry) {
  std::replace(entry.begin(), entry.end(), '\\', '/');
  std::string normal = fs::path(entry).lexically_normal().generic_string();
  return normal;
}

// The first component of a '/'-separated relative path, or "" when it has none.
std::string first_component(const std::string& relative) {
  const auto slash = relative.find('/');
  return slash == std::string::npos ? std::string() : relative.substr(0, slash);
}

void check_root(const fs::path& root) {
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (ec || !fs::exists(status)) {
    throw Error(ErrorKind::input, fmt::format("image folder '{}' does not exist", root.string()));
  }
  if (!fs::is_directory(status)) {
    throw Error(ErrorKind::input, fmt::format("image folder '{}' is not a folder", root.string()));
  }
}

std::vector<std::string> checked_class_names(const std::vector<std::string>& names) {
  std::set<std::string> seen;
  for (const auto& name : names) {
    if (name.empty() || name.find('/') != std::string::npos) {
      throw Error(ErrorKind::usage,
                  fmt::format("class name '{}' is not a folder name (empty or holds '/')", name));
    }
    if (!seen.insert(name).second) {
      throw Error(ErrorKind::usage, fmt::format("class name '{}' is given twice", name));
    }
  }
  return names;
}

}  // namespace

// --- HDF5 image stores ---------------------------------------------------------------------

namespace {

using detail::Hdf5Handle;
using detail::QuietHdf5;

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* names) {
  static_cast<std::vector<std::string>*>(names)->push_back(name);
  return 0;
}

std::string describe_type(hid_t type) {
  const std::size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return fmt::format("{}int{}", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
    case H5T_FLOAT: return fmt::format("float{}", bits);
    case H5T_STRING: return "strings";
    case H5T_COMPOUND: return "compound values";
    default: return "non-numeric values";
  }
}

}  // namespace

/// One uint8 image array in an HDF5 file, kept open; reads one image at a time.
class Hdf5ImageStore {
 public:
  Hdf5ImageStore(const fs::path& file, const std::string& key) : file_name_(file.string()), key_(key) {
    std::error_code ec;
    if (!fs::exists(file, ec)) {
      throw Error(ErrorKind::input, fmt::format("HDF5 file '{}' does not exist", file_name_));
    }
    const QuietHdf5 quiet;
    if (H5Fis_hdf5(file_name_.c_str()) <= 0) {
      throw Error(ErrorKind::input, fmt::format("'{}' is not an HDF5 file", file_name_));
    }
    Hdf5Handle h5_file(H5Fopen(file_name_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (h5_file.get() < 0) {
      throw Error(ErrorKind::input, fmt::format("cannot open HDF5 file '{}'", file_name_));
    }
    Hdf5Handle dataset(key.empty() ? -1 : H5Dopen2(h5_file.get(), key.c_str(), H5P_DEFAULT), H5Dclose);
    if (dataset.get() < 0) {
      std::vector<std::string> names;
      hsize_t position = 0;
      H5Literate(h5_file.get(), H5_INDEX_NAME, H5_ITER_INC, &position, collect_name, &names);
      throw Error(ErrorKind::input,
                  fmt::format("HDF5 file '{}' has no dataset '{}'; it holds: {}", file_name_, key,
                              names.empty() ? std::string("nothing") : closest_names(key, names, 8)));
    }
    Hdf5Handle type(H5Dget_type(dataset.get()), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1 ||
        H5Tget_sign(type.get()) != H5T_SGN_NONE) {
      throw Error(ErrorKind::input,
                  fmt::format("dataset '{}' in HDF5 file '{}' holds {}, not uint8 images", key,
                              file_name_, describe_type(type.get())));
    }
    Hdf5Handle space(H5Dget_space(dataset.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    hsize_t dims[4] = {0, 0, 0, 0};
    if (rank >= 1 && rank <= 4) H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    const bool grey = rank == 3;
    const bool colour = rank == 4 && (dims[3] == 3 || dims[3] == 4);
    if ((!grey && !colour) || dims[1] == 0 || dims[2] == 0) {
      std::string shape;
      for (int d = 0; d < rank && d < 4; ++d) shape += (d ? ", " : "") + std::to_string(dims[d]);
      throw Error(ErrorKind::input,
                  fmt::format("dataset '{}' in HDF5 file '{}' has shape ({}): expected uint8 images "
                              "N x H x W x 3 (RGB), N x H x W x 4 (RGBA) or N x H x W (grey)",
                              key, file_name_, shape));
    }
    count_ = dims[0];
    height_ = dims[1];
    width_ = dims[2];
    channels_ = grey ? 1 : dims[3];
    if (height_ > 1000000 || width_ > 1000000) {
      throw Error(ErrorKind::input, fmt::format("dataset '{}' in HDF5 file '{}' has images of {} x {} "
                                                "pixels: too large",
                                                key, file_name_, height_, width_));
    }
    rank_ = rank;
    file_ = h5_file.release();
    dataset_ = dataset.release();
  }

  ~Hdf5ImageStore() {
    H5Dclose(dataset_);
    H5Fclose(file_);
  }
  Hdf5ImageStore(const Hdf5ImageStore&) = delete;
  Hdf5ImageStore& operator=(const Hdf5ImageStore&) = delete;

  std::size_t count() const noexcept { return static_cast<std::size_t>(count_); }
  const std::string& file_name() const noexcept { return file_name_; }
  const std::string& key() const noexcept { return key_; }

  /// Image `index` as PIL's Image.fromarray(array[index]).convert("RGB") gives it.
  Image read(std::size_t index) const {
    const std::size_t plane = static_cast<std::size_t>(height_ * width_);
    std::vector<std::uint8_t> raw(plane * channels_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const QuietHdf5 quiet;
      Hdf5Handle file_space(H5Dget_space(dataset_), H5Sclose);
      const hsize_t start[4] = {index, 0, 0, 0};
      const hsize_t count[4] = {1, height_, width_, channels_};
      Hdf5Handle memory_space(H5Screate_simple(rank_, count, nullptr), H5Sclose);
      if (file_space.get() < 0 || memory_space.get() < 0 ||
          H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
          H5Dread(dataset_, H5T_NATIVE_UINT8, memory_space.get(), file_space.get(), H5P_DEFAULT,
                  raw.data()) < 0) {
        throw Error(ErrorKind::input, fmt::format("cannot read image {} of dataset '{}' in HDF5 file "
                                                  "'{}' (damaged file?)",
                                                  index, key_, file_name_));
      }
    }
    Image image;
    image.width = static_cast<int>(width_);
    image.height = static_cast<int>(height_);
    image.pixels.resize(plane * 3);
    for (std::size_t p = 0; p < plane; ++p) {
      for (std::size_t c = 0; c < 3; ++c) {
        image.pixels[3 * p + c] = raw[channels_ == 1 ? p : channels_ * p + c];  // L → RGB; alpha dropped
      }
    }
    return image;
  }

 private:
  std::string file_name_;
  std::string key_;
  hid_t file_ = -1;
  hid_t dataset_ = -1;
  int rank_ = 0;
  hsize_t count_ = 0, height_ = 0, width_ = 0, channels_ = 0;
  mutable std::mutex mutex_;
};

ImageDataset ImageDataset::open_hdf5(const fs::path& file, const std::string& key,
                                     const std::vector<std::size_t>& indices) {
  auto store = std::make_shared<const Hdf5ImageStore>(file, key);
  ImageDataset dataset;
  dataset.root_ = file;
  std::vector<std::size_t> selected = indices;
  if (selected.empty()) {
    selected.resize(store->count());
    for (std::size_t i = 0; i < selected.size(); ++i) selected[i] = i;
  }
  std::set<std::size_t> seen;
  for (const std::size_t index : selected) {
    if (index >= store->count()) {
      throw Error(ErrorKind::usage, fmt::format("image index {} is out of range: dataset '{}' in HDF5 "
                                                "file '{}' holds {} images",
                                                index, key, store->file_name(), store->count()));
    }
    if (!seen.insert(index).second) {
      throw Error(ErrorKind::usage, fmt::format("image index {} is selected twice", index));
    }
    dataset.entries_.push_back(
        ImageEntry{file, std::to_string(index), -1, static_cast<std::int64_t>(index)});
  }
  if (dataset.entries_.empty()) {
    throw Error(ErrorKind::input, fmt::format("dataset '{}' in HDF5 file '{}' holds no image", key,
                                              store->file_name()));
  }
  dataset.store_ = std::move(store);
  return dataset;
}

std::size_t ImageDataset::hdf5_image_count(const fs::path& file, const std::string& key) {
  return Hdf5ImageStore(file, key).count();
}

std::vector<std::size_t> parse_index_selection(const std::string& spec, std::size_t count) {
  const auto bad = [&](const std::string& why) {
    return Error(ErrorKind::usage, fmt::format("image indices '{}': {}", spec, why));
  };
  // A non-negative decimal integer, surrounding blanks allowed.
  const auto parse_number = [&](std::string text) -> std::size_t {
    const auto first = text.find_first_not_of(" \t");
    const auto last = text.find_last_not_of(" \t");
    text = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
    if (text.empty() || text.size() > 18 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw bad(fmt::format("'{}' is not an index (a number from 0)", text));
    }
    return static_cast<std::size_t>(std::strtoull(text.c_str(), nullptr, 10));
  };
  std::vector<std::size_t> indices;
  const auto colon = spec.find(':');
  if (colon != std::string::npos) {
    const std::string a = spec.substr(0, colon), b = spec.substr(colon + 1);
    const bool a_empty = a.find_first_not_of(" \t") == std::string::npos;
    const bool b_empty = b.find_first_not_of(" \t") == std::string::npos;
    const std::size_t begin = a_empty ? 0 : parse_number(a);
    const std::size_t end = b_empty ? count : parse_number(b);
    if (begin >= end) throw bad(fmt::format("the range A:B is empty ({} >= {})", begin, end));
    if (end > count) throw bad(fmt::format("the end {} is past the {} images", end, count));
    for (std::size_t i = begin; i < end; ++i) indices.push_back(i);
    return indices;
  }
  std::set<std::size_t> seen;
  std::size_t start = 0;
  for (;;) {
    const auto comma = spec.find(',', start);
    const std::size_t index = parse_number(spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (index >= count) throw bad(fmt::format("index {} is out of range ({} images)", index, count));
    if (!seen.insert(index).second) throw bad(fmt::format("index {} is given twice", index));
    indices.push_back(index);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return indices;
}

bool is_supported_image_name(const std::string& file_name) {
  const auto dot = file_name.rfind('.');
  if (dot == std::string::npos || dot == 0) return false;
  std::string extension = file_name.substr(dot + 1);
  for (auto& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const char* const kExtensions[] = {"jpg", "jpeg", "png", "tif", "tiff", "bmp", "webp"};
  for (const char* known : kExtensions) {
    if (extension == known) return true;
  }
  return false;
}

ImageDataset ImageDataset::open(const fs::path& root, const DatasetOptions& options) {
  check_root(root);
  ImageDataset dataset;
  dataset.root_ = root;
  const std::string root_text = root.string();

  if (!options.file_list.empty()) {
    // --- a user file list: its order, entries relative to the root ------------------------
    const std::string list_text = options.file_list.string();
    const std::vector<std::string> lines = read_lines(options.file_list);
    std::map<std::string, std::size_t> line_of;  // normalized entry → line number
    for (std::size_t n = 0; n < lines.size(); ++n) {
      const std::string& line = lines[n];
      const std::size_t line_number = n + 1;
      if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
      const std::string relative = normalize_entry(line);
      if (!relative.empty() && relative[0] == '/') {
        throw Error(ErrorKind::input,
                    fmt::format("file list '{}' line {}: '{}' is an absolute path; entries must be "
                                "relative to the image folder '{}'",
                                list_text, line_number, line, root_text));
      }
      if (relative == "." || relative == ".." || relative.rfind("../", 0) == 0) {
        throw Error(ErrorKind::input,
                    fmt::format("file list '{}' line {}: '{}' is not inside the image folder '{}'",
                                list_text, line_number, line, root_text));
      }
      const auto [it, inserted] = line_of.emplace(relative, line_number);
      if (!inserted) {
        throw Error(ErrorKind::input,
                    fmt::format("file list '{}' line {}: '{}' is listed twice (first on line {})",
                                list_text, line_number, line, it->second));
      }
      const fs::path path = root / fs::u8path(relative);
      std::error_code ec;
      const fs::file_status status = fs::status(path, ec);
      if (ec || !fs::exists(status)) {
        throw Error(ErrorKind::input,
                    fmt::format("file list '{}' line {}: '{}' does not exist in the image folder '{}'",
                                list_text, line_number, line, root_text));
      }
      if (!fs::is_regular_file(status)) {
        throw Error(ErrorKind::input,
                    fmt::format("file list '{}' line {}: '{}' is not a file", list_text,
                                line_number, line));
      }
      dataset.entries_.push_back(ImageEntry{path, relative, -1});
    }
    if (dataset.entries_.empty()) {
      throw Error(ErrorKind::input, fmt::format("file list '{}' lists no image", list_text));
    }
    // Classes: the user's order, else the sorted first components when every entry has one.
    bool all_in_folders = true;
    for (const auto& entry : dataset.entries_) {
      if (first_component(entry.relative_path).empty()) all_in_folders = false;
    }
    std::vector<std::string> classes;
    if (!options.class_names.empty()) {
      classes = checked_class_names(options.class_names);
    } else if (all_in_folders) {
      std::set<std::string> unique;
      for (const auto& entry : dataset.entries_) unique.insert(first_component(entry.relative_path));
      classes.assign(unique.begin(), unique.end());
    }
    if (!classes.empty()) {
      std::map<std::string, int> index_of;
      for (std::size_t c = 0; c < classes.size(); ++c) index_of[classes[c]] = static_cast<int>(c);
      for (auto& entry : dataset.entries_) {
        const std::string cls = first_component(entry.relative_path);
        const auto found = index_of.find(cls);
        if (found == index_of.end()) {
          throw Error(ErrorKind::input,
                      fmt::format("file list '{}' line {}: '{}' is not in one of the given class "
                                  "folders ({})",
                                  list_text, line_of[entry.relative_path], entry.relative_path,
                                  name_list(classes)));
        }
        entry.class_index = found->second;
      }
    }
    dataset.class_names_ = std::move(classes);
    return dataset;
  }

  // --- a folder: flat, or class sub-folders --------------------------------------------------
  DirectoryListing top = list_directory(root, root_text);
  if (top.directories.empty() && top.files.empty()) {
    std::error_code ec;
    if (fs::is_empty(root, ec)) {
      throw Error(ErrorKind::input, fmt::format("image folder '{}' is empty", root_text));
    }
  }
  std::vector<std::string> subfolders, root_images;
  for (const auto& name : top.directories) {
    if (is_hidden(name)) {
      dataset.skipped_hidden_.push_back(name + "/");
    } else {
      subfolders.push_back(name);
    }
  }
  for (const auto& name : top.files) {
    if (is_hidden(name)) {
      dataset.skipped_hidden_.push_back(name);
    } else if (is_supported_image_name(name)) {
      root_images.push_back(name);
    }
  }

  const auto no_image_error = [&]() {
    std::string hidden_note;
    if (!dataset.skipped_hidden_.empty()) {
      hidden_note = fmt::format("; skipped hidden: {}", name_list(dataset.skipped_hidden_));
    }
    return Error(ErrorKind::input, fmt::format("image folder '{}' holds no supported image ({}){}",
                                               root_text, kExtensionsText, hidden_note));
  };

  if (subfolders.empty()) {
    if (!options.class_names.empty()) {
      throw Error(ErrorKind::usage,
                  fmt::format("class names were given, but image folder '{}' has no class "
                              "sub-folders",
                              root_text));
    }
    if (root_images.empty()) throw no_image_error();
    for (const auto& name : root_images) {
      dataset.entries_.push_back(ImageEntry{root / fs::u8path(name), name, -1});
    }
    return dataset;
  }

  if (!root_images.empty()) {
    throw Error(ErrorKind::input,
                fmt::format("image folder '{}' holds both class sub-folders and image files ({}); "
                            "move the files into a class folder or list the images in a file list "
                            "(THINGSvision would silently leave them out)",
                            root_text, name_list(root_images)));
  }

  std::vector<std::string> classes;
  if (options.class_names.empty()) {
    classes = subfolders;
  } else {
    classes = checked_class_names(options.class_names);
    for (const auto& cls : classes) {
      if (!std::binary_search(subfolders.begin(), subfolders.end(), cls)) {
        throw Error(ErrorKind::input,
                    fmt::format("class folder '{}' (in the given class names) does not exist in "
                                "image folder '{}'; closest: {}",
                                cls, root_text, closest_names(cls, subfolders, 3)));
      }
    }
  }

  // THINGSvision: for each class, sorted(os.walk(root/cls, followlinks=True)) — directories in
  // the order of their path strings — and in each directory sorted(files).
  for (std::size_t c = 0; c < classes.size(); ++c) {
    std::vector<WalkedDirectory> walked;
    std::vector<fs::path> ancestors;
    walk_class_folder(root, classes[c], ancestors, walked, dataset.skipped_hidden_);
    std::sort(walked.begin(), walked.end(),
              [](const WalkedDirectory& a, const WalkedDirectory& b) { return a.relative < b.relative; });
    for (const auto& dir : walked) {
      for (const auto& file : dir.files) {
        if (!is_supported_image_name(file)) continue;
        const std::string relative = join_relative(dir.relative, file);
        dataset.entries_.push_back(ImageEntry{root / fs::u8path(relative), relative,
                                              static_cast<int>(c)});
      }
    }
  }
  if (dataset.entries_.empty()) throw no_image_error();
  dataset.class_names_ = std::move(classes);
  return dataset;
}

const ImageEntry& ImageDataset::at(std::size_t i) const {
  if (i >= entries_.size()) {
    throw Error(ErrorKind::usage, fmt::format("image index {} is out of range (the dataset has {} "
                                              "images)",
                                              i, entries_.size()));
  }
  return entries_[i];
}

Image ImageDataset::load_image(std::size_t i, const DecodeOptions& options) const {
  const ImageEntry& entry = at(i);
  if (store_) return store_->read(static_cast<std::size_t>(entry.store_index));
  try {
    return decode_image(entry.path, options);
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.find(entry.relative_path) != std::string::npos) throw;
    throw Error(e.kind(), fmt::format("image '{}': {}", entry.relative_path, message));
  }
}

std::vector<std::string> ImageDataset::file_names(bool prefix_root) const {
  std::vector<std::string> lines;
  lines.reserve(entries_.size());
  // os.path.join(root, relative): a separator is added unless the root ends with one.
  std::string prefix = root_.string();
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  const bool prefixed = prefix_root && has_classes();
  for (const auto& entry : entries_) {
    lines.push_back(prefixed ? prefix + entry.relative_path : entry.relative_path);
  }
  return lines;
}

ImageDataset ImageDataset::slice(std::size_t first, std::size_t last) const {
  if (first > last || last > entries_.size()) {
    throw Error(ErrorKind::usage, fmt::format("image range [{}, {}) is out of range (the dataset "
                                              "has {} images)",
                                              first, last, entries_.size()));
  }
  ImageDataset part;
  part.root_ = root_;
  part.class_names_ = class_names_;
  part.skipped_hidden_ = skipped_hidden_;
  part.store_ = store_;
  part.entries_.assign(entries_.begin() + static_cast<std::ptrdiff_t>(first),
                       entries_.begin() + static_cast<std::ptrdiff_t>(last));
  return part;
}

void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
  for (std::size_t n = 0; n < lines.size(); ++n) {
    if (lines[n].find_first_of("\r\n") != std::string::npos) {
      throw Error(ErrorKind::input, fmt::format("cannot write '{}': line {} ('{}') holds a line "
                                                "break",
                                                path.string(), n + 1, lines[n]));
    }
  }
  const fs::path temporary = path.string() + fmt::format(".tmp{}", static_cast<long>(::getpid()));
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw Error(ErrorKind::io, fmt::format("cannot write '{}': cannot create '{}'", path.string(),
                                             temporary.string()));
    }
    for (const auto& line : lines) {
      out.write(line.data(), static_cast<std::streamsize>(line.size()));
      out.put('\n');
    }
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      fs::remove(temporary, ec);
      throw Error(ErrorKind::io, fmt::format("cannot write '{}' (disk full?)", path.string()));
    }
  }
  detail::commit_file(temporary, path);
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': the file does not exist", path.string()));
  }
  if (fs::is_directory(path, ec)) {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': it is a folder", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': permission denied?", path.string()));
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    line.clear();
  }
  if (in.bad()) {
    throw Error(ErrorKind::input, fmt::format("cannot read '{}': read error", path.string()));
  }
  if (!lines.empty() && lines[0].rfind("\xEF\xBB\xBF", 0) == 0) lines[0].erase(0, 3);
  return lines;
}

}  // namespace thingsvision
