// hdf5_writer.cpp — features.hdf5: chunked `features`, UTF-8 `file_names`, provenance attributes;
// plus the HDF5 readers (features.hdf5 and MAT 7.3, which is HDF5 with a 512-byte user block).
#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <fstream>

#include "thingsvision/error.hpp"
#include "core/hdf5_support.hpp"
#include "core/utf8.hpp"
#include "storage/writers/writer_backend.hpp"

namespace fs = std::filesystem;

namespace thingsvision::detail {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}

namespace {

// The innermost message of the current HDF5 error stack ("unable to open file").
std::string hdf5_error_text() {
  std::string text;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::string*>(data);
        if (n == 0 && e->desc) *out = e->desc;
        return 0;
      },
      &text);
  return text.empty() ? "HDF5 error" : text;
}

hid_t check(hid_t id, const char* call, const fs::path& path, ErrorKind kind = ErrorKind::io) {
  if (id < 0) {
    throw Error(kind, fmt::format("cannot {} '{}': {} ({})", kind == ErrorKind::io ? "write" : "read",
                                  path.string(), hdf5_error_text(), call));
  }
  return id;
}

// IEEE binary16 (HDF5 1.10 has no predefined half type; h5py reads this one as float16).
hid_t make_half_type() {
  const hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

Hdf5Handle file_type(DataType dtype) {
  switch (dtype) {
    case DataType::float16: return Hdf5Handle(make_half_type(), H5Tclose);
    case DataType::float64: return Hdf5Handle(H5Tcopy(H5T_IEEE_F64LE), H5Tclose);
    case DataType::float32: break;
  }
  return Hdf5Handle(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
}

Hdf5Handle utf8_string_type() {
  Hdf5Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

// One variable-length UTF-8 string attribute on the root group per entry, created in name order
// whatever the order given, so a run and a merge of its shards store them alike (byte-identical files).
void write_root_attributes(hid_t file, std::vector<std::pair<std::string, std::string>> attributes,
                           const fs::path& path) {
  if (attributes.empty()) return;
  std::stable_sort(attributes.begin(), attributes.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Hdf5Handle string_type = utf8_string_type();
  Hdf5Handle scalar(H5Screate(H5S_SCALAR), H5Sclose);
  Hdf5Handle root(check(H5Gopen2(file, "/", H5P_DEFAULT), "H5Gopen2", path), H5Gclose);
  for (const auto& [key, value] : attributes) {
    Hdf5Handle attribute(check(H5Acreate2(root.get(), key.c_str(), string_type.get(), scalar.get(),
                                          H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2", path), H5Aclose);
    const char* text = value.c_str();
    check(H5Awrite(attribute.get(), string_type.get(), &text), "H5Awrite", path);
  }
}

}  // namespace

void add_hdf5_root_attributes(const fs::path& file,
                              const std::vector<std::pair<std::string, std::string>>& attributes) {
  if (attributes.empty()) return;
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  QuietHdf5 quiet;
  Hdf5Handle h(check(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "H5Fopen", file), H5Fclose);
  write_root_attributes(h.get(), attributes, file);
  check(H5Fclose(h.release()), "H5Fclose", file);
}

void write_hdf5_file(const FileJob& job, RowSource& rows) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  QuietHdf5 quiet;
  const fs::path& path = job.temporary_path;
  if (job.row_bytes() > 0xffffffffull) {
    throw Error(ErrorKind::usage, fmt::format("cannot write '{}': one row is {} bytes, over HDF5's "
                                              "4 GiB chunk limit", job.final_path.string(), job.row_bytes()));
  }
  Hdf5Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  H5Pset_obj_track_times(fcpl.get(), false);  // no timestamps: deterministic bytes
  Hdf5Handle file(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), "H5Fcreate", path),
                  H5Fclose);
  const std::size_t rank = job.row_shape.size() + 1;
  std::vector<hsize_t> dims(rank), maxdims(rank), chunk(rank);
  dims[0] = job.num_rows;
  maxdims[0] = H5S_UNLIMITED;
  chunk[0] = std::min<std::size_t>(job.num_rows, rows_per_chunk(job.row_bytes(), 1u << 20));
  for (std::size_t k = 1; k < rank; ++k) {
    dims[k] = maxdims[k] = chunk[k] = static_cast<hsize_t>(job.row_shape[k - 1]);
  }
  Hdf5Handle type = file_type(job.dtype);
  Hdf5Handle space(check(H5Screate_simple(static_cast<int>(rank), dims.data(), maxdims.data()),
                         "H5Screate_simple", path), H5Sclose);
  Hdf5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_obj_track_times(dcpl.get(), false);
  check(H5Pset_chunk(dcpl.get(), static_cast<int>(rank), chunk.data()), "H5Pset_chunk", path);
  Hdf5Handle dataset(check(H5Dcreate2(file.get(), "features", type.get(), space.get(), H5P_DEFAULT,
                                      dcpl.get(), H5P_DEFAULT), "H5Dcreate2", path), H5Dclose);
  const std::size_t chunk_rows = rows_per_chunk(job.row_bytes());
  std::vector<char> buffer(chunk_rows * job.row_bytes());
  std::vector<hsize_t> start(rank, 0), count(dims);
  std::size_t done = 0;
  while (const std::size_t n = rows.read(buffer.data(), chunk_rows)) {
    start[0] = done;
    count[0] = n;
    Hdf5Handle memory(H5Screate_simple(static_cast<int>(rank), count.data(), nullptr), H5Sclose);
    check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
          "H5Sselect_hyperslab", path);
    check(H5Dwrite(dataset.get(), type.get(), memory.get(), space.get(), H5P_DEFAULT, buffer.data()),
          "H5Dwrite", path);
    done += n;
  }
  if (job.file_names != nullptr) {
    Hdf5Handle string_type = utf8_string_type();
    const hsize_t n = job.num_rows;
    Hdf5Handle name_space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Hdf5Handle name_dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_obj_track_times(name_dcpl.get(), false);
    Hdf5Handle names(check(H5Dcreate2(file.get(), "file_names", string_type.get(), name_space.get(),
                                      H5P_DEFAULT, name_dcpl.get(), H5P_DEFAULT), "H5Dcreate2", path),
                     H5Dclose);
    std::vector<const char*> pointers(job.num_rows);
    for (std::size_t i = 0; i < job.num_rows; ++i) pointers[i] = job.file_names[i].c_str();
    check(H5Dwrite(names.get(), string_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()),
          "H5Dwrite", path);
  }
  if (job.attributes != nullptr) write_root_attributes(file.get(), *job.attributes, path);
  dataset.reset();
  check(H5Fclose(file.release()), "H5Fclose", path);
  sync_path(path);
}

void track_mat73_creation_order(const fs::path& file) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  QuietHdf5 quiet;
  char block[512] = {};
  {
    std::ifstream in(file, std::ios::binary);
    if (!in.read(block, sizeof block)) {
      throw Error(ErrorKind::io, fmt::format("cannot write '{}': cannot read its MAT header", file.string()));
    }
  }
  Hdf5Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  H5Pset_userblock(fcpl.get(), sizeof block);
  H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  Hdf5Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_EARLIEST, H5F_LIBVER_V18);  // as matio creates it
  Hdf5Handle h(check(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), "H5Fcreate", file),
               H5Fclose);
  check(H5Fclose(h.release()), "H5Fclose", file);
  std::fstream out(file, std::ios::binary | std::ios::in | std::ios::out);
  if (!out.write(block, sizeof block) || !out.flush()) {
    throw Error(ErrorKind::io, fmt::format("cannot write '{}': cannot write its MAT header", file.string()));
  }
}

