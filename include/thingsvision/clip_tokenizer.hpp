// clip_tokenizer.hpp — CLIP's byte-level BPE tokenizer (OpenAI's simple_tokenizer): text → token ids.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace thingsvision {

/// What ClipTokenizer::tokenize does with a text whose tokens do not fit the context.
enum class TextOverflow {
  error,     ///< throw Error(usage) naming the text and its token count (OpenAI's default)
  truncate,  ///< keep the first context_length tokens, the last one replaced by <|endoftext|>
};

/// Token ids of several texts: `num_texts` rows of `context_length` int64, row-major, zero padded.
struct TokenIds {
  std::size_t num_texts = 0;       ///< rows
  std::size_t context_length = 0;  ///< columns
  std::vector<std::int64_t> ids;   ///< num_texts × context_length, row-major (a torch.long tensor)

  /// The first id of row `i` (unchecked; `i < num_texts`).
  const std::int64_t* row(std::size_t i) const { return ids.data() + i * context_length; }
};

/// CLIP's text tokenizer, equal to OpenAI's `clip.simple_tokenizer.SimpleTokenizer` + `clip.tokenize`.
/// The vocabulary is `bpe_simple_vocab_16e6.txt.gz` (MIT, OpenAI CLIP). Thread-safe; move-only.
///
/// **Example**: `ClipTokenizer t; TokenIds ids = t.tokenize({"a photo of a cat."});`
class ClipTokenizer {
 public:
  static constexpr std::int64_t start_of_text = 49406;  ///< id of <|startoftext|>
  static constexpr std::int64_t end_of_text = 49407;    ///< id of <|endoftext|>
  static constexpr std::size_t default_context_length = 77;  ///< = clip.tokenize's default
  static constexpr std::size_t vocabulary_size = 49408;      ///< 512 byte symbols + 48894 merges + 2

  /// Loads the gzip'd vocabulary from default_vocabulary_path(); throws Error(input) if absent.
  ClipTokenizer();
  /// Loads the gzip'd BPE vocabulary at `vocabulary_path`; throws Error(input) naming the path when
  /// the file is missing, not gzip, or damaged (naming the line).
  explicit ClipTokenizer(const std::filesystem::path& vocabulary_path);
  ~ClipTokenizer();
  ClipTokenizer(ClipTokenizer&&) noexcept;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept;
  ClipTokenizer(const ClipTokenizer&) = delete;
  ClipTokenizer& operator=(const ClipTokenizer&) = delete;

  /// The first existing of: $THINGSVISION_DATA_DIR/clip/bpe_simple_vocab_16e6.txt.gz (only that one
  /// when the variable is set), share/thingsvision/clip/ beside the installed library, the install
  /// prefix's share/thingsvision/clip/, the source tree's data/clip/. Throws Error(input) listing them.
  static std::filesystem::path default_vocabulary_path();

  /// The token ids of `text` without start/end tokens (= SimpleTokenizer.encode). Throws Error(usage)
  /// if `text` is not valid UTF-8.
  std::vector<std::int64_t> encode(const std::string& text) const;

  /// The text of `ids` (= SimpleTokenizer.decode: byte-level symbols joined, "</w>" → " ", invalid
  /// UTF-8 replaced by U+FFFD). Throws Error(usage) for an id outside [0, vocabulary_size).
  std::string decode(const std::vector<std::int64_t>& ids) const;

  /// <|startoftext|> + encode(text) + <|endoftext|> for each text, zero padded to `context_length`
  /// (= clip.tokenize). A longer text throws Error(usage) naming it and its token count, unless
  /// `overflow` is TextOverflow::truncate. Throws Error(usage) if context_length < 2.
  TokenIds tokenize(const std::vector<std::string>& texts,
                    std::size_t context_length = default_context_length,
                    TextOverflow overflow = TextOverflow::error) const;

  /// The vocabulary file this tokenizer was loaded from.
  const std::filesystem::path& vocabulary_path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The text as CLIP's encode sees it before splitting: ftfy.fix_text (the subset described in
/// docs/clip_tokenizer.md), html.unescape twice, whitespace collapsed and stripped, lower-cased.
/// Throws Error(usage) if `text` is not valid UTF-8.
std::string clip_clean_text(const std::string& text);

}  // namespace thingsvision
