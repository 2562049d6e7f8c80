// clip_tokenizer.cpp — CLIP's text clean-up (an ftfy subset, HTML entities, ICU case mapping and
// categories), the regex split as a hand-written scanner, and byte-level BPE over OpenAI's vocabulary.
#include "thingsvision/clip_tokenizer.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "thingsvision/error.hpp"
#include "core/utf8.hpp"

namespace thingsvision {
namespace {

namespace fs = std::filesystem;
using Text = std::u32string;

constexpr const char* vocabulary_file_name = "bpe_simple_vocab_16e6.txt.gz";
// = the merges SimpleTokenizer keeps: lines [1, 49152 - 256 - 2 + 1) of the file.
constexpr std::size_t num_merges = 49152 - 256 - 2;
constexpr char32_t replacement_character = 0xFFFD;

// ------------------------------------------------------------------------------------------------
// UTF-8 <-> UTF-32

using detail::append_utf8;

std::string to_utf8(const Text& text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : text) append_utf8(out, c);
  return out;
}

// The well-formed UTF-8 sequence at s[i]: its length (> 0) and code point `c`; or, when ill-formed,
// minus the length of its maximal subpart (what Python's errors="replace" turns into one U+FFFD).
int next_utf8(std::string_view s, std::size_t i, char32_t& c) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    c = b0;
    return 1;
  }
  int length = 0;
  unsigned char low = 0x80, high = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
    c = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    c = b0 & 0x0F;
    if (b0 == 0xE0) low = 0xA0;
    if (b0 == 0xED) high = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    c = b0 & 0x07;
    if (b0 == 0xF0) low = 0x90;
    if (b0 == 0xF4) high = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k < length; ++k) {
    if (i + k >= s.size()) return -k;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? low : 0x80) || b > (k == 1 ? high : 0xBF)) return -k;
    c = (c << 6) | (b & 0x3F);
  }
  return length;
}

Text from_utf8_lossy(std::string_view s) {
  Text out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t c = 0;
    const int length = next_utf8(s, i, c);
    out += length > 0 ? c : replacement_character;
    i += static_cast<std::size_t>(length > 0 ? length : -length);
  }
  return out;
}

// At most `max_chars` code points of `text` for messages, with "..." when cut; control characters
// are escaped (a NUL would end what()).
std::string shorten(const Text& text, std::size_t max_chars = 60) {
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < max_chars; ++i) {
    const char32_t c = text[i];
    if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\t') {
      out += "\\t";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) {
      out += fmt::format("\\x{:02X}", static_cast<unsigned>(c));
    } else {
      append_utf8(out, c);
    }
  }
  return text.size() > max_chars ? out + "..." : out;
}

Text from_utf8_checked(const std::string& text) {
  Text out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    char32_t c = 0;
    const int length = next_utf8(text, i, c);
    if (length <= 0) {
      throw Error(ErrorKind::usage,
                  fmt::format("text '{}' is not valid UTF-8: byte {} (0x{:02X}) of {}",
                              shorten(from_utf8_lossy(text)), i,
                              static_cast<unsigned char>(text[i]), text.size()));
    }
    out += c;
    i += static_cast<std::size_t>(length);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// ICU: normalization, case mapping, character classes

icu::UnicodeString to_icu(const Text& text) {
  icu::UnicodeString out;
  for (const char32_t c : text) out.append(static_cast<UChar32>(c));
  return out;
}

Text from_icu(const icu::UnicodeString& text) {
  Text out;
  out.reserve(static_cast<std::size_t>(text.length()));
  for (int32_t i = 0; i < text.length(); i = text.moveIndex32(i, 1)) {
    out += static_cast<char32_t>(text.char32At(i));
  }
  return out;
}

enum class Normalization { nfc, nfkc };

Text normalize(const Text& text, Normalization form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = form == Normalization::nfc
                                           ? icu::Normalizer2::getNFCInstance(status)
                                           : icu::Normalizer2::getNFKCInstance(status);
  if (U_FAILURE(status)) {
    throw Error(ErrorKind::internal, fmt::format("ICU normalizer unavailable: {}; internal error, "
                                                 "please report", u_errorName(status)));
  }
  const icu::UnicodeString source = to_icu(text);
  if (normalizer->isNormalized(source, status) && U_SUCCESS(status)) return text;
  status = U_ZERO_ERROR;
  const icu::UnicodeString result = normalizer->normalize(source, status);
  if (U_FAILURE(status)) {
    throw Error(ErrorKind::internal, fmt::format("ICU normalization failed: {}; internal error, "
                                                 "please report", u_errorName(status)));
  }
  return from_icu(result);
}

// Full Unicode case mappings, language-independent, with Final_Sigma (= Python's str.lower/upper).
Text to_lower(const Text& text) {
  icu::UnicodeString s = to_icu(text);
  s.toLower(icu::Locale::getRoot());
  return from_icu(s);
}

Text to_upper(const Text& text) {
  icu::UnicodeString s = to_icu(text);
  s.toUpper(icu::Locale::getRoot());
  return from_icu(s);
}

bool in_categories(char32_t c, uint32_t mask) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & mask) != 0;
}
// [\p{L}] and [\p{N}] under re.IGNORECASE: the character or its simple case folding is in the class
// (this adds only U+0345 COMBINING GREEK YPOGEGRAMMENI, which folds to the letter U+03B9).
bool in_categories_ignoring_case(char32_t c, uint32_t mask) {
  return in_categories(c, mask) ||
         in_categories(static_cast<char32_t>(u_foldCase(static_cast<UChar32>(c), U_FOLD_CASE_DEFAULT)), mask);
}
bool is_letter(char32_t c) { return in_categories_ignoring_case(c, U_GC_L_MASK); }
bool is_number(char32_t c) { return in_categories_ignoring_case(c, U_GC_N_MASK); }
bool is_decimal(char32_t c) { return in_categories(c, U_GC_ND_MASK); }  // Python re's \d
// \s: the Unicode White_Space property (regex's \s; Python's isspace() adds U+001C..U+001F, which
// ftfy's remove_control_chars has already removed).
bool is_space(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0; }

