// device.cpp — parsing and printing device names.
#include "thingsvision/device.hpp"

#include <charconv>

#include "thingsvision/error.hpp"

namespace thingsvision {

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda();
  constexpr std::string_view prefix = "cuda:";
  if (text.substr(0, prefix.size()) == prefix && text.size() > prefix.size()) {
    const std::string_view digits = text.substr(prefix.size());
    int index = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0) return cuda(index);
  }
  throw Error(ErrorKind::usage,
              "invalid device '" + std::string(text) + "': expected cpu, cuda or cuda:N");
}

std::string Device::to_string() const {
  if (type_ == Type::cpu) return "cpu";
  return index_ < 0 ? std::string("cuda") : "cuda:" + std::to_string(index_);
}

}  // namespace thingsvision
