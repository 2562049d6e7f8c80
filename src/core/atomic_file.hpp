// atomic_file.hpp — private helpers to write a file under a temporary name and rename it into place.
#pragma once

#include <filesystem>

namespace thingsvision::detail {

/// `path` + ".tmp-<8 random hex digits>": a sibling name to write first and rename when complete.
std::filesystem::path temporary_name(const std::filesystem::path& path);

/// Renames the complete `temporary` onto `path`; on failure removes `temporary` and throws
/// Error(io) "cannot write '<path>': <reason>".
void commit_file(const std::filesystem::path& temporary, const std::filesystem::path& path);

}  // namespace thingsvision::detail