// ------------------------------------------------------------------------------------------------
// HTML character references (Python's html.unescape, ftfy's unescape_html)

struct NamedEntity {
  const char* name;
  char32_t value;
  bool legacy;  // also recognised without the ';' (HTML5's legacy names)
};

// = html.entities.name2codepoint (HTML 4) + AMP COPY GT LT QUOT REG apos, values from
// html.entities.html5 (so lang/rang are U+27E8/U+27E9); sorted by name (byte order).
constexpr NamedEntity named_entities[] = {
    {"AElig", 0xC6, true}, {"AMP", 0x26, true}, {"Aacute", 0xC1, true}, {"Acirc", 0xC2, true},
    {"Agrave", 0xC0, true}, {"Alpha", 0x391, false}, {"Aring", 0xC5, true}, {"Atilde", 0xC3, true},
    {"Auml", 0xC4, true}, {"Beta", 0x392, false}, {"COPY", 0xA9, true}, {"Ccedil", 0xC7, true},
    {"Chi", 0x3A7, false}, {"Dagger", 0x2021, false}, {"Delta", 0x394, false}, {"ETH", 0xD0, true},
    {"Eacute", 0xC9, true}, {"Ecirc", 0xCA, true}, {"Egrave", 0xC8, true},
    {"Epsilon", 0x395, false}, {"Eta", 0x397, false}, {"Euml", 0xCB, true}, {"GT", 0x3E, true},
    {"Gamma", 0x393, false}, {"Iacute", 0xCD, true}, {"Icirc", 0xCE, true}, {"Igrave", 0xCC, true},
    {"Iota", 0x399, false}, {"Iuml", 0xCF, true}, {"Kappa", 0x39A, false}, {"LT", 0x3C, true},
    {"Lambda", 0x39B, false}, {"Mu", 0x39C, false}, {"Ntilde", 0xD1, true}, {"Nu", 0x39D, false},
    {"OElig", 0x152, false}, {"Oacute", 0xD3, true}, {"Ocirc", 0xD4, true}, {"Ograve", 0xD2, true},
    {"Omega", 0x3A9, false}, {"Omicron", 0x39F, false}, {"Oslash", 0xD8, true},
    {"Otilde", 0xD5, true}, {"Ouml", 0xD6, true}, {"Phi", 0x3A6, false}, {"Pi", 0x3A0, false},
    {"Prime", 0x2033, false}, {"Psi", 0x3A8, false}, {"QUOT", 0x22, true}, {"REG", 0xAE, true},
    {"Rho", 0x3A1, false}, {"Scaron", 0x160, false}, {"Sigma", 0x3A3, false},
    {"THORN", 0xDE, true}, {"Tau", 0x3A4, false}, {"Theta", 0x398, false}, {"Uacute", 0xDA, true},
    {"Ucirc", 0xDB, true}, {"Ugrave", 0xD9, true}, {"Upsilon", 0x3A5, false}, {"Uuml", 0xDC, true},
    {"Xi", 0x39E, false}, {"Yacute", 0xDD, true}, {"Yuml", 0x178, false}, {"Zeta", 0x396, false},
    {"aacute", 0xE1, true}, {"acirc", 0xE2, true}, {"acute", 0xB4, true}, {"aelig", 0xE6, true},
    {"agrave", 0xE0, true}, {"alefsym", 0x2135, false}, {"alpha", 0x3B1, false},
    {"amp", 0x26, true}, {"and", 0x2227, false}, {"ang", 0x2220, false}, {"apos", 0x27, false},
    {"aring", 0xE5, true}, {"asymp", 0x2248, false}, {"atilde", 0xE3, true}, {"auml", 0xE4, true},
    {"bdquo", 0x201E, false}, {"beta", 0x3B2, false}, {"brvbar", 0xA6, true},
    {"bull", 0x2022, false}, {"cap", 0x2229, false}, {"ccedil", 0xE7, true}, {"cedil", 0xB8, true},
    {"cent", 0xA2, true}, {"chi", 0x3C7, false}, {"circ", 0x2C6, false}, {"clubs", 0x2663, false},
    {"cong", 0x2245, false}, {"copy", 0xA9, true}, {"crarr", 0x21B5, false},
    {"cup", 0x222A, false}, {"curren", 0xA4, true}, {"dArr", 0x21D3, false},
    {"dagger", 0x2020, false}, {"darr", 0x2193, false}, {"deg", 0xB0, true},
    {"delta", 0x3B4, false}, {"diams", 0x2666, false}, {"divide", 0xF7, true},
    {"eacute", 0xE9, true}, {"ecirc", 0xEA, true}, {"egrave", 0xE8, true},
    {"empty", 0x2205, false}, {"emsp", 0x2003, false}, {"ensp", 0x2002, false},
    {"epsilon", 0x3B5, false}, {"equiv", 0x2261, false}, {"eta", 0x3B7, false},
    {"eth", 0xF0, true}, {"euml", 0xEB, true}, {"euro", 0x20AC, false}, {"exist", 0x2203, false},
    {"fnof", 0x192, false}, {"forall", 0x2200, false}, {"frac12", 0xBD, true},
    {"frac14", 0xBC, true}, {"frac34", 0xBE, true}, {"frasl", 0x2044, false},
    {"gamma", 0x3B3, false}, {"ge", 0x2265, false}, {"gt", 0x3E, true}, {"hArr", 0x21D4, false},
    {"harr", 0x2194, false}, {"hearts", 0x2665, false}, {"hellip", 0x2026, false},
    {"iacute", 0xED, true}, {"icirc", 0xEE, true}, {"iexcl", 0xA1, true}, {"igrave", 0xEC, true},
    {"image", 0x2111, false}, {"infin", 0x221E, false}, {"int", 0x222B, false},
    {"iota", 0x3B9, false}, {"iquest", 0xBF, true}, {"isin", 0x2208, false}, {"iuml", 0xEF, true},
    {"kappa", 0x3BA, false}, {"lArr", 0x21D0, false}, {"lambda", 0x3BB, false},
    {"lang", 0x27E8, false}, {"laquo", 0xAB, true}, {"larr", 0x2190, false},
    {"lceil", 0x2308, false}, {"ldquo", 0x201C, false}, {"le", 0x2264, false},
    {"lfloor", 0x230A, false}, {"lowast", 0x2217, false}, {"loz", 0x25CA, false},
    {"lrm", 0x200E, false}, {"lsaquo", 0x2039, false}, {"lsquo", 0x2018, false},
    {"lt", 0x3C, true}, {"macr", 0xAF, true}, {"mdash", 0x2014, false}, {"micro", 0xB5, true},
    {"middot", 0xB7, true}, {"minus", 0x2212, false}, {"mu", 0x3BC, false},
    {"nabla", 0x2207, false}, {"nbsp", 0xA0, true}, {"ndash", 0x2013, false},
    {"ne", 0x2260, false}, {"ni", 0x220B, false}, {"not", 0xAC, true}, {"notin", 0x2209, false},
    {"nsub", 0x2284, false}, {"ntilde", 0xF1, true}, {"nu", 0x3BD, false}, {"oacute", 0xF3, true},
    {"ocirc", 0xF4, true}, {"oelig", 0x153, false}, {"ograve", 0xF2, true},
    {"oline", 0x203E, false}, {"omega", 0x3C9, false}, {"omicron", 0x3BF, false},
    {"oplus", 0x2295, false}, {"or", 0x2228, false}, {"ordf", 0xAA, true}, {"ordm", 0xBA, true},
    {"oslash", 0xF8, true}, {"otilde", 0xF5, true}, {"otimes", 0x2297, false},
    {"ouml", 0xF6, true}, {"para", 0xB6, true}, {"part", 0x2202, false}, {"permil", 0x2030, false},
    {"perp", 0x22A5, false}, {"phi", 0x3C6, false}, {"pi", 0x3C0, false}, {"piv", 0x3D6, false},
    {"plusmn", 0xB1, true}, {"pound", 0xA3, true}, {"prime", 0x2032, false},
    {"prod", 0x220F, false}, {"prop", 0x221D, false}, {"psi", 0x3C8, false}, {"quot", 0x22, true},
    {"rArr", 0x21D2, false}, {"radic", 0x221A, false}, {"rang", 0x27E9, false},
    {"raquo", 0xBB, true}, {"rarr", 0x2192, false}, {"rceil", 0x2309, false},
    {"rdquo", 0x201D, false}, {"real", 0x211C, false}, {"reg", 0xAE, true},
    {"rfloor", 0x230B, false}, {"rho", 0x3C1, false}, {"rlm", 0x200F, false},
    {"rsaquo", 0x203A, false}, {"rsquo", 0x2019, false}, {"sbquo", 0x201A, false},
    {"scaron", 0x161, false}, {"sdot", 0x22C5, false}, {"sect", 0xA7, true}, {"shy", 0xAD, true},
    {"sigma", 0x3C3, false}, {"sigmaf", 0x3C2, false}, {"sim", 0x223C, false},
    {"spades", 0x2660, false}, {"sub", 0x2282, false}, {"sube", 0x2286, false},
    {"sum", 0x2211, false}, {"sup", 0x2283, false}, {"sup1", 0xB9, true}, {"sup2", 0xB2, true},
    {"sup3", 0xB3, true}, {"supe", 0x2287, false}, {"szlig", 0xDF, true}, {"tau", 0x3C4, false},
    {"there4", 0x2234, false}, {"theta", 0x3B8, false}, {"thetasym", 0x3D1, false},
    {"thinsp", 0x2009, false}, {"thorn", 0xFE, true}, {"tilde", 0x2DC, false},
    {"times", 0xD7, true}, {"trade", 0x2122, false}, {"uArr", 0x21D1, false},
    {"uacute", 0xFA, true}, {"uarr", 0x2191, false}, {"ucirc", 0xFB, true}, {"ugrave", 0xF9, true},
    {"uml", 0xA8, true}, {"upsih", 0x3D2, false}, {"upsilon", 0x3C5, false}, {"uuml", 0xFC, true},
    {"weierp", 0x2118, false}, {"xi", 0x3BE, false}, {"yacute", 0xFD, true}, {"yen", 0xA5, true},
    {"yuml", 0xFF, true}, {"zeta", 0x3B6, false}, {"zwj", 0x200D, false}, {"zwnj", 0x200C, false},
};

