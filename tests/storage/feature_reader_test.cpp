// feature_reader_test.cpp — read_features on files written by numpy, h5py, scipy.io and Octave;
// damaged and foreign files give Error(input) naming the file.
#include "thingsvision/feature_reader.hpp"

#include <gmock/gmock.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "test_support.hpp"
#include "thingsvision/error.hpp"

namespace fs = std::filesystem;
using namespace thingsvision;
using ::testing::HasSubstr;
using tv_test::TempDir;

namespace {

fs::path dir() { return tv_test::data_dir() / "storage"; }

std::vector<double> raw(const std::string& name) {
  const std::string bytes = tv_test::read_file(dir() / name);
  std::vector<double> out(bytes.size() / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    float f;
    std::memcpy(&f, bytes.data() + 4 * i, 4);
    out[i] = f;
  }
  return out;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

const std::vector<std::string> kNames = {"cat/001.jpg", "dog/002.jpg", "emu/\xc3\xbc" "03.png",
                                         "fox/004.jpg", "gnu/005.jpg"};

void expect_input_error(const fs::path& file, const std::string& message) {
  try {
    read_features(file);
    ADD_FAILURE() << "no error for " << file;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::input);
    EXPECT_EQ(std::string(e.what()), message);
  }
}

}  // namespace

TEST(ReadFeatures, NumpyFilesInCAndFortranOrder) {
  const auto a = raw("ref_2d.f32");
  const auto b = raw("ref_4d.f32");
  for (const char* name : {"np_c.npy", "np_f.npy", "np_f64.npy"}) {
    const auto x = read_features(dir() / name);
    EXPECT_EQ(x.shape, (std::vector<std::int64_t>{5, 3})) << name;
    EXPECT_TRUE(same_bits(x.values, a)) << name;
  }
  EXPECT_EQ(read_features(dir() / "np_f64.npy").stored_type, DataType::float64);
  const auto h = read_features(dir() / "np_f16.npy");
  EXPECT_EQ(h.stored_type, DataType::float16);
  auto finite = a;
  auto got = h.values;
  ASSERT_EQ(finite.size(), got.size());
  EXPECT_TRUE(std::isinf(got[5]));  // 3e38 overflows float16
  finite[5] = got[5] = 0;
  EXPECT_TRUE(tv_test::expect_close(finite, got, {1e-3, 0.0}, "float16"));
  for (const char* name : {"np_4d.npy", "np_4d_f.npy"}) {
    const auto x = read_features(dir() / name);
    EXPECT_EQ(x.shape, (std::vector<std::int64_t>{2, 3, 4, 5})) << name;
    EXPECT_TRUE(same_bits(x.values, b)) << name;
  }
}

