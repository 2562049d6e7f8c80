// onnxruntime_backend.hpp — the ONNX Runtime ModelBackend (ModelBackendKind::onnxruntime), compiled
// where CMake finds ONNX Runtime (Debian 13's libonnxruntime-dev); private.
#pragma once
#include <filesystem>
#include <memory>

#include "model/model_impl.hpp"

namespace thingsvision {

/// True when this build has the ONNX Runtime backend.
bool have_onnxruntime();

/// Loads the ONNX file `file` into an ONNX Runtime session on the CPU. Layers and module paths are
/// named as by the OpenCV DNN backend ("onnx_node!/layer1/layer1.0/conv1/Conv", layer1.0.conv1); a
/// module's output becomes a graph output of an in-memory copy of the graph (the file is unchanged).
/// Throws Error(model) naming the file if ONNX Runtime cannot load it, for a CUDA device, or when
/// this build has no ONNX Runtime; Error(usage) for nhwc layouts.
std::unique_ptr<ModelBackend> load_onnxruntime_model(const std::filesystem::path& file,
                                                     const ModelOptions& options);

}  // namespace thingsvision