const NamedEntity* find_entity(const Text& name) {
  std::string ascii;
  for (const char32_t c : name) {
    if (c >= 0x80) return nullptr;
    ascii += static_cast<char>(c);
  }
  const auto* end = std::end(named_entities);
  const auto* it = std::lower_bound(std::begin(named_entities), end, ascii,
                                    [](const NamedEntity& e, const std::string& key) {
                                      return std::strcmp(e.name, key.c_str()) < 0;
                                    });
  return it != end && ascii == it->name ? it : nullptr;
}

// = html._invalid_charrefs for 0x80..0x9F: Windows-1252, the five undefined bytes kept as C1
// controls (= ftfy's "sloppy-windows-1252", used by fix_c1_controls too).
constexpr char32_t windows_1252_c1[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

// = html._replace_charref for a numeric reference (num saturates above U+10FFFF).
Text numeric_reference(std::uint32_t num) {
  if (num == 0) return Text(1, replacement_character);
  if (num == 0x0D) return U"\r";
  if (num >= 0x80 && num <= 0x9F) return Text(1, windows_1252_c1[num - 0x80]);
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return Text(1, replacement_character);
  const bool invalid = (num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
                       (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) ||
                       (num & 0xFFFE) == 0xFFFE;
  return invalid ? Text() : Text(1, static_cast<char32_t>(num));
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_ascii_alnum(char32_t c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
std::uint32_t hex_value(char32_t c) {
  return is_ascii_digit(c) ? c - '0' : (c >= 'a' ? c - 'a' + 10 : c - 'A' + 10);
}

// `s` with each '&' handed to `reference(i, out)`, which appends what the text from s[i] stands for
// (the '&' alone when nothing) and returns the index after what it used (> i).
template <typename Reference>
Text replace_references(const Text& s, Reference&& reference) {
  if (s.find(U'&') == Text::npos) return s;
  Text out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == U'&') {
      i = reference(i, out);
    } else {
      out += s[i++];
    }
  }
  return out;
}

// Python's html.unescape: '&' + (#[0-9]+;? | #[xX][0-9a-fA-F]+;? | [^\t\n\f <&#;]{1,32};?).
Text html_unescape(const Text& s) {
  const std::size_t n = s.size();
  return replace_references(s, [&](const std::size_t i, Text& out) -> std::size_t {
    const std::size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      const bool hex = j + 1 < n && (s[j + 1] == U'x' || s[j + 1] == U'X');
      std::size_t k = hex ? j + 2 : j + 1;
      const std::size_t digits_begin = k;
      std::uint32_t num = 0;
      while (k < n && (hex ? is_ascii_hex(s[k]) : is_ascii_digit(s[k]))) {
        num = std::min<std::uint32_t>(num * (hex ? 16 : 10) + (hex ? hex_value(s[k]) : s[k] - '0'),
                                      0x110000);
        ++k;
      }
      if (k == digits_begin) {  // "&#" or "&#x" without digits: no reference ('#' ends a name)
        out += s[i];
        return i + 1;
      }
      if (k < n && s[k] == U';') ++k;
      out += numeric_reference(num);
      return k;
    }
    std::size_t k = j;
    const auto in_name = [](char32_t c) {
      return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' &&
             c != U'#' && c != U';';
    };
    while (k < n && k - j < 32 && in_name(s[k])) ++k;
    if (k == j) {
      out += s[i];
      return i + 1;
    }
    const Text name = s.substr(j, k - j);
    const bool semicolon = k < n && s[k] == U';';
    const std::size_t end = semicolon ? k + 1 : k;
    const NamedEntity* entity = find_entity(name);
    if (entity && (semicolon || entity->legacy)) {
      out += entity->value;
      return end;
    }
    // The longest legacy name that is a prefix (at least 2 characters), the rest kept as text.
    for (std::size_t x = semicolon ? name.size() : name.size() - 1; x >= 2; --x) {
      const NamedEntity* prefix = find_entity(name.substr(0, x));
      if (prefix && prefix->legacy) {
        out += prefix->value;
        out += s.substr(j + x, end - (j + x));
        return end;
      }
    }
    out += s.substr(i, end - i);
    return end;
  });
}

// ftfy's unescape_html: each "&#?[0-9A-Za-z]{1,24};" that is an HTML5 entity (or a lower-case
// entity written in upper case, decoded upper-cased), or a numeric reference consuming its ';'.
Text ftfy_unescape_html(const Text& s) {
  const std::size_t n = s.size();
  return replace_references(s, [&](const std::size_t i, Text& out) -> std::size_t {
    const bool numeric = i + 1 < n && s[i + 1] == U'#';
    const std::size_t name_begin = numeric ? i + 2 : i + 1;
    std::size_t k = name_begin;
    while (k < n && k - name_begin <= 24 && is_ascii_alnum(s[k])) ++k;
    const std::size_t length = k - name_begin;
    if (length == 0 || length > 24 || k >= n || s[k] != U';') {
      out += s[i];
      return i + 1;
    }
    const Text match = s.substr(i, k + 1 - i);
    const Text name = s.substr(name_begin, length);
    if (numeric) {
      const Text unescaped = html_unescape(match);
      out += unescaped.find(U';') == Text::npos ? unescaped : match;
      return k + 1;
    }
    if (const NamedEntity* entity = find_entity(name)) {
      out += entity->value;
      return k + 1;
    }
    Text lower = name;
    for (char32_t& c : lower) {
      if (c >= 'A' && c <= 'Z') c = c - 'A' + 'a';
    }
    const NamedEntity* entity = lower != name ? find_entity(lower) : nullptr;
    bool all_upper = true;
    for (const char32_t c : name) all_upper = all_upper && !(c >= 'a' && c <= 'z');
    if (entity && all_upper && html_unescape(match) == match) {
      out += to_upper(Text(1, entity->value));
    } else {
      out += match;
    }
    return k + 1;
  });
}

// ------------------------------------------------------------------------------------------------
// ftfy.fix_text, the parts that matter for ordinary text (see docs/clip_tokenizer.md)

Text fix_c1_controls(Text text) {
  for (char32_t& c : text) {
    if (c >= 0x80 && c <= 0x9F) c = windows_1252_c1[c - 0x80];
  }
  return text;
}

Text fix_latin_ligatures(const Text& text) {
  static const std::unordered_map<char32_t, Text> ligatures = {
      {0x0132, U"IJ"}, {0x0133, U"ij"}, {0x0149, U"\u02BCn"}, {0x01F1, U"DZ"}, {0x01F2, U"Dz"},
      {0x01F3, U"dz"}, {0x01C4, U"D\u017D"}, {0x01C5, U"D\u017E"}, {0x01C6, U"d\u017E"},
      {0x01C7, U"LJ"}, {0x01C8, U"Lj"}, {0x01C9, U"lj"}, {0x01CA, U"NJ"}, {0x01CB, U"Nj"},
      {0x01CC, U"nj"}, {0xFB00, U"ff"}, {0xFB01, U"fi"}, {0xFB02, U"fl"}, {0xFB03, U"ffi"},
      {0xFB04, U"ffl"}, {0xFB05, U"\u017Ft"}, {0xFB06, U"st"}};
  Text out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    const auto it = ligatures.find(c);
    if (it == ligatures.end()) {
      out += c;
    } else {
      out += it->second;
    }
  }
  return out;
}

