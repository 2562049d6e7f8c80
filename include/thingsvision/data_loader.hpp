// data_loader.hpp — DataLoader: batches in dataset order, decoded and transformed by worker threads.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "thingsvision/dataset.hpp"
#include "thingsvision/image_batch.hpp"
#include "thingsvision/transforms.hpp"

namespace thingsvision {

/// Options for DataLoader.
struct DataLoaderOptions {
  std::size_t batch_size = 32;
  /// Decoding threads; 0 = one per CPU available to the process, at most 4.
  int num_workers = 0;
  /// Batches decoded ahead of the consumer (bounds memory: at most prefetch_batches × batch_size
  /// images are decoded or being decoded but not yet handed out by next()); 0 counts as 1.
  std::size_t prefetch_batches = 2;
  /// Images [first_index, last_index) of the dataset are loaded; last_index 0 = to the end.
  std::size_t first_index = 0;
  std::size_t last_index = 0;
  /// Leave out images that fail to decode (reported by bad_images()) instead of throwing.
  bool skip_bad_images = false;
  DecodeOptions decode;
};

/// An image left out because it could not be read.
struct BadImage {
  std::size_t index = 0;
  std::string relative_path;
  std::string reason;
};

/// Yields ImageBatch after ImageBatch, in dataset order; results do not depend on thread count.
/// Batches hold batch_size images (the last fewer; with skip_bad_images, those left out; a batch
/// whose images all failed is skipped). All images must give the same tensor size.
/// Example: `DataLoader loader(dataset, Transform::preset("thingsvision")); ImageBatch b;
///           while (loader.next(b)) model.extract(b, modules);`
class DataLoader {
 public:
  /// Starts the workers. `dataset` must outlive the loader. Throws Error(usage) for batch_size 0,
  /// num_workers < 0 or an image range outside the dataset.
  DataLoader(const ImageDataset& dataset, Transform transform, DataLoaderOptions options = {});
  /// Stops and joins the workers, also mid-stream; never throws.
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Number of batches in [first_index, last_index).
  std::size_t num_batches() const noexcept;
  /// Fills `batch` with the next batch; false at the end. Throws Error(input) naming the first bad
  /// image (unless skip_bad_images) when its batch is reached, and Error(input) naming an image whose
  /// tensor size differs from the first image's; after an error, every call throws it again. When the
  /// transform fixes the tensor size (fixed_output_size), batch.pixels is swapped with the loader's
  /// buffer, not copied: pass the same ImageBatch each time.
  bool next(ImageBatch& batch);
  /// Images left out so far (skip_bad_images), in dataset order.
  const std::vector<BadImage>& bad_images() const noexcept;
  /// The number of worker threads in use (num_workers resolved).
  int num_workers() const noexcept;
  /// The most images that were decoded or being decoded but not yet handed out, at any moment so
  /// far; never above max_images_in_flight_bound().
  std::size_t max_images_in_flight() const noexcept;
  /// prefetch_batches × batch_size: the bound on images held by the loader.
  std::size_t max_images_in_flight_bound() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thingsvision
