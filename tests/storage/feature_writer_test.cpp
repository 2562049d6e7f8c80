// feature_writer_test.cpp — FeatureWriter: round trips through numpy/h5py/scipy/Octave, resume,
// splits, errors (disk full, shapes, names).
#include "thingsvision/feature_writer.hpp"

#include <gmock/gmock.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <thread>

#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/feature_reader.hpp"
#include "storage/writers/writer_backend.hpp"

namespace fs = std::filesystem;
using namespace thingsvision;
using ::testing::HasSubstr;
using tv_test::TempDir;

namespace {

// Deterministic rows with the values that matter for conversions: signed zero, infinities,
// float16 overflow and subnormals, float32 extremes.
std::vector<float> make_rows(std::size_t rows, std::size_t row_size, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> v(rows * row_size);
  for (auto& x : v) x = normal(rng);
  const float specials[] = {-0.0f, std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 70000.0f, 65519.0f, 1e-6f,
                            -3e-8f, 3.0e38f, 1.0009765625f, 2.0f + 1.0f / 2048};
  for (std::size_t i = 0; i < std::size(specials) && i * 7 < v.size(); ++i) v[i * 7] = specials[i];
  return v;
}

std::vector<std::string> make_names(std::size_t rows, const std::string& prefix = "img") {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < rows; ++i) {
    names.push_back(prefix + "/" + std::to_string(1000 + i) + (i == 1 ? "-ü.png" : ".jpg"));
  }
  return names;
}

void write_raw(const fs::path& path, const std::vector<float>& v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
}

void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary);
  for (const auto& l : lines) out << l << '\n';
}

// Appends `values` in batches of `batch` rows, then commits with `names`.
std::unique_ptr<FeatureWriter> write_features(OutputFormat format, const fs::path& dir,
                                              const std::vector<std::int64_t>& row_shape,
                                              const std::vector<float>& values, std::size_t batch,
                                              const std::vector<std::string>& names,
                                              WriterOptions options = {}) {
  auto writer = open_feature_writer(format, dir, row_shape, options);
  const std::size_t row_size = writer->row_size();
  const std::size_t rows = values.size() / row_size;
  for (std::size_t r = 0; r < rows; r += batch) {
    writer->append_rows(values.data() + r * row_size, std::min(batch, rows - r));
  }
  writer->commit(names);
  return writer;
}

std::string shape_arg(std::size_t rows, const std::vector<std::int64_t>& row_shape) {
  std::string s = std::to_string(rows);
  for (auto d : row_shape) s += "," + std::to_string(d);
  return s;
}

std::string check_script() { return (tv_test::source_dir() / "tests/reference/storage_check.py").string(); }

std::vector<double> expected_values(const std::vector<float>& v, DataType dtype) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    out[i] = dtype == DataType::float16 ? detail::half_to_float(detail::float_to_half(v[i])) : v[i];
  }
  return out;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

struct Format {
  OutputFormat format;
  MatVersion mat_version;
  const char* kind;
};

}  // namespace