// U+3000 → ' ' and every U+FF01..U+FFEF that NFKC changes → its NFKC form (ftfy's WIDTH_MAP).
Text fix_character_width(const Text& text) {
  static const std::vector<Text> width_map = [] {
    std::vector<Text> map(0xFFF0 - 0xFF01);
    for (char32_t c = 0xFF01; c < 0xFFF0; ++c) {
      const Text alternate = normalize(Text(1, c), Normalization::nfkc);
      if (alternate != Text(1, c)) map[c - 0xFF01] = alternate;
    }
    return map;
  }();
  Text out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    if (c == 0x3000) {
      out += U' ';
    } else if (c >= 0xFF01 && c < 0xFFF0 && !width_map[c - 0xFF01].empty()) {
      out += width_map[c - 0xFF01];
    } else {
      out += c;
    }
  }
  return out;
}

Text uncurl_quotes(Text text) {
  for (char32_t& c : text) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
  return text;
}

Text fix_line_breaks(const Text& text) {
  Text out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\r' && i + 1 < text.size() && text[i + 1] == U'\n') continue;  // \r\n → \n
    out += (c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x0085) ? U'\n' : c;
  }
  return out;
}

// Removes ANSI escapes "\033[" (\d|;)* [a-zA-Z].
Text remove_terminal_escapes(const Text& text) {
  Text out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == U'[') {
      std::size_t k = i + 2;
      while (k < text.size() && (text[k] == U';' || is_decimal(text[k]))) ++k;
      if (k < text.size() && ((text[k] >= 'a' && text[k] <= 'z') || (text[k] >= 'A' && text[k] <= 'Z'))) {
        i = k + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

Text remove_control_chars(const Text& text) {
  Text out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    const bool control = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
    if (!control) out += c;
  }
  return out;
}

// One line of ftfy's fix_and_explain: the fixers in ftfy's order until nothing changes.
Text fix_segment(Text text, bool unescape_html) {
  for (;;) {
    const Text original = text;
    if (unescape_html) text = ftfy_unescape_html(text);
    text = fix_c1_controls(std::move(text));
    text = fix_latin_ligatures(text);
    text = fix_character_width(text);
    text = uncurl_quotes(std::move(text));
    text = fix_line_breaks(text);
    text = remove_terminal_escapes(text);
    text = remove_control_chars(text);
    text = normalize(text, Normalization::nfc);
    if (text == original) return text;
  }
}

// ftfy.fix_text: line by line; HTML is not unescaped from the first line holding a '<' on.
Text fix_text(const Text& text) {
  Text out;
  bool unescape_html = true;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t newline = text.find(U'\n', pos);
    const std::size_t end = newline == Text::npos ? text.size() : newline + 1;
    const Text segment = text.substr(pos, end - pos);
    if (segment.find(U'<') != Text::npos) unescape_html = false;
    out += fix_segment(segment, unescape_html);
    pos = end;
  }
  return out;
}

