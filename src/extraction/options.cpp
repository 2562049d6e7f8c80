// options.cpp — ExtractionOptions from user text: --pool, --token, --shard (and the images a shard
// covers), --module requests against the model's names.
#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <set>

#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"

namespace thingsvision {

Pooling parse_pooling(const std::string& text) {
  if (text == "none") return Pooling::none;
  if (text == "avg") return Pooling::avg;
  if (text == "max") return Pooling::max;
  throw Error(ErrorKind::usage, fmt::format("--pool: '{}' is not one of none, avg, max", text));
}

TokenMode parse_token_mode(const std::string& text) {
  if (text == "none") return TokenMode::none;
  if (text == "cls" || text == "cls_token") return TokenMode::cls;
  if (text == "avg" || text == "avg_pool") return TokenMode::avg;
  if (text == "cls+avg" || text == "cls_token+avg_pool") return TokenMode::cls_avg;
  throw Error(ErrorKind::usage, fmt::format("--token: '{}' is not one of none, cls, avg, cls+avg", text));
}

const char* to_string(Pooling pooling) noexcept {
  switch (pooling) {
    case Pooling::none: return "none";
    case Pooling::avg: return "avg";
    case Pooling::max: return "max";
  }
  return "none";
}

const char* to_string(TokenMode mode) noexcept {
  switch (mode) {
    case TokenMode::none: return "none";
    case TokenMode::cls: return "cls";
    case TokenMode::avg: return "avg";
    case TokenMode::cls_avg: return "cls+avg";
  }
  return "none";
}

std::pair<int, int> parse_shard(const std::string& text) {
  const auto usage = [&]() {
    return Error(ErrorKind::usage,
                 fmt::format("--shard: '{}' is not I/N with 0 <= I < N (0-based, as SLURM_ARRAY_TASK_ID)",
                             text));
  };
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) throw usage();
  const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
  const auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(a) || !digits(b)) throw usage();
  const int index = std::stoi(a), count = std::stoi(b);
  if (count < 1 || index >= count) throw usage();
  return {index, count};
}

std::pair<std::size_t, std::size_t> shard_range(std::size_t num_images, int index, int count) {
  if (count < 1 || index < 0 || index >= count) {
    throw Error(ErrorKind::usage, fmt::format("shard {}/{} is invalid", index, count));
  }
  const auto image_at = [&](std::size_t i) { return num_images * i / static_cast<std::size_t>(count); };
  return {image_at(static_cast<std::size_t>(index)), image_at(static_cast<std::size_t>(index) + 1)};
}

std::vector<std::string> select_modules(const std::vector<std::string>& requests,
                                        const std::vector<std::string>& module_names,
                                        const std::string& model_name) {
  std::vector<std::string> selected;
  std::set<std::string> seen;
  const auto add = [&](const std::string& name) {
    if (seen.insert(name).second) selected.push_back(name);
  };
  for (const auto& request : requests) {
    if (request == "all") {
      for (const auto& name : module_names) add(name);
    } else if (request.find_first_of("*?[") != std::string::npos) {
      bool any = false;
      for (const auto& name : module_names) {
        if (::fnmatch(request.c_str(), name.c_str(), 0) == 0) {
          add(name);
          any = true;
        }
      }
      if (!any) {
        throw Error(ErrorKind::usage,
                    fmt::format("--module: pattern '{}' matches no module of {}", request, model_name));
      }
    } else if (std::find(module_names.begin(), module_names.end(), request) != module_names.end()) {
      add(request);
    } else {
      throw Error(ErrorKind::usage, fmt::format("module '{}' not found in {}; closest: {}", request,
                                                model_name, closest_names(request, module_names)));
    }
  }
  return selected;
}

}  // namespace thingsvision
