// data_loader_test.cpp — DataLoader: bit-identical tensors whatever the threads and batch size,
// order, ranges, bad images (error position, skipping), size mismatches, bounded memory, shutdown.
#include <gmock/gmock.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "test_support.hpp"
#include "thingsvision/data_loader.hpp"
#include "thingsvision/error.hpp"

using namespace thingsvision;
using tv_test::expect_error;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

constexpr std::size_t kNumImages = 37;

// Writes a seeded random colour image of width × height (lossless PNG or JPEG by extension).
void write_image(const fs::path& path, int width, int height, unsigned seed) {
  cv::Mat image(height, width, CV_8UC3);
  std::mt19937 rng(seed);
  for (int y = 0; y < height; ++y) {
    auto* row = image.ptr<std::uint8_t>(y);
    for (int x = 0; x < width * 3; ++x) row[x] = static_cast<std::uint8_t>(rng() & 0xff);
  }
  fs::create_directories(path.parent_path());
  ASSERT_TRUE(cv::imwrite(path.string(), image)) << path;
}

std::string image_name(std::size_t i) {
  char name[32];
  std::snprintf(name, sizeof name, "img_%03zu.%s", i, i % 3 == 2 ? "jpg" : "png");
  return name;
}

// A small, fast transform: shorter side to 24, crop 20 × 20, ImageNet normalization.
Transform small_transform() {
  Transform transform;
  transform.resize_size = 24;
  transform.crop_height = 20;
  transform.crop_width = 20;
  return transform;
}

// Every batch of a loader, checked for order and sizes; returns the concatenated pixels.
struct Drained {
  std::vector<float> pixels;
  std::vector<std::size_t> indices;
  std::vector<std::int64_t> batch_sizes;
};

Drained drain(DataLoader& loader) {
  Drained out;
  ImageBatch batch;
  while (loader.next(batch)) {
    EXPECT_EQ(batch.channels, 3);
    EXPECT_EQ(static_cast<std::size_t>(batch.num_images), batch.indices.size());
    EXPECT_EQ(batch.pixels.size(), static_cast<std::size_t>(batch.num_images) * batch.image_size());
    out.pixels.insert(out.pixels.end(), batch.pixels.begin(), batch.pixels.end());
    out.indices.insert(out.indices.end(), batch.indices.begin(), batch.indices.end());
    out.batch_sizes.push_back(batch.num_images);
  }
  EXPECT_FALSE(loader.next(batch));  // stays at the end
  return out;
}

// Drains a loader over `dataset` that skips bad images; `bad` receives the images left out.
Drained drain_skipping_bad(const ImageDataset& dataset, const Transform& transform, int workers,
                           std::size_t batch_size, std::vector<BadImage>& bad) {
  DataLoaderOptions options;
  options.num_workers = workers;
  options.batch_size = batch_size;
  options.skip_bad_images = true;
  DataLoader loader(dataset, transform, options);
  Drained got = drain(loader);
  bad = loader.bad_images();
  return got;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class DataLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<tv_test::TempDir>();
    for (std::size_t i = 0; i < kNumImages; ++i) {
      write_image(dir_->path() / "good" / image_name(i), 24 + static_cast<int>(i % 5) * 7,
                  22 + static_cast<int>(i % 4) * 9, static_cast<unsigned>(i));
    }
  }
  static void TearDownTestSuite() { dir_.reset(); }

  static fs::path good_root() { return dir_->path() / "good"; }

  // The expected tensors: each image decoded and transformed alone, in dataset order.
  static std::vector<float> reference(const ImageDataset& dataset, const Transform& transform,
                                      std::size_t first, std::size_t last,
                                      const std::vector<std::size_t>& leave_out = {}) {
    std::vector<float> out;
    for (std::size_t i = first; i < last; ++i) {
      if (std::find(leave_out.begin(), leave_out.end(), i) != leave_out.end()) continue;
      const TransformedImage image = apply_transform(transform, dataset.load_image(i));
      out.insert(out.end(), image.values.begin(), image.values.end());
    }
    return out;
  }

  // A copy of the good images where the images at `bad` are zero-byte or not images at all.
  static fs::path make_bad_root(const std::string& name, const std::vector<std::size_t>& bad) {
    const fs::path root = dir_->path() / name;
    fs::create_directories(root);
    for (std::size_t i = 0; i < kNumImages; ++i) {
      const fs::path target = root / image_name(i);
      if (std::find(bad.begin(), bad.end(), i) == bad.end()) {
        fs::copy_file(good_root() / image_name(i), target, fs::copy_options::overwrite_existing);
      } else {
        std::ofstream(target, std::ios::binary) << (i % 2 ? "" : "this is not an image");
      }
    }
    return root;
  }

  static std::unique_ptr<tv_test::TempDir> dir_;
};