Text strip(const Text& text) {
  std::size_t begin = 0, end = text.size();
  while (begin < end && is_space(text[begin])) ++begin;
  while (end > begin && is_space(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

// basic_clean + whitespace_clean + lower(), as in SimpleTokenizer.encode.
Text clean(const Text& text) {
  const Text basic = strip(html_unescape(html_unescape(fix_text(text))));
  Text collapsed;
  for (std::size_t i = 0; i < basic.size();) {
    if (is_space(basic[i])) {
      collapsed += U' ';
      while (i < basic.size() && is_space(basic[i])) ++i;
    } else {
      collapsed += basic[i++];
    }
  }
  return to_lower(strip(collapsed));
}

// ------------------------------------------------------------------------------------------------
// The split: <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (re.IGNORECASE), as a scanner trying the alternatives in order at each position.

// Whether `literal` (ASCII) matches text at `pos`, ignoring case (simple case folding).
bool matches_at(const Text& text, std::size_t pos, std::string_view literal) {
  if (text.size() - pos < literal.size()) return false;
  for (std::size_t k = 0; k < literal.size(); ++k) {
    const auto folded = u_foldCase(static_cast<UChar32>(text[pos + k]), U_FOLD_CASE_DEFAULT);
    if (folded != u_foldCase(static_cast<UChar32>(literal[k]), U_FOLD_CASE_DEFAULT)) return false;
  }
  return true;
}

std::vector<Text> split_words(const Text& text) {
  static constexpr std::string_view literals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t",
                                                  "'re", "'ve", "'m", "'ll", "'d"};
  std::vector<Text> words;
  const std::size_t n = text.size();
  std::size_t pos = 0;
  while (pos < n) {
    const char32_t c = text[pos];
    if (is_space(c)) {
      ++pos;
      continue;
    }
    std::size_t end = pos;
    for (const std::string_view literal : literals) {
      if (matches_at(text, pos, literal)) {
        end = pos + literal.size();
        break;
      }
    }
    if (end == pos) {
      if (is_letter(c)) {
        while (end < n && is_letter(text[end])) ++end;
      } else if (is_number(c)) {
        end = pos + 1;
      } else {
        while (end < n && !is_space(text[end]) && !is_letter(text[end]) && !is_number(text[end])) {
          ++end;
        }
      }
    }
    words.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return words;
}

// ------------------------------------------------------------------------------------------------
// Byte-level symbols (bytes_to_unicode) and the vocabulary

// bytes_to_unicode(): bytes '!'..'~', '¡'..'¬', '®'..'ÿ' map to themselves, the others to U+0100...
// `order` lists the bytes in the dictionary's order, which is the order of the first 256 ids.
struct ByteSymbols {
  std::array<char32_t, 256> character{};
  std::array<std::uint8_t, 256> order{};
  std::unordered_map<char32_t, std::uint8_t> byte_of;
};

const ByteSymbols& byte_symbols() {
  static const ByteSymbols symbols = [] {
    ByteSymbols s;
    std::array<bool, 256> printable{};
    std::size_t count = 0;
    for (int b = 0; b < 256; ++b) {
      printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      if (printable[b]) {
        s.character[b] = static_cast<char32_t>(b);
        s.order[count++] = static_cast<std::uint8_t>(b);
      }
    }
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      if (!printable[b]) {
        s.character[b] = next++;
        s.order[count++] = static_cast<std::uint8_t>(b);
      }
    }
    for (int b = 0; b < 256; ++b) s.byte_of[s.character[b]] = static_cast<std::uint8_t>(b);
    return s;
  }();
  return symbols;
}

std::string read_gzip(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw Error(ErrorKind::input,
                fmt::format("CLIP vocabulary '{}' not found (expected OpenAI's {})", path.string(),
                            vocabulary_file_name));
  }
  if (!fs::is_regular_file(path, ec)) {
    throw Error(ErrorKind::input, fmt::format("CLIP vocabulary '{}' is not a file (expected "
                                              "OpenAI's {})", path.string(), vocabulary_file_name));
  }
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) {
    throw Error(ErrorKind::input, fmt::format("cannot open CLIP vocabulary '{}': {}",
                                              path.string(), std::strerror(errno)));
  }
  std::string content;
  std::array<char, 1 << 16> buffer{};
  int n = 0;
  while ((n = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0) {
    content.append(buffer.data(), static_cast<std::size_t>(n));
  }
  // A truncated stream ends "successfully" with Z_BUF_ERROR ("unexpected end of file") pending.
  int status = Z_OK;
  std::string message = gzerror(file, &status);
  const std::string prefix = path.string() + ": ";
  if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());  // zlib prepends the path
  const bool plain = gzdirect(file) != 0;
  gzclose(file);
  if (plain) {
    throw Error(ErrorKind::input,
                fmt::format("CLIP vocabulary '{}' is not gzip-compressed (expected OpenAI's {})",
                            path.string(), vocabulary_file_name));
  }
  if (n < 0 || status != Z_OK) {
    throw Error(ErrorKind::input, fmt::format("CLIP vocabulary '{}' is damaged: {}",
                                              path.string(), message));
  }
  return content;
}

}  // namespace

