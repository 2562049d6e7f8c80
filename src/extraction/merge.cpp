// merge.cpp — tv-merge: the output directories of shards (or of any runs of one job) joined into one,
// features bit for bit, file_names.txt in order, and a manifest summing the parts.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "extraction/job.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"
#include "thingsvision/feature_reader.hpp"
#include "thingsvision/manifest.hpp"

namespace thingsvision {

namespace fs = std::filesystem;
using detail::features_files;
using detail::job_difference;
using detail::remove_previous_outputs;

namespace {

using Parts = std::vector<std::pair<fs::path, Manifest>>;

/// The manifest of each input, checked: a finished tv-extract output of the same job as the first.
Parts read_parts(const std::vector<fs::path>& inputs) {
  Parts parts;
  for (const auto& input : inputs) {
    const fs::path file = input / "manifest.json";
    if (!fs::is_regular_file(file)) {
      throw Error(ErrorKind::input, fmt::format("'{}' holds no manifest.json; is it a tv-extract output directory?",
                                                input.string()));
    }
    Manifest m = read_manifest(file);
    if (m.status != "complete") {
      throw Error(ErrorKind::input, fmt::format("'{}' is an unfinished extraction; finish it with tv-extract --resume",
                                                input.string()));
    }
    if (!parts.empty()) {
      const std::string difference = job_difference(parts.front().second, m, true);
      if (!difference.empty()) {
        throw Error(ErrorKind::usage, fmt::format("'{}' and '{}' differ in {}; only runs of one job can be merged",
                                                  parts.front().first.string(), input.string(), difference));
      }
    }
    parts.emplace_back(input, std::move(m));
  }
  return parts;
}

/// Puts shards in shard order; throws Error(usage) for a shard of another count, missing or repeated.
void order_shards(Parts& parts) {
  const int shard_count = parts.front().second.shard_count;
  for (const auto& [path, m] : parts) {
    if (m.shard_count != shard_count) {
      throw Error(ErrorKind::usage, fmt::format("'{}' is shard {}/{} but '{}' is of {} shards", path.string(),
                                                m.shard_index, m.shard_count, parts.front().first.string(), shard_count));
    }
  }
  if (shard_count > 1) {
    std::stable_sort(parts.begin(), parts.end(),
                     [](const auto& a, const auto& b) { return a.second.shard_index < b.second.shard_index; });
    for (int i = 0; i < shard_count; ++i) {
      const bool present = i < static_cast<int>(parts.size()) && parts[static_cast<std::size_t>(i)].second.shard_index == i;
      if (!present) {
        const bool twice = i < static_cast<int>(parts.size()) && i > 0 &&
                           parts[static_cast<std::size_t>(i)].second.shard_index == i - 1;
        throw Error(ErrorKind::usage, twice ? fmt::format("shard {}/{} is given twice", i - 1, shard_count)
                                            : fmt::format("shard {}/{} is missing", i, shard_count));
      }
    }
    if (static_cast<int>(parts.size()) > shard_count) {
      throw Error(ErrorKind::usage, fmt::format("shard {}/{} is given twice", shard_count - 1, shard_count));
    }
  }
}

/// Empties `output` of an earlier merge (with `overwrite`) and creates it; it must differ from
/// every input.
void prepare_output(const Parts& parts, const fs::path& output, bool overwrite) {
  if (fs::exists(output / "manifest.json")) {
    if (!overwrite) {
      throw Error(ErrorKind::usage, fmt::format("--out: '{}' already holds an extraction; pass --overwrite to replace it",
                                                output.string()));
    }
    std::vector<std::string> old;
    for (const auto& m : read_manifest(output / "manifest.json").modules) old.push_back(m.directory);
    remove_previous_outputs(output, old);
  }
  for (const auto& [path, m] : parts) {
    // The error_code form: GCC 14's libstdc++ throws when --out does not exist yet.
    std::error_code same_ec;
    if (fs::equivalent(path, output, same_ec)) {
      throw Error(ErrorKind::usage, "--out must differ from every input directory");
    }
  }
  std::error_code ec;
  fs::create_directories(output, ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("--out: cannot create '{}': {}", output.string(), ec.message()));
}

/// The parts' manifest as one: skipped images, counts and timings summed, one shard of one.
Manifest merged_manifest(const Parts& parts, Manifest merged, const std::string& command_line) {
  merged.skipped.clear();
  merged.num_images = 0;
  merged.seconds = 0;
  merged.timing = ManifestTiming{};
  merged.merged_from.clear();
  for (const auto& [path, m] : parts) {
    merged.skipped.insert(merged.skipped.end(), m.skipped.begin(), m.skipped.end());
    merged.num_images += m.num_images;
    merged.seconds += m.seconds;
    merged.timing.load_seconds += m.timing.load_seconds;
    merged.timing.extract_seconds += m.timing.extract_seconds;
    merged.timing.forward_seconds += m.timing.forward_seconds;
    merged.timing.input_wait_seconds += m.timing.input_wait_seconds;
    merged.timing.write_seconds += m.timing.write_seconds;
    merged.timing.runtime_start_seconds += m.timing.runtime_start_seconds;
    merged.timing.runtime_wait_seconds += m.timing.runtime_wait_seconds;
    merged.merged_from.push_back(path.string());
  }
  merged.first_image = parts.front().second.first_image;
  merged.last_image = parts.back().second.last_image;
  merged.shard_index = 0;
  merged.shard_count = 1;
  merged.n_splits = 1;
  merged.command_line = command_line;
  merged.status = "complete";
  return merged;
}

}  // namespace

void merge_extractions(const std::vector<fs::path>& inputs, const fs::path& output, bool overwrite,
                       const std::string& command_line) {
  if (inputs.empty()) throw Error(ErrorKind::usage, "tv-merge needs at least one input directory");
  if (output.empty()) throw Error(ErrorKind::usage, "--out is required");
  Parts parts = read_parts(inputs);
  order_shards(parts);
  prepare_output(parts, output, overwrite);

  Manifest merged = parts.front().second;
  const OutputFormat format = parse_output_format(merged.format);
  std::error_code ec;
  for (auto& module : merged.modules) {
    std::vector<fs::path> module_inputs;
    for (const auto& part : parts) {
      if (part.second.num_images > 0) module_inputs.push_back(part.first / module.directory);  // empty shards: no file
    }
    fs::create_directories(output / module.directory, ec);
    // merge_features writes the module's file_names.txt too, as a run does
    if (module_inputs.empty()) write_lines(output / module.directory / "file_names.txt", {});
    else merge_features(module_inputs, output / module.directory, format);
    module.files = features_files(output, module.directory);
  }
  std::vector<std::string> names;
  for (const auto& part : parts) {
    const auto lines = read_lines(part.first / "file_names.txt");
    names.insert(names.end(), lines.begin(), lines.end());
  }
  write_lines(output / "file_names.txt", names);
  write_manifest(output / "manifest.json", merged_manifest(parts, std::move(merged), command_line));
}

}  // namespace thingsvision
