// spikelm: BERT, the non-spiking teacher of SpikingBERT (SPEC §2), under Hugging Face's parameter names.
#ifndef SPIKELM_MODELS_BERT_HPP
#define SPIKELM_MODELS_BERT_HPP

#include "../autograd/ops.hpp"
#include "../autograd/parameter.hpp"
#include "../autograd/tape.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../io/json.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// The shape of a BERT encoder (Hugging Face's config.json keys in the comments).
struct BertConfig {
  std::size_t vocab = 30522;       ///< vocab_size
  std::size_t hidden = 768;        ///< hidden_size
  std::size_t layers = 12;         ///< num_hidden_layers
  std::size_t heads = 12;          ///< num_attention_heads
  std::size_t intermediate = 3072; ///< intermediate_size
  std::size_t max_positions = 512; ///< max_position_embeddings
  std::size_t type_vocab = 2;      ///< type_vocab_size
  std::size_t labels = 2;          ///< classifier outputs (num_labels); 0 means no classifier
  double layer_norm_eps = 1e-12;   ///< layer_norm_eps

  [[nodiscard]] std::size_t head_dim() const noexcept { return heads ? hidden / heads : 0; }
  void validate() const {
    check(vocab > 0 && hidden > 0 && layers > 0 && heads > 0 && intermediate > 0 && max_positions > 0 &&
              type_vocab > 0,
          "BertConfig: vocab, hidden, layers, heads, intermediate, max_positions and type_vocab must be "
          "positive (got ",
          vocab, ", ", hidden, ", ", layers, ", ", heads, ", ", intermediate, ", ", max_positions, ", ",
          type_vocab, ")");
    check(hidden % heads == 0, "BertConfig: hidden size ", hidden, " is not a multiple of the ", heads,
          " attention heads");
    check(layer_norm_eps > 0.0, "BertConfig: layer_norm_eps must be positive, got ", layer_norm_eps);
  }
  friend bool operator==(const BertConfig&, const BertConfig&) = default;

  /// Reads a Hugging Face config.json. Missing keys keep the defaults above (BERT-base); num_labels comes
  /// from "num_labels" or the size of "id2label"; hidden_act must be "gelu" (the erf form).
  [[nodiscard]] static BertConfig from_json(std::string_view text, const std::string& where = "config.json") {
    const nlohmann::json j = parse_json_strict(text, where, 64);
    check(j.is_object(), where, ": expected a JSON object");
    BertConfig c;
    auto get = [&](const char* key, std::size_t& dst) {
      if (!j.contains(key)) return;
      check(j[key].is_number_integer() && j[key].get<long long>() >= 0, where, ": \"", key,
            "\" must be a non-negative integer");
      dst = j[key].get<std::size_t>();
    };
    get("vocab_size", c.vocab);
    get("hidden_size", c.hidden);
    get("num_hidden_layers", c.layers);
    get("num_attention_heads", c.heads);
    get("intermediate_size", c.intermediate);
    get("max_position_embeddings", c.max_positions);
    get("type_vocab_size", c.type_vocab);
    if (j.contains("id2label") && j["id2label"].is_object()) c.labels = j["id2label"].size();
    get("num_labels", c.labels);
    if (j.contains("layer_norm_eps")) {
      check(j["layer_norm_eps"].is_number(), where, ": \"layer_norm_eps\" must be a number");
      c.layer_norm_eps = j["layer_norm_eps"].get<double>();
    }
    if (j.contains("hidden_act"))
      check(j["hidden_act"] == "gelu", where, ": hidden_act ", j["hidden_act"].dump(),
            " is not supported (only \"gelu\", the erf form)");
    c.validate();
    return c;
  }
  /// The keys from_json reads, as a config.json.
  [[nodiscard]] std::string to_json() const {
    nlohmann::ordered_json j;
    j["model_type"] = "bert";
    j["vocab_size"] = vocab;
    j["hidden_size"] = hidden;
    j["num_hidden_layers"] = layers;
    j["num_attention_heads"] = heads;
    j["intermediate_size"] = intermediate;
    j["max_position_embeddings"] = max_positions;
    j["type_vocab_size"] = type_vocab;
    j["num_labels"] = labels;
    j["layer_norm_eps"] = layer_norm_eps;
    j["hidden_act"] = "gelu";
    return j.dump(2);
  }
};