bool has_hdf5_signature(const fs::path& file) {
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  const auto size = static_cast<std::uint64_t>(fs::file_size(file));
  for (std::uint64_t offset = 0; offset + 8 <= size; offset = offset == 0 ? 512 : offset * 2) {
    char bytes[8];
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(bytes, 8)) return false;
    if (std::memcmp(bytes, kSignature, 8) == 0) return true;
  }
  return false;
}

namespace {

[[noreturn]] void bad(const fs::path& file, const std::string& why) {
  throw Error(ErrorKind::input, fmt::format("cannot read '{}': {}", file.string(), why));
}

Hdf5Handle open_hdf5(const fs::path& file) {
  if (!has_hdf5_signature(file)) bad(file, "not an HDF5 file (no HDF5 signature)");
  const hid_t id = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) bad(file, hdf5_error_text());
  return Hdf5Handle(id, H5Fclose);
}

bool has_link(hid_t file, const char* name) { return H5Lexists(file, name, H5P_DEFAULT) > 0; }

// Reads a numeric dataset as float64 (HDF5 C order) with its dims and stored type.
void read_numeric(hid_t file, const std::string& name, const fs::path& path, std::vector<hsize_t>& dims,
                  DataType& stored, std::vector<double>& values) {
  if (!has_link(file, name.c_str())) bad(path, fmt::format("no dataset '{}'", name));
  Hdf5Handle dataset(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (dataset.get() < 0) bad(path, fmt::format("cannot open dataset '{}': {}", name, hdf5_error_text()));
  Hdf5Handle type(H5Dget_type(dataset.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT) {
    bad(path, fmt::format("dataset '{}' is not a floating-point array", name));
  }
  const std::size_t size = H5Tget_size(type.get());
  stored = size == 2 ? DataType::float16 : size == 8 ? DataType::float64 : DataType::float32;
  Hdf5Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1 || rank > 32) bad(path, fmt::format("dataset '{}' has rank {}", name, rank));
  dims.assign(static_cast<std::size_t>(rank), 0);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::size_t count = 1;
  for (auto d : dims) count *= d;
  values.resize(count);
  if (count > 0 && H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                           values.data()) < 0) {
    bad(path, fmt::format("cannot read dataset '{}': {}", name, hdf5_error_text()));
  }
}

