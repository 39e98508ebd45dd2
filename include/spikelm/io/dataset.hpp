// spikelm: text datasets. Loading a text file; a contiguous train/validation/test split of a token sequence;
// random windows for training (next-token targets, positions drawn from an Rng); non-overlapping windows
// for evaluation that score every next-token prediction exactly once; a labeled-sentence TSV reader.
#ifndef SPIKELM_IO_DATASET_HPP
#define SPIKELM_IO_DATASET_HPP

#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "file.hpp"
#include "tokenizer.hpp"
#include "utf8.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// The content of a text file; with `validate` (the default) it must be valid UTF-8 (the error names the
/// byte offset).
[[nodiscard]] inline std::string read_text_file(const std::filesystem::path& path, bool validate = true) {
  std::string text = read_file(path);
  if (validate) utf8::validate(text, detail::concat("text file '", path.string(), "'"));
  return text;
}

/// A token sequence split into three contiguous parts, in this order (as SpikeGPT splits enwik8 90/5/5).
struct TokenSplits {
  std::vector<TokenId> train{}, validation{}, test{};
};

/// Splits `tokens` into train, validation and test parts: validation gets round(n * validation_fraction)
/// tokens, test round(n * test_fraction), train the rest (the first ones).
[[nodiscard]] inline TokenSplits split_tokens(std::span<const TokenId> tokens, double validation_fraction,
                                              double test_fraction) {
  check(validation_fraction >= 0 && test_fraction >= 0 && validation_fraction + test_fraction <= 1,
        "split_tokens: fractions must be >= 0 and sum to at most 1, got validation ", validation_fraction,
        " and test ", test_fraction);
  const std::size_t n = tokens.size();
  const auto part = [&](double f) {
    return std::min(n, static_cast<std::size_t>(std::llround(static_cast<double>(n) * f)));
  };
  const std::size_t nv = part(validation_fraction), nt = std::min(n - nv, part(test_fraction));
  const std::size_t ntrain = n - nv - nt;
  TokenSplits s;
  s.train.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(ntrain));
  s.validation.assign(tokens.begin() + static_cast<std::ptrdiff_t>(ntrain),
                      tokens.begin() + static_cast<std::ptrdiff_t>(ntrain + nv));
  s.test.assign(tokens.begin() + static_cast<std::ptrdiff_t>(ntrain + nv), tokens.end());
  return s;
}

/// A batch of windows: inputs and next-token targets, both [batch, context].
struct WindowBatch {
  Tensor<TokenId> inputs, targets;
};

/// `batch` random training windows of `context` tokens: each start s is uniform in [0, n - context - 1]
/// (drawn with rng.uniform_index, one draw per window, in row order), inputs = tokens[s, s + context),
/// targets = tokens[s + 1, s + context + 1). The same Rng state gives the same batch.
[[nodiscard]] inline WindowBatch random_windows(std::span<const TokenId> tokens, std::size_t context,
                                                std::size_t batch, Rng& rng) {
  check(context > 0 && batch > 0, "random_windows: context and batch must be positive");
  check(tokens.size() > context, "random_windows: ", tokens.size(), " tokens are too few for windows of ",
        context, " tokens plus one target");
  WindowBatch b{Tensor<TokenId>({batch, context}, uninitialized),
                Tensor<TokenId>({batch, context}, uninitialized)};
  const std::uint64_t starts = tokens.size() - context;
  for (std::size_t r = 0; r < batch; ++r) {
    const auto s = static_cast<std::size_t>(rng.uniform_index(starts));
    std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(s), context, b.inputs.data() + r * context);
    std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(s + 1), context, b.targets.data() + r * context);
  }
  return b;
}

