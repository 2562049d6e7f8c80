// text_job.cpp — tv-extract --text: the CLIP text features of a file of prompts (one per line),
// encode_text of each → OUT/encode_text/features.<ext>, file_names.txt (the prompts), manifest.json.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>
#include <string>
#include <vector>

#include "extraction/job.hpp"
#include "thingsvision/clip_tokenizer.hpp"
#include "thingsvision/error.hpp"
#include "thingsvision/extraction.hpp"
#include "thingsvision/feature_reader.hpp"
#include "thingsvision/manifest.hpp"
#include "thingsvision/model.hpp"
#include "thingsvision/sha256.hpp"

namespace thingsvision::detail {

namespace fs = std::filesystem;

namespace {

/// The prompts of a --text file: one per line, a final newline ends the last; "\r\n" accepted.
std::vector<std::string> read_prompts(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorKind::usage, fmt::format("--text: cannot open '{}'", file.string()));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  std::vector<std::string> prompts;
  std::size_t start = 0;
  while (start < bytes.size()) {
    std::size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) {
      throw Error(ErrorKind::usage, fmt::format("--text '{}' line {} is empty (one prompt per line)",
                                                file.string(), prompts.size() + 1));
    }
    prompts.push_back(std::move(line));
    start = end + 1;
  }
  if (prompts.empty()) throw Error(ErrorKind::usage, fmt::format("--text '{}' holds no prompt", file.string()));
  return prompts;
}

/// Throws Error(usage) for the options that do not apply to --text or are out of range.
void check_text_options(const ExtractionOptions& options) {
  if (!options.images.empty()) throw Error(ErrorKind::usage, "--text and --images exclude each other");
  if (options.output.empty()) throw Error(ErrorKind::usage, "--out is required");
  if (!options.modules.empty()) {
    throw Error(ErrorKind::usage, "--module does not apply to --text (the features are encode_text's output)");
  }
  if (!options.hdf5_key.empty() || !options.indices.empty() || !options.file_list.empty() ||
      !options.class_names.empty()) {
    throw Error(ErrorKind::usage, "--hdf5-key, --indices, --file-names and --class-names need --images, not --text");
  }
  if (options.resume || options.shard_count != 1 || options.all_calls) {
    throw Error(ErrorKind::usage, "--resume, --shard and --all-calls do not apply to --text");
  }
  if (options.batch_size == 0) throw Error(ErrorKind::usage, "--batch-size must be at least 1");
  if (options.n_splits < 1) throw Error(ErrorKind::usage, "--n-splits must be at least 1");
  if (options.random_projection < 0) throw Error(ErrorKind::usage, "--random-projection must be >= 1");
  if (options.num_threads < 0) throw Error(ErrorKind::usage, "--threads must be >= 1 (0 = all available CPUs)");
  if (!fs::is_regular_file(options.text)) {
    throw Error(ErrorKind::usage, fmt::format("--text: no such file '{}'", options.text.string()));
  }
}

/// The token ids of every prompt, `context` per prompt; a prompt that does not fit is an Error
/// naming its line.
std::vector<std::int64_t> tokenize_prompts(const ExtractionOptions& options, const ClipTokenizer& tokenizer,
                                           const std::vector<std::string>& prompts, std::size_t context) {
  std::vector<std::int64_t> ids;
  ids.reserve(prompts.size() * context);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    try {
      const TokenIds row = tokenizer.tokenize({prompts[i]}, context);
      ids.insert(ids.end(), row.ids.begin(), row.ids.end());
    } catch (const Error& e) {
      throw Error(e.kind(), fmt::format("--text '{}' line {}: {}", options.text.string(), i + 1, e.what()));
    }
  }
  return ids;
}

// Error(model) naming the sidecar when the model's text tower does not take CLIP's BPE tokens of
// `context` per prompt (open_clip towers with Hugging Face tokenizers, other context lengths).
void check_sidecar_tokenizer(const fs::path& model_file, const std::optional<ModelSidecar>& sidecar_file,
                             std::size_t context) {
  if (!sidecar_file) return;
  const ModelSidecar& sidecar = *sidecar_file;
  const fs::path json = sidecar_path(model_file);
  if (!sidecar.tokenizer.empty() && sidecar.tokenizer != "clip_bpe") {
    throw Error(ErrorKind::model,
                fmt::format("--text: the text tower of '{}' does not use CLIP's BPE tokenizer (sidecar "
                            "'{}': tokenizer \"{}\"{}); tv-extract --text supports CLIP's BPE only",
                            model_file.string(), json.string(), sidecar.tokenizer,
                            sidecar.tokenizer_note.empty() ? "" : ", " + sidecar.tokenizer_note));
  }
  if (sidecar.context_length > 0 && static_cast<std::size_t>(sidecar.context_length) != context) {
    throw Error(ErrorKind::model,
                fmt::format("--text: the text tower of '{}' takes {} tokens per prompt (sidecar '{}'), "
                            "tv-extract --text writes CLIP's {}",
                            model_file.string(), sidecar.context_length, json.string(), context));
  }
}

}  // namespace

