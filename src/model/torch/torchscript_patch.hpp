// torchscript_patch.hpp — private: retargets TorchScript archives traced on CUDA in float16
// (OpenAI's published CLIP files) to the device they are loaded on, as clip.load(jit=True) does.
#pragma once
#include <torch/script.h>

namespace thingsvision {

/// What patch_traced_device found (or changed) in a module's graphs and weights.
struct TracedDevicePatchReport {
  int cuda_device_constants = 0;  ///< prim::Constant device values starting with "cuda"
  int half_dtype_arguments = 0;   ///< constant `dtype` arguments equal to float16 (e.g. aten::to)
  int half_tensors = 0;           ///< float16 parameters, buffers and tensor constants

  /// True when the archive looks traced on CUDA or in float16.
  bool any() const {
    return cuda_device_constants > 0 || half_dtype_arguments > 0 || half_tensors > 0;
  }
};

/// Counts what patch_traced_device would change in `module` (every method of every module and
/// function of its compilation unit), without changing anything.
TracedDevicePatchReport inspect_traced_device(const torch::jit::Module& module);

/// Points every "cuda" device constant at `device`; with `to_float32` also replaces each float16
/// `dtype` argument by a new float32 constant (constants are shared between uses) and converts
/// float16 parameters, buffers and tensor constants to float32. Returns what it found. Call it
/// before any method runs (compiled executors would keep the old graphs).
TracedDevicePatchReport patch_traced_device(torch::jit::Module& module, const c10::Device& device,
                                            bool to_float32);

}  // namespace thingsvision