TEST(ReadFeatures, SavetxtH5pyScipyAndOctaveFiles) {
  const auto a = raw("ref_2d.f32");
  const auto b = raw("ref_4d.f32");
  const auto t = read_features(dir() / "np.txt");
  EXPECT_EQ(t.shape, (std::vector<std::int64_t>{5, 3}));
  EXPECT_TRUE(same_bits(t.values, a));
  const auto h = read_features(dir() / "h5.hdf5");
  EXPECT_TRUE(same_bits(h.values, a));
  EXPECT_EQ(h.file_names, kNames);
  const auto h4 = read_features(dir() / "h5.hdf5", "features_4d");
  EXPECT_EQ(h4.shape, (std::vector<std::int64_t>{2, 3, 4, 5}));
  EXPECT_TRUE(same_bits(h4.values, b));
  const auto m = read_features(dir() / "sp5.mat");
  EXPECT_EQ(m.shape, (std::vector<std::int64_t>{5, 3}));
  EXPECT_EQ(m.stored_type, DataType::float32);
  EXPECT_TRUE(same_bits(m.values, a));
  EXPECT_EQ(m.file_names, kNames);
  const auto m4 = read_features(dir() / "sp5_4d.mat");
  EXPECT_EQ(m4.shape, (std::vector<std::int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(m4.stored_type, DataType::float64);
  EXPECT_TRUE(same_bits(m4.values, b));
  const auto o = read_features(dir() / "octave5.mat");
  EXPECT_EQ(o.shape, (std::vector<std::int64_t>{5, 3}));
  EXPECT_TRUE(same_bits(o.values, a));
}

TEST(ReadFeatures, DamagedAndForeignFilesNameTheFile) {
  TempDir tmp;
  const std::string npy = tv_test::read_file(dir() / "np_c.npy");
  std::ofstream(tmp / "short.npy", std::ios::binary) << npy.substr(0, npy.size() - 4);
  expect_input_error(tmp / "short.npy", "cannot read '" + (tmp / "short.npy").string() +
                                            "': npy data is 56 bytes, shape (5, 3) needs 60");
  std::ofstream(tmp / "head.npy", std::ios::binary) << npy.substr(0, 30);
  expect_input_error(tmp / "head.npy", "cannot read '" + (tmp / "head.npy").string() +
                                           "': npy header is truncated");
  expect_input_error(dir() / "garbage.bin", "cannot read '" + (dir() / "garbage.bin").string() +
                                                "': not a feature file (npy, hdf5, mat or txt)");
  std::ofstream(tmp / "ragged.txt") << "1 2 3\n4 5\n";
  expect_input_error(tmp / "ragged.txt", "cannot read '" + (tmp / "ragged.txt").string() +
                                             "': line 2: expected 3 values, found 2");
  std::ofstream(tmp / "words.txt") << "1 2\nfoo 3\n";
  expect_input_error(tmp / "words.txt", "cannot read '" + (tmp / "words.txt").string() +
                                            "': line 2: column 1 is not a number");
  const std::string mat = tv_test::read_file(dir() / "sp5.mat");
  std::ofstream(tmp / "cut.mat", std::ios::binary) << mat.substr(0, 200);
  expect_input_error(tmp / "cut.mat", "cannot read '" + (tmp / "cut.mat").string() +
                                          "': MAT 5 data element runs past the end of the file");
  // An HDF5 signature followed by junk: refused by libhdf5 without crashing.
  std::ofstream(tmp / "junk.hdf5", std::ios::binary) << std::string("\x89HDF\r\n\x1a\n", 8) << std::string(600, 'x');
  try {
    read_features(tmp / "junk.hdf5");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::input);
    EXPECT_THAT(e.what(), HasSubstr("cannot read '" + (tmp / "junk.hdf5").string() + "'"));
  }
  expect_input_error(tmp / "missing.npy", "cannot read '" + (tmp / "missing.npy").string() + "': no such file");
  EXPECT_THAT([] { read_features(dir() / "h5.hdf5", "nope"); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "cannot read '" + (dir() / "h5.hdf5").string() + "': no dataset 'nope'")));
}

TEST(ReadFeatureDirectory, MissingSplitAndMismatchedShardsAreInputErrors) {
  TempDir tmp;
  const std::vector<float> rows(12, 1.5f);
  WriterOptions split;
  split.n_splits = 3;
  auto writer = open_feature_writer(OutputFormat::npy, tmp / "a", {4}, split);
  writer->append_rows(rows.data(), 3);
  writer->commit({"x", "y", "z"});
  fs::remove(tmp / "a/features_02.npy");
  EXPECT_THAT([&] { read_feature_directory(tmp / "a", OutputFormat::npy); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "cannot read '" + (tmp / "a").string() +
                  "': split file features_02.npy is missing (found features_03.npy)")));
  auto b = open_feature_writer(OutputFormat::npy, tmp / "b", {4});
  b->append_rows(rows.data(), 3);
  b->commit({"x", "y", "z"});
  auto c = open_feature_writer(OutputFormat::npy, tmp / "c", {3});
  c->append_rows(rows.data(), 4);
  c->commit({"p", "q", "r", "s"});
  try {
    merge_features({tmp / "b", tmp / "c"}, tmp / "m", OutputFormat::npy);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::input);
    EXPECT_EQ(std::string(e.what()), "cannot read '" + (tmp / "c/features.npy").string() +
                                         "': its rows have shape (3,), earlier files (4,)");
  }
  EXPECT_FALSE(fs::exists(tmp / "m/features.npy"));
  EXPECT_THAT([&] { read_feature_directory(tmp / "nothing", OutputFormat::hdf5); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "cannot read '" + (tmp / "nothing").string() + "': not a directory")));
}

