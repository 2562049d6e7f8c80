// dataset_test.cpp — ImageDataset order and file_names.txt against a Python re-implementation of
// THINGSvision's rules (tests/reference/file_names_reference.py), file lists, errors, line files.
#include <gmock/gmock.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "test_support.hpp"
#include "thingsvision/data_loader.hpp"
#include "thingsvision/dataset.hpp"
#include "thingsvision/error.hpp"

using namespace thingsvision;
using tv_test::expect_error;
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

// Creates `relative` (and its folders) under `root` holding a few bytes; names are UTF-8.
void touch(const fs::path& root, const std::string& relative, const std::string& content = "x") {
  const fs::path path = root / fs::u8path(relative);
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

struct ReferenceRow {
  int class_index = 0;
  std::string relative_path;
  std::string thingsvision_line;
};

// Runs the Python reference on `root` (as a string, exactly as the dataset gets it).
std::vector<ReferenceRow> python_reference(const std::string& root, const fs::path& scratch,
                                           const std::string& class_names = "") {
  const fs::path out = scratch / "reference.tsv";
  std::string command = tv_test::python() + " '" +
                        (tv_test::source_dir() / "tests/reference/file_names_reference.py").string() +
                        "' '" + root + "' '" + out.string() + "'";
  if (!class_names.empty()) command += " --class-names '" + class_names + "'";
  tv_test::run_capture(command);
  std::vector<ReferenceRow> rows;
  for (const auto& line : read_lines(out)) {
    std::istringstream fields(line);
    ReferenceRow row;
    std::string index;
    std::getline(fields, index, '\t');
    std::getline(fields, row.relative_path, '\t');
    std::getline(fields, row.thingsvision_line, '\t');
    row.class_index = std::stoi(index);
    rows.push_back(row);
  }
  return rows;
}

void expect_matches_reference(const ImageDataset& dataset, const std::vector<ReferenceRow>& rows) {
  ASSERT_EQ(dataset.size(), rows.size());
  const auto relative = dataset.file_names(false);
  const auto prefixed = dataset.file_names(true);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(relative[i], rows[i].relative_path) << "row " << i;
    EXPECT_EQ(prefixed[i], rows[i].thingsvision_line) << "row " << i;
    EXPECT_EQ(dataset[i].relative_path, rows[i].relative_path) << "row " << i;
    EXPECT_EQ(dataset[i].class_index, rows[i].class_index) << "row " << i;
    EXPECT_EQ(dataset[i].path, dataset.root() / fs::u8path(rows[i].relative_path)) << "row " << i;
  }
}

// A flat folder: unicode names (one outside the BMP, where UTF-16 order differs from code point
// order), mixed-case extensions, numbers that a natural sort would reorder, hidden and other files.
void make_flat_tree(const fs::path& root) {
  for (const char* name :
       {"b.jpg", "B.JPG", "a10.png", "a2.png", "\xc3\xa9t\xc3\xa9.jpeg", "e.Jpeg", "z.TIFF", "y.tif",
        "x.bmp", "w.WebP", "\xef\xbd\x81.png" /* U+FF41 */, "\xf0\x9f\x98\x80.png" /* U+1F600 */,
        "\xe6\x97\xa5\xe6\x9c\xac.png", "with space.jpg", "notes.txt", "noext", "image.gif", ".DS_Store",
        "._b.jpg", "archive.jpg.zip"}) {
    touch(root, name);
  }
}

// Class folders with the cases the order rules decide.
void make_class_tree(const fs::path& root) {
  for (const char* name :
       {"cat/a.jpg", "cat/B.png", "cat-2/a.jpg", "dog/z.jpg", "dog/sub/b.jpg", "dog/sub-2/c.jpg",
        "dog/sub/x/d.JPEG", "dog/sub/x/._d.jpg", "dog/.thumbs/t.jpg", "dog/notes.txt",
        "\xc3\xa9lan/\xc3\xa9.png", "\xc3\xa9lan/e.png", "Zebra/1.webp", "Zebra/10.bmp", "Zebra/2.tif",
        "empty-class/readme.txt", ".git/x.jpg", "cat/.DS_Store"}) {
    touch(root, name);
  }
  fs::create_directory_symlink("../cat", root / "dog" / "linked");  // followlinks=True
}

