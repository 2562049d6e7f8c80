// fuzz_npy.cpp — libFuzzer target: the NPY header and data parser must never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "thingsvision/error.hpp"
#include "storage/writers/writer_backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    thingsvision::detail::parse_npy(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npy");
  } catch (const thingsvision::Error&) {
  }
  return 0;
}