/// A batch of B sequences of L tokens, batch-major: ids, token types (empty: all 0) and the attention mask
/// (1 = attend, 0 = padding; empty: all 1).
struct BertBatch {
  std::size_t batch = 0;
  std::size_t length = 0;
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> types;
  std::vector<std::int64_t> mask;

  /// One unpadded sequence of type 0.
  [[nodiscard]] static BertBatch single(std::span<const std::int64_t> tokens) {
    BertBatch b;
    b.batch = 1;
    b.length = tokens.size();
    b.ids.assign(tokens.begin(), tokens.end());
    return b;
  }
  void validate(const BertConfig& cfg) const {
    check(batch > 0 && length > 0, "BertBatch: empty batch (", batch, " x ", length, ")");
    check(ids.size() == batch * length, "BertBatch: ", ids.size(), " ids for ", batch, " x ", length);
    check(types.empty() || types.size() == ids.size(), "BertBatch: ", types.size(), " token types for ",
          ids.size(), " ids");
    check(mask.empty() || mask.size() == ids.size(), "BertBatch: ", mask.size(), " mask values for ",
          ids.size(), " ids");
    check(length <= cfg.max_positions, "BertBatch: sequences of ", length,
          " tokens exceed max_position_embeddings (", cfg.max_positions, ")");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      check(ids[i] >= 0 && static_cast<std::size_t>(ids[i]) < cfg.vocab, "BertBatch: token id ", ids[i],
            " at position ", i, " is outside the vocabulary [0, ", cfg.vocab, ")");
      if (!types.empty())
        check(types[i] >= 0 && static_cast<std::size_t>(types[i]) < cfg.type_vocab, "BertBatch: token type ",
              types[i], " at position ", i, " is outside [0, ", cfg.type_vocab, ")");
      if (!mask.empty())
        check(mask[i] == 0 || mask[i] == 1, "BertBatch: mask values must be 0 or 1, got ", mask[i],
              " at position ", i);
    }
  }
  /// The additive key bias of the attention scores, (1 - mask) x -10000, [B, L].
  template <class T>
  [[nodiscard]] std::vector<T> key_bias() const {
    std::vector<T> out(batch * length, T(0));
    if (!mask.empty())
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = mask[i] ? T(0) : T(-10000);
    return out;
  }
  /// Position ids 0..L-1 for every sequence, [B, L].
  [[nodiscard]] std::vector<std::int64_t> positions() const {
    std::vector<std::int64_t> out(batch * length);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::int64_t>(i % length);
    return out;
  }
  [[nodiscard]] std::vector<std::int64_t> type_ids() const {
    return types.empty() ? std::vector<std::int64_t>(ids.size(), 0) : types;
  }
};

/// Which optional parts a BERT-shaped parameter set has besides the embeddings and the encoder.
struct BertParts {
  bool pooler = false;     ///< pooler.dense.{weight,bias}
  bool classifier = false; ///< classifier.{weight,bias} ([labels, hidden], [labels])
  bool fit_dense = false;  ///< fit_dense.{weight,bias} (the student's W_fit, [hidden, hidden])
  bool feedback = false;   ///< feedback.weight ([hidden, hidden], no bias): the student's W_s from O to E
};

