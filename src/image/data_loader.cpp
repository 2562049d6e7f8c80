// data_loader.cpp — worker threads decode and transform images into a ring of slots; batches leave
// in dataset order; errors carry the file name and surface at their position.
#include "thingsvision/data_loader.hpp"

#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "thingsvision/error.hpp"

namespace thingsvision {

namespace {

// CPUs this process may run on (taskset, cgroup cpusets), at least 1.
int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 1;
}

}  // namespace

class DataLoader::Impl {
 public:
  Impl(const ImageDataset& dataset, Transform transform, DataLoaderOptions options);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::size_t num_batches() const noexcept { return num_batches_; }
  bool next(ImageBatch& batch);
  const std::vector<BadImage>& bad_images() const noexcept { return bad_images_; }
  int num_workers() const noexcept { return static_cast<int>(workers_.size()); }
  std::size_t max_images_in_flight() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return max_in_flight_;
  }
  std::size_t bound() const noexcept { return ring_.size(); }

 private:
  // One image's result; owned by the worker that claimed it until counted in completed_, then
  // by the consumer until it releases the batch.
  struct Slot {
    bool failed = false;
    ErrorKind error_kind = ErrorKind::input;
    std::string error;
    int height = 0;
    int width = 0;
    std::vector<float> values;  // 3 × height × width when the size is not fixed; capacity reused
  };

  void work();
  void process(std::size_t offset, Slot& slot);
  void hand_out(std::size_t begin, std::size_t end, const std::vector<const Slot*>& good, ImageBatch& batch);
  void stop_workers() noexcept;
  [[noreturn]] void fail(const Error& error);

  const ImageDataset& dataset_;
  const Transform transform_;
  const DataLoaderOptions options_;
  std::size_t first_ = 0;
  std::size_t count_ = 0;  // images in [first_index, last_index)
  std::size_t batch_size_ = 1;
  std::size_t prefetch_ = 1;
  std::size_t num_batches_ = 0;

  // Image at offset k (dataset index first_ + k) lives in ring_[k % ring_.size()]. A worker may
  // claim offset k only while batch k / batch_size_ < next_batch_ + prefetch_, so at most
  // ring_.size() images are held at once and no two live images share a slot.
  std::vector<Slot> ring_;
  std::vector<std::size_t> completed_;  // per batch (mod prefetch_): slots done
  // When the transform fixes the output size (fixed_output_size), workers write each image straight
  // into its batch's buffer (batch b: buffers_[b % prefetch_], image k of the batch at k × image_values_),
  // and next() swaps that buffer with the caller's ImageBatch::pixels: no copy of a batch. Otherwise
  // images go to Slot::values and next() copies them into the batch.
  std::size_t image_values_ = 0;  // 3 × H × W if fixed, else 0
  std::vector<std::vector<float>> buffers_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;   // workers: a claim became possible, or stop
  std::condition_variable ready_cv_;  // consumer: a slot is done
  std::size_t next_claim_ = 0;
  std::size_t next_batch_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t max_in_flight_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;

  // Consumer-side state.
  std::vector<BadImage> bad_images_;
  std::exception_ptr error_;
  bool have_size_ = false;
  int height_ = 0;
  int width_ = 0;
  std::string size_source_;  // the image that set the tensor size
};

