// sha256.hpp — SHA-256 of files, for provenance (model files in manifests, sidecars, HDF5 attributes).
#pragma once
#include <filesystem>
#include <string>

namespace thingsvision {

/// The SHA-256 of the file at `path` as 64 lower-case hex digits; throws Error(io) naming the path.
std::string sha256_file(const std::filesystem::path& path);

/// The SHA-256 of `size` bytes at `data` as 64 lower-case hex digits.
std::string sha256_bytes(const void* data, std::size_t size);

}  // namespace thingsvision
