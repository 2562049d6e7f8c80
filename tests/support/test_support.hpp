// test_support.hpp — paths, temporary folders, the one tolerance helper and Python reference runs.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "thingsvision/error.hpp"

namespace tv_test {

/// The project's source tree.
inline std::filesystem::path source_dir() { return TV_SOURCE_DIR; }
/// Where fixtures write reference data (inside the build tree).
inline std::filesystem::path data_dir() {
  const char* other = std::getenv("TV_TEST_DATA_DIR");  // scripts/gpu-check.sh runs tests outside ctest
  return other != nullptr && *other != '\0' ? std::filesystem::path(other) : std::filesystem::path(TV_TEST_DATA_DIR);
}
/// Debian's Python with torch, torchvision, PIL, numpy, scipy, h5py.
inline std::string python() { return TV_PYTHON; }

/// A fresh, empty temporary directory removed when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    const auto base = std::filesystem::temp_directory_path();
    for (;;) {
      path_ = base / ("tv_test_" + std::to_string(rd()));
      if (std::filesystem::create_directory(path_)) break;
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Runs a shell command; returns its exit status.
inline int run_command(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// Runs a shell command and returns its standard output; fails the test on a non-zero exit.
inline std::string run_capture(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    ADD_FAILURE() << "cannot run: " << command;
    return output;
  }
  char buffer[4096];
  std::size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0) << "command failed: " << command
                                                             << "\n" << output;
  return output;
}

/// Runs `python_code` with Debian's python3 (arguments appended); returns stdout.
inline std::string run_python(const std::string& script_path, const std::string& arguments = "") {
  return run_capture(python() + " " + script_path + " " + arguments);
}

/// Reads a whole file as bytes.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Tolerances for expect_close: max |got - ref| <= relative_to_max * max |ref| + absolute.
struct Tolerance {
  double relative_to_max = 1e-5;
  double absolute = 0.0;
};

/// The one numeric comparison of the test suite (issue #2): max |got − ref| ≤ 1e-5 × max |ref|
/// unless a test passes other tolerances. `label` names what is compared in the failure message.
template <typename A, typename B>
::testing::AssertionResult expect_close(const std::vector<A>& ref, const std::vector<B>& got,
                                        Tolerance tolerance = {}, const std::string& label = "") {
  if (ref.size() != got.size()) {
    return ::testing::AssertionFailure() << label << ": size " << got.size() << " != reference "
                                         << ref.size();
  }
  double max_ref = 0, max_diff = 0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double r = static_cast<double>(ref[i]), g = static_cast<double>(got[i]);
    if (std::isnan(r) != std::isnan(g)) {
      return ::testing::AssertionFailure() << label << ": NaN mismatch at " << i;
    }
    if (std::isnan(r)) continue;
    max_ref = std::max(max_ref, std::abs(r));
    const double diff = std::abs(r - g);
    if (diff > max_diff) {
      max_diff = diff;
      worst = i;
    }
  }
  const double bound = tolerance.relative_to_max * max_ref + tolerance.absolute;
  if (max_diff <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << label << ": max |got - ref| = " << max_diff << " at index " << worst << " (ref "
         << static_cast<double>(ref[worst]) << ", got " << static_cast<double>(got[worst])
         << ") exceeds " << bound << " (max |ref| = " << max_ref << ")";
}

/// Expects `call()` to throw thingsvision::Error of `kind` whose what() is exactly `message`.
template <typename F>
void expect_error(F&& call, thingsvision::ErrorKind kind, const std::string& message) {
  try {
    call();
    ADD_FAILURE() << "no error; expected: " << message;
  } catch (const thingsvision::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_EQ(std::string(e.what()), message);
  }
}

/// The thingsvision::Error that `call()` throws (for tests that match parts of its message); fails the
/// test and returns an internal error when nothing is thrown.
template <typename F>
thingsvision::Error catch_error(F&& call) {
  try {
    call();
  } catch (const thingsvision::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no thingsvision::Error thrown";
  return thingsvision::Error(thingsvision::ErrorKind::internal, "none");
}

}  // namespace tv_test
