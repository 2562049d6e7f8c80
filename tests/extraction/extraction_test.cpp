// extraction_test.cpp — unit tests of extraction.hpp and manifest.hpp (the job itself: tests/cli/*.sh).
#include "thingsvision/extraction.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "test_support.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/feature_reader.hpp"
#include "thingsvision/manifest.hpp"

namespace tv = thingsvision;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

tv::ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const tv::Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no Error thrown";
  return tv::ErrorKind::internal;
}

}  // namespace

TEST(EscapeModuleName, KeepsTorchNamesAndRoundTripsOnnxNames) {
  EXPECT_EQ(tv::escape_module_name("layer4.1.relu"), "layer4.1.relu");
  EXPECT_EQ(tv::escape_module_name("features_0-a"), "features_0-a");
  EXPECT_EQ(tv::escape_module_name("/conv/Conv_output_0"), "%2Fconv%2FConv_output_0");
  EXPECT_EQ(tv::escape_module_name("a!b%c"), "a%21b%25c");
  EXPECT_EQ(tv::escape_module_name(".."), "%2E.");
  for (const std::string& name : std::vector<std::string>{"/features/features.0/Conv!1", "..", ".hidden", "a b\tc", "x%41", "ü/ß",
                                 std::string("nul\0x", 5)}) {
    const std::string escaped = tv::escape_module_name(name);
    EXPECT_EQ(escaped.find('/'), std::string::npos) << name;
    EXPECT_NE(escaped[0], '.') << name;
    EXPECT_EQ(tv::unescape_module_name(escaped), name);
  }
}

TEST(EscapeModuleName, MalformedEscapeIsUsageError) {
  EXPECT_THAT([] { tv::unescape_module_name("abc%4"); }, ThrowsMessage<tv::Error>(HasSubstr("abc%4")));
  EXPECT_EQ(kind_of([] { tv::unescape_module_name("a%zz"); }), tv::ErrorKind::usage);
}

TEST(ParseShard, ZeroBasedIndexOfCount) {
  EXPECT_EQ(tv::parse_shard("0/1"), std::make_pair(0, 1));
  EXPECT_EQ(tv::parse_shard("3/4"), std::make_pair(3, 4));
  for (const char* bad : {"4/4", "1/0", "-1/4", "a/4", "1", "1/", "/4", "1/4/2", " 1/4"}) {
    EXPECT_THAT([&] { tv::parse_shard(bad); }, ThrowsMessage<tv::Error>(HasSubstr("--shard"))) << bad;
    EXPECT_EQ(kind_of([&] { tv::parse_shard(bad); }), tv::ErrorKind::usage) << bad;
  }
}

TEST(ShardRange, ContiguousCoverBalancedByImages) {
  for (std::size_t images : {0u, 1u, 7u, 12u, 26107u}) {
    for (int count : {1, 2, 3, 4, 5, 16}) {
      std::size_t next = 0, smallest = images, largest = 0;
      for (int i = 0; i < count; ++i) {
        const auto [first, last] = tv::shard_range(images, i, count);
        EXPECT_EQ(first, next);
        EXPECT_LE(first, last);
        smallest = std::min(smallest, last - first);
        largest = std::max(largest, last - first);
        next = last;
      }
      EXPECT_EQ(next, images) << images << " " << count;
      EXPECT_LE(largest - std::min(smallest, largest), 1u) << images << " " << count;
    }
  }
  using Range = std::pair<std::size_t, std::size_t>;
  EXPECT_EQ(tv::shard_range(7, 0, 3), Range(0, 2));
  EXPECT_EQ(tv::shard_range(7, 2, 3), Range(4, 7));
  EXPECT_EQ(tv::shard_range(7, 0, 9), Range(0, 0));  // more shards than images: empty shards
}

TEST(SelectModules, AllGlobsExactNamesInRequestOrderWithoutRepeats) {
  const std::vector<std::string> names{"conv1", "layer1", "layer1.0", "layer1.0.relu", "layer2", "avgpool", "fc"};
  EXPECT_EQ(tv::select_modules({"fc", "conv1", "fc"}, names), (std::vector<std::string>{"fc", "conv1"}));
  EXPECT_EQ(tv::select_modules({"layer?"}, names), (std::vector<std::string>{"layer1", "layer2"}));
  EXPECT_EQ(tv::select_modules({"layer1*", "avgpool"}, names),
            (std::vector<std::string>{"layer1", "layer1.0", "layer1.0.relu", "avgpool"}));
  EXPECT_EQ(tv::select_modules({"all"}, names), names);
  EXPECT_THAT([&] { tv::select_modules({"layer5"}, names, "resnet18.pt"); },
              ThrowsMessage<tv::Error>(HasSubstr("module 'layer5' not found in resnet18.pt; closest: layer1")));
  EXPECT_EQ(kind_of([&] { tv::select_modules({"layer5"}, names); }), tv::ErrorKind::usage);
  EXPECT_THAT([&] { tv::select_modules({"block*"}, names); },
              ThrowsMessage<tv::Error>(HasSubstr("--module: pattern 'block*' matches no module")));
}

