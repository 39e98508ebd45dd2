// spikelm: tokenizers. ByteTokenizer (the 256 byte values), CharTokenizer (a vocabulary of the distinct
// characters of a text, as SpikeGPT/RWKV-LM build for enwik8, saved as their vocab.json) and
// WordPieceTokenizer (BERT's vocab.txt, matching Hugging Face's BertTokenizer).
#ifndef SPIKELM_IO_TOKENIZER_HPP
#define SPIKELM_IO_TOKENIZER_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "file.hpp"
#include "json.hpp"
#include "utf8.hpp"

#include "detail/unicode_data.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Token ids are 64-bit, as the embedding and cross-entropy ops take them.
using TokenId = std::int64_t;

// ---- bytes ------------------------------------------------------------------------------------------------

/// Every byte is a token: id = byte value (0..255). Encodes any input, decodes back exactly.
class ByteTokenizer {
 public:
  [[nodiscard]] static constexpr std::size_t vocab_size() noexcept { return 256; }
  [[nodiscard]] std::vector<TokenId> encode(std::string_view text) const {
    std::vector<TokenId> ids(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  /// Throws spikelm::Error on an id outside [0, 256).
  [[nodiscard]] std::string decode(std::span<const TokenId> ids) const {
    std::string out(ids.size(), '\0');
    for (std::size_t i = 0; i < ids.size(); ++i) {
      check(ids[i] >= 0 && ids[i] < 256, "ByteTokenizer::decode: id ", ids[i], " at position ", i,
            " is outside [0, 256)");
      out[i] = static_cast<char>(static_cast<unsigned char>(ids[i]));
    }
    return out;
  }
};

// ---- characters -------------------------------------------------------------------------------------------

namespace detail {
/// Python's json.dumps(..., ensure_ascii=False) string escaping.
inline void json_escape_python(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      if (c < 0x20) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
      } else {
        out += ch;
      }
    }
  }
  out += '"';
}

/// Text of a file that is UTF-8 (optionally with a BOM) or UTF-16 with a byte-order mark (as Python's
/// "utf-16" codec writes), converted to UTF-8. Throws naming `where` on malformed input.
inline std::string decode_text_file(const std::string& raw, const std::string& where) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(raw[i]); };
  if (raw.size() >= 2 && ((byte(0) == 0xFF && byte(1) == 0xFE) || (byte(0) == 0xFE && byte(1) == 0xFF))) {
    const bool le = byte(0) == 0xFF;
    check(raw.size() % 2 == 0, where, ": UTF-16 text with an odd number of bytes (", raw.size(), ")");
    const auto unit = [&](std::size_t i) -> char32_t {
      return le ? (static_cast<char32_t>(byte(i + 1)) << 8) | byte(i)
                : (static_cast<char32_t>(byte(i)) << 8) | byte(i + 1);
    };
    std::string out;
    for (std::size_t i = 2; i < raw.size(); i += 2) {
      char32_t u = unit(i);
      if (u >= 0xD800 && u <= 0xDBFF) {
        check(i + 2 < raw.size(), where, ": UTF-16 text ends inside a surrogate pair");
        const char32_t lo = unit(i + 2);
        check(lo >= 0xDC00 && lo <= 0xDFFF, where, ": unpaired UTF-16 high surrogate at byte ", i);
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        i += 2;
      } else {
        check(u < 0xDC00 || u > 0xDFFF, where, ": unpaired UTF-16 low surrogate at byte ", i);
      }
      utf8::append(out, u);
    }
    return out;
  }
  std::string_view s = raw;
  if (s.size() >= 3 && byte(0) == 0xEF && byte(1) == 0xBB && byte(2) == 0xBF) s.remove_prefix(3);
  utf8::validate(s, where);
  return std::string(s);
}