DataLoader::Impl::Impl(const ImageDataset& dataset, Transform transform, DataLoaderOptions options)
    : dataset_(dataset), transform_(std::move(transform)), options_(std::move(options)) {
  if (options_.batch_size == 0) {
    throw Error(ErrorKind::usage, "batch size must be at least 1");
  }
  if (options_.num_workers < 0) {
    throw Error(ErrorKind::usage,
                fmt::format("number of workers must be 0 (automatic) or more, not {}",
                            options_.num_workers));
  }
  const std::size_t last = options_.last_index == 0 ? dataset_.size() : options_.last_index;
  if (options_.first_index > last || last > dataset_.size()) {
    throw Error(ErrorKind::usage, fmt::format("image range [{}, {}) is out of range (the dataset "
                                              "has {} images)",
                                              options_.first_index, last, dataset_.size()));
  }
  first_ = options_.first_index;
  count_ = last - first_;
  batch_size_ = options_.batch_size;
  prefetch_ = std::max<std::size_t>(options_.prefetch_batches, 1);
  num_batches_ = (count_ + batch_size_ - 1) / batch_size_;
  ring_.resize(prefetch_ * batch_size_);
  completed_.assign(prefetch_, 0);
  const auto size = fixed_output_size(transform_);
  if (size && (*size)[0] > 0 && (*size)[1] > 0) {  // else per-image errors surface at their batch, as always
    image_values_ = std::size_t(3) * static_cast<std::size_t>((*size)[0]) * static_cast<std::size_t>((*size)[1]);
    buffers_.assign(prefetch_, std::vector<float>(batch_size_ * image_values_));
  }

  std::size_t threads = options_.num_workers > 0 ? static_cast<std::size_t>(options_.num_workers)
                                                 : static_cast<std::size_t>(std::min(available_cpus(), 4));
  threads = std::min({threads, count_, ring_.size()});
  try {
    for (std::size_t t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  } catch (...) {
    stop_workers();
    throw Error(ErrorKind::internal, "cannot start the image decoding threads");
  }
}

DataLoader::Impl::~Impl() { stop_workers(); }

void DataLoader::Impl::stop_workers() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void DataLoader::Impl::work() {
  for (;;) {
    std::size_t offset = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [this] {
        return stop_ || next_claim_ >= count_ || next_claim_ / batch_size_ < next_batch_ + prefetch_;
      });
      if (stop_ || next_claim_ >= count_) return;
      offset = next_claim_++;
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
    }
    Slot& slot = ring_[offset % ring_.size()];
    process(offset, slot);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++completed_[(offset / batch_size_) % prefetch_];
    }
    ready_cv_.notify_one();
  }
}

// Decodes and transforms one image into `slot`; errors are recorded, never thrown.
void DataLoader::Impl::process(std::size_t offset, Slot& slot) {
  const std::size_t index = first_ + offset;
  slot.failed = false;
  slot.error.clear();
  try {
    const Image image = dataset_.load_image(index, options_.decode);
    const auto size = output_size(transform_, image.width, image.height);
    slot.height = size[0];
    slot.width = size[1];
    const std::size_t values = std::size_t(3) * static_cast<std::size_t>(size[0]) * static_cast<std::size_t>(size[1]);
    if (image_values_ > 0) {
      if (values != image_values_) throw Error(ErrorKind::internal, "DataLoader: fixed output size mismatch");
      // This batch's buffer is neither swapped nor resized until all its images are counted done.
      float* out = buffers_[(offset / batch_size_) % prefetch_].data() + (offset % batch_size_) * image_values_;
      apply_transform(transform_, image, out);
      return;
    }
    slot.values.resize(values);
    apply_transform(transform_, image, slot.values.data());
  } catch (const Error& e) {
    slot.failed = true;
    slot.error_kind = e.kind();
    slot.error = e.what();
  } catch (const std::exception& e) {
    slot.failed = true;
    slot.error_kind = ErrorKind::internal;
    slot.error = fmt::format("image '{}': {}", dataset_[index].relative_path, e.what());
  }
}

void DataLoader::Impl::fail(const Error& error) {
  error_ = std::make_exception_ptr(error);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  throw error;
}