// An image tree made by `make_tree` in images/ of a temporary folder, and options that read the
// file list list.txt beside it (which the test writes).
struct FileListTree {
  explicit FileListTree(void (*make_tree)(const fs::path&)) {
    make_tree(root);
    options.file_list = list;
  }
  tv_test::TempDir dir;
  fs::path root = dir / "images";
  fs::path list = dir / "list.txt";
  DatasetOptions options;
};

}  // namespace

TEST(ImageDataset, FlatFolderOrderEqualsThingsvisionRules) {
  tv_test::TempDir dir;
  const fs::path root = dir / "images";
  make_flat_tree(root);
  const auto dataset = ImageDataset::open(root);
  expect_matches_reference(dataset, python_reference(root.string(), dir.path()));
  EXPECT_EQ(dataset.size(), 14u);
  EXPECT_FALSE(dataset.has_classes());
  EXPECT_TRUE(dataset.class_names().empty());
  // Code-point order: "B.JPG" < "a10.png" < "a2.png" < "b.jpg" < ... < U+FF41 < U+1F600.
  EXPECT_EQ(dataset[0].relative_path, "B.JPG");
  EXPECT_EQ(dataset[1].relative_path, "a10.png");
  EXPECT_EQ(dataset[dataset.size() - 1].relative_path, "\xf0\x9f\x98\x80.png");
  EXPECT_EQ(dataset.file_names(true), dataset.file_names(false));  // THINGSvision: bare names
  EXPECT_THAT(dataset.skipped_hidden_files(), ElementsAre(".DS_Store", "._b.jpg"));
}

TEST(ImageDataset, ClassFoldersOrderEqualsThingsvisionRules) {
  tv_test::TempDir dir;
  const fs::path root = dir / "images";
  make_class_tree(root);
  for (const std::string& given : {root.string(), root.string() + "/"}) {
    SCOPED_TRACE(given);
    const auto dataset = ImageDataset::open(given);
    expect_matches_reference(dataset, python_reference(given, dir.path()));
    EXPECT_THAT(dataset.class_names(),
                ElementsAre("Zebra", "cat", "cat-2", "dog", "empty-class", "\xc3\xa9lan"));
  }
  const auto dataset = ImageDataset::open(root);
  EXPECT_THAT(dataset.file_names(),
              ElementsAre("Zebra/1.webp", "Zebra/10.bmp", "Zebra/2.tif", "cat/B.png", "cat/a.jpg",
                          "cat-2/a.jpg", "dog/z.jpg", "dog/linked/B.png", "dog/linked/a.jpg",
                          "dog/sub/b.jpg", "dog/sub-2/c.jpg", "dog/sub/x/d.JPEG",
                          "\xc3\xa9lan/e.png", "\xc3\xa9lan/\xc3\xa9.png"));
  EXPECT_EQ(dataset.file_names(true)[0], root.string() + "/Zebra/1.webp");
  EXPECT_THAT(dataset.skipped_hidden_files(),
              ElementsAre(".git/", "cat/.DS_Store", "dog/.thumbs/", "dog/linked/.DS_Store",
                          "dog/sub/x/._d.jpg"));
}

TEST(ImageDataset, UserClassOrderReordersRowsAndTargets) {
  tv_test::TempDir dir;
  const fs::path root = dir / "images";
  make_class_tree(root);
  DatasetOptions options;
  options.class_names = {"dog", "cat", "Zebra"};
  const auto dataset = ImageDataset::open(root, options);
  expect_matches_reference(dataset, python_reference(root.string(), dir.path(), "dog,cat,Zebra"));
  EXPECT_THAT(dataset.class_names(), ElementsAre("dog", "cat", "Zebra"));
  EXPECT_EQ(dataset[0].relative_path, "dog/z.jpg");
  EXPECT_EQ(dataset[0].class_index, 0);
  EXPECT_EQ(dataset[dataset.size() - 1].relative_path, "Zebra/2.tif");
  EXPECT_EQ(dataset[dataset.size() - 1].class_index, 2);
}