/// UTF-16LE with a byte-order mark.
inline std::string encode_utf16le_bom(std::string_view utf8_text) {
  std::string out = "\xFF\xFE";
  const auto put = [&](char32_t u) {
    out += static_cast<char>(u & 0xFF);
    out += static_cast<char>((u >> 8) & 0xFF);
  };
  std::size_t pos = 0;
  while (pos < utf8_text.size()) {
    const char32_t c = utf8::decode(utf8_text, pos, "encode_utf16le_bom");
    if (c >= 0x10000) {
      put(0xD800 + ((c - 0x10000) >> 10));
      put(0xDC00 + ((c - 0x10000) & 0x3FF));
    } else {
      put(c);
    }
  }
  return out;
}
} // namespace detail

/// A vocabulary of single characters (Unicode code points). from_text() builds SpikeGPT's enwik8 vocabulary:
/// the distinct characters of the text sorted by code point, ids 0..n-1. It is saved as RWKV-LM/SpikeGPT's
/// vocab.json, {"0": "\n", "1": " ", ...} (json.dumps(..., ensure_ascii=False); those projects write it in
/// UTF-16, which load() accepts as well as UTF-8).
class CharTokenizer {
 public:
  CharTokenizer() = default;
  /// The vocabulary `chars` in id order; the characters must be distinct Unicode scalar values.
  explicit CharTokenizer(std::vector<char32_t> chars) : chars_(std::move(chars)) {
    for (std::size_t i = 0; i < chars_.size(); ++i) {
      const char32_t c = chars_[i];
      if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        fail("CharTokenizer: ", utf8::codepoint_name(c), " is not a Unicode scalar value");
      const auto [it, fresh] = ids_.emplace(c, static_cast<TokenId>(i));
      if (!fresh)
        fail("CharTokenizer: character ", utf8::codepoint_name(c), " appears twice (ids ", it->second,
             " and ", i, ")");
    }
  }
  /// The distinct characters of a UTF-8 text, sorted by code point (throws on invalid UTF-8).
  [[nodiscard]] static CharTokenizer from_text(std::string_view text) {
    std::vector<bool> seen_bmp(0x10000, false);
    std::vector<char32_t> chars;
    std::unordered_map<char32_t, bool> seen_high;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const char32_t c = utf8::decode(text, pos, "CharTokenizer::from_text");
      if (c < 0x10000) {
        if (!seen_bmp[c]) seen_bmp[c] = true, chars.push_back(c);
      } else if (seen_high.emplace(c, true).second) {
        chars.push_back(c);
      }
    }
    std::sort(chars.begin(), chars.end());
    return CharTokenizer(std::move(chars));
  }
  /// Parses a vocab.json object {"<id>": "<character>"} whose ids are exactly 0..n-1 (decimal, any order).
  [[nodiscard]] static CharTokenizer from_json(std::string_view json_text,
                                               const std::string& where = "char vocabulary") {
    const nlohmann::json j = parse_json_strict(json_text, where, 1);
    check(j.is_object(), where, ": expected a JSON object {\"id\": \"character\"}");
    const std::size_t n = j.size();
    std::vector<char32_t> chars(n, 0);
    std::vector<bool> have(n, false);
    for (const auto& [key, value] : j.items()) {
      std::size_t id = 0;
      const auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      check(ec == std::errc() && p == key.data() + key.size() && !key.empty() &&
                (key == "0" || key[0] != '0'),
            where, ": key \"", key, "\" is not a decimal id");
      check(id < n, where, ": id ", id, " is out of range for ", n, " entries (ids must be 0..", n - 1, ")");
      check(!have[id], where, ": id ", id, " appears twice");
      check(value.is_string(), where, ": the value of id ", id, " is not a string");
      const auto s = value.get<std::string>();
      std::size_t pos = 0;
      const auto c = utf8::try_decode(s, pos);
      check(c.has_value() && pos == s.size(), where, ": the value of id ", id,
            " is not exactly one character");
      chars[id] = *c;
      have[id] = true;
    }
    try {
      return CharTokenizer(std::move(chars));
    } catch (const Error& e) {
      fail(where, ": ", e.what());
    }
  }
  /// Loads a vocab.json written by save() or by SpikeGPT/RWKV-LM (UTF-8 or UTF-16 with a byte-order mark).
  [[nodiscard]] static CharTokenizer load(const std::filesystem::path& path) {
    const std::string where = detail::concat("char vocabulary '", path.string(), "'");
    return from_json(detail::decode_text_file(read_file(path, std::uint64_t(1) << 30), where), where);
  }

  /// The vocabulary as json.dumps({id: char}, ensure_ascii=False) writes it.
  [[nodiscard]] std::string to_json() const {
    std::string out = "{";
    for (std::size_t i = 0; i < chars_.size(); ++i) {
      if (i) out += ", ";
      out.append(1, '"').append(std::to_string(i)).append("\": ");
      std::string ch;
      utf8::append(ch, chars_[i]);
      detail::json_escape_python(out, ch);
    }
    return out + "}";
  }
  /// Saves to_json() atomically, in UTF-8, or in UTF-16LE with a byte-order mark (what SpikeGPT reads).
  void save(const std::filesystem::path& path, bool utf16 = false) const {
    const std::string text = utf16 ? detail::encode_utf16le_bom(to_json()) : to_json();
    write_file_atomic(path, [&](FileSink& s) { s.write(text); });
  }

  [[nodiscard]] std::size_t vocab_size() const noexcept { return chars_.size(); }
  [[nodiscard]] const std::vector<char32_t>& characters() const noexcept { return chars_; }
  [[nodiscard]] bool contains(char32_t c) const { return ids_.count(c) != 0; }
  /// Id of character c; throws if it is not in the vocabulary.
  [[nodiscard]] TokenId id(char32_t c) const {
    const auto it = ids_.find(c);
    if (it == ids_.end())
      fail("CharTokenizer: character ", utf8::codepoint_name(c), " is not in the vocabulary");
    return it->second;
  }

  /// Ids of the characters of a UTF-8 text. Throws spikelm::Error on invalid UTF-8 and on a character that is
  /// not in the vocabulary (naming it and its byte offset), unless `unknown` gives an id to use instead.
  [[nodiscard]] std::vector<TokenId> encode(std::string_view text,
                                            std::optional<TokenId> unknown = std::nullopt) const {
    if (unknown)
      check(*unknown >= 0 && static_cast<std::size_t>(*unknown) < chars_.size(),
            "CharTokenizer::encode: unknown id ", *unknown, " is outside the vocabulary (", chars_.size(),
            " characters)");
    std::vector<TokenId> ids;
    ids.reserve(text.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t at = pos;
      const char32_t c = utf8::decode(text, pos, "CharTokenizer::encode");
      const auto it = ids_.find(c);
      if (it != ids_.end()) {
        ids.push_back(it->second);
      } else {
        check(unknown.has_value(), "CharTokenizer::encode: character ", utf8::codepoint_name(c), " ('",
              text.substr(at, pos - at), "') at byte ", at, " is not in the vocabulary");
        ids.push_back(*unknown);
      }
    }
    return ids;
  }
  /// The UTF-8 text of `ids`; throws on an id outside the vocabulary.
  [[nodiscard]] std::string decode(std::span<const TokenId> ids) const {
    std::string out;
    out.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      check(ids[i] >= 0 && static_cast<std::size_t>(ids[i]) < chars_.size(), "CharTokenizer::decode: id ",
            ids[i], " at position ", i, " is outside the vocabulary (", chars_.size(), " characters)");
      utf8::append(out, chars_[static_cast<std::size_t>(ids[i])]);
    }
    return out;
  }

 private:
  std::vector<char32_t> chars_;
  std::unordered_map<char32_t, TokenId> ids_;
};

