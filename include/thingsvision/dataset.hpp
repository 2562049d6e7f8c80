// dataset.hpp — ImageDataset: the images of a folder (flat or class folders) or a file list, in THINGSvision's order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "thingsvision/image.hpp"

namespace thingsvision {

/// One image of a dataset.
struct ImageEntry {
  /// The file on disk (root / relative_path).
  std::filesystem::path path;
  /// The path relative to the root, '/'-separated, as written to file_names.txt.
  std::string relative_path;
  /// Index into class_names(), or -1 for a flat folder.
  int class_index = -1;
  /// The image's index in an HDF5 image store (ImageDataset::open_hdf5), or -1 for an image file.
  std::int64_t store_index = -1;
};

class Hdf5ImageStore;

/// Options for ImageDataset::open.
struct DatasetOptions {
  /// A text file listing images relative to the root, one a line, in extraction order.
  std::filesystem::path file_list;
  /// Class sub-folders in this order instead of sorted order (rows follow it).
  std::vector<std::string> class_names;
};

/// The images to extract, in THINGSvision's (and torchvision ImageFolder's) order.
class ImageDataset {
 public:
  /// Lists the images under `root`: flat folder (names sorted by code point), class folders
  /// (classes sorted, then os.walk order inside each), or options.file_list's order.
  /// Throws Error(input) for a missing/empty folder, no supported image, a root holding both
  /// images and sub-folders (naming the files), a listed file missing or listed twice.
  static ImageDataset open(const std::filesystem::path& root, const DatasetOptions& options = {});

  /// The images of one HDF5 array (THINGSvision's HDF5Dataset): uint8 N×H×W×3 (RGB), N×H×W×4
  /// (RGBA, alpha dropped) or N×H×W (grey), each read alone, never the whole array. Images
  /// `indices` in that order (all when empty); file_names() lines and relative paths are the indices.
  /// Throws Error(input) naming the file and key for a missing file or key, a wrong type or shape;
  /// Error(usage) for an index out of range or given twice.
  /// Example: `ImageDataset::open_hdf5("nsd_stimuli.hdf5", "imgBrick", parse_index_selection("0:100", n))`
  static ImageDataset open_hdf5(const std::filesystem::path& file, const std::string& key,
                                const std::vector<std::size_t>& indices = {});

  /// The number of images in the array `key` of the HDF5 file (its first dimension); throws as open_hdf5.
  static std::size_t hdf5_image_count(const std::filesystem::path& file, const std::string& key);

  /// Number of images.
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  /// Image `i`; throws Error(usage) if out of range.
  const ImageEntry& at(std::size_t i) const;
  const ImageEntry& operator[](std::size_t i) const noexcept { return entries_[i]; }
  std::vector<ImageEntry>::const_iterator begin() const noexcept { return entries_.begin(); }
  std::vector<ImageEntry>::const_iterator end() const noexcept { return entries_.end(); }

  /// The root folder as given.
  const std::filesystem::path& root() const noexcept { return root_; }
  /// Class names in target order; empty for a flat folder.
  const std::vector<std::string>& class_names() const noexcept { return class_names_; }
  /// Hidden files that were skipped (".DS_Store", "._x.jpg"), relative to the root.
  const std::vector<std::string>& skipped_hidden_files() const noexcept { return skipped_hidden_; }

  /// Decodes image `i` (PIL convert("RGB") semantics); throws Error(input) naming the file.
  Image load_image(std::size_t i, const DecodeOptions& options = {}) const;

  /// The lines of file_names.txt in extraction order: relative paths ('/'-separated; flat: bare
  /// names), or, when `prefix_root` is true, exactly what THINGSvision writes: class-folder lines
  /// as os.path.join(root, relative), flat-folder lines still bare names.
  /// Example: root "imgs", "cat/a.jpg" → "imgs/cat/a.jpg".
  std::vector<std::string> file_names(bool prefix_root = false) const;

  /// True when images come from class sub-folders (class_names() is not empty).
  bool has_classes() const noexcept { return !class_names_.empty(); }
  /// True when images come from an HDF5 image store (open_hdf5).
  bool is_hdf5_store() const noexcept { return store_ != nullptr; }

  /// A dataset holding images [first, last) of this one (for shards); throws Error(usage) if out of range.
  ImageDataset slice(std::size_t first, std::size_t last) const;

 private:
  std::filesystem::path root_;
  std::vector<ImageEntry> entries_;
  std::vector<std::string> class_names_;
  std::vector<std::string> skipped_hidden_;
  std::shared_ptr<const Hdf5ImageStore> store_;  // shared by copies and slices
};

/// Parses an image index selection for `count` images: "A:B" (end-exclusive; A or B may be left
/// out, as in Python slicing without negatives), "7" or a comma list "3,1,7" (kept in its order).
/// Throws Error(usage) naming `spec` for bad syntax, an index out of range or given twice.
std::vector<std::size_t> parse_index_selection(const std::string& spec, std::size_t count);

/// True for the extensions ImageDataset lists: jpg, jpeg, png, tif, tiff, bmp, webp, in any case.
bool is_supported_image_name(const std::string& file_name);

/// Writes `lines` to `path` one a line ('\n'), via a temporary file renamed when complete.
void write_lines(const std::filesystem::path& path, const std::vector<std::string>& lines);

/// Reads a text file's lines (without '\n', '\r' stripped, a leading UTF-8 BOM dropped);
/// throws Error(input) naming the file.
std::vector<std::string> read_lines(const std::filesystem::path& path);

}  // namespace thingsvision