TEST(FeatureWriter, RoundTripsThroughNumpyH5pyScipyAndReader) {
  TempDir tmp;
  std::ofstream cases(tmp / "cases.txt");
  const Format formats[] = {{OutputFormat::npy, MatVersion::v73, "npy"},
                            {OutputFormat::hdf5, MatVersion::v73, "hdf5"},
                            {OutputFormat::mat, MatVersion::v5, "mat5"},
                            {OutputFormat::mat, MatVersion::v73, "mat73"},
                            {OutputFormat::txt, MatVersion::v73, "txt"}};
  const std::vector<std::vector<std::int64_t>> shapes = {{7}, {3, 4, 5}};
  const std::pair<std::size_t, std::size_t> sizes[] = {{1, 1}, {23, 5}};  // rows, batch
  int n = 0;
  for (const auto& f : formats) {
    for (DataType dtype : {DataType::float32, DataType::float16, DataType::float64}) {
      if (f.format == OutputFormat::mat && dtype == DataType::float16) continue;
      for (const auto& shape : shapes) {
        for (const auto& [rows, batch] : sizes) {
          const fs::path dir = tmp / ("case" + std::to_string(n++));
          const auto values = make_rows(rows, detail::shape_product(shape), static_cast<unsigned>(n));
          const auto names = make_names(rows);
          WriterOptions options;
          options.dtype = dtype;
          options.mat_version = f.mat_version;
          options.attributes = {{"model", "resnet18.pt"}, {"module", "layer4"}};
          auto writer = write_features(f.format, dir, shape, values, batch, names, options);
          ASSERT_EQ(writer->rows_written(), rows);
          const fs::path file = writer->output_files().at(0);
          write_raw(dir / "ref.f32", values);
          write_lines(dir / "ref_names.txt", names);
          const bool has_names = f.format == OutputFormat::hdf5 || f.format == OutputFormat::mat;
          cases << f.kind << ' ' << file.string() << ' ' << (dir / "ref.f32").string() << ' '
                << to_string(dtype) << ' ' << shape_arg(rows, shape) << ' '
                << (has_names ? (dir / "ref_names.txt").string() : "-") << '\n';
          // file_names.txt beside every format; no journal or temporaries left.
          EXPECT_EQ(tv_test::read_file(dir / "file_names.txt"), tv_test::read_file(dir / "ref_names.txt"));
          for (const auto& entry : fs::directory_iterator(dir)) {
            EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr("journal")));
            EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr("partial")));
          }
          // Our reader gives back every bit (txt: through %.18e, exact for these dtypes).
          const FeatureArray back = read_features(file);
          std::vector<std::int64_t> full{static_cast<std::int64_t>(rows)};
          full.insert(full.end(), shape.begin(), shape.end());
          EXPECT_EQ(back.shape, full) << file;
          EXPECT_TRUE(same_bits(back.values, expected_values(values, dtype))) << file;
          if (f.format != OutputFormat::txt) {
            EXPECT_EQ(back.stored_type, dtype) << file;
          }
          if (has_names) {
            EXPECT_EQ(back.file_names, names) << file;
          }
        }
      }
    }
  }
  cases.close();
  const std::string out = tv_test::run_python(check_script(), (tmp / "cases.txt").string());
  EXPECT_THAT(out, ::testing::Not(HasSubstr("FAIL")));
  // Provenance attributes in HDF5 and MAT 7.3 files (12 + 8 cases).
  std::size_t attrs = 0;
  for (std::size_t p = out.find("[('model', 'resnet18.pt'), ('module', 'layer4')]"); p != std::string::npos;
       p = out.find("[('model', 'resnet18.pt'), ('module', 'layer4')]", p + 1)) {
    ++attrs;
  }
  EXPECT_EQ(attrs, 20u) << out;
}

TEST(FeatureWriter, OctaveReadsMat5) {
  TempDir tmp;
  std::ofstream cases(tmp / "cases.txt");
  int n = 0;
  for (DataType dtype : {DataType::float32, DataType::float64}) {
    for (const auto& shape : std::vector<std::vector<std::int64_t>>{{6}, {2, 3, 4}}) {
      const fs::path dir = tmp / ("case" + std::to_string(n++));
      const std::size_t rows = 9;
      const auto values = make_rows(rows, detail::shape_product(shape), 100u + static_cast<unsigned>(n));
      auto names = make_names(rows);
      names[1] = "img/1001.png";  // Octave 7 truncates non-ASCII miUTF8 names (docs/formats.md)
      WriterOptions options;
      options.dtype = dtype;
      options.mat_version = MatVersion::v5;
      write_features(OutputFormat::mat, dir, shape, values, 4, names, options);
      write_raw(dir / "ref.f32", values);
      write_lines(dir / "ref_names.txt", names);
      cases << "mat5 " << (dir / "features.mat").string() << ' ' << (dir / "ref.f32").string() << ' '
            << to_string(dtype) << ' ' << shape_arg(rows, shape) << ' '
            << (dir / "ref_names.txt").string() << '\n';
    }
  }
  cases.close();
  const std::string out = tv_test::run_python(
      (tv_test::source_dir() / "tests/reference/storage_octave.py").string(), (tmp / "cases.txt").string());
  EXPECT_THAT(out, ::testing::Not(HasSubstr("FAIL")));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 4) << out;
}

