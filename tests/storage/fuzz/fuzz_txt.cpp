// fuzz_txt.cpp — libFuzzer target: the savetxt / slice-layout text parser must never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "thingsvision/error.hpp"
#include "storage/writers/writer_backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    thingsvision::detail::parse_txt(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.txt");
  } catch (const thingsvision::Error&) {
  }
  return 0;
}
