// manifest.cpp — the only nlohmann-json user of tv_extraction: manifest.json and model sidecars.
#include "thingsvision/manifest.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "thingsvision/error.hpp"

namespace thingsvision {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ManifestModule, name, directory, call_index,
                                                activation_shape, row_shape, files)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ManifestSkipped, path, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ManifestTiming, load_seconds, extract_seconds, forward_seconds,
                                                input_wait_seconds, write_seconds, runtime_start_seconds,
                                                runtime_wait_seconds)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ManifestOptimization, modules, graph, reason)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
    Manifest, schema_version, status, tool_version, torch_version, command_line, model_path,
    model_sha256, architecture, entry_method, device, backend, images_root, file_list, text_file, text_sha256, hdf5_key, indices, class_names,
    module_requests, modules, format, dtype, flatten, pool, token, all_calls, random_projection, seed,
    n_splits, shard_index, shard_count, first_image, last_image, dataset_images, num_images, skipped,
    preprocessing, resize_mode, resize_size, resize_height, resize_width, interpolation, crop_height,
    crop_width, mean_rgb, std_rgb, preprocessing_source, batch_size, threads, blas_threads, openmp_wait_policy, seconds, timing, optimization, merged_from, layout, input_layout,
    native_layout)

namespace {

nlohmann::json parse_json_file(const std::filesystem::path& file, const char* what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw Error(ErrorKind::input, fmt::format("cannot open {} '{}'", what, file.string()));
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::input,
                fmt::format("{} '{}' is not valid JSON: {}", what, file.string(), e.what()));
  }
}

template <typename T>
void read_optional(const nlohmann::json& j, const char* key, T& out, const std::filesystem::path& file) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::input, fmt::format("model sidecar '{}': key '{}' has the wrong type: {}",
                                              file.string(), key, e.what()));
  }
}

}  // namespace

std::filesystem::path sidecar_path(const std::filesystem::path& model_file) {
  std::filesystem::path p = model_file;
  p.replace_extension(".json");
  return p;
}

ModelSidecar read_model_sidecar(const std::filesystem::path& json_file) {
  const nlohmann::json j = parse_json_file(json_file, "model sidecar");
  if (!j.is_object()) {
    throw Error(ErrorKind::input,
                fmt::format("model sidecar '{}' must hold a JSON object", json_file.string()));
  }
  ModelSidecar s;
  read_optional(j, "schema_version", s.schema_version, json_file);
  read_optional(j, "architecture", s.architecture, json_file);
  read_optional(j, "weights", s.weights, json_file);
  read_optional(j, "sha256", s.sha256, json_file);
  read_optional(j, "entry_method", s.entry_method, json_file);
  read_optional(j, "token_mode", s.token_mode, json_file);
  read_optional(j, "suggested_modules", s.suggested_modules, json_file);
  read_optional(j, "input_layout", s.input_layout, json_file);
  read_optional(j, "native_layout", s.native_layout, json_file);
  read_optional(j, "tokenizer", s.tokenizer, json_file);
  read_optional(j, "tokenizer_note", s.tokenizer_note, json_file);
  read_optional(j, "context_length", s.context_length, json_file);
  for (const auto& [key, value] : {std::pair<const char*, const std::string&>{"input_layout", s.input_layout},
                                   std::pair<const char*, const std::string&>{"native_layout", s.native_layout}}) {
    if (!value.empty() && value != "nchw" && value != "nhwc") {
      throw Error(ErrorKind::input, fmt::format("model sidecar '{}': key '{}' must be \"nchw\" or \"nhwc\", got \"{}\"",
                                                json_file.string(), key, value));
    }
  }
  return s;
}

void write_manifest(const std::filesystem::path& file, const Manifest& manifest) {
  const std::string text = nlohmann::json(manifest).dump(2) + "\n";
  const std::filesystem::path temporary = file.string() + ".tmp";
  {
    std::FILE* f = std::fopen(temporary.c_str(), "wb");
    if (!f) throw Error(ErrorKind::io, fmt::format("cannot write '{}'", temporary.string()));
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 &&
                    ::fsync(::fileno(f)) == 0;
    if (std::fclose(f) != 0 || !ok) {
      std::remove(temporary.c_str());
      throw Error(ErrorKind::io, fmt::format("cannot write '{}' (disk full?)", temporary.string()));
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, file, ec);
  if (ec) {
    throw Error(ErrorKind::io, fmt::format("cannot rename '{}' to '{}': {}", temporary.string(),
                                           file.string(), ec.message()));
  }
}

Manifest read_manifest(const std::filesystem::path& file) {
  const nlohmann::json j = parse_json_file(file, "manifest");
  if (!j.is_object()) {
    throw Error(ErrorKind::input, fmt::format("manifest '{}' must hold a JSON object", file.string()));
  }
  Manifest m;
  try {
    m = j.get<Manifest>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::input, fmt::format("manifest '{}' is malformed: {}", file.string(), e.what()));
  }
  if (m.schema_version > Manifest::current_schema_version) {
    throw Error(ErrorKind::input,
                fmt::format("manifest '{}' has schema_version {}; this tool reads up to {}",
                            file.string(), m.schema_version, Manifest::current_schema_version));
  }
  return m;
}

}  // namespace thingsvision