ExtractionResult run_text_extraction(const ExtractionOptions& options) {
  const auto start_time = std::chrono::steady_clock::now();
  check_text_options(options);
  std::optional<ModelSidecar> sidecar = read_sidecar_of(options);
  check_sidecar_tokenizer(options.model_file, sidecar, ClipTokenizer::default_context_length);
  const fs::path& out = options.output;
  if (auto previous = check_output_directory(out, false, options.overwrite)) {
    std::vector<std::string> directories;
    for (const auto& m : previous->modules) directories.push_back(m.directory);
    remove_previous_outputs(out, directories);
  }
  preload_model_runtime(options);  // LibTorch starts while the prompts are tokenized

  // Tokenize every prompt first: a prompt that does not fit is a usage error naming its line.
  const std::vector<std::string> prompts = read_prompts(options.text);
  const ClipTokenizer tokenizer = options.vocabulary.empty() ? ClipTokenizer() : ClipTokenizer(options.vocabulary);
  const std::size_t context = ClipTokenizer::default_context_length;
  const std::vector<std::int64_t> ids = tokenize_prompts(options, tokenizer, prompts, context);

  const int threads = options.num_threads > 0 ? options.num_threads : available_cpus();
  LoadedModel loaded = load_model(options, threads, /*text=*/true, std::move(sidecar));
  const std::string method = loaded.model.traits().entry_method;
  const std::string directory = method;
  const RowOptions row_options = row_options_for(options, options.token ? *options.token : TokenMode::none);

  Manifest manifest = job_manifest(options, loaded, sha256_file(options.model_file), row_options, threads);
  manifest.entry_method = method;
  manifest.text_file = options.text.string();
  manifest.text_sha256 = sha256_file(options.text);
  manifest.module_requests = {method};
  manifest.first_image = 0;
  manifest.last_image = static_cast<std::int64_t>(prompts.size());
  manifest.dataset_images = static_cast<std::int64_t>(prompts.size());
  manifest.preprocessing = "CLIP tokenizer " + tokenizer.vocabulary_path().string();

  WriterOptions writer_options = writer_options_for(options);
  writer_options.attributes = {{"model", options.model_file.filename().string()},
                               {"model_sha256", manifest.model_sha256},
                               {"module", method},
                               {"text_file", manifest.text_file},
                               {"text_sha256", manifest.text_sha256}};
  std::unique_ptr<FeatureWriter> writer;
  for (std::size_t first = 0; first < prompts.size(); first += options.batch_size) {
    const std::size_t n = std::min(options.batch_size, prompts.size() - first);
    const std::vector<std::int64_t> batch(ids.begin() + static_cast<std::ptrdiff_t>(first * context),
                                          ids.begin() + static_cast<std::ptrdiff_t>((first + n) * context));
    Activations a = loaded.model.encode_text(batch, static_cast<std::int64_t>(n),
                                             static_cast<std::int64_t>(context), method);
    const std::vector<std::int64_t> activation_shape(a.shape.begin() + 1, a.shape.end());
    shape_rows(a, row_options);
    if (!writer) {
      const std::vector<std::int64_t> row_shape(a.shape.begin() + 1, a.shape.end());
      writer = open_feature_writer(options.format, out / directory, row_shape, writer_options);
      ManifestModule m;
      m.name = method;
      m.directory = directory;
      m.activation_shape = activation_shape;
      m.row_shape = row_shape;
      manifest.modules.push_back(m);
      write_manifest(out / "manifest.json", manifest);
    }
    writer->append_batch(a.values.data(), a.shape);
  }
  writer->commit(prompts);
  write_lines(out / "file_names.txt", prompts);
  manifest.modules[0].files = features_files(out, directory);
  manifest.num_images = static_cast<std::int64_t>(prompts.size());
  manifest.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  manifest.status = "complete";
  write_manifest(out / "manifest.json", manifest);

  ExtractionResult result;
  result.output = out;
  result.text = true;
  result.num_images = prompts.size();
  result.modules = {directory};
  result.seconds = manifest.seconds;
  result.extract_seconds = manifest.seconds;
  return result;
}

}  // namespace thingsvision::detail