// ---- WordPiece --------------------------------------------------------------------------------------------

namespace detail::unicode {
[[nodiscard]] inline CharClass char_class(char32_t c) noexcept {
  const auto* it =
      std::upper_bound(std::begin(class_starts), std::end(class_starts), static_cast<std::uint32_t>(c));
  return static_cast<CharClass>(class_values[static_cast<std::size_t>(it - std::begin(class_starts)) - 1]);
}
/// Appends str.lower() of one code point.
inline void append_lower(std::u32string& out, char32_t c) {
  if (c == 0x130) { // LATIN CAPITAL LETTER I WITH DOT ABOVE: "i" + COMBINING DOT ABOVE
    out += U'i';
    out += char32_t(0x307);
    return;
  }
  const auto* it =
      std::upper_bound(std::begin(lower_runs), std::end(lower_runs), static_cast<std::uint32_t>(c),
                       [](std::uint32_t v, const LowerRun& r) { return v < r.first; });
  if (it != std::begin(lower_runs)) {
    const LowerRun& r = *(it - 1);
    if (c <= r.last && (c - r.first) % r.stride == 0) {
      out += static_cast<char32_t>(static_cast<std::int64_t>(c) + r.delta);
      return;
    }
  }
  out += c;
}
/// Appends NFD(c) without its non-spacing marks (category Mn).
inline void append_stripped(std::u32string& out, char32_t c) {
  if (c >= 0xAC00 && c <= 0xD7A3) { // Hangul syllable: algorithmic decomposition into conjoining jamo
    const char32_t s = c - 0xAC00;
    out += static_cast<char32_t>(0x1100 + s / 588);
    out += static_cast<char32_t>(0x1161 + (s % 588) / 28);
    if (s % 28 != 0) out += static_cast<char32_t>(0x11A7 + s % 28);
    return;
  }
  if (char_class(c) == mark) return;
  const auto* it =
      std::lower_bound(std::begin(strip_entries), std::end(strip_entries), static_cast<std::uint32_t>(c),
                       [](const StripEntry& e, std::uint32_t v) { return e.cp < v; });
  if (it != std::end(strip_entries) && it->cp == c) {
    for (std::size_t k = 0; k < it->length; ++k) out += static_cast<char32_t>(strip_pool[it->offset + k]);
    return;
  }
  out += c;
}
/// The CJK ideograph blocks BERT's basic tokenizer surrounds with spaces.
[[nodiscard]] constexpr bool is_cjk(char32_t c) noexcept {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
} // namespace detail::unicode

/// Options of WordPieceTokenizer (Hugging Face BertTokenizer's, same defaults).
struct WordPieceOptions {
  /// Lower-case the text (and, unless strip_accents says otherwise, strip accents): uncased models.
  bool do_lower_case = true;
  /// Strip accents (NFD, then drop non-spacing marks). Unset: follow do_lower_case.
  std::optional<bool> strip_accents{};
  /// Put spaces around CJK ideographs so that each is a word.
  bool tokenize_chinese_chars = true;
  /// Longer words (in code points) become the unknown token.
  std::size_t max_input_chars_per_word = 100;
  std::string unk_token = "[UNK]", sep_token = "[SEP]", pad_token = "[PAD]", cls_token = "[CLS]",
              mask_token = "[MASK]";
};

/// Options of WordPieceTokenizer::encode (Hugging Face's arguments of the same names).
struct EncodeOptions {
  /// [CLS] a [SEP] (and b [SEP] for pairs).
  bool add_special_tokens = true;
  /// 0: no limit. Otherwise the length truncation and padding aim at (special tokens included).
  std::size_t max_length = 0;
  /// Drop tokens beyond max_length (for pairs: "longest_first", as Hugging Face).
  bool truncation = false;
  /// Pad with [PAD] up to max_length (attention mask 0, token type 0), on the right.
  bool pad_to_max_length = false;
};

/// Ids, segment ids and attention mask of one encoded text or pair.
struct Encoding {
  std::vector<TokenId> ids{}, token_type_ids{}, attention_mask{};
  [[nodiscard]] std::size_t size() const noexcept { return ids.size(); }
};

/// A batch of encodings padded to a common length: three [batch, length] tensors.
struct BatchEncoding {
  Tensor<TokenId> ids, token_type_ids, attention_mask;
};

/// BERT's tokenizer: basic tokenization (clean-up, CJK spacing, whitespace split, lower-casing and accent
/// stripping, punctuation split) then greedy longest-match-first WordPiece over a vocab.txt, matching Hugging
/// Face's (Python) BertTokenizer; special tokens written in the text ("[MASK]", case-sensitive) are kept
/// whole. Character properties come from tables generated from Python's unicodedata (see docs/io.md for the
/// limits).
class WordPieceTokenizer {
 public:
  /// Parses a vocab.txt (one token per line, id = line number; "\n", "\r\n" or "\r" line ends; a duplicated
  /// token maps to its last line, as Hugging Face's load_vocab). The special tokens must be in it.
  [[nodiscard]] static WordPieceTokenizer from_vocab(std::string_view vocab_text,
                                                     WordPieceOptions options = {},
                                                     const std::string& where = "WordPiece vocabulary") {
    utf8::validate(vocab_text, where);
    WordPieceTokenizer t;
    t.opt_ = std::move(options);
    std::size_t pos = 0;
    while (pos < vocab_text.size()) {
      std::size_t end = vocab_text.find_first_of("\r\n", pos);
      if (end == std::string_view::npos) end = vocab_text.size();
      t.add_token(std::string(vocab_text.substr(pos, end - pos)));
      if (end < vocab_text.size() && vocab_text[end] == '\r' && end + 1 < vocab_text.size() &&
          vocab_text[end + 1] == '\n')
        ++end;
      pos = end + 1;
    }
    check(t.opt_.max_input_chars_per_word > 0, where, ": max_input_chars_per_word must be positive");
    const auto special = [&](const std::string& tok, const char* role) {
      const auto id = t.find(tok);
      check(id.has_value(), where, ": the ", role, " token '", tok, "' is not in the vocabulary");
      t.specials_.push_back(tok);
      return *id;
    };
    t.unk_ = special(t.opt_.unk_token, "unknown");
    t.sep_ = special(t.opt_.sep_token, "separator");
    t.pad_ = special(t.opt_.pad_token, "padding");
    t.cls_ = special(t.opt_.cls_token, "classifier");
    t.mask_ = special(t.opt_.mask_token, "mask");
    return t;
  }
  /// Reads a vocab.txt file.
  [[nodiscard]] static WordPieceTokenizer load(const std::filesystem::path& path,
                                               WordPieceOptions options = {}) {
    return from_vocab(read_file(path, std::uint64_t(1) << 30), std::move(options),
                      detail::concat("vocabulary '", path.string(), "'"));
  }

