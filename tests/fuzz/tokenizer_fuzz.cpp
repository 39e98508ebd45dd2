// libFuzzer target: the tokenizers, the UTF-8/UTF-16 decoders and the labeled TSV reader on arbitrary
// bytes. Errors must be spikelm::Error; valid inputs must satisfy round-trip invariants (bytes and characters
// decode back to the input, WordPiece ids are in the vocabulary and decode without error).
#include <spikelm/io/dataset.hpp>
#include <spikelm/io/tokenizer.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}

const spikelm::WordPieceTokenizer& wordpiece(bool lower) {
  static const std::string vocab = [] {
    std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    for (char c = 33; c < 127; ++c) v += std::string(1, c) + "\n##" + std::string(1, c) + "\n";
    for (const char* w : {"the", "un", "##aff", "##able", "caf", "\xC3\xA9", "\xE4\xB8\xAD", "##\xCE\xB1",
                          "\xCE\xB1\xCE\xB2", "hello", "world"})
      v += std::string(w) + "\n";
    return v;
  }();
  static const auto uncased = spikelm::WordPieceTokenizer::from_vocab(vocab);
  static const auto cased = spikelm::WordPieceTokenizer::from_vocab(vocab, {.do_lower_case = false});
  return lower ? uncased : cased;
}

template <class F>
void tolerate(F&& f) {
  try {
    f();
  } catch (const spikelm::Error&) {
  }
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace spikelm;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool valid = utf8::is_valid(text);

  ByteTokenizer bytes;
  require(bytes.decode(bytes.encode(text)) == text);

  tolerate([&] {
    const auto cps = utf8::to_code_points(text, "fuzz");
    require(valid);
    require(utf8::encode(cps) == text);
  });

  tolerate([&] {
    const CharTokenizer chars = CharTokenizer::from_text(text);
    require(valid);
    require(chars.decode(chars.encode(text)) == text);
    require(CharTokenizer::from_json(chars.to_json()).characters() == chars.characters());
  });

  for (const bool lower : {true, false}) {
    tolerate([&] {
      const auto& wp = wordpiece(lower);
      const Encoding e = wp.encode(text, {.max_length = 64, .truncation = true, .pad_to_max_length = true});
      require(valid);
      require(e.ids.size() == 64);
      for (const TokenId id : e.ids) require(id >= 0 && static_cast<std::size_t>(id) < wp.vocab_size());
      (void)wp.decode(e.ids, true);
      const auto half = text.size() / 2;
      (void)wp.encode(text.substr(0, half), text.substr(half), {.max_length = 16, .truncation = true});
    });
  }

  tolerate([&] { (void)CharTokenizer::from_json(text); });
  tolerate([&] { (void)CharTokenizer::from_json(detail::decode_text_file(std::string(text), "fuzz")); });
  tolerate([&] {
    const auto wp = WordPieceTokenizer::from_vocab(text);
    require(wp.vocab_size() >= 5);
    (void)wp.tokenize("Hello, w\xC3\xB6rld! [MASK] \xE4\xB8\xAD\xE6\x96\x87 unaffable");
  });
  tolerate([&] {
    const auto d = parse_labeled_tsv(text, "fuzz");
    require(d.texts.size() == d.labels.size());
    for (const auto l : d.labels) require(l >= 0 && static_cast<std::size_t>(l) < d.label_names.size());
  });
  return 0;
}
