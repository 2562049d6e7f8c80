// device.hpp — Device: where a model runs ("cpu", "cuda", "cuda:N"); torch-free.
#pragma once
#include <string>
#include <string_view>

namespace thingsvision {

/// A compute device: the CPU, or a CUDA GPU by index.
class Device {
 public:
  enum class Type { cpu, cuda };

  /// The CPU.
  static Device cpu() noexcept { return Device(Type::cpu, -1); }
  /// CUDA GPU `index` (-1 = the current/default GPU, written "cuda").
  static Device cuda(int index = -1) noexcept { return Device(Type::cuda, index); }
  /// Parses "cpu", "cuda" or "cuda:N"; throws Error(usage) naming `text` otherwise.
  static Device parse(std::string_view text);

  Type type() const noexcept { return type_; }
  /// The GPU index; -1 for the CPU or for plain "cuda".
  int index() const noexcept { return index_; }
  bool is_cuda() const noexcept { return type_ == Type::cuda; }
  /// "cpu", "cuda" or "cuda:N", as accepted by parse().
  std::string to_string() const;

  friend bool operator==(const Device& a, const Device& b) noexcept {
    return a.type_ == b.type_ && a.index_ == b.index_;
  }
  friend bool operator!=(const Device& a, const Device& b) noexcept { return !(a == b); }

 private:
  Device(Type type, int index) noexcept : type_(type), index_(index) {}
  Type type_;
  int index_;
};

}  // namespace thingsvision