/// Every parameter of a BERT of configuration `cfg` with `parts`: Hugging Face names (without the "bert."
/// prefix of BertForSequenceClassification) and shapes, in Hugging Face's order.
inline std::vector<std::pair<std::string, Shape>> bert_parameter_shapes(const BertConfig& cfg,
                                                                        BertParts parts) {
  const std::size_t d = cfg.hidden, f = cfg.intermediate;
  std::vector<std::pair<std::string, Shape>> s;
  s.emplace_back("embeddings.word_embeddings.weight", Shape{cfg.vocab, d});
  s.emplace_back("embeddings.position_embeddings.weight", Shape{cfg.max_positions, d});
  s.emplace_back("embeddings.token_type_embeddings.weight", Shape{cfg.type_vocab, d});
  s.emplace_back("embeddings.LayerNorm.weight", Shape{d});
  s.emplace_back("embeddings.LayerNorm.bias", Shape{d});
  for (std::size_t l = 0; l < cfg.layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"query", "key", "value"}) {
      s.emplace_back(p + "attention.self." + n + ".weight", Shape{d, d});
      s.emplace_back(p + "attention.self." + n + ".bias", Shape{d});
    }
    s.emplace_back(p + "attention.output.dense.weight", Shape{d, d});
    s.emplace_back(p + "attention.output.dense.bias", Shape{d});
    s.emplace_back(p + "attention.output.LayerNorm.weight", Shape{d});
    s.emplace_back(p + "attention.output.LayerNorm.bias", Shape{d});
    s.emplace_back(p + "intermediate.dense.weight", Shape{f, d});
    s.emplace_back(p + "intermediate.dense.bias", Shape{f});
    s.emplace_back(p + "output.dense.weight", Shape{d, f});
    s.emplace_back(p + "output.dense.bias", Shape{d});
    s.emplace_back(p + "output.LayerNorm.weight", Shape{d});
    s.emplace_back(p + "output.LayerNorm.bias", Shape{d});
  }
  if (parts.pooler) {
    s.emplace_back("pooler.dense.weight", Shape{d, d});
    s.emplace_back("pooler.dense.bias", Shape{d});
  }
  if (parts.classifier) {
    check(cfg.labels > 0, "bert_parameter_shapes: a classifier needs labels > 0");
    s.emplace_back("classifier.weight", Shape{cfg.labels, d});
    s.emplace_back("classifier.bias", Shape{cfg.labels});
  }
  if (parts.fit_dense) {
    s.emplace_back("fit_dense.weight", Shape{d, d});
    s.emplace_back("fit_dense.bias", Shape{d});
  }
  if (parts.feedback) s.emplace_back("feedback.weight", Shape{d, d});
  return s;
}

/// A stored parameter name in spikelm's form: Hugging Face's BertModel / BertForSequenceClassification
/// prefix "bert." is dropped, so both kinds of checkpoint load.
inline std::string bert_canonical_name(std::string_view stored) {
  constexpr std::string_view prefix = "bert.";
  if (stored.substr(0, prefix.size()) == prefix) stored.remove_prefix(prefix.size());
  return std::string(stored);
}

