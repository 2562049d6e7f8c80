// clip_tokenizer_test.cpp — ClipTokenizer against OpenAI's ids and a Python re-implementation.
#include "thingsvision/clip_tokenizer.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_support.hpp"
#include "thingsvision/error.hpp"

namespace {

using thingsvision::ClipTokenizer;
using thingsvision::Error;
using thingsvision::ErrorKind;
using thingsvision::TextOverflow;
namespace fs = std::filesystem;

fs::path vocabulary() { return tv_test::source_dir() / "data/clip/bpe_simple_vocab_16e6.txt.gz"; }

const ClipTokenizer& tokenizer() {
  static const ClipTokenizer instance(vocabulary());
  return instance;
}

std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::vector<nlohmann::json> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) cases.push_back(nlohmann::json::parse(line));
  }
  return cases;
}

std::vector<std::int64_t> row(const thingsvision::TokenIds& ids, std::size_t i) {
  return {ids.row(i), ids.row(i) + ids.context_length};
}

// Runs `f`, expects an Error of `kind`, returns its message.
template <typename F>
std::string error_message(F&& f, ErrorKind kind) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no Error thrown";
  return "";
}

void write_gzip(const fs::path& path, const std::string& content) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, content.data(), static_cast<unsigned>(content.size())),
            static_cast<int>(content.size()));
  gzclose(file);
}

std::string read_gzip(const fs::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  EXPECT_NE(file, nullptr);
  std::string content;
  char buffer[1 << 16];
  int n = 0;
  while (file && (n = gzread(file, buffer, sizeof buffer)) > 0) content.append(buffer, n);
  if (file) gzclose(file);
  return content;
}

TEST(ClipTokenizer, SharedOpenAiCasesMatch) {
  const fs::path cases_path = fs::path(TV_SOURCE_DIR) / "tests/data/clip/tokenizer_cases.jsonl";
  ASSERT_TRUE(fs::exists(cases_path)) << "missing " << cases_path
                                      << " (OpenAI reference ids)";
  const auto cases = read_jsonl(cases_path);
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    const std::vector<std::int64_t> expected = c.at("ids");
    const auto ids = tokenizer().tokenize({text});
    ASSERT_EQ(ids.num_texts, 1u);
    ASSERT_EQ(ids.context_length, 77u);
    std::vector<std::int64_t> padded = expected;
    padded.resize(77, 0);
    EXPECT_EQ(row(ids, 0), padded) << "text: " << text;
  }
}

TEST(ClipTokenizer, EdgeCasesMatchPythonReference) {
  const fs::path path = tv_test::data_dir() / "clip_tokenizer_reference.jsonl";
  ASSERT_TRUE(fs::exists(path)) << "missing " << path << " (run the fixture: ctest -R clip)";
  const auto cases = read_jsonl(path);
  ASSERT_GT(cases.size(), 50u);
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    SCOPED_TRACE("text: '" + text + "'");
    EXPECT_EQ(thingsvision::clip_clean_text(text), c.at("clean").get<std::string>());
    const std::vector<std::int64_t> ids = c.at("ids");
    EXPECT_EQ(tokenizer().encode(text), ids);
    EXPECT_EQ(tokenizer().decode(ids), c.at("decoded").get<std::string>());
    if (c.at("tokens").is_null()) {
      const std::string message = error_message([&] { tokenizer().tokenize({text}); },
                                                ErrorKind::usage);
      EXPECT_NE(message.find(std::to_string(c.at("n_tokens").get<int>()) + " tokens"),
                std::string::npos) << message;
    } else {
      EXPECT_EQ(row(tokenizer().tokenize({text}), 0), c.at("tokens").get<std::vector<std::int64_t>>());
    }
    EXPECT_EQ(row(tokenizer().tokenize({text}, 77, TextOverflow::truncate), 0),
              c.at("truncated").get<std::vector<std::int64_t>>());
  }
}

TEST(ClipTokenizer, TooLongTextNamesItAndItsTokenCount) {
  std::string text;
  for (int i = 0; i < 80; ++i) text += "cat ";
  const std::string message =
      error_message([&] { tokenizer().tokenize({"a dog", text}); }, ErrorKind::usage);
  EXPECT_EQ(message,
            "text 1 'cat cat cat cat cat cat cat cat cat cat cat cat cat cat cat ...' is too "
            "long for the context length 77: 82 tokens with <|startoftext|> and <|endoftext|> "
            "(truncate it to keep the first 77)");
}

