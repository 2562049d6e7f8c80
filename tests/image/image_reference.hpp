// image_reference.hpp — reads the PIL/torchvision references written by tests/reference/pil_reference.py.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace tv_test {

/// The folder of Debian's opencv-doc example images (every image there is compared with PIL).
inline std::filesystem::path opencv_doc_data() { return TV_OPENCV_DOC_DATA; }
/// Where the fixtures write generated images and references.
inline std::filesystem::path image_data_dir() { return data_dir() / "image"; }

/// The index.json of the references; fails the test (and returns null) if it is missing.
inline nlohmann::json load_image_index() {
  const auto path = image_data_dir() / "reference" / "index.json";
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "missing " << path << " (the fixture_pil_reference test writes it; run ctest)";
    return nullptr;
  }
  return nlohmann::json::parse(in);
}

/// Inflates a zlib-compressed reference file holding exactly `count` values of T.
template <typename T>
std::vector<T> read_reference(const std::string& file, std::size_t count) {
  const std::string packed = read_file(image_data_dir() / "reference" / file);
  std::vector<T> out(count);
  uLongf size = static_cast<uLongf>(count * sizeof(T));
  const int rc = uncompress(reinterpret_cast<Bytef*>(out.data()), &size,
                            reinterpret_cast<const Bytef*>(packed.data()), static_cast<uLong>(packed.size()));
  EXPECT_EQ(rc, Z_OK) << "cannot inflate reference " << file;
  EXPECT_EQ(size, count * sizeof(T)) << "reference " << file << " has the wrong size";
  return out;
}

/// First index where two byte buffers differ, as "(x, y, channel) got G expected E", or "".
inline std::string first_difference(const std::vector<std::uint8_t>& got, const std::vector<std::uint8_t>& ref,
                                    int width) {
  std::size_t differing = 0, first = 0;
  int max_diff = 0;
  for (std::size_t i = 0; i < ref.size() && i < got.size(); ++i) {
    if (got[i] != ref[i]) {
      if (differing++ == 0) first = i;
      max_diff = std::max(max_diff, std::abs(int(got[i]) - int(ref[i])));
    }
  }
  if (differing == 0 && got.size() == ref.size()) return "";
  if (got.size() != ref.size()) return "size " + std::to_string(got.size()) + " != " + std::to_string(ref.size());
  const std::size_t pixel = first / 3;
  return std::to_string(differing) + " bytes differ (max " + std::to_string(max_diff) + "), first at (x " +
         std::to_string(pixel % width) + ", y " + std::to_string(pixel / width) + ", channel " +
         std::to_string(first % 3) + "): got " + std::to_string(got[first]) + ", PIL " + std::to_string(ref[first]);
}

}  // namespace tv_test
