// core_test.cpp — Error, Device, closest_names, SHA-256 (against Python's hashlib).
#include <gmock/gmock.h>

#include "test_support.hpp"
#include "thingsvision/device.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/sha256.hpp"
#include "thingsvision/version.hpp"

using namespace thingsvision;
using ::testing::HasSubstr;

TEST(Device, ParsesCpuCudaAndIndexedCuda) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda());
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::parse("cuda:3").to_string(), "cuda:3");
  EXPECT_EQ(Device::parse("cuda").to_string(), "cuda");
  EXPECT_FALSE(Device::parse("cpu").is_cuda());
}

TEST(Device, RejectsBadNamesWithUsageErrorNamingThem) {
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", "cuda:1a", ""}) {
    try {
      Device::parse(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::usage);
      EXPECT_THAT(e.what(), HasSubstr("'" + std::string(bad) + "'"));
    }
  }
}

TEST(Error, ExitCodesAreTwoForUsageOneOtherwise) {
  EXPECT_EQ(exit_code(ErrorKind::usage), 2);
  EXPECT_EQ(exit_code(ErrorKind::input), 1);
  EXPECT_EQ(exit_code(ErrorKind::io), 1);
  EXPECT_EQ(exit_code(ErrorKind::model), 1);
  EXPECT_EQ(exit_code(ErrorKind::internal), 1);
  EXPECT_STREQ(to_string(ErrorKind::model), "model");
}

TEST(ClosestNames, PutsNearestFirst) {
  const std::vector<std::string> names = {"features.0", "layer4", "layer4.1", "layer4.1.relu",
                                          "avgpool", "fc"};
  EXPECT_EQ(closest_names("layer5", names, 2), "layer4, layer4.1");
  EXPECT_EQ(closest_names("avgpol", names, 1), "avgpool");
}

TEST(Sha256, MatchesHashlibOnKnownAndFileInputs) {
  EXPECT_EQ(sha256_bytes("", 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_bytes("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  tv_test::TempDir dir;
  const auto file = dir / "blob.bin";
  {
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < 3'000'000; ++i) out.put(static_cast<char>((i * 7919) & 0xFF));
  }
  const std::string expected = tv_test::run_capture(
      tv_test::python() + " -c \"import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb')"
      ".read()).hexdigest())\" " + file.string());
  EXPECT_EQ(sha256_file(file) + "\n", expected);
  EXPECT_THROW(sha256_file(dir / "missing"), Error);
}

TEST(Version, IsProjectVersion) {
  EXPECT_EQ(version_string(), THINGSVISION_VERSION_STRING);
  EXPECT_FALSE(torch_version_string().empty());
}
