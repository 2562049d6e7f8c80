// model_file_kind.hpp — which library runs a model file, by its extension: header-only and free of
// dependencies, so that the tv-extract launcher (which links nothing) decides as the library does.
#pragma once
#include <cctype>
#include <string_view>

namespace thingsvision {

/// True for the extensions (with the dot, any case) of the files the OpenCV DNN backend reads:
/// .onnx, .pb, .caffemodel, .prototxt.
inline bool is_opencv_dnn_extension(std::string_view extension) {
  const auto equals = [extension](std::string_view lower) {
    if (extension.size() != lower.size()) return false;
    for (std::size_t i = 0; i < lower.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(extension[i])) != lower[i]) return false;
    }
    return true;
  };
  return equals(".onnx") || equals(".pb") || equals(".caffemodel") || equals(".prototxt");
}

}  // namespace thingsvision