namespace detail {
template <class T>
struct BertLinear {
  Parameter<T>* w = nullptr;
  Parameter<T>* b = nullptr;
};
template <class T>
struct BertNorm {
  Parameter<T>* g = nullptr;
  Parameter<T>* b = nullptr;
};
template <class T>
struct BertLayer {
  BertLinear<T> query, key, value, attn_out, inter, out;
  BertNorm<T> attn_norm, out_norm;
};

/// The parameters of a BERT-shaped model and typed pointers into them; shared by Bert and SpikingBert.
template <class T>
class BertParameters {
 public:
  BertParameters(const BertConfig& cfg, BertParts parts) : parts_(parts) {
    cfg.validate();
    for (const auto& [name, shape] : bert_parameter_shapes(cfg, parts)) set_.add(name, Tensor<T>(shape));
    word = &set_["embeddings.word_embeddings.weight"];
    position = &set_["embeddings.position_embeddings.weight"];
    token_type = &set_["embeddings.token_type_embeddings.weight"];
    emb_norm = {&set_["embeddings.LayerNorm.weight"], &set_["embeddings.LayerNorm.bias"]};
    layers.resize(cfg.layers);
    for (std::size_t l = 0; l < cfg.layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      auto lin = [&](const std::string& n) {
        return BertLinear<T>{&set_[p + n + ".weight"], &set_[p + n + ".bias"]};
      };
      auto nrm = [&](const std::string& n) {
        return BertNorm<T>{&set_[p + n + ".weight"], &set_[p + n + ".bias"]};
      };
      layers[l] = {lin("attention.self.query"),       lin("attention.self.key"), lin("attention.self.value"),
                   lin("attention.output.dense"),     lin("intermediate.dense"), lin("output.dense"),
                   nrm("attention.output.LayerNorm"), nrm("output.LayerNorm")};
    }
    if (parts.pooler) pooler = {&set_["pooler.dense.weight"], &set_["pooler.dense.bias"]};
    if (parts.classifier) classifier = {&set_["classifier.weight"], &set_["classifier.bias"]};
    if (parts.fit_dense) fit_dense = {&set_["fit_dense.weight"], &set_["fit_dense.bias"]};
    if (parts.feedback) feedback = &set_["feedback.weight"];
    for (BertNorm<T>* n : all_norms()) n->g->value.fill(T(1));
  }
  BertParameters(const BertParameters&) = delete;
  BertParameters& operator=(const BertParameters&) = delete;

  /// Hugging Face's initialisation: matrices and embeddings N(0, std), biases 0, LayerNorm (1, 0).
  void reset(Rng& rng, double std) {
    set_.for_each([&](Parameter<T>& p) {
      if (p.value.rank() >= 2)
        rng.fill_normal(p.value.span(), T(0), static_cast<T>(std));
      else
        p.value.fill(T(0));
    });
    for (BertNorm<T>* n : all_norms()) n->g->value.fill(T(1));
  }
  /// Copies `value` into parameter `name` (a Hugging Face name, "bert." prefix allowed).
  void set(const std::string& stored, TensorView<const T> value, const char* who) {
    const std::string name = bert_canonical_name(stored);
    check(set_.contains(name), who, ": no parameter named '", name, "'");
    Parameter<T>& p = set_[name];
    check(value.shape() == p.shape(), who, ": '", name, "' has shape ", value.shape(), ", the model expects ",
          p.shape());
    std::copy(value.begin(), value.end(), p.value.data());
  }

  /// E = LayerNorm(word[id] + position[t] + token_type[type]), [B, L, d], on the tape.
  Var<T> embed(Tape<T>& tape, const BertBatch& b, T eps) {
    const std::size_t d = word->value.dim(1);
    const std::vector<std::int64_t> pos = b.positions(), types = b.type_ids();
    Var<T> e = add(add(embedding(tape.param(*word), std::span<const std::int64_t>(b.ids)),
                       embedding(tape.param(*position), std::span<const std::int64_t>(pos))),
                   embedding(tape.param(*token_type), std::span<const std::int64_t>(types)));
    return reshape(norm(e, emb_norm, eps), {b.batch, b.length, d});
  }
  Var<T> lin(const Var<T>& x, const BertLinear<T>& l) {
    Tape<T>& tape = x.tape();
    return linear(x, tape.param(*l.w), tape.param(*l.b));
  }
  Var<T> norm(const Var<T>& x, const BertNorm<T>& n, T eps) {
    Tape<T>& tape = x.tape();
    return layer_norm(x, tape.param(*n.g), tape.param(*n.b), eps);
  }

  ParameterSet<T>& set() noexcept { return set_; }
  const ParameterSet<T>& set() const noexcept { return set_; }
  [[nodiscard]] BertParts parts() const noexcept { return parts_; }

  Parameter<T>* word = nullptr;
  Parameter<T>* position = nullptr;
  Parameter<T>* token_type = nullptr;
  BertNorm<T> emb_norm;
  std::vector<BertLayer<T>> layers;
  BertLinear<T> pooler, classifier, fit_dense;
  Parameter<T>* feedback = nullptr;