TEST(FeatureWriter, MatVariablePerImageIsThingsvisionLayout) {
  TempDir tmp;
  std::ofstream cases(tmp / "cases.txt");
  const std::vector<std::string> names = {"cat/img-01.jpg", "dog/img-02.png", "emu/img-03.jpg"};
  const auto values = make_rows(3, 5, 9);
  WriterOptions options;
  options.mat_version = MatVersion::v5;
  options.mat_variable_per_image = true;
  write_features(OutputFormat::mat, tmp / "a", {5}, values, 2, names, options);
  write_raw(tmp / "ref.f32", values);
  write_lines(tmp / "names.txt", names);
  cases << "mat5_per_image " << (tmp / "a/features.mat").string() << ' ' << (tmp / "ref.f32").string()
        << " float32 3,5 " << (tmp / "names.txt").string() << '\n';
  cases.close();
  const std::string out = tv_test::run_python(check_script(), (tmp / "cases.txt").string());
  EXPECT_THAT(out, HasSubstr("ok "));
  EXPECT_EQ(detail::mat_variable_name("cat/img-01.jpg"), "cat_img_01");
  EXPECT_EQ(detail::mat_variable_name("1.jpg"), "x1");
  // Two names mapping to one variable are refused before writing.
  WriterOptions clash = options;
  auto writer = open_feature_writer(OutputFormat::mat, tmp / "b", {5}, clash);
  writer->append_rows(values.data(), 2);
  EXPECT_THAT([&] { writer->commit({"a-1.jpg", "a_1.png"}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("'a_1.png' and another file name both map to "
                                                        "the MATLAB variable 'a_1'")));
  EXPECT_FALSE(fs::exists(tmp / "b/features.mat"));
}

TEST(FeatureWriter, Float16ConversionMatchesNumpyIncludingNaN) {
  TempDir tmp;
  // Every float16 rounding boundary region: sweep float32 bit patterns around half values.
  std::vector<float> values;
  for (std::uint32_t bits = 0x33000000u; bits < 0x47800000u; bits += 0x1235u) {
    float f;
    std::memcpy(&f, &bits, 4);
    values.push_back(f);
    values.push_back(-f);
  }
  const std::uint32_t nans[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7fa00000u};
  for (auto bits : nans) {
    float f;
    std::memcpy(&f, &bits, 4);
    values.push_back(f);
  }
  while (values.size() % 4) values.push_back(0.5f);
  WriterOptions options;
  options.dtype = DataType::float16;
  write_features(OutputFormat::npy, tmp / "h", {4}, values, 1000, make_names(values.size() / 4), options);
  write_raw(tmp / "ref.f32", values);
  std::ofstream(tmp / "cases.txt") << "npy " << (tmp / "h/features.npy").string() << ' '
                                   << (tmp / "ref.f32").string() << " float16 "
                                   << shape_arg(values.size() / 4, {4}) << " -\n";
  const std::string out = tv_test::run_python(check_script(), (tmp / "cases.txt").string());
  EXPECT_THAT(out, HasSubstr("ok "));
}

TEST(FeatureWriter, NoFinalFileBeforeCommitAndJournalKept) {
  TempDir tmp;
  const auto values = make_rows(4, 3, 1);
  {
    auto writer = open_feature_writer(OutputFormat::npy, tmp / "out", {3});
    writer->append_rows(values.data(), 4);
    EXPECT_EQ(writer->rows_written(), 4u);
    EXPECT_FALSE(fs::exists(tmp / "out/features.npy"));
  }
  EXPECT_FALSE(fs::exists(tmp / "out/features.npy"));
  EXPECT_FALSE(fs::exists(tmp / "out/file_names.txt"));
  EXPECT_TRUE(fs::exists(tmp / "out/features.npy.journal"));
}

TEST(FeatureWriter, ZeroRowsIsAnError) {
  TempDir tmp;
  auto writer = open_feature_writer(OutputFormat::npy, tmp / "out", {3});
  EXPECT_THAT([&] { writer->commit({}); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "cannot commit '" + (tmp / "out").string() +
                  "': no rows were appended (empty feature files are not written)")));
  EXPECT_FALSE(fs::exists(tmp / "out/features.npy"));
}