TEST(MergeFeatures, KeepsRootAttributesAndJoinsDifferingValues) {
  TempDir tmp;
  const std::vector<float> rows(12, 0.25f);
  std::ofstream(tmp / "attrs.py") << "import h5py, sys\n"
                                     "with h5py.File(sys.argv[1], 'r') as f:\n"
                                     "    for k in sorted(f.attrs):\n"
                                     "        v = f.attrs[k]\n"
                                     "        if isinstance(v, str): sys.stdout.buffer.write((k + '=' + v + '\\n').encode())\n";
  const std::string umlaut = "resize 256, crop 224 \xc3\xbc";
  for (OutputFormat format : {OutputFormat::hdf5, OutputFormat::mat}) {
    const std::string ext = file_extension(format);
    for (int shard = 0; shard < 2; ++shard) {
      WriterOptions options;
      options.n_splits = 2;  // each shard holds two split files, all four are merged
      options.attributes = {{"model", "resnet18.pt"}, {"model_sha256", "ab12"}, {"module", "layer4"},
                            {"torch_version", shard == 0 ? "2.1" : "1.13"}, {"preprocessing", umlaut}};
      auto writer = open_feature_writer(format, tmp / (ext + std::to_string(shard)), {4}, options);
      writer->append_rows(rows.data(), 3);
      writer->commit({"a" + std::to_string(shard), "b", "c"});
    }
    merge_features({tmp / (ext + "0"), tmp / (ext + "1")}, tmp / (ext + "_merged"), format);
    const fs::path merged = tmp / (ext + "_merged") / ("features." + ext);
    const std::string expected = "model=resnet18.pt\nmodel_sha256=ab12\nmodule=layer4\npreprocessing=" + umlaut +
                                 "\ntorch_version=2.1 | 1.13\n";
    EXPECT_EQ(tv_test::run_python((tmp / "attrs.py").string(), merged.string()), expected) << ext;
    const std::vector<std::pair<std::string, std::string>> attributes = {
        {"model", "resnet18.pt"}, {"model_sha256", "ab12"}, {"module", "layer4"}, {"preprocessing", umlaut},
        {"torch_version", "2.1 | 1.13"}};
    EXPECT_EQ(read_feature_attributes(merged), attributes) << ext;
    EXPECT_EQ(read_feature_attributes(tmp / (ext + "1") / ("features_01." + ext)).back(),
              (std::pair<std::string, std::string>{"torch_version", "1.13"}));
  }
  // npy has no attributes; a missing file is an input error naming it.
  auto npy = open_feature_writer(OutputFormat::npy, tmp / "npy", {4});
  npy->append_rows(rows.data(), 3);
  npy->commit({"x", "y", "z"});
  EXPECT_TRUE(read_feature_attributes(tmp / "npy/features.npy").empty());
  EXPECT_THAT([&] { read_feature_attributes(tmp / "none.hdf5"); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "cannot read '" + (tmp / "none.hdf5").string() + "': no such file")));
}

namespace {

// Distinct, non-round float32 values (row r, element k).
std::vector<float> per_image_values(std::size_t rows, std::size_t size, float offset) {
  std::vector<float> v(rows * size);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = offset + std::sin(0.7f * static_cast<float>(i)) * 3.1f;
  return v;
}

std::vector<double> as_doubles(const std::vector<float>& v) { return {v.begin(), v.end()}; }

void write_per_image(const fs::path& directory, MatVersion version, const std::vector<std::int64_t>& row_shape,
                     const std::vector<float>& values, const std::vector<std::string>& names,
                     std::size_t n_splits = 1) {
  WriterOptions options;
  options.mat_version = version;
  options.mat_variable_per_image = true;
  options.n_splits = n_splits;
  auto writer = open_feature_writer(OutputFormat::mat, directory, row_shape, options);
  writer->append_rows(values.data(), names.size());
  writer->commit(names);
}

}  // namespace