 private:
  std::vector<BertNorm<T>*> all_norms() {
    std::vector<BertNorm<T>*> out{&emb_norm};
    for (BertLayer<T>& l : layers) {
      out.push_back(&l.attn_norm);
      out.push_back(&l.out_norm);
    }
    return out;
  }
  BertParts parts_;
  ParameterSet<T> set_;
};
} // namespace detail

/// What a BERT forward pass returns (every Var lives on the tape it was run on).
template <class T>
struct BertOutputs {
  std::vector<Var<T>> hidden; ///< [B, L, d]: the embedding output (0) and the output of every layer
  std::vector<Var<T>> scores; ///< [B, heads, L, L] per layer: q k^T / sqrt(d_head) + (1 - mask) x -10000
  Var<T> pooled;              ///< [B, d] tanh(pooler(hidden.back()[:, 0]))
  Var<T> logits;              ///< [B, labels] classifier(pooled) (invalid when labels == 0)
};

/// BERT encoder with pooler and classification head (Hugging Face's BertForSequenceClassification in eval
/// mode, dropout off): the SpikingBERT teacher. Parameters carry Hugging Face's names.
template <class T>
class Bert {
 public:
  explicit Bert(BertConfig cfg) : cfg_(cfg), p_(cfg, BertParts{true, cfg.labels > 0, false}) {}
  Bert(const Bert&) = delete;
  Bert& operator=(const Bert&) = delete;

  [[nodiscard]] const BertConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] ParameterSet<T>& parameters() noexcept { return p_.set(); }
  [[nodiscard]] const ParameterSet<T>& parameters() const noexcept { return p_.set(); }
  /// Hugging Face's initialisation (initializer_range `std`, 0.02 for BERT).
  void reset_parameters(Rng& rng, double std = 0.02) { p_.reset(rng, std); }
  /// Copies `value` into parameter `name` (Hugging Face names; a "bert." prefix is dropped).
  void set_parameter(const std::string& name, TensorView<const T> value) {
    p_.set(name, value, "Bert::set_parameter");
  }

  /// Runs the encoder on `batch` on the tape (a NoGrad tape for inference).
  BertOutputs<T> forward(Tape<T>& tape, const BertBatch& batch) {
    batch.validate(cfg_);
    const T eps = static_cast<T>(cfg_.layer_norm_eps);
    const std::size_t B = batch.batch, L = batch.length, d = cfg_.hidden;
    const std::vector<T> bias = batch.key_bias<T>();
    const T scale = T(1) / std::sqrt(static_cast<T>(cfg_.head_dim()));
    BertOutputs<T> o;
    Var<T> x = p_.embed(tape, batch, eps);
    o.hidden.push_back(x);
    for (const detail::BertLayer<T>& l : p_.layers) {
      const Var<T> s =
          attention_scores(p_.lin(x, l.query), p_.lin(x, l.key), cfg_.heads, scale, std::span<const T>(bias));
      o.scores.push_back(s);
      const Var<T> ctx = attention_context(softmax(s), p_.lin(x, l.value), cfg_.heads);
      const Var<T> x1 = p_.norm(add(p_.lin(ctx, l.attn_out), x), l.attn_norm, eps);
      x = p_.norm(add(p_.lin(gelu(p_.lin(x1, l.inter)), l.out), x1), l.out_norm, eps);
      o.hidden.push_back(x);
    }
    const Var<T> cls = reshape(slice(reshape(x, {B, L * d}), 1, 0, d), {B, d});
    o.pooled = tanh(p_.lin(cls, p_.pooler));
    if (cfg_.labels > 0) o.logits = p_.lin(o.pooled, p_.classifier);
    return o;
  }

 private:
  BertConfig cfg_;
  detail::BertParameters<T> p_;
};

SPIKELM_NAMESPACE_END

#endif // SPIKELM_MODELS_BERT_HPP