std::unique_ptr<tv_test::TempDir> DataLoaderTest::dir_;

}  // namespace

TEST_F(DataLoaderTest, BitIdenticalForAnyThreadCountAndBatchSize) {
  const auto dataset = ImageDataset::open(good_root());
  ASSERT_EQ(dataset.size(), kNumImages);
  const Transform transform = small_transform();
  const std::vector<float> expected = reference(dataset, transform, 0, kNumImages);
  ASSERT_EQ(expected.size(), kNumImages * 3 * 20 * 20);
  for (int workers : {1, 2, 4}) {
    for (std::size_t batch_size : {1, 3, 32}) {
      for (std::size_t prefetch : {1, 2}) {
        SCOPED_TRACE(testing::Message() << workers << " workers, batch " << batch_size
                                        << ", prefetch " << prefetch);
        DataLoaderOptions options;
        options.num_workers = workers;
        options.batch_size = batch_size;
        options.prefetch_batches = prefetch;
        DataLoader loader(dataset, transform, options);
        // No more threads than images the queue may hold.
        EXPECT_EQ(static_cast<std::size_t>(loader.num_workers()),
                  std::min<std::size_t>(workers, prefetch * batch_size));
        EXPECT_EQ(loader.num_batches(), (kNumImages + batch_size - 1) / batch_size);
        const Drained got = drain(loader);
        EXPECT_TRUE(bit_equal(got.pixels, expected));
        ASSERT_EQ(got.indices.size(), kNumImages);
        for (std::size_t i = 0; i < kNumImages; ++i) EXPECT_EQ(got.indices[i], i);
        ASSERT_EQ(got.batch_sizes.size(), loader.num_batches());
        for (std::size_t b = 0; b + 1 < got.batch_sizes.size(); ++b) {
          EXPECT_EQ(got.batch_sizes[b], static_cast<std::int64_t>(batch_size));
        }
        EXPECT_EQ(got.batch_sizes.back(),
                  static_cast<std::int64_t>(kNumImages - (loader.num_batches() - 1) * batch_size));
        EXPECT_TRUE(loader.bad_images().empty());
        EXPECT_LE(loader.max_images_in_flight(), prefetch * batch_size);
      }
    }
  }
}

TEST_F(DataLoaderTest, ImageSizedTransformsGiveTheSameTensorsAsEachImageAlone) {
  // Without a crop or fixed resize the tensor size depends on the image (per-image slots, copied into
  // the batch): images of one size, shorter side to 18, no crop, skipping a bad one.
  const fs::path root = dir_->path() / "same_size";
  for (std::size_t i = 0; i < 11; ++i) write_image(root / image_name(i), 30, 26, static_cast<unsigned>(100 + i));
  std::ofstream(root / image_name(11), std::ios::binary) << "not an image";
  const auto dataset = ImageDataset::open(root);
  Transform transform = small_transform();
  transform.resize_size = 18;
  transform.crop_height = transform.crop_width = 0;
  ASSERT_FALSE(fixed_output_size(transform).has_value());
  const auto expected = reference(dataset, transform, 0, 11);
  ASSERT_EQ(expected.size(), std::size_t(11) * 3 * 18 * 20);
  for (int workers : {1, 3}) {
    SCOPED_TRACE(workers);
    std::vector<BadImage> left_out;
    const Drained got = drain_skipping_bad(dataset, transform, workers, 4, left_out);
    EXPECT_TRUE(bit_equal(got.pixels, expected));
    EXPECT_THAT(got.batch_sizes, testing::ElementsAre(4, 4, 3));
    ASSERT_EQ(left_out.size(), 1u);
  }
}

TEST_F(DataLoaderTest, FixedSizeBatchesAreHandedOverNotCopied) {
  // With a crop the workers write into batch buffers that next() swaps with the caller's pixels: the
  // caller sees prefetch_batches + 1 buffers in turn (a copying loader would fill one buffer always).
  const auto dataset = ImageDataset::open(good_root());
  ASSERT_TRUE(fixed_output_size(small_transform()).has_value());
  DataLoaderOptions options;
  options.num_workers = 2;
  options.batch_size = 3;
  options.prefetch_batches = 2;
  DataLoader loader(dataset, small_transform(), options);
  ImageBatch batch;
  std::set<const float*> buffers;
  std::vector<float> pixels;
  while (loader.next(batch)) {
    buffers.insert(batch.pixels.data());
    pixels.insert(pixels.end(), batch.pixels.begin(), batch.pixels.end());
  }
  EXPECT_EQ(buffers.size(), 3u);
  EXPECT_TRUE(bit_equal(pixels, reference(dataset, small_transform(), 0, kNumImages)));
}

