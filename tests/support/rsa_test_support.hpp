// rsa_test_support.hpp — reading npy fixtures and the rsa fixture (scalars.txt): the rsa/cka tests and
// the model tests' npy references.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "thingsvision/rsa.hpp"

namespace tv_test {

/// A little-endian float32/float64 C-order .npy file (what numpy writes for the fixture).
struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<double> values;
  bool float32 = false;
};

inline NpyArray read_npy(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  NpyArray out;
  if (bytes.size() < 10 || bytes.compare(1, 5, "NUMPY") != 0) {
    ADD_FAILURE() << "not an npy file: " << path;
    return out;
  }
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  const std::string header = bytes.substr(10, header_len);
  out.float32 = header.find("'<f4'") != std::string::npos;
  EXPECT_TRUE(out.float32 || header.find("'<f8'") != std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  const auto open = header.find('(', header.find("'shape'")), close = header.find(')', open);
  std::string dims = header.substr(open + 1, close - open - 1);
  std::size_t pos = 0;
  while (pos < dims.size()) {
    const auto comma = dims.find(',', pos);
    const std::string item = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.find_first_of("0123456789") != std::string::npos) out.shape.push_back(std::stoll(item));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::int64_t count = 1;
  for (const auto d : out.shape) count *= d;
  const char* data = bytes.data() + 10 + header_len;
  out.values.resize(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    if (out.float32) {
      float f;
      std::memcpy(&f, data + 4 * i, 4);
      out.values[static_cast<std::size_t>(i)] = f;
    } else {
      std::memcpy(&out.values[static_cast<std::size_t>(i)], data + 8 * i, 8);
    }
  }
  return out;
}

inline std::filesystem::path rsa_data(const std::string& name) { return data_dir() / "rsa" / name; }

inline thingsvision::FeatureMatrixD read_features_d(const std::string& name) {
  const NpyArray a = read_npy(rsa_data(name));
  return Eigen::Map<const thingsvision::FeatureMatrixD>(a.values.data(), a.shape.at(0), a.shape.at(1));
}

inline thingsvision::FeatureMatrix read_features_f(const std::string& name) {
  return read_features_d(name).cast<float>();
}

inline thingsvision::RdmMatrix read_rdm(const std::string& name) {
  const NpyArray a = read_npy(rsa_data(name));
  return Eigen::Map<const thingsvision::FeatureMatrixD>(a.values.data(), a.shape.at(0), a.shape.at(1));
}

inline std::vector<double> flat(const Eigen::MatrixXd& m) { return {m.data(), m.data() + m.size()}; }

/// scalars.txt: "name value" lines.
inline std::map<std::string, double> read_scalars() {
  std::map<std::string, double> out;
  std::ifstream in(rsa_data("scalars.txt"));
  std::string key, value;
  while (in >> key >> value) out[key] = std::stod(value);
  EXPECT_FALSE(out.empty()) << "no reference scalars in " << rsa_data("scalars.txt");
  return out;
}

}  // namespace tv_test