bool DataLoader::Impl::next(ImageBatch& batch) {
  if (error_) std::rethrow_exception(error_);
  while (next_batch_ < num_batches_) {
    const std::size_t begin = next_batch_ * batch_size_;
    const std::size_t end = std::min(begin + batch_size_, count_);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_cv_.wait(lock, [&] { return completed_[next_batch_ % prefetch_] == end - begin; });
    }
    // The batch's slots are complete and no worker touches them until released below.
    std::vector<const Slot*> good;
    good.reserve(end - begin);
    for (std::size_t k = begin; k < end; ++k) {
      const Slot& slot = ring_[k % ring_.size()];
      const std::size_t index = first_ + k;
      if (slot.failed) {
        const bool skippable = slot.error_kind == ErrorKind::input || slot.error_kind == ErrorKind::io;
        if (options_.skip_bad_images && skippable) {
          bad_images_.push_back(BadImage{index, dataset_[index].relative_path, slot.error});
          continue;
        }
        fail(Error(slot.error_kind, slot.error));
      }
      if (!have_size_) {
        have_size_ = true;
        height_ = slot.height;
        width_ = slot.width;
        size_source_ = dataset_[index].relative_path;
      } else if (slot.height != height_ || slot.width != width_) {
        fail(Error(ErrorKind::input,
                   fmt::format("image '{}' is 3x{}x{} after the transform, but '{}' is 3x{}x{}: all "
                               "images must have the same size (resize and/or crop them)",
                               dataset_[index].relative_path, slot.height, slot.width, size_source_,
                               height_, width_)));
      }
      good.push_back(&slot);
    }
    hand_out(begin, end, good, batch);
    for (std::size_t k = begin; k < end; ++k) {
      const Slot& slot = ring_[k % ring_.size()];
      if (!slot.failed) batch.indices.push_back(first_ + k);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      completed_[next_batch_ % prefetch_] = 0;
      in_flight_ -= end - begin;
      ++next_batch_;
    }
    work_cv_.notify_all();
    if (!good.empty()) return true;  // a batch whose images all failed is skipped
  }
  return false;
}

// Fills batch's header and pixels from the completed batch [begin, end) whose good slots are `good`.
void DataLoader::Impl::hand_out(std::size_t begin, std::size_t end, const std::vector<const Slot*>& good,
                                ImageBatch& batch) {
  batch.num_images = static_cast<std::int64_t>(good.size());
  batch.channels = 3;
  batch.height = height_;
  batch.width = width_;
  const std::size_t image_size = std::size_t(3) * static_cast<std::size_t>(height_) * static_cast<std::size_t>(width_);
  batch.indices.clear();
  if (image_values_ == 0) {
    batch.pixels.resize(good.size() * image_size);
    for (std::size_t g = 0; g < good.size(); ++g) {
      std::memcpy(batch.pixels.data() + g * image_size, good[g]->values.data(), image_size * sizeof(float));
    }
    return;
  }
  // Images left out (skip_bad_images) leave gaps: the good ones move down, in order.
  std::vector<float>& buffer = buffers_[(begin / batch_size_) % prefetch_];
  std::size_t g = 0;
  for (std::size_t k = begin; k < end; ++k) {
    if (ring_[k % ring_.size()].failed) continue;
    const std::size_t position = k - begin;
    if (position != g) {
      std::memmove(buffer.data() + g * image_size, buffer.data() + position * image_size, image_size * sizeof(float));
    }
    ++g;
  }
  buffer.resize(good.size() * image_size);  // shrinking keeps the capacity
  batch.pixels.swap(buffer);
  buffer.resize(batch_size_ * image_values_);  // the caller's old buffer, ready for batch + prefetch_
}

DataLoader::DataLoader(const ImageDataset& dataset, Transform transform, DataLoaderOptions options)
    : impl_(std::make_unique<Impl>(dataset, std::move(transform), std::move(options))) {}

DataLoader::~DataLoader() = default;

std::size_t DataLoader::num_batches() const noexcept { return impl_->num_batches(); }

bool DataLoader::next(ImageBatch& batch) { return impl_->next(batch); }

const std::vector<BadImage>& DataLoader::bad_images() const noexcept { return impl_->bad_images(); }

int DataLoader::num_workers() const noexcept { return impl_->num_workers(); }

std::size_t DataLoader::max_images_in_flight() const noexcept { return impl_->max_images_in_flight(); }

std::size_t DataLoader::max_images_in_flight_bound() const noexcept { return impl_->bound(); }

}  // namespace thingsvision