TEST_F(DataLoaderTest, LoadsTheGivenRangeOnly) {
  const auto dataset = ImageDataset::open(good_root());
  const Transform transform = small_transform();
  DataLoaderOptions options;
  options.batch_size = 4;
  options.first_index = 5;
  options.last_index = 20;
  DataLoader loader(dataset, transform, options);
  EXPECT_EQ(loader.num_batches(), 4u);
  const Drained got = drain(loader);
  EXPECT_TRUE(bit_equal(got.pixels, reference(dataset, transform, 5, 20)));
  ASSERT_EQ(got.indices.size(), 15u);
  for (std::size_t i = 0; i < 15; ++i) EXPECT_EQ(got.indices[i], 5 + i);
  EXPECT_THAT(got.batch_sizes, testing::ElementsAre(4, 4, 4, 3));

  options.first_index = 30;
  options.last_index = 0;  // to the end
  DataLoader tail(dataset, transform, options);
  const Drained rest = drain(tail);
  EXPECT_TRUE(bit_equal(rest.pixels, reference(dataset, transform, 30, kNumImages)));

  options.first_index = 7;
  options.last_index = 7;  // empty
  DataLoader none(dataset, transform, options);
  EXPECT_EQ(none.num_batches(), 0u);
  ImageBatch batch;
  EXPECT_FALSE(none.next(batch));
}

TEST_F(DataLoaderTest, FirstBadImageInOrderIsRaisedAtItsPosition) {
  // Image 21 fails first in time with many threads; image 10 comes first in order.
  const fs::path root = make_bad_root("bad_error", {10, 21});
  const auto dataset = ImageDataset::open(root);
  for (int workers : {1, 4}) {
    SCOPED_TRACE(workers);
    DataLoaderOptions options;
    options.num_workers = workers;
    options.batch_size = 4;
    DataLoader loader(dataset, small_transform(), options);
    ImageBatch batch;
    ASSERT_TRUE(loader.next(batch));
    EXPECT_EQ(batch.indices.front(), 0u);
    ASSERT_TRUE(loader.next(batch));
    EXPECT_EQ(batch.indices.front(), 4u);
    for (int attempt = 0; attempt < 2; ++attempt) {  // the error stays
      try {
        loader.next(batch);
        ADD_FAILURE() << "no error for img_010.png";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::input);
        EXPECT_THAT(e.what(), HasSubstr("img_010.png"));
        EXPECT_THAT(e.what(), testing::Not(HasSubstr("img_021")));
      }
    }
    EXPECT_EQ(batch.indices.front(), 4u);  // the last good batch is left as it was
  }
}

TEST_F(DataLoaderTest, SkipBadImagesLeavesThemOutAndReportsThem) {
  // 12..15 form a whole batch of 4 that fails: it is skipped.
  const std::vector<std::size_t> bad = {0, 10, 12, 13, 14, 15, 36};
  const fs::path root = make_bad_root("bad_skip", bad);
  const auto dataset = ImageDataset::open(root);
  const Transform transform = small_transform();
  const auto expected = reference(dataset, transform, 0, kNumImages, bad);
  for (int workers : {1, 2, 4}) {
    SCOPED_TRACE(workers);
    std::vector<BadImage> left_out;
    const Drained got = drain_skipping_bad(dataset, transform, workers, 4, left_out);
    EXPECT_TRUE(bit_equal(got.pixels, expected));
    std::vector<std::size_t> good;
    for (std::size_t i = 0; i < kNumImages; ++i) {
      if (std::find(bad.begin(), bad.end(), i) == bad.end()) good.push_back(i);
    }
    EXPECT_EQ(got.indices, good);
    // 10 batches of 4 (the last has 1), batch 3 (12..15) and batch 9 (36) fully bad: skipped.
    EXPECT_THAT(got.batch_sizes, testing::ElementsAre(3, 4, 3, 4, 4, 4, 4, 4));
    ASSERT_EQ(left_out.size(), bad.size());
    for (std::size_t b = 0; b < bad.size(); ++b) {
      const BadImage& image = left_out[b];
      EXPECT_EQ(image.index, bad[b]);
      EXPECT_EQ(image.relative_path, image_name(bad[b]));
      EXPECT_THAT(image.reason, HasSubstr(image_name(bad[b])));
    }
  }
}

