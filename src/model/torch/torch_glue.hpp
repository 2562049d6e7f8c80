// torch_glue.hpp — private: copies between LibTorch tensors and ImageBatch / Activations, devices,
// and c10::Error messages. One of the two files allowed to include LibTorch headers (+ its .cpp).
#pragma once
#include <c10/core/Event.h>
#include <c10/core/Stream.h>
#include <torch/script.h>

#include <array>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "thingsvision/activations.hpp"
#include "thingsvision/device.hpp"
#include "thingsvision/image_batch.hpp"
#include "model/model_impl.hpp"

namespace thingsvision {

/// The LibTorch device for `device`; throws Error(model) naming `model_path` when CUDA is asked
/// for but LibTorch has no CUDA or the GPU does not exist (never a silent fallback to the CPU).
c10::Device to_torch_device(const Device& device, const std::filesystem::path& model_path);

/// The batch as an N×C×H×W float32 tensor on `device`: its own copy, or with copy = false on the
/// CPU a view of batch.pixels (valid while `batch` lives; never pass it to a method that writes
/// into its input). Other devices always get a copy.
at::Tensor batch_to_tensor(const ImageBatch& batch, const c10::Device& device, bool copy = true);

/// Copies `tensor` (any float dtype, any device) to float32 values in C order, keeping its shape.
Activations tensor_to_activations(const at::Tensor& tensor, const std::string& module_name);

/// The message of an exception thrown by LibTorch, without the C++ backtrace of c10::Error.
std::string torch_message(const std::exception& error);

/// Device-to-host copies queued by CudaPipeline::download: `host` holds pinned float32 tensors that
/// are complete once wait() returns.
struct PendingCopy {
  std::vector<at::Tensor> host;
  std::shared_ptr<c10::Event> done;
  /// Blocks the calling thread (not the GPU) until the copies are done; returns `host`.
  const std::vector<at::Tensor>& wait() const;
};

/// The CUDA pipeline of one model (issue #16): image batches staged in pinned host memory and
/// copied on a copy stream into one of two device buffers while the compute stream still reads the
/// other; outputs copied back into pinned memory on the compute stream. Nothing here blocks the
/// host: events order the streams. Only for CUDA devices (the streams come from LibTorch's pool).
class CudaPipeline {
 public:
  explicit CudaPipeline(const c10::Device& device);
  /// The stream forward passes must run on (make it current with c10::StreamGuard).
  const c10::Stream& compute_stream() const noexcept { return compute_; }
  /// Copies `batch` to the device; work queued on the compute stream afterwards sees it.
  at::Tensor upload(const ImageBatch& batch);
  /// Queues copies of `outputs` (computed on the compute stream; any float dtype) into pinned
  /// float32 host tensors, and frees the last upload's device buffer once they are done.
  PendingCopy download(const std::vector<at::Tensor>& outputs);

 private:
  struct Slot {
    at::Tensor buffer;
    c10::Event free{c10::DeviceType::CUDA};    // recorded on the compute stream when last read
    c10::Event filled{c10::DeviceType::CUDA};  // recorded on the copy stream after the upload
  };
  c10::Device device_;
  c10::Stream compute_;
  c10::Stream copy_;
  std::array<Slot, 2> slots_;
  int next_ = 0;   // the slot the next upload fills
  int last_ = -1;  // the slot the last upload filled
};

/// Loads a TorchScript archive (torchscript_backend.cpp); throws Error(model) naming `file`.
std::unique_ptr<ModelBackend> load_torchscript_archive(const std::filesystem::path& file,
                                                       const ModelOptions& options);

/// torchscript_input_copies (model_impl.hpp) inside the plugin.
std::int64_t count_torchscript_input_copies();

/// set_num_threads (model.hpp) inside the plugin: LibTorch's intra-op threads (>= 1) and OpenBLAS's.
void set_torch_threads(int num_threads);

/// cuda_available (model.hpp) inside the plugin.
bool torch_cuda_available();

/// Sets LibTorch's TorchScript runtime up once per process (the TensorExpr fuser off, see the .cpp).
void configure_torchscript_runtime();

}  // namespace thingsvision