TEST(ReadFeatures, MatVariablePerImageRowsInWriterOrder) {
  TempDir tmp;
  // Names out of alphabetical order: HDF5 lists links by name unless creation order is tracked.
  const std::vector<std::string> names = {"zeta.jpg", "alpha.jpg", "mid/x.png", "beta.jpg"};
  for (MatVersion version : {MatVersion::v5, MatVersion::v73}) {
    const std::string tag = version == MatVersion::v5 ? "5" : "73";
    for (const std::vector<std::int64_t>& row_shape : {std::vector<std::int64_t>{5}, {2, 3}}) {
      const std::size_t size = static_cast<std::size_t>(row_shape[0] * (row_shape.size() > 1 ? row_shape[1] : 1));
      const auto values = per_image_values(names.size(), size, 0.5f);
      const fs::path out = tmp / (tag + "_" + std::to_string(row_shape.size()));
      write_per_image(out, version, row_shape, values, names);
      const FeatureArray x = read_features(out / "features.mat");
      std::vector<std::int64_t> shape{4};
      shape.insert(shape.end(), row_shape.begin(), row_shape.end());
      EXPECT_EQ(x.shape, shape) << tag;
      EXPECT_TRUE(same_bits(x.values, as_doubles(values))) << tag << " rank " << row_shape.size();
      EXPECT_EQ(x.stored_type, DataType::float32);
      EXPECT_TRUE(x.file_names.empty());
      EXPECT_TRUE(x.mat_variable_per_image);
      const FeatureArray d = read_feature_directory(out, OutputFormat::mat);
      EXPECT_EQ(d.file_names, names) << tag;
      EXPECT_TRUE(same_bits(d.values, as_doubles(values))) << tag;
    }
    // Splits: each file holds its rows' variables.
    const auto values = per_image_values(names.size(), 3, -1.0f);
    write_per_image(tmp / (tag + "_split"), version, {3}, values, names, 2);
    EXPECT_TRUE(same_bits(read_feature_directory(tmp / (tag + "_split"), OutputFormat::mat).values,
                          as_doubles(values))) << tag;
  }
}

TEST(ReadFeatures, ScipyPerImageMatInSavematOrder) {
  TempDir tmp;
  // savemat writes the dict in insertion order; the rows' reference bytes are written in that order.
  std::ofstream(tmp / "make.py")
      << "import sys, numpy as np, scipy.io\n"
         "d = sys.argv[1]\n"
         "rng = np.random.default_rng(7)\n"
         "a = rng.standard_normal((4, 6)).astype(np.float32)\n"
         "scipy.io.savemat(d + '/one.mat', {n: a[i] for i, n in enumerate(['zz_9', 'img_1', 'Mm', 'b2'])})\n"
         "a.tofile(d + '/one.f32')\n"
         "b = rng.standard_normal((3, 2, 3))\n"
         "scipy.io.savemat(d + '/two.mat', {'q%d' % (3 - i): b[i] for i in range(3)})\n"
         "b.astype(np.float32).tofile(d + '/two_check.f32')\n"
         "b.tofile(d + '/two.f64')\n"
         "scipy.io.savemat(d + '/bad.mat', {'x1': a[0], 'x2': a[1, :5]})\n"
         "scipy.io.savemat(d + '/text.mat', {'x1': a[0], 'note': 'hi'})\n";
  ASSERT_EQ(tv_test::run_python((tmp / "make.py").string(), tmp.path().string()), "");
  const FeatureArray one = read_features(tmp / "one.mat");
  EXPECT_EQ(one.shape, (std::vector<std::int64_t>{4, 6}));
  EXPECT_EQ(one.stored_type, DataType::float32);
  EXPECT_TRUE(one.mat_variable_per_image);
  const std::string one_bytes = tv_test::read_file(tmp / "one.f32");
  std::vector<float> one_ref(one_bytes.size() / 4);
  std::memcpy(one_ref.data(), one_bytes.data(), one_bytes.size());
  EXPECT_TRUE(same_bits(one.values, as_doubles(one_ref)));
  const FeatureArray two = read_features(tmp / "two.mat");
  EXPECT_EQ(two.shape, (std::vector<std::int64_t>{3, 2, 3}));
  EXPECT_EQ(two.stored_type, DataType::float64);
  const std::string two_bytes = tv_test::read_file(tmp / "two.f64");
  std::vector<double> two_ref(two_bytes.size() / 8);
  std::memcpy(two_ref.data(), two_bytes.data(), two_bytes.size());
  EXPECT_TRUE(same_bits(two.values, two_ref));
  expect_input_error(tmp / "bad.mat", "cannot read '" + (tmp / "bad.mat").string() +
                                          "' (one variable per image): variable 'x2' is float32 (1, 5), "
                                          "variable 'x1' float32 (1, 6)");
  expect_input_error(tmp / "text.mat", "cannot read '" + (tmp / "text.mat").string() +
                                           "': no variable 'features', and variable 'note' (class 4) is not a "
                                           "real single or double array as the per-image layout needs");
}