TEST(FeatureWriter, UsageErrors) {
  TempDir tmp;
  const auto values = make_rows(2, 4, 1);
  auto writer = open_feature_writer(OutputFormat::npy, tmp / "out", {4});
  try {
    writer->append_batch(values.data(), {2, 5});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_STREQ(e.what(), "cannot append a batch of shape (2, 5): rows have shape (4,)");
  }
  writer->append_batch(values.data(), {2, 4});
  EXPECT_THAT([&] { writer->commit({"a.jpg"}); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "cannot commit '" + (tmp / "out").string() + "': 1 file names for 2 rows")));
  EXPECT_FALSE(fs::exists(tmp / "out/features.npy"));
  WriterOptions half;
  half.dtype = DataType::float16;
  try {
    open_feature_writer(OutputFormat::mat, tmp / "m", {4}, half);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_THAT(e.what(), HasSubstr("dtype float16 cannot be written as mat"));
  }
  EXPECT_THAT([] { parse_output_format("csv"); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "unknown output format 'csv'; expected npy, hdf5, mat or txt")));
  EXPECT_THAT([] { parse_data_type("int8"); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "unknown dtype 'int8'; expected float32, float16 or float64")));
  WriterOptions split;
  split.n_splits = 3;
  auto few = open_feature_writer(OutputFormat::npy, tmp / "few", {4}, split);
  few->append_rows(values.data(), 2);
  EXPECT_THAT([&] { few->commit({"a", "b"}); },
              ::testing::ThrowsMessage<Error>(HasSubstr("n_splits exceeds the number of rows")));
}

TEST(FeatureWriter, Mat5LimitIsCheckedBeforeWriting) {
  detail::FileJob job;
  job.final_path = "out/features.mat";
  job.row_shape = {4096};
  job.num_rows = 131072;  // 131072 × 4096 × 4 bytes = 2 GiB
  job.mat_version = MatVersion::v5;
  EXPECT_THAT([&] { detail::check_mat5_limits(job); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "cannot write 'out/features.mat' as MAT 5: variable 'features' would take 2147483704 "
                  "bytes, over the format's 2 GB limit; use MAT 7.3 (the default) or n_splits")));
  job.num_rows = 131000;
  EXPECT_NO_THROW(detail::check_mat5_limits(job));
  job.num_rows = 131072;
  job.mat_version = MatVersion::v73;
  EXPECT_NO_THROW(detail::check_mat5_limits(job));
}

TEST(FeatureWriter, UnwritableDirectoryIsAnIoError) {
  TempDir tmp;
  std::ofstream(tmp / "file") << "x";
  try {
    open_feature_writer(OutputFormat::npy, tmp / "file" / "sub", {4});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_THAT(e.what(), HasSubstr("cannot create output directory '" + (tmp / "file/sub").string() + "'"));
  }
}

TEST(FeatureWriter, DiskFullIsAnIoErrorAndNothingIsReportedWritten) {
  TempDir tmp;
  // The journal on /dev/full: every write fails with ENOSPC.
  fs::create_directories(tmp / "full");
  fs::create_symlink("/dev/full", tmp / "full/features.npy.journal");
  try {
    open_feature_writer(OutputFormat::npy, tmp / "full", {4});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_STREQ(e.what(), ("cannot write '" + (tmp / "full/features.npy.journal").string() +
                            "': No space left on device").c_str());
  }
  // A real small file system (1 MiB tmpfs), when we may mount one (root).
  fs::create_directories(tmp / "small");
  if (::geteuid() != 0 || ::mount("tmpfs", (tmp / "small").c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here; /dev/full case only";
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount(p.c_str()); }
  } unmount{tmp / "small"};
  const auto values = make_rows(64, 1024, 3);  // 256 KiB per batch
  // txt: commit needs room for a second copy (npy float32 would be finished in place).
  auto writer = open_feature_writer(OutputFormat::txt, tmp / "small", {1024});
  std::size_t appended = 0;
  try {
    for (int i = 0; i < 10; ++i) {
      writer->append_rows(values.data(), 64);
      appended += 64;
    }
    FAIL() << "no error on a full disk";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::io);
    EXPECT_THAT(e.what(), HasSubstr("No space left on device"));
  }
  EXPECT_EQ(writer->rows_written(), appended);  // the failed batch is not counted
  // Commit needs room for the final file too: it fails cleanly, leaving no final or partial file.
  EXPECT_THAT([&] { writer->commit(make_names(appended)); },
              ::testing::ThrowsMessage<Error>(HasSubstr("No space left on device")));
  EXPECT_FALSE(fs::exists(tmp / "small/features.txt"));
  EXPECT_FALSE(fs::exists(tmp / "small/features.txt.partial"));
  EXPECT_TRUE(fs::exists(tmp / "small/features.txt.journal"));
}