// ------------------------------------------------------------------------------------------------

struct ClipTokenizer::Impl {
  fs::path path;
  std::array<std::int32_t, 256> byte_id{};  // id of each byte's symbol; + 256 with "</w>"
  // (left id << 32 | right id) → (rank, id of the merged symbol)
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges;
  std::vector<std::string> symbol_bytes;  // the bytes each id stands for (decode)
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache;

  explicit Impl(const fs::path& vocabulary_path);
  std::vector<std::int32_t> bpe(const std::string& word) const;
};

ClipTokenizer::Impl::Impl(const fs::path& vocabulary_path) : path(vocabulary_path) {
  const std::string content = read_gzip(path);
  const auto damaged = [&](std::size_t line, const std::string& what) {
    return Error(ErrorKind::input, fmt::format("CLIP vocabulary '{}' is damaged: line {}: {}",
                                               path.string(), line, what));
  };
  // Lines 2 .. num_merges + 1 (1-based) hold the merges "left right".
  std::vector<std::pair<std::string_view, std::string_view>> merge_lines;
  merge_lines.reserve(num_merges);
  std::size_t pos = content.find('\n');
  for (std::size_t line = 2; merge_lines.size() < num_merges; ++line) {
    const std::size_t begin = pos == std::string::npos ? content.size() : pos + 1;
    pos = begin < content.size() ? content.find('\n', begin) : std::string::npos;
    const std::string_view text(content.data() + begin,
                                (pos == std::string::npos ? content.size() : pos) - begin);
    if (text.empty() && pos == std::string::npos) {
      throw damaged(line, fmt::format("the file ends after {} merges, {} expected",
                                      merge_lines.size(), num_merges));
    }
    const std::size_t space = text.find(' ');
    if (space == 0 || space == std::string_view::npos || space + 1 == text.size() ||
        text.find_first_of(" \t\r", space + 1) != std::string_view::npos) {
      throw damaged(line, fmt::format("expected two symbols separated by one space, got '{}'",
                                      shorten(from_utf8_lossy(text))));
    }
    merge_lines.emplace_back(text.substr(0, space), text.substr(space + 1));
  }

  // The vocabulary: 256 byte symbols, the same with "</w>", one symbol per merge, two specials.
  const ByteSymbols& bytes = byte_symbols();
  std::vector<std::string> vocabulary;
  vocabulary.reserve(vocabulary_size);
  for (const std::uint8_t b : bytes.order) {
    std::string symbol;
    append_utf8(symbol, bytes.character[b]);
    vocabulary.push_back(symbol);
  }
  for (std::size_t i = 0; i < 256; ++i) vocabulary.push_back(vocabulary[i] + "</w>");
  for (const auto& [left, right] : merge_lines) {
    vocabulary.push_back(std::string(left) + std::string(right));
  }
  vocabulary.emplace_back("<|startoftext|>");
  vocabulary.emplace_back("<|endoftext|>");
  std::unordered_map<std::string, std::int32_t> id_of;  // later duplicates win, as in Python
  for (std::size_t id = 0; id < vocabulary.size(); ++id) {
    id_of[vocabulary[id]] = static_cast<std::int32_t>(id);
  }
  for (std::size_t i = 0; i < 256; ++i) byte_id[bytes.order[i]] = static_cast<std::int32_t>(i);

  merges.reserve(num_merges);
  for (std::size_t rank = 0; rank < num_merges; ++rank) {
    const auto& [left, right] = merge_lines[rank];
    const auto left_id = id_of.find(std::string(left));
    const auto right_id = id_of.find(std::string(right));
    if (left_id == id_of.end() || right_id == id_of.end()) {
      throw damaged(rank + 2, fmt::format("unknown symbol '{}'",
                                          std::string(left_id == id_of.end() ? left : right)));
    }
    const std::uint64_t key = (static_cast<std::uint64_t>(left_id->second) << 32) |
                              static_cast<std::uint32_t>(right_id->second);
    merges[key] = {static_cast<std::int32_t>(rank),
                   id_of.at(std::string(left) + std::string(right))};
  }

  symbol_bytes.reserve(vocabulary.size());
  for (std::size_t id = 0; id < vocabulary.size(); ++id) {
    if (id >= vocabulary.size() - 2) {
      symbol_bytes.push_back(vocabulary[id]);
      continue;
    }
    std::string raw;
    const std::string& symbol = vocabulary[id];
    for (std::size_t i = 0; i < symbol.size();) {
      char32_t c = 0;
      const int length = next_utf8(symbol, i, c);
      const auto it = length > 0 ? bytes.byte_of.find(c) : bytes.byte_of.end();
      if (it == bytes.byte_of.end()) {
        const std::size_t line = id < 512 ? 0 : id - 512 + 2;
        throw damaged(line, fmt::format("'{}' is not made of byte-level symbols",
                                        shorten(from_utf8_lossy(symbol))));
      }
      raw += static_cast<char>(it->second);
      i += static_cast<std::size_t>(length);
    }
    symbol_bytes.push_back(raw);
  }
}