std::vector<std::string> read_string_dataset(hid_t file, const char* name, const fs::path& path) {
  Hdf5Handle dataset(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (dataset.get() < 0) bad(path, fmt::format("cannot open dataset '{}'", name));
  Hdf5Handle type(H5Dget_type(dataset.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) bad(path, fmt::format("dataset '{}' does not hold strings", name));
  Hdf5Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<std::string> out;
  if (n <= 0) return out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Hdf5Handle memory = utf8_string_type();
    std::vector<char*> pointers(static_cast<std::size_t>(n), nullptr);
    if (H5Dread(dataset.get(), memory.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()) < 0) {
      bad(path, fmt::format("cannot read dataset '{}': {}", name, hdf5_error_text()));
    }
    for (auto* p : pointers) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(memory.get(), space.get(), H5P_DEFAULT, pointers.data());
  } else {
    const std::size_t size = H5Tget_size(type.get());
    std::vector<char> buffer(size * static_cast<std::size_t>(n));
    if (H5Dread(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
      bad(path, fmt::format("cannot read dataset '{}': {}", name, hdf5_error_text()));
    }
    for (hssize_t i = 0; i < n; ++i) {
      const char* p = buffer.data() + static_cast<std::size_t>(i) * size;
      out.emplace_back(p, strnlen(p, size));
    }
  }
  return out;
}

}  // namespace

std::string utf16_to_utf8(const std::uint16_t* units, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    std::uint32_t cp = units[i];
    if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < count && units[i + 1] >= 0xdc00 && units[i + 1] < 0xe000) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (units[i + 1] - 0xdc00);
      ++i;
    }
    append_utf8(out, cp);
  }
  return out;
}

