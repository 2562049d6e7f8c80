// torch_glue.hpp — private: copies between LibTorch tensors and ImageBatch / Activations, devices,
// and c10::Error messages. One of the two files allowed to include LibTorch headers (+ its .cpp).
#pragma once
#include <torch/script.h>

#include <exception>
#include <filesystem>
#include <string>

#include "thingsvision/activations.hpp"
#include "thingsvision/device.hpp"
#include "thingsvision/image_batch.hpp"

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

/// Sets LibTorch's TorchScript runtime up once per process (the TensorExpr fuser off, see the .cpp).
void configure_torchscript_runtime();

}  // namespace thingsvision