// SimpleTokenizer.bpe: repeatedly merge every occurrence of the lowest-ranked adjacent pair.
std::vector<std::int32_t> ClipTokenizer::Impl::bpe(const std::string& word) const {
  if (word == "<|startoftext|>") return {static_cast<std::int32_t>(start_of_text)};
  if (word == "<|endoftext|>") return {static_cast<std::int32_t>(end_of_text)};
  {
    const std::lock_guard<std::mutex> lock(cache_mutex);
    const auto it = cache.find(word);
    if (it != cache.end()) return it->second;
  }
  std::vector<std::int32_t> symbols;
  symbols.reserve(word.size());
  for (const char byte : word) symbols.push_back(byte_id[static_cast<unsigned char>(byte)]);
  symbols.back() += 256;  // the last symbol carries "</w>"
  std::vector<std::int32_t> merged;
  while (symbols.size() > 1) {
    std::int32_t best_rank = -1;
    std::uint64_t best_key = 0;
    std::int32_t best_id = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      const std::uint64_t key = (static_cast<std::uint64_t>(symbols[i]) << 32) |
                                static_cast<std::uint32_t>(symbols[i + 1]);
      const auto it = merges.find(key);
      if (it != merges.end() && (best_rank < 0 || it->second.first < best_rank)) {
        best_rank = it->second.first;
        best_key = key;
        best_id = it->second.second;
      }
    }
    if (best_rank < 0) break;
    const auto first = static_cast<std::int32_t>(best_key >> 32);
    const auto second = static_cast<std::int32_t>(best_key & 0xFFFFFFFFu);
    merged.clear();
    for (std::size_t i = 0; i < symbols.size();) {
      if (symbols[i] == first && i + 1 < symbols.size() && symbols[i + 1] == second) {
        merged.push_back(best_id);
        i += 2;
      } else {
        merged.push_back(symbols[i++]);
      }
    }
    symbols.swap(merged);
  }
  const std::lock_guard<std::mutex> lock(cache_mutex);
  if (cache.size() >= (1u << 16)) cache.clear();  // bounded; OpenAI's cache grows without limit
  cache.emplace(word, symbols);
  return symbols;
}