TEST(MergeFeatures, MatVariablePerImageShardsMergeToPerImage) {
  TempDir tmp;
  const std::vector<std::string> first = {"s0/zeta.jpg", "s0/alpha.jpg", "s0/mid.jpg"};
  const std::vector<std::string> second = {"s1/beta.jpg", "s1/aa.jpg"};
  const auto values = per_image_values(5, 4, 2.0f);
  const std::vector<float> head(values.begin(), values.begin() + 12), tail(values.begin() + 12, values.end());
  std::ofstream(tmp / "check.py")
      << "import sys, numpy as np, scipy.io, h5py\n"
         "path, ref, names = sys.argv[1], sys.argv[2], sys.argv[3].split(',')\n"
         "rows = np.fromfile(ref, dtype=np.float32).reshape(len(names), -1)\n"
         "if path.endswith('5.mat'):\n"
         "    m = scipy.io.loadmat(path)\n"
         "    got = {k: m[k] for k in m if not k.startswith('__')}\n"
         "else:\n"
         "    with h5py.File(path, 'r') as f:\n"
         "        got = {k: f[k][()].T for k in f if not k.startswith('#')}\n"
         "ok = sorted(got) == sorted(names) and all(\n"
         "    got[n].dtype == np.float32 and got[n].shape == (1, rows.shape[1]) and\n"
         "    got[n].tobytes() == rows[i].tobytes() for i, n in enumerate(names))\n"
         "print('ok' if ok else 'FAIL %s' % sorted(got))\n";
  for (MatVersion version : {MatVersion::v5, MatVersion::v73}) {
    const std::string tag = version == MatVersion::v5 ? "5" : "73";
    write_per_image(tmp / (tag + "a"), version, {4}, head, first);
    write_per_image(tmp / (tag + "b"), version, {4}, tail, second, 2);
    merge_features({tmp / (tag + "a"), tmp / (tag + "b")}, tmp / (tag + "m"), OutputFormat::mat);
    const fs::path merged = tmp / (tag + "m") / "features.mat";
    const FeatureArray x = read_features(merged);
    EXPECT_TRUE(x.mat_variable_per_image) << tag;
    EXPECT_EQ(x.shape, (std::vector<std::int64_t>{5, 4})) << tag;
    EXPECT_TRUE(same_bits(x.values, as_doubles(values))) << tag;
    EXPECT_EQ(tv_test::read_file(merged).substr(124, 2), version == MatVersion::v5 ? std::string("\x00\x01", 2)
                                                                                   : std::string("\x00\x02", 2));
    fs::copy_file(merged, tmp / ("merged" + tag + ".mat"));
    std::ofstream(tmp / "ref.f32", std::ios::binary)
        .write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * 4));
    EXPECT_EQ(tv_test::run_python((tmp / "check.py").string(),
                                  (tmp / ("merged" + tag + ".mat")).string() + " " + (tmp / "ref.f32").string() +
                                      " s0_zeta,s0_alpha,s0_mid,s1_beta,s1_aa"),
              "ok\n") << tag;
    // Duplicate variable names are the writer's usage error; mixed layouts an input error.
    EXPECT_THAT([&] { merge_features({tmp / (tag + "a"), tmp / (tag + "a")}, tmp / (tag + "dup"), OutputFormat::mat); },
                ::testing::ThrowsMessage<Error>(HasSubstr("both map to the MATLAB variable 's0_zeta'")));
    WriterOptions plain;
    plain.mat_version = version;
    auto writer = open_feature_writer(OutputFormat::mat, tmp / (tag + "plain"), {4}, plain);
    writer->append_rows(tail.data(), 2);
    writer->commit(second);
    EXPECT_THAT([&] { merge_features({tmp / (tag + "a"), tmp / (tag + "plain")}, tmp / (tag + "mix"),
                                     OutputFormat::mat); },
                ::testing::ThrowsMessage<Error>(::testing::StrEq(
                    "cannot read '" + (tmp / (tag + "plain/features.mat")).string() + "': it holds 'features', " +
                    (tmp / (tag + "a/features.mat")).string() + " holds one variable per image")));
  }
}
