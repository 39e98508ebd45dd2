// spikelm: strict UTF-8 decoding, encoding and validation (used by the tokenizers, the dataset readers and
// the safetensors header check).
#ifndef SPIKELM_IO_UTF8_HPP
#define SPIKELM_IO_UTF8_HPP

#include "../config.hpp"
#include "../core/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

SPIKELM_NAMESPACE_BEGIN

namespace utf8 {

/// Decodes the code point that starts at byte `pos` of `s` and advances `pos` past it. Returns nothing (and
/// leaves `pos` unchanged) for an ill-formed sequence: a stray continuation byte, a truncated sequence, an
/// overlong encoding, a surrogate (U+D800..U+DFFF) or a value above U+10FFFF (RFC 3629).
[[nodiscard]] inline std::optional<char32_t> try_decode(std::string_view s, std::size_t& pos) noexcept {
  if (pos >= s.size()) return std::nullopt;
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return static_cast<char32_t>(b0);
  }
  std::size_t len = 0;
  char32_t cp = 0, min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt; // continuation byte or 0xF8..0xFF
  }
  if (s.size() - pos < len) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[pos + k]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  pos += len;
  return cp;
}

/// Byte offset of the first ill-formed sequence in `s`, or nothing when `s` is valid UTF-8.
[[nodiscard]] inline std::optional<std::size_t> find_invalid(std::string_view s) noexcept {
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    if (!try_decode(s, pos)) return pos;
  }
  return std::nullopt;
}

[[nodiscard]] inline bool is_valid(std::string_view s) noexcept {
  return !find_invalid(s).has_value();
}

namespace detail {
inline std::string hex_bytes(std::string_view s, std::size_t pos, std::size_t n) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (std::size_t k = pos; k < s.size() && k < pos + n; ++k) {
    const auto b = static_cast<unsigned char>(s[k]);
    if (!out.empty()) out += ' ';
    out += "0x";
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}
} // namespace detail

/// "U+XXXX" (at least four upper-case hex digits), for messages.
[[nodiscard]] inline std::string codepoint_name(char32_t cp) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string hex;
  for (auto v = static_cast<std::uint32_t>(cp); v != 0 || hex.size() < 4; v >>= 4)
    hex.insert(hex.begin(), digits[v & 15]);
  std::string out = "U+";
  out += hex;
  return out;
}

/// Throws spikelm::Error naming `what`, the byte offset and the offending bytes when `s` is not valid UTF-8.
inline void validate(std::string_view s, std::string_view what) {
  if (const auto bad = find_invalid(s))
    fail(what, ": invalid UTF-8 at byte ", *bad, " (bytes ", detail::hex_bytes(s, *bad, 4), ")");
}

/// Decodes the code point at `pos` (advancing it); throws spikelm::Error naming `what` on ill-formed input.
[[nodiscard]] inline char32_t decode(std::string_view s, std::size_t& pos, std::string_view what) {
  const std::size_t at = pos;
  const auto cp = try_decode(s, pos);
  if (!cp) fail(what, ": invalid UTF-8 at byte ", at, " (bytes ", detail::hex_bytes(s, at, 4), ")");
  return *cp;
}

/// The code points of `s`; throws spikelm::Error naming `what` on ill-formed input.
[[nodiscard]] inline std::u32string to_code_points(std::string_view s, std::string_view what) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t pos = 0;
  while (pos < s.size()) out.push_back(decode(s, pos, what));
  return out;
}

/// Appends the UTF-8 encoding of `cp` (which must be a Unicode scalar value) to `out`.
inline void append(std::string& out, char32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    fail("utf8::append: ", codepoint_name(cp), " is not a Unicode scalar value");
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// UTF-8 encoding of a sequence of code points.
[[nodiscard]] inline std::string encode(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) append(out, c);
  return out;
}

} // namespace utf8

SPIKELM_NAMESPACE_END

#endif // SPIKELM_IO_UTF8_HPP