TEST(ImageDataset, UserClassNamesErrors) {
  tv_test::TempDir dir;
  const fs::path root = dir / "images";
  make_class_tree(root);
  DatasetOptions options;
  options.class_names = {"dog", "kat"};
  expect_error([&] { ImageDataset::open(root, options); }, ErrorKind::input,
               "class folder 'kat' (in the given class names) does not exist in image folder '" +
                   root.string() + "'; closest: cat, cat-2, dog");
  options.class_names = {"dog", "cat", "dog"};
  expect_error([&] { ImageDataset::open(root, options); }, ErrorKind::usage,
               "class name 'dog' is given twice");
  const fs::path flat = dir / "flat";
  touch(flat, "a.jpg");
  options.class_names = {"dog"};
  expect_error([&] { ImageDataset::open(flat, options); }, ErrorKind::usage,
               "class names were given, but image folder '" + flat.string() +
                   "' has no class sub-folders");
}

TEST(ImageDataset, FileListKeepsItsOrder) {
  FileListTree tree(make_flat_tree);
  write_text(tree.list, "z.TIFF\r\n\r\n./a2.png\nB.JPG\n._b.jpg\n\xc3\xa9t\xc3\xa9.jpeg");
  const auto dataset = ImageDataset::open(tree.root, tree.options);
  EXPECT_THAT(dataset.file_names(),
              ElementsAre("z.TIFF", "a2.png", "B.JPG", "._b.jpg", "\xc3\xa9t\xc3\xa9.jpeg"));
  EXPECT_EQ(dataset.file_names(true), dataset.file_names(false));
  EXPECT_EQ(dataset[1].path, tree.root / "a2.png");
  EXPECT_EQ(dataset[1].class_index, -1);
}

TEST(ImageDataset, FileListWithClassFolders) {
  FileListTree tree(make_class_tree);
  write_text(tree.list, "dog/sub/b.jpg\ncat\\a.jpg\nZebra/1.webp\ndog/z.jpg\n");
  auto dataset = ImageDataset::open(tree.root, tree.options);
  EXPECT_THAT(dataset.file_names(),
              ElementsAre("dog/sub/b.jpg", "cat/a.jpg", "Zebra/1.webp", "dog/z.jpg"));
  EXPECT_THAT(dataset.class_names(), ElementsAre("Zebra", "cat", "dog"));
  EXPECT_EQ(dataset[0].class_index, 2);
  EXPECT_EQ(dataset[1].class_index, 1);
  EXPECT_EQ(dataset[2].class_index, 0);
  EXPECT_EQ(dataset.file_names(true)[1], tree.root.string() + "/cat/a.jpg");
  tree.options.class_names = {"dog", "cat", "Zebra"};
  dataset = ImageDataset::open(tree.root, tree.options);
  EXPECT_EQ(dataset[0].class_index, 0);
  EXPECT_EQ(dataset[2].class_index, 2);
  tree.options.class_names = {"dog", "cat"};
  expect_error([&] { ImageDataset::open(tree.root, tree.options); }, ErrorKind::input,
               "file list '" + tree.list.string() +
                   "' line 3: 'Zebra/1.webp' is not in one of the given class folders (dog, cat)");
}

TEST(ImageDataset, FileListErrorsNameTheEntryAndLine) {
  FileListTree tree(make_flat_tree);
  const fs::path& root = tree.root;
  const fs::path& list = tree.list;
  const auto open = [&] { ImageDataset::open(root, tree.options); };
  const std::string in_list = "file list '" + list.string() + "' line ";

  write_text(list, "b.jpg\nmissing.jpg\n");
  expect_error(open, ErrorKind::input,
               in_list + "2: 'missing.jpg' does not exist in the image folder '" + root.string() + "'");
  write_text(list, "b.jpg\nx.bmp\n\n./b.jpg\n");
  expect_error(open, ErrorKind::input,
               in_list + "4: './b.jpg' is listed twice (first on line 1)");
  write_text(list, "b.jpg\nb.jpg\n");
  expect_error(open, ErrorKind::input,
               in_list + "2: 'b.jpg' is listed twice (first on line 1)");
  write_text(list, (root / "b.jpg").string() + "\n");
  expect_error(open, ErrorKind::input,
               in_list + "1: '" + (root / "b.jpg").string() +
                   "' is an absolute path; entries must be relative to the image folder '" +
                   root.string() + "'");
  write_text(list, "../images/b.jpg\n");
  expect_error(open, ErrorKind::input,
               in_list + "1: '../images/b.jpg' is not inside the image folder '" + root.string() + "'");
  write_text(list, "\n\n");
  expect_error(open, ErrorKind::input,
               "file list '" + list.string() + "' lists no image");
  tree.options.file_list = tree.dir / "absent.txt";
  expect_error(open, ErrorKind::input,
               "cannot read '" + (tree.dir / "absent.txt").string() + "': the file does not exist");
}

