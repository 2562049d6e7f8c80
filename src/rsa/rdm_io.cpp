// rdm_io.cpp — RDM files: square float64 .npy and rsatoolbox's HDF5 layout; RDMs from read arrays.
#include <fmt/format.h>
#include <hdf5.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "core/atomic_file.hpp"
#include "core/hdf5_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/rsa.hpp"

namespace thingsvision {

namespace {

using detail::commit_file;
using detail::temporary_name;
using detail::Hdf5Handle;
using detail::QuietHdf5;

class Hdf5Writer {
 public:
  explicit Hdf5Writer(std::filesystem::path path) : path_(std::move(path)) {}

  hid_t check(hid_t id, const char* what) const {
    if (id < 0) throw Error(ErrorKind::io, fmt::format("cannot write '{}': HDF5 failed to {}", path_.string(), what));
    return id;
  }

  /// A variable-length UTF-8 string attribute, as h5py writes a Python str.
  void string_attribute(hid_t object, const char* name, const std::string& value) const {
    Hdf5Handle type(check(H5Tcopy(H5T_C_S1), "create a string type"), H5Tclose);
    check(H5Tset_size(type.get(), H5T_VARIABLE), "size a string type");
    check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "set UTF-8");
    Hdf5Handle space(check(H5Screate(H5S_SCALAR), "create a dataspace"), H5Sclose);
    Hdf5Handle attribute(check(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                               "create an attribute"),
                         H5Aclose);
    const char* text = value.c_str();
    check(H5Awrite(attribute.get(), type.get(), &text), "write an attribute");
  }