/// Contiguous training streams for stateful (truncated-BPTT) training, as AWD-LSTM's and EvNN's `batchify`
/// + `get_batch`: the first `batch * L` tokens (L = (n - 1) / batch) are cut into `batch` streams of L tokens
/// plus the one target after each; window k of `context` tokens has, in row b, inputs
/// stream_b[k context, k context + len) and targets shifted by one, len = min(context, L - k context).
/// Consecutive windows continue each row's text, so a model may carry its recurrent state from window k to
/// k + 1; window 0 follows the last one (an epoch boundary, where the state should be reset). The tokens must
/// outlive this object.
class StreamWindows {
 public:
  StreamWindows(std::span<const TokenId> tokens, std::size_t context, std::size_t batch)
      : tokens_(tokens), context_(context), batch_(batch) {
    check(context > 0 && batch > 0, "StreamWindows: context and batch must be positive");
    check(tokens.size() > batch, "StreamWindows: ", tokens.size(), " tokens are too few for ", batch,
          " streams");
    stream_ = (tokens.size() - 1) / batch;
  }
  /// Tokens per stream (each also has its next token as a target).
  [[nodiscard]] std::size_t stream_length() const noexcept { return stream_; }
  /// Windows per epoch (the last may be shorter than the context).
  [[nodiscard]] std::size_t windows() const noexcept { return (stream_ + context_ - 1) / context_; }
  /// Window k mod windows(): inputs and targets [batch, len].
  [[nodiscard]] WindowBatch window(std::size_t k) const {
    const std::size_t s = (k % windows()) * context_, len = std::min(context_, stream_ - s);
    WindowBatch b{Tensor<TokenId>({batch_, len}, uninitialized),
                  Tensor<TokenId>({batch_, len}, uninitialized)};
    for (std::size_t r = 0; r < batch_; ++r) {
      const auto first = tokens_.begin() + static_cast<std::ptrdiff_t>(r * stream_ + s);
      std::copy_n(first, len, b.inputs.data() + r * len);
      std::copy_n(first + 1, len, b.targets.data() + r * len);
    }
    return b;
  }

 private:
  std::span<const TokenId> tokens_;
  std::size_t context_, batch_, stream_ = 0;
};

/// Non-overlapping evaluation windows: window k has inputs tokens[k L, k L + len) and targets
/// tokens[k L + 1, k L + len + 1) with len = min(L, n - 1 - k L), so the n - 1 next-token predictions of the
/// sequence are each scored exactly once. Batches hold `batch` consecutive windows (the last may hold fewer);
/// a short last window is padded with `pad_input` and its targets with `ignore_target` (the ignore index of
/// cross_entropy). The tokens must outlive this object.
class EvalWindows {
 public:
  EvalWindows(std::span<const TokenId> tokens, std::size_t context, std::size_t batch, TokenId pad_input = 0,
              TokenId ignore_target = -100)
      : tokens_(tokens), context_(context), batch_(batch), pad_(pad_input), ignore_(ignore_target) {
    check(context > 0 && batch > 0, "EvalWindows: context and batch must be positive");
  }
  /// Next-token predictions covered (n - 1, or 0).
  [[nodiscard]] std::size_t predictions() const noexcept { return tokens_.empty() ? 0 : tokens_.size() - 1; }
  [[nodiscard]] std::size_t windows() const noexcept { return (predictions() + context_ - 1) / context_; }
  [[nodiscard]] std::size_t batches() const noexcept { return (windows() + batch_ - 1) / batch_; }
  /// Batch i: [rows, context] with rows = min(batch, windows - i * batch).
  [[nodiscard]] WindowBatch batch(std::size_t i) const {
    check(i < batches(), "EvalWindows::batch: batch ", i, " of ", batches());
    const std::size_t first = i * batch_, rows = std::min(batch_, windows() - first);
    WindowBatch b{Tensor<TokenId>({rows, context_}, pad_), Tensor<TokenId>({rows, context_}, ignore_)};
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t s = (first + r) * context_, len = std::min(context_, predictions() - s);
      std::copy_n(tokens_.begin() + static_cast<std::ptrdiff_t>(s), len, b.inputs.data() + r * context_);
      std::copy_n(tokens_.begin() + static_cast<std::ptrdiff_t>(s + 1), len, b.targets.data() + r * context_);
    }
    return b;
  }

 private:
  std::span<const TokenId> tokens_;
  std::size_t context_, batch_;
  TokenId pad_, ignore_;
};