TEST(ImageDataset, FolderErrorsNameTheFolderOrFiles) {
  tv_test::TempDir dir;
  const fs::path missing = dir / "missing";
  expect_error([&] { ImageDataset::open(missing); }, ErrorKind::input,
               "image folder '" + missing.string() + "' does not exist");
  touch(dir.path(), "file.jpg");
  expect_error([&] { ImageDataset::open(dir / "file.jpg"); }, ErrorKind::input,
               "image folder '" + (dir / "file.jpg").string() + "' is not a folder");
  const fs::path empty = dir / "empty";
  fs::create_directories(empty);
  expect_error([&] { ImageDataset::open(empty); }, ErrorKind::input,
               "image folder '" + empty.string() + "' is empty");
  const fs::path no_images = dir / "no_images";
  touch(no_images, "notes.txt");
  touch(no_images, ".DS_Store");
  touch(no_images, "._a.jpg");
  expect_error([&] { ImageDataset::open(no_images); }, ErrorKind::input,
               "image folder '" + no_images.string() +
                   "' holds no supported image (jpg, jpeg, png, tif, tiff, bmp, webp; any case); "
                   "skipped hidden: .DS_Store, ._a.jpg");
  const fs::path empty_classes = dir / "empty_classes";
  touch(empty_classes, "cat/notes.txt");
  fs::create_directories(empty_classes / "dog");
  expect_error([&] { ImageDataset::open(empty_classes); }, ErrorKind::input,
               "image folder '" + empty_classes.string() +
                   "' holds no supported image (jpg, jpeg, png, tif, tiff, bmp, webp; any case)");
  const fs::path mixed = dir / "mixed";
  touch(mixed, "cat/a.jpg");
  touch(mixed, "stray.png");
  touch(mixed, "Stray.JPG");
  touch(mixed, "readme.txt");
  expect_error([&] { ImageDataset::open(mixed); }, ErrorKind::input,
               "image folder '" + mixed.string() +
                   "' holds both class sub-folders and image files (Stray.JPG, stray.png); move the "
                   "files into a class folder or list the images in a file list (THINGSvision would "
                   "silently leave them out)");
  const fs::path loop = dir / "loop";
  touch(loop, "cat/a.jpg");
  fs::create_directory_symlink("..", loop / "cat" / "up");
  expect_error([&] { ImageDataset::open(loop); }, ErrorKind::input,
               "symbolic link loop in image folder '" + loop.string() +
                   "': 'cat/up/cat' leads back to '" + fs::canonical(loop / "cat").string() + "'");
}

TEST(ImageDataset, SliceAndAtCheckTheirRange) {
  tv_test::TempDir dir;
  const fs::path root = dir / "images";
  make_class_tree(root);
  const auto dataset = ImageDataset::open(root);
  const auto part = dataset.slice(3, 7);
  ASSERT_EQ(part.size(), 4u);
  EXPECT_EQ(part[0].relative_path, dataset[3].relative_path);
  EXPECT_EQ(part.at(3).relative_path, dataset[6].relative_path);
  EXPECT_EQ(part.class_names(), dataset.class_names());
  EXPECT_EQ(part.file_names(true)[0], dataset.file_names(true)[3]);
  EXPECT_TRUE(dataset.slice(5, 5).empty());
  expect_error([&] { dataset.slice(7, 3); }, ErrorKind::usage,
               "image range [7, 3) is out of range (the dataset has 14 images)");
  expect_error([&] { dataset.slice(0, 15); }, ErrorKind::usage,
               "image range [0, 15) is out of range (the dataset has 14 images)");
  expect_error([&] { part.at(4); }, ErrorKind::usage,
               "image index 4 is out of range (the dataset has 4 images)");
}

