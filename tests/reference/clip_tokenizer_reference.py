#!/usr/bin/python3
"""Reference token ids for tests/text/clip_tokenizer_test.cpp: a re-implementation of OpenAI CLIP's
simple_tokenizer.SimpleTokenizer and clip.tokenize with Python's standard library only.

Usage: /usr/bin/python3 clip_tokenizer_reference.py VOCABULARY.txt.gz SHARED_CASES.jsonl OUT.jsonl

OpenAI's tokenizer needs the `regex` and `ftfy` modules, which Debian's python3 lacks here:
- the split pattern is built for `re` with \\p{L} and \\p{N} spelled out as explicit code point
  ranges taken from unicodedata (Unicode general categories L* and N*);
- ftfy.fix_text is replaced by the same subset of ftfy 6 that src/text/clip_tokenizer.cpp ports
  (HTML entities with the full html5 table, C1 controls, Latin ligatures, character width, curly
  quotes, line breaks, terminal escapes, control characters, NFC; no mojibake repair);
- html.unescape is Python's own.
Before writing anything, it checks itself against every case of SHARED_CASES.jsonl (ids computed
with OpenAI's real tokenizer) and exits 1 on a mismatch. It then writes, for each edge case below,
one JSON line: text, clean (the text encode() splits), ids (encode), decoded (decode of ids),
tokens (the 77-wide row of clip.tokenize, or null with n_tokens when too long) and truncated (the
row with truncate=True).
"""
import gzip
import html
import json
import random
import re
import sys
import unicodedata

CONTEXT_LENGTH = 77

# ------------------------------------------------------------------------------------------------
# ftfy 6 fix_text, the subset for ordinary text (no fix_encoding / mojibake heuristics)


def _build_html_entities():
    # = ftfy.chardata.HTML_ENTITIES
    entities = {}
    for name, char in html.entities.html5.items():
        if name.endswith(";"):
            entities["&" + name] = char
            if name == name.lower():
                name_upper = name.upper()
                entity_upper = "&" + name_upper
                if html.unescape(entity_upper) == entity_upper:
                    entities[entity_upper] = char.upper()
    return entities


HTML_ENTITIES = _build_html_entities()
HTML_ENTITY_RE = re.compile(r"&#?[0-9A-Za-z]{1,24};")


def _unescape_fixup(match):
    text = match.group(0)
    if text in HTML_ENTITIES:
        return HTML_ENTITIES[text]
    if text.startswith("&#"):
        unescaped = html.unescape(text)
        return text if ";" in unescaped else unescaped
    return text


def unescape_html(text):
    return HTML_ENTITY_RE.sub(_unescape_fixup, text)


def fix_c1_controls(text):
    return re.sub(r"[\x80-\x9f]", lambda m: bytes([ord(m.group(0))]).decode("cp1252", "ignore")
                  or m.group(0), text)


LIGATURES = {
    ord("Ĳ"): "IJ", ord("ĳ"): "ij", ord("ŉ"): "ʼn", ord("Ǳ"): "DZ", ord("ǲ"): "Dz",
    ord("ǳ"): "dz", ord("Ǆ"): "DŽ", ord("ǅ"): "Dž", ord("ǆ"): "dž", ord("Ǉ"): "LJ",
    ord("ǈ"): "Lj", ord("ǉ"): "lj", ord("Ǌ"): "NJ", ord("ǋ"): "Nj", ord("ǌ"): "nj",
    ord("ﬀ"): "ff", ord("ﬁ"): "fi", ord("ﬂ"): "fl", ord("ﬃ"): "ffi", ord("ﬄ"): "ffl",
    ord("ﬅ"): "ſt", ord("ﬆ"): "st",
}

WIDTH_MAP = {0x3000: " "}
for _i in range(0xFF01, 0xFFF0):
    _alternate = unicodedata.normalize("NFKC", chr(_i))
    if _alternate != chr(_i):
        WIDTH_MAP[_i] = _alternate

CONTROL_CHARS = {i: None for i in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F,
                                   *range(0x206A, 0x2070), 0xFEFF, *range(0xFFF9, 0xFFFD)]}
ANSI_RE = re.compile("\033\\[((?:\\d|;)*)([a-zA-Z])")


