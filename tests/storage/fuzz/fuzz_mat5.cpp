// fuzz_mat5.cpp — libFuzzer target: the MAT 5 header and element parser must never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "thingsvision/error.hpp"
#include "storage/writers/writer_backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    thingsvision::detail::parse_mat5(std::string_view(reinterpret_cast<const char*>(data), size),
                                     "features", "fuzz.mat");
  } catch (const thingsvision::Error&) {
  }
  return 0;
}