TEST(ImageDataset, SupportedExtensionsInAnyCase) {
  for (const char* name : {"a.jpg", "a.JPG", "a.Jpeg", "a.png", "a.PNG", "a.tif", "a.TIFF", "a.bmp",
                           "a.WEBP", "a.b.jpg"}) {
    EXPECT_TRUE(is_supported_image_name(name)) << name;
  }
  for (const char* name : {"a.gif", "a.eps", "ajpg", "jpg", ".jpg", "a.jpg.txt", "a.", "a.jp g"}) {
    EXPECT_FALSE(is_supported_image_name(name)) << name;
  }
}

TEST(Lines, WriteThenReadRoundTripsViaTemporaryFile) {
  tv_test::TempDir dir;
  const fs::path path = dir / "file_names.txt";
  const std::vector<std::string> lines = {"cat/a.jpg", "", "\xc3\xa9.png", "with space.jpg"};
  write_lines(path, lines);
  EXPECT_EQ(tv_test::read_file(path), "cat/a.jpg\n\n\xc3\xa9.png\nwith space.jpg\n");
  EXPECT_EQ(read_lines(path), lines);
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);  // no temporary file left behind
  write_lines(path, {"b"});  // replaces
  EXPECT_EQ(tv_test::read_file(path), "b\n");
  write_lines(path, {});
  EXPECT_EQ(tv_test::read_file(path), "");
  EXPECT_TRUE(read_lines(path).empty());
}

TEST(Lines, ReadStripsCarriageReturnsAndBom) {
  tv_test::TempDir dir;
  const fs::path path = dir / "list.txt";
  write_text(path, "\xEF\xBB\xBF" "a.jpg\r\nb.jpg\r\n\r\nc.jpg");
  EXPECT_THAT(read_lines(path), ElementsAre("a.jpg", "b.jpg", "", "c.jpg"));
}

TEST(Lines, ErrorsNameTheFile) {
  tv_test::TempDir dir;
  expect_error([&] { read_lines(dir / "absent.txt"); }, ErrorKind::input,
               "cannot read '" + (dir / "absent.txt").string() + "': the file does not exist");
  expect_error([&] { read_lines(dir.path()); }, ErrorKind::input,
               "cannot read '" + dir.path().string() + "': it is a folder");
  expect_error([&] { write_lines(dir / "out.txt", {"a", "b\nc"}); }, ErrorKind::input,
               "cannot write '" + (dir / "out.txt").string() + "': line 2 ('b\nc') holds a line break");
  EXPECT_FALSE(fs::exists(dir / "out.txt"));
  expect_error([&] { write_lines(dir / "no" / "out.txt", {"a"}); }, ErrorKind::io,
               "cannot write '" + (dir / "no" / "out.txt").string() + "': cannot create '" +
                   (dir / "no" / "out.txt").string() + ".tmp" + std::to_string(::getpid()) + "'");
}

// --- HDF5 image stores (issue #10, part 1) ---------------------------------------------------

namespace {

// Written by h5py in the test: the example photographs resized by PIL to 64 × 48, as PNG files and
// as uint8 arrays (RGB, grey, RGBA), plus arrays of the wrong type and shape; the references are
// PIL's Image.fromarray(a).convert("RGB") bytes.
const char* const kHdf5StoreScript = R"PY(
import glob, os, sys
import h5py, numpy as np
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(src, "*.jpg")))
arr = np.stack([np.asarray(Image.open(f).convert("RGB").resize((64, 48), Image.BILINEAR)) for f in files])
os.makedirs(os.path.join(out, "png"))
for i, a in enumerate(arr):
    Image.fromarray(a).save(os.path.join(out, "png", "%03d.png" % i))