TEST_F(DataLoaderTest, AllImagesMustGiveTheSameSize) {
  const auto dataset = ImageDataset::open(good_root());
  Transform transform = small_transform();
  transform.resize_mode = ResizeMode::none;
  transform.crop_height = 0;
  transform.crop_width = 0;
  DataLoaderOptions options;
  options.batch_size = 8;
  DataLoader loader(dataset, transform, options);
  ImageBatch batch;
  // img_000: 24 × 22 (width × height); img_001: 31 × 31.
  expect_error([&] { loader.next(batch); }, ErrorKind::input,
               "image 'img_001.png' is 3x31x31 after the transform, but 'img_000.png' is 3x22x24: "
               "all images must have the same size (resize and/or crop them)");
}

TEST_F(DataLoaderTest, MemoryIsBoundedByThePrefetchQueue) {
  const auto dataset = ImageDataset::open(good_root());
  DataLoaderOptions options;
  options.num_workers = 4;
  options.batch_size = 3;
  options.prefetch_batches = 2;
  DataLoader loader(dataset, small_transform(), options);
  EXPECT_EQ(loader.max_images_in_flight_bound(), 6u);
  ImageBatch batch;
  std::size_t batches = 0;
  while (loader.next(batch)) {
    ++batches;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a slow consumer
    EXPECT_LE(loader.max_images_in_flight(), 6u);
  }
  EXPECT_EQ(batches, 13u);
  EXPECT_LE(loader.max_images_in_flight(), 6u);
  EXPECT_GE(loader.max_images_in_flight(), 3u);  // the workers did run ahead
}

TEST_F(DataLoaderTest, DestructionMidStreamJoinsCleanly) {
  const auto dataset = ImageDataset::open(good_root());
  for (int read : {0, 1, 3}) {
    DataLoaderOptions options;
    options.num_workers = 4;
    options.batch_size = 2;
    options.prefetch_batches = 3;
    DataLoader loader(dataset, small_transform(), options);
    ImageBatch batch;
    for (int b = 0; b < read; ++b) ASSERT_TRUE(loader.next(batch));
  }  // each loader is destroyed with work pending
  const fs::path root = make_bad_root("bad_destroy", {1});
  const auto bad_dataset = ImageDataset::open(root);
  DataLoaderOptions options;
  options.num_workers = 3;
  options.batch_size = 1;
  DataLoader loader(bad_dataset, small_transform(), options);
  ImageBatch batch;
  ASSERT_TRUE(loader.next(batch));
  EXPECT_THROW(loader.next(batch), Error);
}  // destroyed after an error

TEST_F(DataLoaderTest, OptionErrorsNameTheArgument) {
  const auto dataset = ImageDataset::open(good_root());
  DataLoaderOptions options;
  options.batch_size = 0;
  expect_error([&] { DataLoader loader(dataset, small_transform(), options); }, ErrorKind::usage,
               "batch size must be at least 1");
  options.batch_size = 2;
  options.num_workers = -1;
  expect_error([&] { DataLoader loader(dataset, small_transform(), options); }, ErrorKind::usage,
               "number of workers must be 0 (automatic) or more, not -1");
  options.num_workers = 0;
  options.first_index = 10;
  options.last_index = 38;
  expect_error([&] { DataLoader loader(dataset, small_transform(), options); }, ErrorKind::usage,
               "image range [10, 38) is out of range (the dataset has 37 images)");
  options.last_index = 5;
  expect_error([&] { DataLoader loader(dataset, small_transform(), options); }, ErrorKind::usage,
               "image range [10, 5) is out of range (the dataset has 37 images)");
  options.first_index = 0;
  options.last_index = 0;
  DataLoader automatic(dataset, small_transform(), options);
  EXPECT_GE(automatic.num_workers(), 1);
  EXPECT_LE(automatic.num_workers(), 4);
}

TEST_F(DataLoaderTest, LoadImageErrorsNameTheRelativePath) {
  const fs::path root = dir_->path() / "classes";
  fs::create_directories(root / "cat");
  fs::copy_file(good_root() / image_name(0), root / "cat" / "good.png");
  std::ofstream(root / "cat" / "empty.jpg", std::ios::binary);
  const auto dataset = ImageDataset::open(root);
  ASSERT_EQ(dataset.size(), 2u);
  EXPECT_EQ(dataset.load_image(1).width, 24);
  try {
    dataset.load_image(0);
    ADD_FAILURE() << "no error for cat/empty.jpg";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::input);
    EXPECT_THAT(e.what(), HasSubstr("cat/empty.jpg"));
  }
}
