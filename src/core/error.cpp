// error.cpp — Error and the "closest names" helper used by every unknown-name message.
#include "thingsvision/error.hpp"

#include <algorithm>
#include <utility>

namespace thingsvision {

Error::Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

const char* to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::usage: return "usage";
    case ErrorKind::input: return "input";
    case ErrorKind::io: return "io";
    case ErrorKind::model: return "model";
    case ErrorKind::internal: return "internal";
  }
  return "internal";
}

int exit_code(ErrorKind kind) noexcept { return kind == ErrorKind::usage ? 2 : 1; }

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> previous(b.size() + 1), current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

}  // namespace

std::string closest_names(const std::string& name, const std::vector<std::string>& candidates,
                          std::size_t max_count) {
  std::vector<std::pair<std::size_t, const std::string*>> scored;
  scored.reserve(candidates.size());
  for (const auto& candidate : candidates) {
    std::size_t score = edit_distance(name, candidate);
    // A candidate that starts with the name ("layer4" for "layer4.") is a strong hint.
    if (!name.empty() && candidate.rfind(name, 0) == 0) score = std::min<std::size_t>(score, 1);
    scored.emplace_back(score, &candidate);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::string out;
  for (std::size_t i = 0; i < scored.size() && i < max_count; ++i) {
    if (i > 0) out += ", ";
    out += *scored[i].second;
  }
  return out;
}

}  // namespace thingsvision