namespace {

// The MATLAB cell array of char rows 'file_names' of `h` (a v7.3 .mat file at `file`), as UTF-8.
std::vector<std::string> read_cell_strings(hid_t h, const fs::path& file) {
  std::vector<std::string> out;
  Hdf5Handle names(H5Dopen2(h, "file_names", H5P_DEFAULT), H5Dclose);
  Hdf5Handle type(H5Dget_type(names.get()), H5Tclose);
  if (names.get() < 0 || H5Tget_class(type.get()) != H5T_REFERENCE) {
    bad(file, "'file_names' is not a cell array");
  }
  Hdf5Handle space(H5Dget_space(names.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<hobj_ref_t> refs(static_cast<std::size_t>(std::max<hssize_t>(n, 0)));
  if (n > 0 && H5Dread(names.get(), H5T_STD_REF_OBJ, H5S_ALL, H5S_ALL, H5P_DEFAULT, refs.data()) < 0) {
    bad(file, "cannot read 'file_names'");
  }
  for (auto& ref : refs) {
    Hdf5Handle cell(H5Rdereference2(names.get(), H5P_DEFAULT, H5R_OBJECT, &ref), H5Dclose);
    if (cell.get() < 0) bad(file, "bad reference in 'file_names'");
    if (H5Aexists(cell.get(), "MATLAB_empty") > 0) {
      out.emplace_back();
      continue;
    }
    Hdf5Handle cell_space(H5Dget_space(cell.get()), H5Sclose);
    const hssize_t length = H5Sget_simple_extent_npoints(cell_space.get());
    std::vector<std::uint16_t> units(static_cast<std::size_t>(std::max<hssize_t>(length, 0)));
    if (length > 0 && H5Dread(cell.get(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                              units.data()) < 0) {
      bad(file, "cannot read a 'file_names' entry");
    }
    out.push_back(utf16_to_utf8(units.data(), units.size()));
  }
  return out;
}

// The per-image layout of MAT 7.3 file `h`: every root dataset (not '#refs#' and the like) in
// creation order where the root group tracks it (our writer), else in name order.
FeatureArray read_mat73_per_image(hid_t h, const fs::path& file) {
  Hdf5Handle root(H5Gopen2(h, "/", H5P_DEFAULT), H5Gclose);
  if (root.get() < 0) bad(file, hdf5_error_text());
  Hdf5Handle gcpl(H5Gget_create_plist(root.get()), H5Pclose);
  unsigned order_flags = 0;
  H5Pget_link_creation_order(gcpl.get(), &order_flags);
  const H5_index_t index = (order_flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<std::string> names;  // collected first: no exception may cross libhdf5's C frames
  const auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    if (name[0] != '#') static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  if (H5Literate(root.get(), index, H5_ITER_INC, nullptr, collect, &names) < 0) {
    bad(file, fmt::format("cannot list the variables: {}", hdf5_error_text()));
  }
  std::vector<MatVariable> variables;
  for (const auto& name : names) {
    MatVariable v;
    v.name = name;
    std::vector<hsize_t> dims;
    {
      Hdf5Handle object(H5Oopen(h, name.c_str(), H5P_DEFAULT), H5Oclose);
      const bool dataset = object.get() >= 0 && H5Iget_type(object.get()) == H5I_DATASET;
      Hdf5Handle type(dataset ? H5Dget_type(object.get()) : -1, H5Tclose);
      if (!dataset || H5Tget_class(type.get()) != H5T_FLOAT) {
        bad(file, fmt::format("no variable 'features', and variable '{}' is not a real single or double "
                              "array as the per-image layout needs", name));
      }
    }
    read_numeric(h, name, file, dims, v.stored_type, v.values);
    v.dims.assign(dims.rbegin(), dims.rend());
    fortran_to_c_order(v.values, v.dims);
    variables.push_back(std::move(v));
  }
  return per_image_rows(std::move(variables), file.string());
}

// Dataset `name` of the HDF5 file `file` (a MATLAB v7.3 file when `matlab`: dims reversed, values
// turned from column-major to C order, file names from a cell array), with its file names when
// `name` is "features" and the file has them.
FeatureArray read_hdf5_array(const fs::path& file, const std::string& name, bool matlab) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  QuietHdf5 quiet;
  Hdf5Handle h = open_hdf5(file);
  if (matlab && name == "features" && !has_link(h.get(), "features")) {
    return read_mat73_per_image(h.get(), file);
  }
  FeatureArray array;
  std::vector<hsize_t> dims;
  read_numeric(h.get(), name, file, dims, array.stored_type, array.values);
  if (matlab) {
    // HDF5 dims are MATLAB's reversed; the data is MATLAB's column-major order.
    array.shape.assign(dims.rbegin(), dims.rend());
    fortran_to_c_order(array.values, array.shape);
  } else {
    array.shape.assign(dims.begin(), dims.end());
  }
  if (name == "features" && has_link(h.get(), "file_names")) {
    array.file_names = matlab ? read_cell_strings(h.get(), file)
                              : read_string_dataset(h.get(), "file_names", file);
  }
  return array;
}

}  // namespace

FeatureArray read_hdf5_file(const fs::path& file, const std::string& dataset) {
  return read_hdf5_array(file, dataset, false);
}

FeatureArray read_mat73_file(const fs::path& file, const std::string& name) {
  return read_hdf5_array(file, name, true);
}

std::vector<std::pair<std::string, std::string>> read_hdf5_root_attributes(const fs::path& file) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  QuietHdf5 quiet;
  Hdf5Handle h = open_hdf5(file);
  Hdf5Handle root(H5Gopen2(h.get(), "/", H5P_DEFAULT), H5Gclose);
  if (root.get() < 0) bad(file, hdf5_error_text());
  std::vector<std::string> names;  // collected first: no exception may cross libhdf5's C frames
  const auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  if (H5Aiterate2(root.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names) < 0) {
    bad(file, fmt::format("cannot list the root attributes: {}", hdf5_error_text()));
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& name : names) {
    Hdf5Handle attribute(H5Aopen(root.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
    if (attribute.get() < 0) bad(file, fmt::format("cannot open attribute '{}'", name));
    Hdf5Handle type(H5Aget_type(attribute.get()), H5Tclose);
    Hdf5Handle space(H5Aget_space(attribute.get()), H5Sclose);
    if (H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1) continue;
    std::string value;
    herr_t status = 0;
    if (H5Tis_variable_str(type.get()) > 0) {
      Hdf5Handle memory = utf8_string_type();
      char* text = nullptr;
      status = H5Aread(attribute.get(), memory.get(), &text);
      if (text != nullptr) value = text;
      H5free_memory(text);
    } else {
      std::vector<char> buffer(H5Tget_size(type.get()));
      status = H5Aread(attribute.get(), type.get(), buffer.data());
      value.assign(buffer.data(), strnlen(buffer.data(), buffer.size()));
    }
    if (status < 0) bad(file, fmt::format("cannot read attribute '{}': {}", name, hdf5_error_text()));
    out.emplace_back(name, std::move(value));
  }
  return out;
}

}  // namespace thingsvision::detail