// ------------------------------------------------------------------------------------------------

ClipTokenizer::ClipTokenizer() : ClipTokenizer(default_vocabulary_path()) {}

ClipTokenizer::ClipTokenizer(const std::filesystem::path& vocabulary_path)
    : impl_(std::make_unique<Impl>(vocabulary_path)) {}

ClipTokenizer::~ClipTokenizer() = default;
ClipTokenizer::ClipTokenizer(ClipTokenizer&&) noexcept = default;
ClipTokenizer& ClipTokenizer::operator=(ClipTokenizer&&) noexcept = default;

namespace {
const int library_anchor = 0;  // an address inside this library, for dladdr
}  // namespace

std::filesystem::path ClipTokenizer::default_vocabulary_path() {
  const char* data_dir = std::getenv("THINGSVISION_DATA_DIR");
  if (data_dir && *data_dir) {
    const fs::path path = fs::path(data_dir) / "clip" / vocabulary_file_name;
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return path;
    throw Error(ErrorKind::input,
                fmt::format("CLIP vocabulary '{}' not found (THINGSVISION_DATA_DIR is set to '{}')",
                            path.string(), data_dir));
  }
  std::vector<fs::path> candidates;
  Dl_info info{};
  if (dladdr(&library_anchor, &info) != 0 && info.dli_fname) {
    const fs::path library_dir = fs::path(info.dli_fname).parent_path();
    // lib/ or lib/<multiarch>/ beside share/
    candidates.push_back(library_dir.parent_path() / "share/thingsvision/clip" / vocabulary_file_name);
    candidates.push_back(library_dir.parent_path().parent_path() / "share/thingsvision/clip" /
                         vocabulary_file_name);
  }
  candidates.push_back(fs::path(THINGSVISION_INSTALL_DATADIR) / "clip" / vocabulary_file_name);
  candidates.push_back(fs::path(THINGSVISION_SOURCE_DATADIR) / "clip" / vocabulary_file_name);
  std::string searched;
  for (const fs::path& candidate : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate.lexically_normal();
    searched += (searched.empty() ? "" : ", ") + candidate.lexically_normal().string();
  }
  throw Error(ErrorKind::input,
              fmt::format("CLIP vocabulary {} not found; searched {}; pass its path or set "
                          "THINGSVISION_DATA_DIR to the folder holding clip/{}",
                          vocabulary_file_name, searched, vocabulary_file_name));
}

std::vector<std::int64_t> ClipTokenizer::encode(const std::string& text) const {
  std::vector<std::int64_t> ids;
  for (const Text& word : split_words(clean(from_utf8_checked(text)))) {
    for (const std::int32_t id : impl_->bpe(to_utf8(word))) ids.push_back(id);
  }
  return ids;
}

std::string ClipTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::string raw;
  for (const std::int64_t id : ids) {
    if (id < 0 || id >= static_cast<std::int64_t>(impl_->symbol_bytes.size())) {
      throw Error(ErrorKind::usage, fmt::format("token id {} is outside the CLIP vocabulary "
                                                "[0, {})", id, impl_->symbol_bytes.size()));
    }
    raw += impl_->symbol_bytes[static_cast<std::size_t>(id)];
  }
  std::string text = to_utf8(from_utf8_lossy(raw));
  for (std::size_t pos = 0; (pos = text.find("</w>", pos)) != std::string::npos; ++pos) {
    text.replace(pos, 4, " ");
  }
  return text;
}

TokenIds ClipTokenizer::tokenize(const std::vector<std::string>& texts, std::size_t context_length,
                                 TextOverflow overflow) const {
  if (context_length < 2) {
    throw Error(ErrorKind::usage,
                fmt::format("context length {} is too small: the start and end tokens need 2",
                            context_length));
  }
  TokenIds result;
  result.num_texts = texts.size();
  result.context_length = context_length;
  result.ids.assign(texts.size() * context_length, 0);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::vector<std::int64_t> tokens{start_of_text};
    const std::vector<std::int64_t> body = encode(texts[i]);
    tokens.insert(tokens.end(), body.begin(), body.end());
    tokens.push_back(end_of_text);
    if (tokens.size() > context_length) {
      if (overflow == TextOverflow::error) {
        throw Error(ErrorKind::usage,
                    fmt::format("text {} '{}' is too long for the context length {}: {} tokens "
                                "with <|startoftext|> and <|endoftext|> (truncate it to keep the "
                                "first {})",
                                i, shorten(from_utf8_lossy(texts[i])), context_length,
                                tokens.size(), context_length));
      }
      tokens.resize(context_length);
      tokens.back() = end_of_text;
    }
    std::copy(tokens.begin(), tokens.end(), result.ids.begin() + i * context_length);
  }
  return result;
}

const std::filesystem::path& ClipTokenizer::vocabulary_path() const { return impl_->path; }

std::string clip_clean_text(const std::string& text) {
  return to_utf8(clean(from_utf8_checked(text)));
}

}  // namespace thingsvision