TEST(SummaryLine, ResumedRunCountsAndRatesOnlyTheNewImagesAsTheProgressLineDoes) {
  tv::ExtractionResult r;
  r.output = "out";
  r.num_images = 204;
  r.modules = {"avgpool"};
  r.seconds = 3.5;
  r.load_seconds = 1.0;
  r.extract_seconds = 2.0;
  EXPECT_THAT(tv::summary_line(r), HasSubstr("extracted 204 images × 1 output in 3.5 s (102.0 images/s after a 1.0 s"));
  r.images_before = 150;
  EXPECT_THAT(tv::summary_line(r), HasSubstr("extracted 204 images (150 done before, 54 now) × 1 output in 3.5 s "
                                             "(27.0 images/s over the 54 new after a 1.0 s model load) → out"));
  // the terminal progress line: the same images over the same seconds
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  tv::ExtractionProgress p;
  p.images_done = 204;
  p.images_total = 204;
  p.images_before = 150;
  p.seconds = 2.0;
  tv::terminal_progress(fds[1])(p);
  ::close(fds[1]);
  char text[256] = {};
  const ssize_t n = ::read(fds[0], text, sizeof text - 1);
  ::close(fds[0]);
  ASSERT_GT(n, 0);
  EXPECT_THAT(std::string(text), HasSubstr("204/204 images  27.0 images/s"));
}

TEST(AvailableCpus, HonoursSlurmAndOmpLimits) {
  const int all = tv::available_cpus();
  EXPECT_GE(all, 1);
  ::setenv("SLURM_CPUS_PER_TASK", "1", 1);
  EXPECT_EQ(tv::available_cpus(), 1);
  ::unsetenv("SLURM_CPUS_PER_TASK");
  ::setenv("OMP_NUM_THREADS", "1,4", 1);
  EXPECT_EQ(tv::available_cpus(), 1);
  ::setenv("OMP_NUM_THREADS", "100000", 1);
  EXPECT_EQ(tv::available_cpus(), all);  // never more than the affinity mask / quota
  ::unsetenv("OMP_NUM_THREADS");
}

TEST(RandomProjection, MatchesPythonReferenceOfTheDocumentedMatrix) {
  const auto x = tv::read_features(tv_test::data_dir() / "extraction" / "projection_x.npy");
  const auto y = tv::read_features(tv_test::data_dir() / "extraction" / "projection_y.npy");
  ASSERT_EQ(x.shape, (std::vector<std::int64_t>{3, 50}));
  const std::vector<float> rows(x.values.begin(), x.values.end());
  const std::vector<float> got = tv::random_projection(rows, 3, 50, 20, 12345);
  EXPECT_TRUE(tv_test::expect_close(y.values, got, {1e-5, 0.0}, "projection K=20 seed=12345"));
  EXPECT_EQ(got, tv::random_projection(rows, 3, 50, 20, 12345));
  EXPECT_NE(got, tv::random_projection(rows, 3, 50, 20, 12346));
}

TEST(ParseOptions, PoolingAndTokenNames) {
  EXPECT_EQ(tv::parse_pooling("avg"), tv::Pooling::avg);
  EXPECT_EQ(tv::parse_token_mode("cls_token+avg_pool"), tv::TokenMode::cls_avg);
  EXPECT_STREQ(tv::to_string(tv::TokenMode::cls_avg), "cls+avg");
  EXPECT_THAT([] { tv::parse_pooling("mean"); }, ThrowsMessage<tv::Error>(HasSubstr("--pool: 'mean'")));
  EXPECT_THAT([] { tv::parse_token_mode("first"); }, ThrowsMessage<tv::Error>(HasSubstr("--token: 'first'")));
}

TEST(ResolveTransform, SidecarThenPresetThenFlags) {
  tv_test::TempDir dir;
  tv::ExtractionOptions o;
  o.model_file = dir / "m.pt";
  std::ofstream(dir / "m.pt") << "x";
  std::ofstream(dir / "m.json") << R"({"schema_version": 1, "preprocessing": {"resize_mode": "shorter_side",
      "resize_size": 300, "interpolation": "bicubic", "crop_height": 288, "crop_width": 288,
      "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}})";
  std::string source;
  tv::Transform t = tv::resolve_transform(o, &source);
  EXPECT_EQ(t.resize_size, 300);
  EXPECT_EQ(t.crop_height, 288);
  EXPECT_EQ(t.interpolation, tv::Interpolation::bicubic);
  EXPECT_THAT(source, HasSubstr("sidecar"));
  o.crop_size = 0;
  o.mean_rgb = std::array<float, 3>{0.1f, 0.2f, 0.3f};
  t = tv::resolve_transform(o, &source);
  EXPECT_EQ(t.resize_size, 300);
  EXPECT_EQ(t.crop_height, 0);
  EXPECT_EQ(t.mean_rgb[2], 0.3f);
  EXPECT_THAT(source, HasSubstr("+ flags"));
  o = {};
  o.model_file = dir / "m.pt";
  o.preset = "thingsvision";
  t = tv::resolve_transform(o);
  EXPECT_EQ(t.resize_size, 256);
  EXPECT_EQ(t.crop_height, 224);
}