/// A random permutation of 0..n-1 (Fisher-Yates with rng.uniform_index), for shuffling examples per epoch.
[[nodiscard]] inline std::vector<std::size_t> shuffled_indices(std::size_t n, Rng& rng) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  for (std::size_t i = n; i > 1; --i)
    std::swap(idx[i - 1], idx[static_cast<std::size_t>(rng.uniform_index(i))]);
  return idx;
}

/// Sentences with class labels: texts[i] has label id labels[i], whose name is label_names[labels[i]].
struct LabeledDataset {
  std::vector<std::string> texts{};
  std::vector<std::int64_t> labels{};
  std::vector<std::string> label_names{};
  [[nodiscard]] std::size_t size() const noexcept { return texts.size(); }
  /// The id of a label name; throws if unknown.
  [[nodiscard]] std::int64_t label_id(std::string_view name) const {
    const auto it = std::find(label_names.begin(), label_names.end(), name);
    check(it != label_names.end(), "LabeledDataset: unknown label '", name, "'");
    return static_cast<std::int64_t>(it - label_names.begin());
  }
};

/// Parses "text<TAB>label" lines (split at the last tab; "\n" or "\r\n" line ends; empty lines skipped; an
/// optional header line). Label ids follow `label_names` when given (then any other label is an error, so
/// that train, dev and test share ids), otherwise the sorted distinct labels. Errors name `where` and the
/// line.
[[nodiscard]] inline LabeledDataset parse_labeled_tsv(std::string_view content, const std::string& where,
                                                      const std::vector<std::string>& label_names = {},
                                                      bool has_header = false) {
  struct Row {
    std::string text, label;
  };
  std::vector<Row> rows;
  std::size_t pos = 0, line_no = 0;
  bool header_pending = has_header;
  while (pos < content.size()) {
    std::size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (header_pending) {
      header_pending = false;
      continue;
    }
    utf8::validate(line, detail::concat(where, ":", line_no));
    const auto tab = line.rfind('\t');
    check(tab != std::string_view::npos, where, ":", line_no, ": no tab between text and label");
    const std::string_view text = line.substr(0, tab), label = line.substr(tab + 1);
    check(!label.empty(), where, ":", line_no, ": empty label");
    rows.push_back({std::string(text), std::string(label)});
  }
  LabeledDataset d;
  if (label_names.empty()) {
    for (const auto& r : rows) d.label_names.push_back(r.label);
    std::sort(d.label_names.begin(), d.label_names.end());
    d.label_names.erase(std::unique(d.label_names.begin(), d.label_names.end()), d.label_names.end());
  } else {
    d.label_names = label_names;
  }
  std::map<std::string, std::int64_t, std::less<>> ids;
  for (std::size_t i = 0; i < d.label_names.size(); ++i)
    check(ids.emplace(d.label_names[i], static_cast<std::int64_t>(i)).second, where, ": label '",
          d.label_names[i], "' is listed twice");
  for (const auto& r : rows) {
    const auto it = ids.find(r.label);
    check(it != ids.end(), where, ": label '", r.label, "' (of \"", r.text.substr(0, 60),
          "\") is not one of the given labels");
    d.texts.push_back(r.text);
    d.labels.push_back(it->second);
  }
  return d;
}

/// parse_labeled_tsv of a file.
[[nodiscard]] inline LabeledDataset read_labeled_tsv(const std::filesystem::path& path,
                                                     const std::vector<std::string>& label_names = {},
                                                     bool has_header = false) {
  return parse_labeled_tsv(read_file(path), detail::concat("'", path.string(), "'"), label_names, has_header);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_IO_DATASET_HPP
