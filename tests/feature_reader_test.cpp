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