TEST(Manifest, RoundTripsAndNamesTheFileWhenMalformed) {
  tv_test::TempDir dir;
  tv::Manifest m;
  m.status = "complete";
  m.model_sha256 = "abc";
  m.modules.push_back({"/conv/Conv", "%2Fconv%2FConv", -1, {64, 112, 112}, {802816}, {"%2Fconv%2FConv/features.npy"}});
  m.skipped.push_back({"b.jpg", "file is empty"});
  m.seed = 18446744073709551615ull;
  m.mean_rgb = {0.485, 0.456, 0.406};
  m.timing = {1.5, 10.25, 9.75, 0.125, 0.25};
  m.optimization.push_back({{"layer2", "avgpool"}, "optimized", "within 1e-05"});
  tv::write_manifest(dir / "manifest.json", m);
  const tv::Manifest r = tv::read_manifest(dir / "manifest.json");
  EXPECT_EQ(r.status, "complete");
  EXPECT_EQ(r.modules.at(0).directory, "%2Fconv%2FConv");
  EXPECT_EQ(r.modules.at(0).row_shape, (std::vector<std::int64_t>{802816}));
  EXPECT_EQ(r.skipped.at(0).reason, "file is empty");
  EXPECT_EQ(r.seed, m.seed);
  EXPECT_EQ(r.mean_rgb, m.mean_rgb);
  EXPECT_EQ(r.timing.load_seconds, 1.5);
  EXPECT_EQ(r.timing.extract_seconds, 10.25);
  EXPECT_EQ(r.timing.forward_seconds, 9.75);
  EXPECT_EQ(r.timing.input_wait_seconds, 0.125);
  EXPECT_EQ(r.timing.write_seconds, 0.25);
  ASSERT_EQ(r.optimization.size(), 1u);
  EXPECT_EQ(r.optimization[0].modules, (std::vector<std::string>{"layer2", "avgpool"}));
  EXPECT_EQ(r.optimization[0].graph, "optimized");
  EXPECT_EQ(r.optimization[0].reason, "within 1e-05");
  EXPECT_THAT(tv_test::read_file(dir / "manifest.json"), HasSubstr("\"forward_seconds\": 9.75"));
  EXPECT_THAT(tv_test::read_file(dir / "manifest.json"), HasSubstr("\"schema_version\": 1"));

  std::ofstream(dir / "bad.json") << "{\"status\": 3}";
  EXPECT_THAT([&] { tv::read_manifest(dir / "bad.json"); }, ThrowsMessage<tv::Error>(HasSubstr("bad.json")));
  std::ofstream(dir / "new.json") << "{\"schema_version\": 99}";
  EXPECT_THAT([&] { tv::read_manifest(dir / "new.json"); },
              ThrowsMessage<tv::Error>(HasSubstr("schema_version 99")));
  std::ofstream(dir / "text.json") << "not json";
  EXPECT_EQ(kind_of([&] { tv::read_manifest(dir / "text.json"); }), tv::ErrorKind::input);
}

TEST(ModelSidecar, ReadsEntryMethodTokenModeAndIgnoresUnknownKeys) {
  tv_test::TempDir dir;
  std::ofstream(dir / "clip.json") << R"({"schema_version": 1, "architecture": "clip_rn50",
      "entry_method": "encode_image", "token_mode": "cls", "suggested_modules": ["visual"],
      "something_new": {"x": 1}, "weights_tag": null, "tokenizer": "unsupported",
      "tokenizer_note": "SentencePiece", "context_length": 64})";
  const tv::ModelSidecar s = tv::read_model_sidecar(dir / "clip.json");
  EXPECT_EQ(s.tokenizer, "unsupported");
  EXPECT_EQ(s.tokenizer_note, "SentencePiece");
  EXPECT_EQ(s.context_length, 64);
  EXPECT_EQ(s.architecture, "clip_rn50");
  EXPECT_EQ(s.entry_method, "encode_image");
  EXPECT_EQ(s.token_mode, "cls");
  EXPECT_EQ(s.suggested_modules, std::vector<std::string>{"visual"});
  EXPECT_EQ(tv::sidecar_path("/a/b/clip.pt"), std::filesystem::path("/a/b/clip.json"));
  std::ofstream(dir / "wrong.json") << R"({"entry_method": 5})";
  EXPECT_THAT([&] { tv::read_model_sidecar(dir / "wrong.json"); },
              ThrowsMessage<tv::Error>(HasSubstr("'entry_method'")));
}