  [[nodiscard]] std::size_t vocab_size() const noexcept { return tokens_.size(); }
  [[nodiscard]] const WordPieceOptions& options() const noexcept { return opt_; }
  [[nodiscard]] TokenId unk_id() const noexcept { return unk_; }
  [[nodiscard]] TokenId sep_id() const noexcept { return sep_; }
  [[nodiscard]] TokenId pad_id() const noexcept { return pad_; }
  [[nodiscard]] TokenId cls_id() const noexcept { return cls_; }
  [[nodiscard]] TokenId mask_id() const noexcept { return mask_; }
  [[nodiscard]] std::optional<TokenId> find(std::string_view token) const {
    const auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  /// Id of a token; unknown tokens give the unknown token's id (as convert_tokens_to_ids).
  [[nodiscard]] TokenId token_to_id(std::string_view token) const { return find(token).value_or(unk_); }
  /// The token of an id; throws on an id outside the vocabulary.
  [[nodiscard]] const std::string& id_to_token(TokenId id) const {
    check(id >= 0 && static_cast<std::size_t>(id) < tokens_.size(), "WordPieceTokenizer: id ", id,
          " is outside the vocabulary (", tokens_.size(), " tokens)");
    return tokens_[static_cast<std::size_t>(id)];
  }

  /// The words of the basic tokenizer (before WordPiece), special tokens kept whole.
  [[nodiscard]] std::vector<std::string> basic_tokenize(std::string_view text) const {
    std::vector<std::string> words;
    for_each_chunk(text, [&](std::string_view chunk, bool is_special) {
      if (is_special)
        words.emplace_back(chunk);
      else
        basic_chunk(chunk, words);
    });
    return words;
  }
  /// The word pieces of a text (no [CLS]/[SEP] added).
  [[nodiscard]] std::vector<std::string> tokenize(std::string_view text) const {
    std::vector<std::string> pieces;
    for (const auto& w : basic_tokenize(text)) {
      if (is_special(w)) {
        pieces.push_back(w);
        continue;
      }
      wordpiece(w, [&](std::string_view p) { pieces.emplace_back(p); });
    }
    return pieces;
  }
  /// Token ids of a text, no special tokens added.
  [[nodiscard]] std::vector<TokenId> encode_ids(std::string_view text) const {
    std::vector<TokenId> ids;
    for (const auto& w : basic_tokenize(text)) {
      if (is_special(w)) {
        ids.push_back(*find(w));
        continue;
      }
      wordpiece(w, [&](std::string_view p) { ids.push_back(token_to_id(p)); });
    }
    return ids;
  }

  /// [CLS] text [SEP] (by default), truncated and padded as `options` says.
  [[nodiscard]] Encoding encode(std::string_view text, const EncodeOptions& options = {}) const {
    return assemble(encode_ids(text), nullptr, options);
  }
  /// [CLS] a [SEP] b [SEP] with token types 0 for a (and its specials) and 1 for b.
  [[nodiscard]] Encoding encode(std::string_view a, std::string_view b,
                                const EncodeOptions& options = {}) const {
    const auto second = encode_ids(b);
    return assemble(encode_ids(a), &second, options);
  }
  /// Encodes each text (or pair, when `second` is not empty: texts[i] with second[i]) and pads them all to
  /// options.max_length when pad_to_max_length is set, otherwise to the longest.
  [[nodiscard]] BatchEncoding encode_batch(std::span<const std::string> texts,
                                           const EncodeOptions& options = {},
                                           std::span<const std::string> second = {}) const {
    check(second.empty() || second.size() == texts.size(), "WordPieceTokenizer::encode_batch: ", texts.size(),
          " first texts but ", second.size(), " second texts");
    std::vector<Encoding> enc;
    std::size_t len = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      enc.push_back(second.empty() ? encode(texts[i], options) : encode(texts[i], second[i], options));
      len = std::max(len, enc.back().size());
    }
    BatchEncoding b{Tensor<TokenId>({texts.size(), len}, pad_), Tensor<TokenId>({texts.size(), len}),
                    Tensor<TokenId>({texts.size(), len})};
    for (std::size_t i = 0; i < enc.size(); ++i)
      for (std::size_t j = 0; j < enc[i].size(); ++j) {
        b.ids(i, j) = enc[i].ids[j];
        b.token_type_ids(i, j) = enc[i].token_type_ids[j];
        b.attention_mask(i, j) = enc[i].attention_mask[j];
      }
    return b;
  }

