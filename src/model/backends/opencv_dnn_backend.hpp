// opencv_dnn_backend.hpp — the OpenCV DNN ModelBackend (ONNX, TensorFlow .pb, Caffe); private.
#pragma once
#include <filesystem>
#include <memory>

#include "model/model_impl.hpp"

namespace thingsvision {

/// True for the files the OpenCV DNN backend reads: .onnx, .pb, .caffemodel, .prototxt.
bool is_opencv_dnn_file(const std::filesystem::path& file);

/// Loads `file` with cv::dnn::readNet (fusion off, OpenCV backend, CPU); a Caffe model's
/// .prototxt / .caffemodel partner is the file with the same stem, else the only file of that
/// extension in the same folder. Throws Error(model) naming the
/// file if OpenCV cannot read it, or for a CUDA device. Files of other extensions are read as ONNX.
/// Applies ModelOptions::input_layout / native_layout (automatic native: nhwc for .pb).
std::unique_ptr<ModelBackend> load_opencv_dnn_model(const std::filesystem::path& file,
                                                    const ModelOptions& options);

}  // namespace thingsvision