grey = np.stack([np.asarray(Image.fromarray(a).convert("L")) for a in arr])
rgba = np.concatenate([arr, (arr[..., :1] // 3 + 5).astype(np.uint8)], axis=3)
with h5py.File(os.path.join(out, "store.hdf5"), "w") as f:
    f.create_dataset("imgBrick", data=arr, chunks=(1,) + arr.shape[1:])
    f.create_dataset("grey", data=grey)
    f.create_dataset("rgba", data=rgba)
    f.create_dataset("floats", data=arr.astype(np.float32))
    f.create_dataset("flat", data=arr.reshape(len(arr), -1))
    f.create_group("group").create_dataset("nested", data=arr[:2])
for name, data in (("grey", grey), ("rgba", rgba), ("imgBrick", arr)):
    with open(os.path.join(out, name + ".rgb"), "wb") as g:
        for a in data:
            g.write(np.asarray(Image.fromarray(a).convert("RGB")).tobytes())
print(len(arr))
)PY";

std::size_t make_hdf5_store(const fs::path& out) {
  const fs::path script = out / "make_store.py";
  std::ofstream(script) << kHdf5StoreScript;
  const std::string printed =
      tv_test::run_capture(tv_test::python() + " '" + script.string() + "' '" +
                           (tv_test::source_dir() / "examples" / "images").string() + "' '" +
                           out.string() + "'");
  return static_cast<std::size_t>(std::stoul(printed));
}

std::vector<std::uint8_t> reference_pixels(const fs::path& file, std::size_t index, std::size_t size) {
  const std::string bytes = tv_test::read_file(file);
  EXPECT_GE(bytes.size(), (index + 1) * size) << file;
  if (bytes.size() < (index + 1) * size) return {};
  return std::vector<std::uint8_t>(bytes.begin() + static_cast<std::ptrdiff_t>(index * size),
                                   bytes.begin() + static_cast<std::ptrdiff_t>((index + 1) * size));
}

}  // namespace

TEST(Hdf5ImageStore, ImagesEqualTheSamePhotographsAsPngFiles) {
  tv_test::TempDir dir;
  const std::size_t count = make_hdf5_store(dir.path());
  ASSERT_GE(count, 5u);
  const fs::path store = dir / "store.hdf5";
  EXPECT_EQ(ImageDataset::hdf5_image_count(store, "imgBrick"), count);
  const auto pngs = ImageDataset::open(dir / "png");
  const auto dataset = ImageDataset::open_hdf5(store, "imgBrick");
  ASSERT_EQ(dataset.size(), count);
  EXPECT_TRUE(dataset.is_hdf5_store());
  EXPECT_EQ(dataset.file_names(), dataset.file_names(true));
  for (std::size_t i = 0; i < count; ++i) {
    EXPECT_EQ(dataset.file_names()[i], std::to_string(i));
    EXPECT_EQ(dataset[i].store_index, static_cast<std::int64_t>(i));
    const Image from_store = dataset.load_image(i);
    const Image from_png = pngs.load_image(i);
    EXPECT_EQ(from_store.width, 64);
    EXPECT_EQ(from_store.height, 48);
    EXPECT_EQ(from_store.pixels, from_png.pixels) << "image " << i;
    EXPECT_EQ(from_store.pixels, reference_pixels(dir / "imgBrick.rgb", i, 64 * 48 * 3));
  }
  // A selection keeps its order; slices share the open store.
  const auto selected = ImageDataset::open_hdf5(store, "imgBrick", {4, 1, 3});
  EXPECT_THAT(selected.file_names(), ElementsAre("4", "1", "3"));
  EXPECT_EQ(selected.load_image(0).pixels, pngs.load_image(4).pixels);
  const auto part = selected.slice(1, 3);
  EXPECT_EQ(part.load_image(1).pixels, pngs.load_image(3).pixels);
  // The loader gives the same tensors as from the PNG files (default transform: 256 / 224).
  DataLoaderOptions options;
  options.batch_size = 8;
  options.num_workers = 2;
  DataLoader from_store(selected, Transform{}, options);
  DataLoader from_files(pngs, Transform{}, options);
  ImageBatch store_batch, file_batch;
  ASSERT_TRUE(from_store.next(store_batch));
  ASSERT_TRUE(from_files.next(file_batch));
  ASSERT_EQ(store_batch.num_images, 3);
  for (std::size_t b = 0; b < 3; ++b) {
    const std::size_t file_index = std::vector<std::size_t>{4, 1, 3}[b];
    EXPECT_EQ(0, std::memcmp(store_batch.image(b), file_batch.image(file_index),
                             store_batch.image_size() * sizeof(float)))
        << "image " << file_index;
  }
  EXPECT_EQ(store_batch.indices, (std::vector<std::size_t>{0, 1, 2}));
  const auto nested = ImageDataset::open_hdf5(store, "group/nested");
  EXPECT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested.load_image(1).pixels, pngs.load_image(1).pixels);
}