  /// Text of `ids` as Hugging Face's decode: tokens joined by spaces with " ##" removed, special tokens
  /// optionally skipped, then (by default) the clean-up of spaces before punctuation and contractions.
  /// Throws on an id outside the vocabulary.
  [[nodiscard]] std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false,
                                   bool clean_up_tokenization_spaces = true) const {
    std::string joined;
    bool first = true;
    for (const TokenId id : ids) {
      const std::string& tok = id_to_token(id);
      if (skip_special_tokens && is_special(tok)) continue;
      if (!first) joined += ' ';
      joined += tok;
      first = false;
    }
    std::string out = replace_all(joined, " ##", "");
    const auto b = out.find_first_not_of(" \t\n\r\f\v");
    const auto e = out.find_last_not_of(" \t\n\r\f\v");
    out = b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
    if (clean_up_tokenization_spaces) {
      static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> rules{{{" .", "."},
                                                                                            {" ?", "?"},
                                                                                            {" !", "!"},
                                                                                            {" ,", ","},
                                                                                            {" ' ", "'"},
                                                                                            {" n't", "n't"},
                                                                                            {" 'm", "'m"},
                                                                                            {" 's", "'s"},
                                                                                            {" 've", "'ve"},
                                                                                            {" 're", "'re"}}};
      for (const auto& [from, to] : rules) out = replace_all(out, from, to);
    }
    return out;
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  WordPieceTokenizer() = default;

  void add_token(std::string tok) {
    const auto id = static_cast<TokenId>(tokens_.size());
    max_token_bytes_ = std::max(max_token_bytes_, tok.size());
    vocab_.insert_or_assign(tok, id);
    tokens_.push_back(std::move(tok));
  }
  [[nodiscard]] bool is_special(std::string_view s) const {
    return std::find(specials_.begin(), specials_.end(), s) != specials_.end();
  }
  [[nodiscard]] bool strips_accents() const { return opt_.strip_accents.value_or(opt_.do_lower_case); }

  static std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
    std::string out;
    std::size_t pos = 0;
    while (true) {
      const auto hit = s.find(from, pos);
      if (hit == std::string_view::npos) break;
      out.append(s.substr(pos, hit - pos));
      out.append(to);
      pos = hit + from.size();
    }
    out.append(s.substr(pos));
    return out;
  }