TEST(FeatureWriter, ResumeAfterCrashWithTornTailIsByteIdentical) {
  TempDir tmp;
  const std::vector<std::int64_t> shape = {2, 3, 4};
  const std::size_t rows = 17, row_size = 24;
  const auto values = make_rows(rows, row_size, 5);
  const auto names = make_names(rows);
  for (OutputFormat format : {OutputFormat::npy, OutputFormat::hdf5, OutputFormat::mat, OutputFormat::txt}) {
    const std::string ext = file_extension(format);
    write_features(format, tmp / ("whole_" + ext), shape, values, 3, names);
    const fs::path dir = tmp / ("resumed_" + ext);
    const fs::path journal = dir / ("features." + ext + ".journal");
    {  // "crash": 3 batches, then the writer goes away without commit
      auto writer = open_feature_writer(format, dir, shape);
      for (std::size_t r = 0; r < 9; r += 3) writer->append_rows(values.data() + r * row_size, 3);
    }
    // A torn tail: half of a batch record and data, as a crash mid-write leaves it.
    const auto good_size = fs::file_size(journal);
    {
      std::ofstream out(journal, std::ios::binary | std::ios::app);
      const std::string junk(100, '\x5a');
      out.write(junk.data(), static_cast<std::streamsize>(junk.size()));
      std::ofstream log(journal.string() + ".log", std::ios::binary | std::ios::app);
      log.write(junk.data(), 20);  // half a batch record
    }
    WriterOptions resume;
    resume.resume = true;
    {  // a second crash after one more batch, whose data is then corrupted (bad checksum)
      auto writer = open_feature_writer(format, dir, shape, resume);
      EXPECT_EQ(writer->rows_written(), 9u) << ext;
      EXPECT_EQ(fs::file_size(journal), good_size) << ext;
      writer->append_rows(values.data() + 9 * row_size, 3);
    }
    {
      std::fstream io(journal, std::ios::binary | std::ios::in | std::ios::out);
      io.seekp(static_cast<std::streamoff>(fs::file_size(journal) - 5));
      io.put('\x01');
    }
    auto writer = open_feature_writer(format, dir, shape, resume);
    ASSERT_EQ(writer->rows_written(), 9u) << ext;
    for (std::size_t r = 9; r < rows; r += 3) {
      writer->append_rows(values.data() + r * row_size, std::min<std::size_t>(3, rows - r));
    }
    writer->commit(names);
    const fs::path a = tmp / ("whole_" + ext) / ("features." + ext), b = dir / ("features." + ext);
    if (format == OutputFormat::mat) {  // matio writes HDF5 object times: compare contents
      const auto x = read_features(a), y = read_features(b);
      EXPECT_TRUE(same_bits(x.values, y.values));
      EXPECT_EQ(x.file_names, y.file_names);
    } else {
      EXPECT_EQ(tv_test::read_file(a), tv_test::read_file(b)) << ext << " not byte-identical";
    }
    EXPECT_EQ(tv_test::read_file(tmp / ("whole_" + ext) / "file_names.txt"),
              tv_test::read_file(dir / "file_names.txt"));
    EXPECT_FALSE(fs::exists(journal));
  }
  // Resuming with another row shape is refused.
  {
    auto writer = open_feature_writer(OutputFormat::npy, tmp / "other", {3});
    writer->append_rows(values.data(), 1);
  }
  WriterOptions resume;
  resume.resume = true;
  EXPECT_THAT([&] { open_feature_writer(OutputFormat::npy, tmp / "other", {4}, resume); },
              ::testing::ThrowsMessage<Error>(::testing::StrEq(
                  "cannot resume from '" + (tmp / "other/features.npy.journal").string() +
                  "': it holds rows of shape (3,), not (4,)")));
}

TEST(FeatureWriter, Hdf5IsDeterministicAndHonoursFileLockingVariable) {
  TempDir tmp;
  const auto values = make_rows(10, 6, 2);
  WriterOptions options;
  options.attributes = {{"library_version", "0.1.0"}};
  write_features(OutputFormat::hdf5, tmp / "a", {6}, values, 4, make_names(10), options);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // object times would differ now
  ::setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
  write_features(OutputFormat::hdf5, tmp / "b", {6}, values, 4, make_names(10), options);
  ::unsetenv("HDF5_USE_FILE_LOCKING");
  EXPECT_EQ(tv_test::read_file(tmp / "a/features.hdf5"), tv_test::read_file(tmp / "b/features.hdf5"));
}

