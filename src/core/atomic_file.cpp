// atomic_file.cpp — temporary names and the rename that publishes a complete file.
#include "core/atomic_file.hpp"

#include <fmt/format.h>

#include <random>
#include <system_error>

#include "thingsvision/error.hpp"

namespace thingsvision::detail {

std::filesystem::path temporary_name(const std::filesystem::path& path) {
  std::random_device rd;
  return path.string() + fmt::format(".tmp-{:08x}", rd());
}

void commit_file(const std::filesystem::path& temporary, const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(ErrorKind::io, fmt::format("cannot write '{}': {}", path.string(), ec.message()));
  }
}

}  // namespace thingsvision::detail