  /// Splits the raw text on special tokens (leftmost match), calling f(chunk, is_special).
  template <class F>
  void for_each_chunk(std::string_view text, F&& f) const {
    std::size_t start = 0, pos = 0;
    while (pos < text.size()) {
      const std::string* hit = nullptr;
      for (const auto& sp : specials_)
        if (!sp.empty() && sp.front() == text[pos] && text.compare(pos, sp.size(), sp) == 0 &&
            (!hit || sp.size() > hit->size()))
          hit = &sp;
      if (!hit) {
        ++pos;
        continue;
      }
      if (pos > start) f(text.substr(start, pos - start), false);
      f(std::string_view(*hit), true);
      pos += hit->size();
      start = pos;
    }
    if (start < text.size()) f(text.substr(start), false);
  }

  /// Basic tokenization of a chunk without special tokens; appends its words.
  void basic_chunk(std::string_view chunk, std::vector<std::string>& words) const {
    namespace u = detail::unicode;
    const std::u32string cps = utf8::to_code_points(chunk, "WordPieceTokenizer");
    // Lower-case first (Hugging Face lower-cases the text one character at a time before anything else),
    // then clean up (drop NUL, U+FFFD and controls; whitespace becomes a space) and space out CJK ideographs.
    std::u32string text;
    text.reserve(cps.size());
    std::u32string lowered;
    for (const char32_t c0 : cps) {
      lowered.clear();
      if (opt_.do_lower_case)
        u::append_lower(lowered, c0);
      else
        lowered += c0;
      for (const char32_t c : lowered) {
        if (c == 0 || c == 0xFFFD) continue;
        const auto k = u::char_class(c);
        if (k == u::control) continue;
        if (k == u::space) {
          text += U' ';
        } else if (opt_.tokenize_chinese_chars && u::is_cjk(c)) {
          text += U' ';
          text += c;
          text += U' ';
        } else {
          text += c;
        }
      }
    }
    // Whitespace split; per word: lower-case again, strip accents, split off punctuation.
    std::u32string word, norm;
    std::size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == U' ') ++i;
      const std::size_t b = i;
      while (i < text.size() && text[i] != U' ') ++i;
      if (i == b) break;
      word.assign(text, b, i - b);
      const std::string word8 = utf8::encode(word);
      if (is_special(word8)) { // never split (a special token that appeared only after the clean-up)
        words.push_back(word8);
        continue;
      }
      norm.clear();
      if (opt_.do_lower_case) {
        std::u32string low;
        for (const char32_t c : word) u::append_lower(low, c);
        word = std::move(low);
      }
      if (strips_accents())
        for (const char32_t c : word) u::append_stripped(norm, c);
      else
        norm = word;
      std::string cur;
      for (const char32_t c : norm) {
        if (u::char_class(c) == u::punct) {
          if (!cur.empty()) words.push_back(std::move(cur)), cur.clear();
          std::string p;
          utf8::append(p, c);
          words.push_back(std::move(p));
        } else {
          utf8::append(cur, c);
        }
      }
      if (!cur.empty()) words.push_back(std::move(cur));
    }
  }

  /// Greedy longest-match-first WordPiece of one word; calls f(piece) for each piece (or the unknown token).
  template <class F>
  void wordpiece(const std::string& word, F&& f) const {
    // Byte offsets of the code point boundaries.
    std::vector<std::size_t> bounds;
    bounds.reserve(word.size() + 1);
    for (std::size_t p = 0; p < word.size(); ++p)
      if ((static_cast<unsigned char>(word[p]) & 0xC0) != 0x80) bounds.push_back(p);
    bounds.push_back(word.size());
    const std::size_t nchars = bounds.size() - 1;
    if (nchars > opt_.max_input_chars_per_word) {
      f(opt_.unk_token);
      return;
    }
    std::vector<std::pair<std::size_t, std::size_t>> found; // byte ranges of the pieces
    std::string probe;
    std::size_t start = 0;
    while (start < nchars) {
      std::size_t end = nchars;
      bool ok = false;
      while (start < end) {
        const std::size_t b = bounds[start], e = bounds[end];
        if (e - b + (start > 0 ? 2 : 0) <= max_token_bytes_) {
          probe.clear();
          if (start > 0) probe += "##";
          probe.append(word, b, e - b);
          if (vocab_.find(std::string_view(probe)) != vocab_.end()) {
            ok = true;
            break;
          }
        }
        --end;
      }
      if (!ok) {
        f(opt_.unk_token);
        return;
      }
      found.emplace_back(start, end);
      start = end;
    }
    for (const auto& [s, e] : found) {
      probe.clear();
      if (s > 0) probe += "##";
      probe.append(word, bounds[s], bounds[e] - bounds[s]);
      f(std::string_view(probe));
    }
  }

  /// Adds special tokens, truncates and pads (Hugging Face's prepare_for_model).
  Encoding assemble(std::vector<TokenId> a, const std::vector<TokenId>* b_in, const EncodeOptions& o) const {
    std::vector<TokenId> b = b_in ? *b_in : std::vector<TokenId>();
    const std::size_t specials = o.add_special_tokens ? (b_in ? 3 : 2) : 0;
    if (o.truncation && o.max_length > 0) {
      check(o.max_length >= specials, "WordPieceTokenizer::encode: max_length ", o.max_length,
            " leaves no room for the ", specials, " special tokens");
      const std::size_t total = a.size() + b.size() + specials;
      if (total > o.max_length) {
        const std::size_t remove = total - o.max_length;
        if (!b_in) {
          a.resize(a.size() - remove);
        } else { // longest_first
          const std::size_t la = a.size(), lb = b.size();
          const std::size_t first = std::min(la > lb ? la - lb : lb - la, remove), second = remove - first;
          std::size_t ra, rb;
          if (la > lb)
            ra = first + second / 2, rb = second - second / 2;
          else
            ra = second / 2, rb = first + second - second / 2;
          a.resize(a.size() - ra);
          b.resize(b.size() - rb);
        }
      }
    }
    Encoding e;
    const auto push = [&](TokenId id, TokenId type) {
      e.ids.push_back(id);
      e.token_type_ids.push_back(type);
      e.attention_mask.push_back(1);
    };
    if (o.add_special_tokens) push(cls_, 0);
    for (const TokenId id : a) push(id, 0);
    if (o.add_special_tokens) push(sep_, 0);
    if (b_in) {
      for (const TokenId id : b) push(id, 1);
      if (o.add_special_tokens) push(sep_, 1);
    }
    if (o.pad_to_max_length && o.max_length > 0) {
      while (e.ids.size() < o.max_length) {
        e.ids.push_back(pad_);
        e.token_type_ids.push_back(0);
        e.attention_mask.push_back(0);
      }
    }
    return e;
  }

  WordPieceOptions opt_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, TokenId, Hash, std::equal_to<>> vocab_;
  std::vector<std::string> specials_;
  std::size_t max_token_bytes_ = 0;
  TokenId unk_ = 0, sep_ = 0, pad_ = 0, cls_ = 0, mask_ = 0;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_IO_TOKENIZER_HPP
