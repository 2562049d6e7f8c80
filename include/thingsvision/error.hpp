// error.hpp — Error, the only exception the library throws; its kind maps to a tool's exit code.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace thingsvision {

/// What went wrong, coarsely: tools map it to an exit code (usage → 2, everything else → 1).
enum class ErrorKind {
  usage,     ///< a bad argument or option value (names the argument)
  input,     ///< a bad input file: image, feature file, list, JSON (names the file, line)
  io,        ///< the file system refused: unwritable directory, disk full (names the path)
  model,     ///< a model cannot be loaded or run, or a module name is unknown (names model/module)
  internal,  ///< a broken invariant: a bug, please report it
};

/// The one exception type of the library; `what()` names the file, module or argument concerned.
class Error : public std::runtime_error {
 public:
  /// Creates an error of `kind` with a complete, user-facing `message`.
  Error(ErrorKind kind, const std::string& message);
  /// The coarse category of the error.
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

/// The lower-case name of `kind` ("usage", "input", "io", "model", "internal").
const char* to_string(ErrorKind kind) noexcept;

/// The exit code a tool returns for an error of `kind`: 2 for usage errors, else 1.
int exit_code(ErrorKind kind) noexcept;

/// Up to `max_count` of `candidates` closest to `name` (edit distance, then prefix match), best first.
/// Used by every "unknown name" error: "module 'layer5' not found; closest: layer4, layer4.1".
std::string closest_names(const std::string& name, const std::vector<std::string>& candidates,
                          std::size_t max_count = 5);

}  // namespace thingsvision
