// torch_glue.cpp — tensor ↔ ImageBatch / Activations copies, devices, threads, c10::Error text.
#include "model/torch/torch_glue.hpp"

#include <ATen/Parallel.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <fmt/format.h>
#include <torch/csrc/jit/passes/tensorexpr_fuser.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <dlfcn.h>
#include <strings.h>

#include <cstdlib>
#include <cstring>

#include "core/compat.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/model.hpp"

namespace thingsvision {

c10::Device to_torch_device(const Device& device, const std::filesystem::path& model_path) {
  if (!device.is_cuda()) return c10::Device(c10::kCPU);
  // libtorch_cuda registers CUDA's device guard when loaded, driver or not; at::hasCUDA() is also
  // false for a CUDA build on a machine without a GPU.
  if (!c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA)) {
    throw Error(ErrorKind::model,
                fmt::format("cannot run model '{}' on {}: this LibTorch was built without CUDA",
                            model_path.string(), device.to_string()));
  }
  const auto count = at::hasCUDA() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (count == 0) {
    throw Error(ErrorKind::model,
                fmt::format("cannot run model '{}' on {}: no CUDA GPU is visible (no NVIDIA driver, or "
                            "CUDA_VISIBLE_DEVICES hides them)",
                            model_path.string(), device.to_string()));
  }
  if (device.index() >= count) {
    throw Error(ErrorKind::model,
                fmt::format("cannot run model '{}' on {}: only {} CUDA GPU(s) visible (cuda:0..{})",
                            model_path.string(), device.to_string(), count, count - 1));
  }
  return device.index() < 0 ? c10::Device(c10::kCUDA)
                            : c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device.index()));
}

at::Tensor batch_to_tensor(const ImageBatch& batch, const c10::Device& device, bool copy) {
  auto options = at::TensorOptions().dtype(at::kFloat);
  // from_blob does not copy; the const_cast is safe because the tensor is copied at once, or
  // (copy = false) the caller only passes the view to methods that never write into it.
  at::Tensor view = at::from_blob(const_cast<float*>(batch.pixels.data()),
                                  {batch.num_images, batch.channels, batch.height, batch.width},
                                  options);
  if (device.is_cpu()) return copy ? view.clone() : view;
  return view.to(device, /*non_blocking=*/false, /*copy=*/true);
}

Activations tensor_to_activations(const at::Tensor& tensor, const std::string& module_name) {
  at::Tensor host = tensor.to(c10::kCPU, at::kFloat).contiguous();
  Activations result;
  result.module_name = module_name;
  result.shape.assign(host.sizes().begin(), host.sizes().end());
  result.values.resize(static_cast<std::size_t>(host.numel()));
  if (host.numel() > 0) {
    std::memcpy(result.values.data(), host.data_ptr<float>(), result.values.size() * sizeof(float));
  }
  return result;
}

namespace {

at::TensorOptions pinned_float() { return at::TensorOptions().dtype(at::kFloat).pinned_memory(true); }

c10::Device with_index(const c10::Device& device) {
  if (device.has_index()) return device;
  return c10::impl::VirtualGuardImpl(device.type()).getDevice();  // plain "cuda": the current GPU
}

c10::Stream pool_stream(const c10::Device& device) {
  return c10::impl::VirtualGuardImpl(device.type()).getStreamFromGlobalPool(device);
}

}  // namespace

const std::vector<at::Tensor>& PendingCopy::wait() const {
  if (done) compat::synchronize(*done);
  return host;
}

CudaPipeline::CudaPipeline(const c10::Device& device)
    : device_(with_index(device)), compute_(pool_stream(device_)), copy_(pool_stream(device_)) {}

at::Tensor CudaPipeline::upload(const ImageBatch& batch) {
  const std::vector<std::int64_t> shape{batch.num_images, batch.channels, batch.height, batch.width};
  // Pinned staging from LibTorch's caching host allocator, which reuses a block only once the
  // copies that read it are done.
  at::Tensor staged = at::empty(shape, pinned_float());
  std::memcpy(staged.data_ptr<float>(), batch.pixels.data(), batch.pixels.size() * sizeof(float));
  Slot& slot = slots_[static_cast<std::size_t>(next_)];
  last_ = next_;
  next_ ^= 1;
  if (!slot.buffer.defined() || slot.buffer.sizes() != c10::IntArrayRef(shape)) {
    const c10::StreamGuard on_compute(compute_);
    slot.buffer = at::empty(shape, at::TensorOptions().dtype(at::kFloat).device(device_));
    // A new block may have served work still queued on the compute stream: the copy waits for it.
    slot.free.record(compute_);
  }
  {
    const c10::StreamGuard on_copy(copy_);
    slot.free.block(copy_);  // the forward pass that read this buffer last is done
    slot.buffer.copy_(staged, /*non_blocking=*/true);
    slot.filled.record(copy_);
  }
  slot.filled.block(compute_);
  return slot.buffer;
}

PendingCopy CudaPipeline::download(const std::vector<at::Tensor>& outputs) {
  const c10::StreamGuard on_compute(compute_);
  PendingCopy pending;
  pending.host.reserve(outputs.size());
  for (const auto& output : outputs) {
    const at::Tensor source = output.to(at::kFloat).contiguous();
    at::Tensor host = at::empty(source.sizes(), pinned_float());
    host.copy_(source, /*non_blocking=*/true);
    pending.host.push_back(std::move(host));
  }
  pending.done = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
  pending.done->record(compute_);
  if (last_ >= 0) slots_[static_cast<std::size_t>(last_)].free.record(compute_);
  return pending;
}

std::string torch_message(const std::exception& error) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error)) {
    std::string text = c10_error->what_without_backtrace();
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }
  return error.what();
}

void set_torch_threads(int num_threads) {
  at::set_num_threads(num_threads);
  // OpenBLAS (Debian's LibTorch calls it for matrix products) keeps its own threads. LibTorch's
  // OpenMP threads spin for a while after each parallel region unless OMP_WAIT_POLICY=passive, and
  // the two pools then fight for the cores (ViT-B/16 4x slower on 2 cores): OpenBLAS gets one thread
  // then, and as many as LibTorch with passive waiting (ViT-B/16 1.7x faster than with one).
  if (const int blas = blas_threads_for(num_threads); blas > 0) {
    using SetThreads = void (*)(int);
    if (void* symbol = ::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) reinterpret_cast<SetThreads>(symbol)(blas);
  }
}

void configure_torchscript_runtime() {
  static const bool configured = [] {
    // The TensorExpr fuser compiles fusion groups of a profiled graph with LLVM where LibTorch was
    // built with it (Debian's 2.6): that compile never finished for frozen resnet18/ViT graphs, and
    // PyPI's builds (no LLVM) never fuse on the CPU. Off everywhere: every op then runs the kernel
    // eager PyTorch (THINGSvision) runs, so fusion cannot change the numbers either.
    torch::jit::setTensorExprFuserEnabled(false);
    return true;
  }();
  (void)configured;
}

bool torch_cuda_available() { return at::hasCUDA() && torch::cuda::device_count() > 0; }

}  // namespace thingsvision