TEST(Hdf5ImageStore, GreyAndRgbaConvertAsPil) {
  tv_test::TempDir dir;
  const std::size_t count = make_hdf5_store(dir.path());
  for (const char* key : {"grey", "rgba"}) {
    SCOPED_TRACE(key);
    const auto dataset = ImageDataset::open_hdf5(dir / "store.hdf5", key);
    ASSERT_EQ(dataset.size(), count);
    for (std::size_t i = 0; i < count; ++i) {
      EXPECT_EQ(dataset.load_image(i).pixels,
                reference_pixels(dir / (std::string(key) + ".rgb"), i, 64 * 48 * 3))
          << "image " << i;
    }
  }
}

TEST(Hdf5ImageStore, ErrorsNameTheFileKeyAndIndex) {
  tv_test::TempDir dir;
  const std::size_t count = make_hdf5_store(dir.path());
  const fs::path store = dir / "store.hdf5";
  const std::string in_store = "' in HDF5 file '" + store.string() + "'";
  expect_error([&] { ImageDataset::open_hdf5(dir / "absent.hdf5", "x"); }, ErrorKind::input,
               "HDF5 file '" + (dir / "absent.hdf5").string() + "' does not exist");
  expect_error([&] { ImageDataset::open_hdf5(dir / "make_store.py", "x"); }, ErrorKind::input,
               "'" + (dir / "make_store.py").string() + "' is not an HDF5 file");
  try {
    ImageDataset::open_hdf5(store, "imgBrik");
    ADD_FAILURE() << "no error for a missing key";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::input);
    EXPECT_THAT(e.what(), HasSubstr("HDF5 file '" + store.string() + "' has no dataset 'imgBrik'; "
                                    "it holds: imgBrick"));
  }
  expect_error([&] { ImageDataset::open_hdf5(store, "floats"); }, ErrorKind::input,
               "dataset 'floats" + in_store + " holds float32, not uint8 images");
  expect_error([&] { ImageDataset::open_hdf5(store, "flat"); }, ErrorKind::input,
               "dataset 'flat" + in_store + " has shape (" + std::to_string(count) +
                   ", 9216): expected uint8 images N x H x W x 3 (RGB), N x H x W x 4 (RGBA) or "
                   "N x H x W (grey)");
  expect_error([&] { ImageDataset::open_hdf5(store, "imgBrick", {0, count}); }, ErrorKind::usage,
               "image index " + std::to_string(count) + " is out of range: dataset 'imgBrick" +
                   in_store + " holds " + std::to_string(count) + " images");
  expect_error([&] { ImageDataset::open_hdf5(store, "imgBrick", {2, 0, 2}); }, ErrorKind::usage,
               "image index 2 is selected twice");
}

TEST(IndexSelection, RangesAndListsAsPythonSlicing) {
  EXPECT_THAT(parse_index_selection("2:5", 10), ElementsAre(2, 3, 4));
  EXPECT_THAT(parse_index_selection(":3", 10), ElementsAre(0, 1, 2));
  EXPECT_THAT(parse_index_selection("7:", 10), ElementsAre(7, 8, 9));
  EXPECT_EQ(parse_index_selection(":", 4).size(), 4u);
  EXPECT_THAT(parse_index_selection("3, 1,7", 10), ElementsAre(3, 1, 7));
  EXPECT_THAT(parse_index_selection(" 5 ", 10), ElementsAre(5));
  const auto usage = [](const std::string& spec, const std::string& why) {
    expect_error([&] { parse_index_selection(spec, 10); }, ErrorKind::usage,
                 "image indices '" + spec + "': " + why);
  };
  usage("5:2", "the range A:B is empty (5 >= 2)");
  usage("0:11", "the end 11 is past the 10 images");
  usage("a", "'a' is not an index (a number from 0)");
  usage("-1", "'-1' is not an index (a number from 0)");
  usage("1,,2", "'' is not an index (a number from 0)");
  usage("", "'' is not an index (a number from 0)");
  usage("3,10", "index 10 is out of range (10 images)");
  usage("3,1,3", "index 3 is given twice");
}