TEST(ClipTokenizer, TruncateKeepsEndTokenLast) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += std::to_string(i % 10);
  const auto ids = tokenizer().tokenize({text, "a bird"}, 77, TextOverflow::truncate);
  ASSERT_EQ(ids.ids.size(), 2u * 77u);
  EXPECT_EQ(ids.row(0)[0], ClipTokenizer::start_of_text);
  EXPECT_EQ(ids.row(0)[76], ClipTokenizer::end_of_text);
  EXPECT_EQ(ids.row(0)[75], tokenizer().encode(text)[74]);
  EXPECT_EQ(row(ids, 1)[3], ClipTokenizer::end_of_text);  // second row untouched by the first
  const auto short_context = tokenizer().tokenize({"a photo of a cat"}, 4, TextOverflow::truncate);
  EXPECT_EQ(short_context.ids, (std::vector<std::int64_t>{49406, 320, 1125, 49407}));
}

TEST(ClipTokenizer, EmptyTextAndEmptyBatch) {
  EXPECT_TRUE(tokenizer().encode("").empty());
  EXPECT_TRUE(tokenizer().encode(" \t\n ").empty());
  const auto ids = tokenizer().tokenize({""});
  EXPECT_EQ(ids.row(0)[0], ClipTokenizer::start_of_text);
  EXPECT_EQ(ids.row(0)[1], ClipTokenizer::end_of_text);
  EXPECT_EQ(ids.row(0)[2], 0);
  const auto none = tokenizer().tokenize({});
  EXPECT_EQ(none.num_texts, 0u);
  EXPECT_TRUE(none.ids.empty());
}

TEST(ClipTokenizer, MessagesEscapeControlCharacters) {
  std::string text = "tab\there\nnul";
  text += '\0';
  for (int i = 0; i < 80; ++i) text += " x";
  EXPECT_EQ(error_message([&] { tokenizer().tokenize({text}); }, ErrorKind::usage),
            "text 0 'tab\\there\\nnul\\x00 x x x x x x x x x x x x x x x x x x x x x x x ...' "
            "is too long for the context length 77: 86 tokens with <|startoftext|> and "
            "<|endoftext|> (truncate it to keep the first 77)");
}

TEST(ClipTokenizer, ContextLengthBelowTwoIsAUsageError) {
  EXPECT_EQ(error_message([&] { tokenizer().tokenize({"a"}, 1); }, ErrorKind::usage),
            "context length 1 is too small: the start and end tokens need 2");
}

TEST(ClipTokenizer, InvalidUtf8IsAUsageError) {
  const std::string message =
      error_message([&] { tokenizer().encode("caf\xC3 au lait"); }, ErrorKind::usage);
  EXPECT_EQ(message, "text 'caf\xEF\xBF\xBD au lait' is not valid UTF-8: byte 3 (0xC3) of 12");
  EXPECT_EQ(error_message([&] { tokenizer().decode({49408}); }, ErrorKind::usage),
            "token id 49408 is outside the CLIP vocabulary [0, 49408)");
}