def fix_segment(text, unescape):
    while True:
        original = text
        if unescape:
            text = unescape_html(text)
        text = fix_c1_controls(text)
        text = text.translate(LIGATURES)
        text = text.translate(WIDTH_MAP)
        text = re.sub("[\u02bc\u2018-\u201b]", "'", text)
        text = re.sub("[\u201c-\u201f]", '"', text)
        text = (text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
                .replace("\u2029", "\n").replace("\u0085", "\n"))
        text = ANSI_RE.sub("", text)
        text = text.translate(CONTROL_CHARS)
        text = unicodedata.normalize("NFC", text)
        if text == original:
            return text


def fix_text(text):
    out, pos, unescape = [], 0, True
    while pos < len(text):
        end = text.find("\n", pos) + 1
        if end == 0:
            end = len(text)
        segment = text[pos:end]
        if "<" in segment:
            unescape = False
        out.append(fix_segment(segment, unescape))
        pos = end
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# simple_tokenizer


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def category_class(prefix):
    """A regex character-class body with every code point whose general category starts with prefix."""
    ranges, start, last = [], None, None
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)).startswith(prefix):
            if start is None:
                start = cp
            elif cp != last + 1:
                ranges.append((start, last))
                start = cp
            last = cp
    ranges.append((start, last))
    return "".join("\\U%08x-\\U%08x" % r if r[0] != r[1] else "\\U%08x" % r[0] for r in ranges)


LETTERS, NUMBERS = category_class("L"), category_class("N")
PATTERN = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"
                     "[" + LETTERS + "]+|[" + NUMBERS + "]|[^\\s" + LETTERS + NUMBERS + "]+",
                     re.IGNORECASE)


def clean(text):
    text = fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    text = re.sub(r"\s+", " ", text).strip()
    return text.lower()