  void dataset(hid_t group, const char* name, hid_t memory_type, hid_t file_type,
               const std::vector<hsize_t>& dims, const void* data) const {
    Hdf5Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "create a dataspace"),
                     H5Sclose);
    Hdf5Handle set(check(H5Dcreate2(group, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                         "create a dataset"),
                   H5Dclose);
    check(H5Dwrite(set.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write a dataset");
  }

  void index_dataset(hid_t group, std::int64_t count) const {
    std::vector<std::int64_t> index(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) index[static_cast<std::size_t>(i)] = i;
    dataset(group, "index", H5T_NATIVE_INT64, H5T_STD_I64LE, {static_cast<hsize_t>(count)}, index.data());
  }

 private:
  std::filesystem::path path_;
};

}  // namespace

std::vector<RdmMatrix> rdms_from_array(const std::vector<std::int64_t>& shape, const std::vector<double>& values,
                                       const std::string& source) {
  auto bad = [&](const std::string& why) {
    std::string dims;
    for (std::size_t i = 0; i < shape.size(); ++i) dims += (i ? "×" : "") + std::to_string(shape[i]);
    return Error(ErrorKind::input, fmt::format("'{}' does not hold RDMs: shape ({}) {}", source, dims, why));
  };
  auto triangular = [](std::int64_t m) {
    try {
      return num_conditions_from_pairs(m) >= 2;
    } catch (const Error&) {
      return false;
    }
  };
  std::vector<RdmMatrix> rdms;
  if (shape.size() == 1 || (shape.size() == 2 && shape[0] != shape[1])) {
    const std::int64_t count = shape.size() == 1 ? 1 : shape[0];
    const std::int64_t m = shape.back();
    if (!triangular(m)) throw bad("is neither N×N nor a vector of N(N-1)/2 dissimilarities");
    for (std::int64_t r = 0; r < count; ++r) {
      rdms.push_back(square_rdm(Eigen::Map<const Eigen::VectorXd>(values.data() + r * m, m)));
    }
    return rdms;
  }
  if ((shape.size() == 2 || shape.size() == 3) && shape[shape.size() - 1] == shape[shape.size() - 2]) {
    const std::int64_t n = shape.back(), count = shape.size() == 2 ? 1 : shape[0];
    if (n < 2) throw bad("has fewer than 2 conditions");
    for (std::int64_t r = 0; r < count; ++r) {
      // C order: element (i, j) at i*n + j; transposeInPlace-free copy into column-major
      Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> m(
          values.data() + r * n * n, n, n);
      rdms.emplace_back(m);
    }
    return rdms;
  }
  throw bad("is neither N×N, K×N×N nor (K×)N(N-1)/2");
}

void write_rdm_npy(const std::filesystem::path& path, const Eigen::Ref<const RdmMatrix>& rdm) {
  std::string header = fmt::format("{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
                                   rdm.rows(), rdm.cols());
  const std::size_t preamble = 10;  // magic (6) + version (2) + header length (2)
  header.append(64 - (preamble + header.size() + 1) % 64, ' ');
  header.push_back('\n');
  const auto temporary = temporary_name(path);
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (!file) {
    throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  }
  const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  const unsigned char length[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                   static_cast<unsigned char>(header.size() >> 8)};
  int error = 0;  // errno of the first failed write or of fclose
  auto put = [&](const void* data, std::size_t size, std::size_t count) {
    if (error == 0 && std::fwrite(data, size, count, file) != count) error = errno != 0 ? errno : EIO;
  };
  put(magic, 1, 8);
  put(length, 1, 2);
  put(header.data(), 1, header.size());
  std::vector<double> row(static_cast<std::size_t>(rdm.cols()));
  for (Eigen::Index i = 0; error == 0 && i < rdm.rows(); ++i) {
    for (Eigen::Index j = 0; j < rdm.cols(); ++j) row[static_cast<std::size_t>(j)] = rdm(i, j);
    put(row.data(), sizeof(double), row.size());
  }
  if (std::fclose(file) != 0 && error == 0) error = errno != 0 ? errno : EIO;
  if (error != 0) {
    std::error_code ec;
    std::filesystem::remove(temporary, ec);
    throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", path.string(), std::strerror(error)));
  }
  commit_file(temporary, path);
}

void write_rdms_hdf5(const std::filesystem::path& path, const std::vector<RdmMatrix>& rdms,
                     const std::string& dissimilarity_measure, const std::vector<std::string>& conditions) {
  if (rdms.empty()) throw Error(ErrorKind::usage, fmt::format("write_rdms_hdf5: no RDMs to write to '{}'", path.string()));
  const Eigen::Index n = rdms.front().rows();
  for (const auto& rdm : rdms) {
    if (rdm.rows() != n || rdm.cols() != n) {
      throw Error(ErrorKind::usage,
                  fmt::format("write_rdms_hdf5: all RDMs must be {}×{} for '{}'", n, n, path.string()));
    }
  }
  if (!conditions.empty() && static_cast<Eigen::Index>(conditions.size()) != n) {
    throw Error(ErrorKind::usage, fmt::format("write_rdms_hdf5: {} condition names for {} conditions ('{}')",
                                              conditions.size(), n, path.string()));
  }
  const std::int64_t pairs = n * (n - 1) / 2;
  std::vector<double> vectors;
  vectors.reserve(static_cast<std::size_t>(pairs) * rdms.size());
  for (const auto& rdm : rdms) {
    const Eigen::VectorXd v = strict_upper_triangle(rdm);
    vectors.insert(vectors.end(), v.data(), v.data() + v.size());
  }
  const auto temporary = temporary_name(path);
  {
    QuietHdf5 quiet;
    const Hdf5Writer w(path);
    Hdf5Handle file(w.check(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "create the file"),
                    H5Fclose);
    try {
      w.string_attribute(file.get(), "rsatoolbox_version", "0.0.1");
      w.string_attribute(file.get(), "dissimilarity_measure", dissimilarity_measure);
      w.dataset(file.get(), "dissimilarities", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE,
                {static_cast<hsize_t>(rdms.size()), static_cast<hsize_t>(pairs)}, vectors.data());
      Hdf5Handle descriptors(w.check(H5Gcreate2(file.get(), "descriptors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                     "create a group"),
                             H5Gclose);
      Hdf5Handle rdm_descriptors(w.check(H5Gcreate2(file.get(), "rdm_descriptors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                         "create a group"),
                                 H5Gclose);
      w.index_dataset(rdm_descriptors.get(), static_cast<std::int64_t>(rdms.size()));
      Hdf5Handle pattern(w.check(H5Gcreate2(file.get(), "pattern_descriptors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                 "create a group"),
                         H5Gclose);
      w.index_dataset(pattern.get(), n);
      if (!conditions.empty()) {
        // numpy 'S' arrays: fixed-length, null-padded bytes (how rsatoolbox stores strings)
        std::size_t width = 1;
        for (const auto& c : conditions) width = std::max(width, c.size());
        std::vector<char> packed(width * conditions.size(), '\0');
        for (std::size_t i = 0; i < conditions.size(); ++i) std::memcpy(&packed[i * width], conditions[i].data(), conditions[i].size());
        Hdf5Handle type(w.check(H5Tcopy(H5T_C_S1), "create a string type"), H5Tclose);
        w.check(H5Tset_size(type.get(), width), "size a string type");
        w.check(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), "pad a string type");
        w.dataset(pattern.get(), "conditions", type.get(), type.get(), {static_cast<hsize_t>(conditions.size())},
                  packed.data());
      }
    } catch (...) {
      std::error_code ec;
      std::filesystem::remove(temporary, ec);
      throw;
    }
  }
  commit_file(temporary, path);
}

}  // namespace thingsvision