TEST(ClipTokenizer, MissingOrDamagedVocabularyNamesThePath) {
  tv_test::TempDir dir;
  const fs::path missing = dir / "none.txt.gz";
  EXPECT_EQ(error_message([&] { ClipTokenizer t(missing); }, ErrorKind::input),
            "CLIP vocabulary '" + missing.string() +
                "' not found (expected OpenAI's bpe_simple_vocab_16e6.txt.gz)");

  const fs::path plain = dir / "plain.txt.gz";
  std::ofstream(plain) << "#version: 0.2\ni n\n";
  EXPECT_EQ(error_message([&] { ClipTokenizer t(plain); }, ErrorKind::input),
            "CLIP vocabulary '" + plain.string() +
                "' is not gzip-compressed (expected OpenAI's bpe_simple_vocab_16e6.txt.gz)");

  const fs::path truncated = dir / "truncated.txt.gz";
  const std::string bytes = tv_test::read_file(vocabulary());
  std::ofstream(truncated, std::ios::binary).write(bytes.data(), 100000);
  EXPECT_EQ(error_message([&] { ClipTokenizer t(truncated); }, ErrorKind::input),
            "CLIP vocabulary '" + truncated.string() + "' is damaged: unexpected end of file");

  const fs::path corrupt = dir / "corrupt.txt.gz";
  std::string flipped = bytes;
  flipped[5000] = static_cast<char>(flipped[5000] ^ 0x55);
  std::ofstream(corrupt, std::ios::binary).write(flipped.data(), static_cast<long>(flipped.size()));
  const std::string message = error_message([&] { ClipTokenizer t(corrupt); }, ErrorKind::input);
  EXPECT_EQ(message.rfind("CLIP vocabulary '" + corrupt.string() + "' is damaged: ", 0), 0u)
      << message;

  EXPECT_EQ(error_message([&] { ClipTokenizer t(dir.path()); }, ErrorKind::input),
            "CLIP vocabulary '" + dir.path().string() +
                "' is not a file (expected OpenAI's bpe_simple_vocab_16e6.txt.gz)");

  const fs::path unknown = dir / "unknown.txt.gz";
  std::string content = read_gzip(vocabulary());
  const std::size_t line3 = content.find('\n', content.find('\n') + 1) + 1;
  content.replace(line3, content.find('\n', line3) - line3, "in \xE4\xB8\xAD");
  write_gzip(unknown, content);
  EXPECT_EQ(error_message([&] { ClipTokenizer t(unknown); }, ErrorKind::input),
            "CLIP vocabulary '" + unknown.string() + "' is damaged: line 3: unknown symbol '\xE4\xB8\xAD'");

  const fs::path short_file = dir / "short.txt.gz";
  write_gzip(short_file, "#version: 0.2\ni n\nt h\n");
  EXPECT_EQ(error_message([&] { ClipTokenizer t(short_file); }, ErrorKind::input),
            "CLIP vocabulary '" + short_file.string() +
                "' is damaged: line 4: the file ends after 2 merges, 48894 expected");

  const fs::path bad_line = dir / "bad_line.txt.gz";
  write_gzip(bad_line, "#version: 0.2\ni n\nthree symbols here\n");
  EXPECT_EQ(error_message([&] { ClipTokenizer t(bad_line); }, ErrorKind::input),
            "CLIP vocabulary '" + bad_line.string() +
                "' is damaged: line 3: expected two symbols separated by one space, got "
                "'three symbols here'");
}

TEST(ClipTokenizer, DefaultVocabularyFromEnvironmentOrSourceTree) {
  tv_test::TempDir dir;
  fs::create_directories(dir / "clip");
  fs::copy_file(vocabulary(), dir / "clip/bpe_simple_vocab_16e6.txt.gz");
  ASSERT_EQ(setenv("THINGSVISION_DATA_DIR", dir.path().c_str(), 1), 0);
  EXPECT_EQ(ClipTokenizer::default_vocabulary_path(), dir / "clip/bpe_simple_vocab_16e6.txt.gz");
  EXPECT_EQ(ClipTokenizer().encode("a bird"), (std::vector<std::int64_t>{320, 3329}));

  const fs::path empty = dir / "empty";
  ASSERT_EQ(setenv("THINGSVISION_DATA_DIR", empty.c_str(), 1), 0);
  EXPECT_EQ(error_message([] { ClipTokenizer::default_vocabulary_path(); }, ErrorKind::input),
            "CLIP vocabulary '" + (empty / "clip/bpe_simple_vocab_16e6.txt.gz").string() +
                "' not found (THINGSVISION_DATA_DIR is set to '" + empty.string() + "')");

  ASSERT_EQ(unsetenv("THINGSVISION_DATA_DIR"), 0);
  EXPECT_TRUE(fs::equivalent(ClipTokenizer::default_vocabulary_path(), vocabulary()));
}

TEST(ClipTokenizer, ConcurrentEncodingMatchesSerial) {
  const std::vector<std::string> texts = {"a photo of a cat.", "naïve café résumé",
                                          "猫の写真 👍🏽", "fish &amp; chips it’s 1234"};
  std::vector<std::vector<std::int64_t>> serial;
  for (const auto& text : texts) serial.push_back(tokenizer().encode(text));
  const ClipTokenizer fresh(vocabulary());  // empty cache: threads fill it at the same time
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        for (std::size_t i = 0; i < texts.size(); ++i) {
          if (fresh.encode(texts[(i + t) % texts.size()]) != serial[(i + t) % texts.size()]) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(ClipTokenizer, MovedTokenizerStillWorks) {
  ClipTokenizer a(vocabulary());
  ClipTokenizer b(std::move(a));
  EXPECT_EQ(b.encode("a bird"), (std::vector<std::int64_t>{320, 3329}));
  EXPECT_EQ(b.vocabulary_path(), vocabulary());
}

}  // namespace