class Tokenizer:
    def __init__(self, path):
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        merges = gzip.open(path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in merges[1:49152 - 256 - 2 + 1]]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            merged, i = [], 0
            while i < len(word):
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        result = " ".join(word)
        self.cache[token] = result
        return result

    def encode(self, text):
        ids = []
        for token in PATTERN.findall(clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids

    def decode(self, ids):
        text = "".join(self.decoder[i] for i in ids)
        raw = bytearray(self.byte_decoder[c] for c in text)
        return raw.decode("utf-8", errors="replace").replace("</w>", " ")

    def tokenize(self, text, truncate):
        """clip.tokenize's row for one text, or None when too long and not truncating."""
        tokens = [self.encoder["<|startoftext|>"]] + self.encode(text) + [self.encoder["<|endoftext|>"]]
        if len(tokens) > CONTEXT_LENGTH:
            if not truncate:
                return None, len(tokens)
            tokens = tokens[:CONTEXT_LENGTH]
            tokens[-1] = self.encoder["<|endoftext|>"]
        return tokens + [0] * (CONTEXT_LENGTH - len(tokens)), len(tokens)


EDGE_CASES = [
    # Unicode letters, case, normalization
    "café", "cafe\u0301 déjà vu", "Straße STRASSE ß", "İstanbul ıi", "ΟΔΟΣ ΟΔΟΣ.", "Ωμέγα",
    "猫の写真", "一只猫的照片", "안녕하세요", "\u1100\u1161\u11a8", "Привет, мир!", "مرحبا بالعالم",
    "नमस्ते दुनिया", "สวัสดีครับ", "ǅemal Ǉubljana ŉ", "ﬁne ﬂower ﬃ ﬅ", "Ĳssel",
    "ＡＢＣ１２３！", "ｶﾀｶﾅ ﾊﾟ", "full\u3000width space",
    # emoji
    "a photo of a 🐱", "👍🏽 thumbs", "🇩🇪🇫🇷 flags", "👨\u200d👩\u200d👧 family", "❤️ love", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    # digits, one token each
    "1234567890", "3.14159 and 2,718", "½ ² ³ ٣ ༣ Ⅻ ⅻ ①", "the year 2024", "x1y22z333",
    # contractions and quotes
    "it's they're we've I'm you'll he'd can't", "IT'S DON'T THEY'RE", "'''s ''t 's", "rock 'n' roll",
    "it’s a dog’s life", "“quoted” ‘single’", "\x93c1 quotes\x94 \x85", "o'clock 'tis ' s",
    # HTML entities
    "fish &amp; chips", "it&#39;s", "it&#x27;s &#X27;", "&lt;b&gt;bold&lt;/b&gt;", "&amp;amp;",
    "&amp;amp;amp;amp;", "&amp;lt;", "&copy; 2024 &reg;", "&eacute;t&eacute; &EACUTE;t&EACUTE;",
    "&nbsp;non&nbsp;breaking", "&notit; &notin; &ampx &amp &ampfoo;", "&#128512; &#0; &#x110000;",
    "&#150; &#147;x&#148;", "&unknown; & ; &#; &#x;", "<b>&amp;</b>", "line one\n<i>&amp;</i>",
    "&quot;quoted&quot; &apos;a&apos;", "&SZLIG; &szlig;", "&#59; &#38;amp;", "&Alpha;&alpha;&THETA;",
    # whitespace and control characters
    "  extra   spaces\tand\nnewlines ", "\u00a0nbsp\u2003em\u2028line\u2029para", "a\r\nb\rc",
    "a\x00b\x07c\x0bd\x7fe", "\x1b[31mred\x1b[0m text", "\ufeffbom \u200bzero\u200cwidth",
    "   \n\t ", "",
    # special tokens and punctuation runs
    "<|endoftext|>", "a <|startoftext|> b", "!<|endoftext|>", "<|ENDOFTEXT|>", "!!!???...",
    "hyphen-ated e-mail@example.com", "$100.00 #hashtag @user", "under_score_s", "(a) [b] {c}",
    "C++ and C# and .NET", "https://example.com/a?b=c&d=e",
    # lengths around the context
    " ".join(["a"] * 75), " ".join(["a"] * 76), " ".join(["word"] * 100),
    "a very long prompt " * 30, "12345678901234567890" * 5,
]

# Seeded random texts from pieces that exercise every step (entities, quotes, widths, categories).
PIECES = ["a", "B", "z", "Q", "é", "e\u0301", "ß", "ſ", "İ", "Σ", "ς", "猫", "写真", "한", "\u1100\u1161",
          "ن", "न\u094d", "\u0e31", "\u0345", "\u0300", "🐱", "👍🏽", "\u200d", "🇩🇪", "\ufe0f", "0", "7",
          "٣", "½", "Ⅻ", "①", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\x00",
          "\x07", "\x1b[1m", "\x85", "\x93", "\x9d", "\ufeff", "\u200b", "'", "'s", "'ll", "'S", "'ſ", "’",
          "“", "\u02bc", "!", "?", ".", ",", "-", "_", "<", ">", "|", "<|endoftext|>", "&", ";", "#",
          "&amp;", "&amp", "&lt;", "&#39;", "&#x27;", "&#", "&#x", "&eacute;", "&EACUTE;", "&copy",
          "&notit;", "&nbsp;", "&#128512;", "&#150;", "&#0;", "&bogus;", "ﬁ", "ǆ", "Ａ", "１", "ｶ", "ﾟ"]
_random = random.Random(20240607)
EDGE_CASES += ["".join(_random.choice(PIECES) for _ in range(_random.randint(1, 24)))
               for _ in range(300)]


def prompt_rows(prompts_file, tokenizer, cases=None):
    """The zero-padded token ids of each line of `prompts_file` (a final newline ends the last);
    a prompt that is a text of `cases` ({text: ids}, OpenAI's) takes those ids, which must agree."""
    with open(prompts_file, encoding="utf-8", newline="") as f:
        prompts = f.read().split("\n")
    if prompts and prompts[-1] == "":
        prompts.pop()
    rows = []
    for prompt in prompts:
        row, n = tokenizer.tokenize(prompt, False)
        if row is None:
            sys.exit(f"prompt too long ({n} tokens): {prompt!r}")
        if cases and prompt in cases:
            ids = cases[prompt]
            if row[:len(ids)] != ids:
                sys.exit(f"reference tokenizer disagrees with OpenAI's ids on {prompt!r}")
            row = ids + [0] * (CONTEXT_LENGTH - len(ids))
        rows.append(row)
    return rows


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    vocab, shared_cases, out_path = sys.argv[1:]
    tokenizer = Tokenizer(vocab)
    with open(shared_cases, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            case = json.loads(line)
            ids = [49406] + tokenizer.encode(case["text"]) + [49407]
            if ids != case["ids"]:
                sys.exit(f"reference disagrees with {shared_cases} for {case['text']!r}: "
                         f"{ids} != {case['ids']}")
    with open(out_path + ".tmp", "w", encoding="utf-8") as f:
        for text in EDGE_CASES:
            ids = tokenizer.encode(text)
            tokens, n_tokens = tokenizer.tokenize(text, truncate=False)
            truncated, _ = tokenizer.tokenize(text, truncate=True)
            f.write(json.dumps({"text": text, "clean": clean(text), "ids": ids,
                                "decoded": tokenizer.decode(ids), "tokens": tokens,
                                "n_tokens": n_tokens, "truncated": truncated}) + "\n")
    import os
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