TEST(FeatureWriter, SplitsIntoExactlyKFilesAndMergesBitExact) {
  TempDir tmp;
  const std::size_t rows = 10;
  const auto names = make_names(rows);
  for (const auto& shape : std::vector<std::vector<std::int64_t>>{{8}, {2, 3, 4}}) {
    const auto values = make_rows(rows, detail::shape_product(shape), 11);
    for (OutputFormat format : {OutputFormat::npy, OutputFormat::hdf5, OutputFormat::mat, OutputFormat::txt}) {
      const std::string ext = file_extension(format) + std::to_string(shape.size());
      write_features(format, tmp / ("one_" + ext), shape, values, 4, names);
      WriterOptions split;
      split.n_splits = 3;
      auto writer = write_features(format, tmp / ("split_" + ext), shape, values, 4, names, split);
      const auto files = writer->output_files();
      ASSERT_EQ(files.size(), 3u);
      const std::size_t expected_rows[] = {4, 3, 3};  // numpy.array_split(10 rows, 3)
      for (std::size_t k = 0; k < 3; ++k) {
        EXPECT_EQ(files[k].filename().string(),
                  "features_0" + std::to_string(k + 1) + "." + file_extension(format));
        EXPECT_EQ(read_features(files[k]).num_rows(), static_cast<std::int64_t>(expected_rows[k]));
      }
      const auto whole = read_feature_directory(tmp / ("split_" + ext), format);
      std::vector<std::int64_t> full{static_cast<std::int64_t>(rows)};
      full.insert(full.end(), shape.begin(), shape.end());
      EXPECT_EQ(whole.shape, full);
      EXPECT_TRUE(same_bits(whole.values, expected_values(values, DataType::float32)));
      EXPECT_EQ(whole.file_names, names);
      merge_features({tmp / ("split_" + ext)}, tmp / ("merged_" + ext), format);
      const std::string file = std::string("features.") + file_extension(format);
      const fs::path a = tmp / ("one_" + ext) / file, b = tmp / ("merged_" + ext) / file;
      if (format == OutputFormat::mat) {
        const auto x = read_features(a), y = read_features(b);
        EXPECT_TRUE(same_bits(x.values, y.values));
        EXPECT_EQ(x.file_names, y.file_names);
      } else if (format == OutputFormat::hdf5) {  // chunk rows depend on N only; no attributes given
        EXPECT_EQ(tv_test::read_file(a), tv_test::read_file(b));
      } else {
        EXPECT_EQ(tv_test::read_file(a), tv_test::read_file(b)) << ext;
      }
      EXPECT_EQ(tv_test::read_file(tmp / ("merged_" + ext) / "file_names.txt"),
                tv_test::read_file(tmp / ("one_" + ext) / "file_names.txt"));
    }
  }
  // K >= 100: three-digit names.
  WriterOptions many;
  many.n_splits = 100;
  const auto big = make_rows(100, 2, 4);
  auto writer = write_features(OutputFormat::npy, tmp / "many", {2}, big, 7, make_names(100), many);
  EXPECT_EQ(writer->output_files().front().filename(), "features_001.npy");
  EXPECT_EQ(writer->output_files().back().filename(), "features_100.npy");
  EXPECT_TRUE(same_bits(read_feature_directory(tmp / "many", OutputFormat::npy).values,
                        expected_values(big, DataType::float32)));
}

TEST(FeatureWriter, MergesShardDirectoriesInOrder) {
  TempDir tmp;
  const std::size_t rows = 13;
  const auto values = make_rows(rows, 6, 21);
  const auto names = make_names(rows);
  for (DataType dtype : {DataType::float16, DataType::float64}) {
    WriterOptions options;
    options.dtype = dtype;
    write_features(OutputFormat::npy, tmp / "whole", {6}, values, 5, names, options);
    WriterOptions split = options;
    split.n_splits = 2;
    const std::vector<float> first(values.begin(), values.begin() + 7 * 6), second(values.begin() + 7 * 6, values.end());
    write_features(OutputFormat::npy, tmp / "shard0", {6}, first, 3, {names.begin(), names.begin() + 7}, split);
    write_features(OutputFormat::npy, tmp / "shard1", {6}, second, 3, {names.begin() + 7, names.end()}, options);
    merge_features({tmp / "shard0", tmp / "shard1"}, tmp / "merged", OutputFormat::npy);
    EXPECT_EQ(tv_test::read_file(tmp / "whole/features.npy"), tv_test::read_file(tmp / "merged/features.npy"))
        << to_string(dtype);
    EXPECT_EQ(tv_test::read_file(tmp / "whole/file_names.txt"), tv_test::read_file(tmp / "merged/file_names.txt"));
  }
}
