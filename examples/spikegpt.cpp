// spikegpt: SpikeGPT, the spiking RWKV-4 language model (SPEC §3, docs/models/spike_gpt.md), character-level.
//
//   spikegpt train    [--data FILE] [--steps N] [--batch B] [--context T] [--layers L] [--width D] [--ffn H]
//                     [--lr X] [--lr-final X] [--warmup N] [--seed S] [--dropout P] [--init torch|rwkv]
//                     [--init-out I.safetensors] [--out W.safetensors] [--checkpoint C.safetensors]
//                     [--every N] [--resume C.safetensors] [--eval-chars N] [--log N]
//   spikegpt generate --weights W [--vocab vocab.json] [--prompt TEXT] [--length N] [--temperature X]
//                     [--top-p P] [--seed S]
//   spikegpt eval     --weights W [--vocab vocab.json] [--text FILE | --data FILE --split validation|test]
//                     [--eval-chars N] [--context T] [--batch B]
//   spikegpt logits   --weights W --tokens 3,1,4,1 --out OUT.safetensors [--mode parallel|recurrent]
//                     [--context T]
//
// train: the text (default: examples/data/kjv.txt, the bundled King James Bible) is split 90/5/5 into train,
// validation and test. Each step draws --batch random windows of --context characters (zero state, parallel
// mode on the tape) and takes an Adam step (betas 0.9/0.99, eps 4e-9, global-norm clipping 1.0, as the
// reference trainer) with a linear warm-up and a cosine decay from --lr to --lr-final. The loss is the mean
// cross-entropy wrapped in L2Wrap; dropout (--dropout, default 0.03) acts on the residual stream. Every
// --log steps a progress line (step, smoothed loss, bits/char, tokens/s, ETA, learning rate, firing rates);
// every --every steps the bits/char of the first --eval-chars validation characters and, with
// --checkpoint, a checkpoint (parameters, Adam state, step, the data and dropout Rng streams; --resume
// continues from one bit for bit). The weights are written to --out as safetensors under the reference's
// state-dict names and shapes (time_mix_* as [1, 1, d]), with the vocabulary and the configuration in the
// metadata. --init-out also writes the initial weights (before the first step), e.g. for
// benchmarks/compare/spike_gpt_learning.py, which trains the PyTorch reference from the same start.
//
// Weights files: either written by `spikegpt train` or by the PyTorch reference (tools/convert_checkpoint.py
// turns a .pth into safetensors). The configuration is inferred from the tensor shapes; the context (not
// stored in weights) comes from the metadata, else --context, else 1024. A file without a vocabulary in its
// metadata needs --vocab vocab.json (SpikeGPT's format) for generate and eval; logits takes token ids and
// needs none.
//
// generate: recurrent mode, one token at a time with the streaming state (7 d values per layer), the prompt
// fed token by token; sampling as the reference's sample_logits (top-p on the probabilities, then
// p^(1/temperature); temperature 0 is greedy). The text goes to stdout, the statistics to stderr.
// eval: bits/char with non-overlapping windows of the context, each from the zero state (parallel mode),
// every character of the text scored once (the first has no prediction).
// logits: float32 `logits` [T, V] of the token ids from the zero state (parallel mode, or token by token with
// --mode recurrent) and the firing rates of the two LIF populations of every layer, `firing_rate.{l}.att`
// (LIF1, after TimeMix) and `firing_rate.{l}.ffn` (LIF2, after ChannelMix), float32 [1]: the fraction of
// (token, channel) pairs that spiked.
//
// Every command prints the firing rates of LIF1/LIF2 per layer; eval, generate and logits also print the
// report of metrics/ (docs/metrics.md): per projection the synaptic operations per token in the event-driven
// form of metrics/spike_gpt.hpp (ACs over embedding bits and spikes, MACs), the dense-equivalent MACs and the
// energy at 0.9 pJ per AC and 4.6 pJ per MAC. Errors (a weights file of another
// architecture, token ids outside the vocabulary, a sequence longer than the context in parallel mode, ...)
// print "spikegpt: <message>" and exit with status 1; a bad command line exits with status 2.
#include "common.hpp"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {
using namespace spikelm_examples;
using Rates = std::vector<std::array<double, 2>>;

void print_rates(std::FILE* f, const Rates& r) {
  std::fprintf(f, "firing rates LIF1/LIF2");
  for (std::size_t l = 0; l < r.size(); ++l) std::fprintf(f, " L%zu %.3f/%.3f", l, r[l][0], r[l][1]);
}

/// Firing rates {LIF1, LIF2} per layer of the passes `act` counts.
Rates rates_of(const SpikeGptActivity& act, std::size_t d) {
  Rates r;
  const double cells = static_cast<double>(std::max<std::uint64_t>(act.tokens * d, 1));
  for (const auto& s : act.spikes)
    r.push_back({static_cast<double>(s[0]) / cells, static_cast<double>(s[1]) / cells});
  return r;
}

/// Firing rates, synaptic operations and energy per token of the passes `act` counts (docs/metrics.md;
/// the event-driven operation counts of metrics/spike_gpt.hpp).
void print_metrics(std::FILE* f, const SpikeGptConfig& cfg, const SpikeGptActivity& act) {
  if (act.tokens == 0) return;
  OpsCounter ops;
  FiringRateMonitor rates;
  record_spike_gpt(cfg, act, ops, &rates);
  const MetricsReport rep = make_report(ops, &rates);
  std::fprintf(f, "%s", rep.table().c_str());
  std::fprintf(f, "dense-equivalent energy / event-driven energy: %.2fx\n", rep.dense_ratio());
}

std::map<std::string, std::string> weights_metadata(const SpikeGptConfig& cfg, const CharTokenizer& vocab) {
  return {{"format", "pt"},
          {"model", "spike_gpt"},
          {"vocab", vocab.to_json()},
          {"vocab_size", std::to_string(cfg.vocab)},
          {"n_layer", std::to_string(cfg.layers)},
          {"n_embd", std::to_string(cfg.d_model)},
          {"ctx_len", std::to_string(cfg.context)}};
}

/// Writes the parameters under the reference's names and shapes (time_mix_* as [1, 1, d]), float32.
void save_weights(const SpikeGPT<float>& m, const std::string& path,
                  const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter w;
  m.parameters().for_each([&](const Parameter<float>& p) {
    const Shape s = spike_gpt_reference_shape(p.name, p.shape());
    w.add_values(p.name, std::span<const float>(p.value.data(), p.value.size()),
                 std::vector<std::uint64_t>(s.begin(), s.end()));
  });
  for (const auto& [k, v] : metadata) w.set_metadata(k, v);
  w.save(path);
}

struct Loaded {
  std::unique_ptr<SpikeGPT<float>> model;
  std::optional<CharTokenizer> vocab;
};

/// Loads --weights (config from the shapes), the context (metadata, --context, 1024) and the vocabulary
/// (--vocab, else the metadata; required when `need_vocab`).
Loaded load_model(const Args& a, bool need_vocab) {
  check(a.has("weights"), "needs --weights W.safetensors");
  const std::string path = a.get("weights", "");
  const SafetensorsReader r = SafetensorsReader::open(path);
  const auto& meta = r.metadata();
  if (auto it = meta.find("model"); it != meta.end())
    check(it->second == "spike_gpt", path, " is not a SpikeGPT weights file: its metadata says \"model\": \"",
          it->second, "\"");
  std::size_t context = 1024;
  if (auto it = meta.find("ctx_len"); it != meta.end()) {
    Args m{{{"ctx_len", it->second}}};
    context = m.size("ctx_len", context);
  }
  context = a.size("context", context);
  std::map<std::string, Shape> shapes;
  for (const TensorInfo& t : r.tensors()) shapes.emplace(t.name, t.tensor_shape());
  SpikeGptConfig cfg;
  try {
    cfg = infer_spike_gpt_config(shapes, context);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  cfg.dropout = 0.0;
  Loaded l{std::make_unique<SpikeGPT<float>>(cfg), std::nullopt};
  for (const auto& [name, shape] : shapes) l.model->set_parameter(name, r.read<float>(name).cview());
  if (a.has("vocab")) {
    l.vocab = CharTokenizer::load(a.get("vocab", ""));
  } else if (auto it = meta.find("vocab"); it != meta.end()) {
    l.vocab = CharTokenizer::from_json(it->second, path + ": metadata \"vocab\"");
  } else {
    check(!need_vocab, path,
          " has no vocabulary in its metadata (a file of the PyTorch reference?): pass --vocab vocab.json");
  }
  if (l.vocab)
    check(l.vocab->vocab_size() == cfg.vocab, "the vocabulary has ", l.vocab->vocab_size(),
          " characters but emb.weight of ", path, " has ", cfg.vocab, " rows");
  return l;
}

struct EvalResult {
  double nll = 0; ///< mean negative log-likelihood, nats per character
  std::size_t count = 0;
  SpikeGptActivity act; ///< spike counts of the passes
  Rates rates;          ///< firing rates {LIF1, LIF2} per layer
};

/// Scores every next-character prediction of `tokens` once: non-overlapping windows of `context` characters,
/// `batch` windows per forward pass, each from the zero state.
EvalResult evaluate(SpikeGPT<float>& m, std::span<const TokenId> tokens, std::size_t context,
                    std::size_t batch) {
  EvalResult res;
  const EvalWindows windows(tokens, context, batch);
  const std::size_t V = m.config().vocab;
  NoGradGuard ng;
  for (std::size_t i = 0; i < windows.batches(); ++i) {
    const WindowBatch wb = windows.batch(i);
    const std::size_t rows = wb.inputs.dim(0);
    Tape<float> tape;
    const auto z = m.logits(tape, wb.inputs.span(), rows, false);
    const float* zv = z.value().data();
    for (std::size_t b = 0; b < rows; ++b)
      for (std::size_t t = 0; t < context; ++t) {
        const TokenId target = wb.targets.data()[b * context + t];
        if (target < 0) continue;
        const float* row = zv + (t * rows + b) * V;
        const double mx = *std::max_element(row, row + V);
        double s = 0;
        for (std::size_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(row[v]) - mx);
        res.nll += mx + std::log(s) - static_cast<double>(row[static_cast<std::size_t>(target)]);
        ++res.count;
      }
    res.act += spike_gpt_activity(m, rows * context);
  }
  res.nll /= static_cast<double>(std::max<std::size_t>(res.count, 1));
  res.rates = rates_of(res.act, m.config().d_model);
  return res;
}

void print_eval(const char* what, const EvalResult& e) {
  std::printf("%s: %zu chars, loss %.4f nats, perplexity %.3f, %.4f bits/char, ", what, e.count, e.nll,
              std::exp(e.nll), e.nll / std::log(2.0));
  print_rates(stdout, e.rates);
  std::printf("\n");
  std::fflush(stdout);
}

int cmd_train(const Args& a) {
  a.allow({"data", "steps",      "batch",  "context", "layers",     "width", "ffn",
           "lr",   "lr-final",   "warmup", "seed",    "dropout",    "init",  "init-out",
           "out",  "checkpoint", "every",  "resume",  "eval-chars", "log"},
          "train");
  const std::string data = a.get("data", default_data());
  const Corpus corpus = load_corpus(data);
  SpikeGptConfig cfg;
  cfg.vocab = corpus.vocab.vocab_size();
  cfg.layers = a.size("layers", 4);
  cfg.d_model = a.size("width", 128);
  cfg.ffn = a.size("ffn", 0);
  cfg.context = a.size("context", 128);
  cfg.dropout = a.real("dropout", 0.03);
  const std::size_t steps = a.size("steps", 1000), batch = a.size("batch", 8);
  const std::size_t every = a.size("every", 250), log_every = a.size("log", 10);
  const std::size_t eval_chars = a.size("eval-chars", 20000);
  const std::uint64_t seed = a.size("seed", 1);
  const double lr = a.real("lr", 2e-3), lr_final = a.real("lr-final", lr / 10);
  const std::size_t warmup = a.size("warmup", std::min<std::size_t>(steps / 20 + 1, 200));
  const std::string init = a.get("init", "torch");
  check(init == "torch" || init == "rwkv", "--init must be torch or rwkv");
  check(steps > 0 && batch > 0 && every > 0 && log_every > 0,
        "--steps, --batch, --every and --log must be positive");
  check(lr > 0 && lr_final >= 0 && lr_final <= lr, "need 0 <= --lr-final <= --lr and --lr > 0");

  SpikeGPT<float> m(cfg);
  Rng init_rng(seed);
  m.reset_parameters(init_rng, init == "rwkv" ? SpikeGptInit::Rwkv : SpikeGptInit::Torch);
  if (a.has("init-out")) save_weights(m, a.get("init-out", ""), weights_metadata(cfg, corpus.vocab));
  Adam<float> opt(m.parameters(), {.lr = lr, .beta1 = 0.9, .beta2 = 0.99, .eps = 4e-9});
  opt.set_schedule(schedule::warmup_cosine(warmup, steps, lr_final / lr));
  CheckpointState st;
  st.rngs["data"] = Rng(seed + 1000);
  st.rngs["dropout"] = Rng(seed + 2000);
  st.metadata = weights_metadata(cfg, corpus.vocab);
  if (a.has("resume")) {
    const std::string from = a.get("resume", "");
    const CheckpointState saved = read_checkpoint_state(from);
    auto v = saved.metadata.find("vocab");
    check(v != saved.metadata.end() && v->second == corpus.vocab.to_json(), "checkpoint ", from,
          " was trained on another vocabulary than that of ", data);
    st = load_checkpoint(from, m.parameters(), opt);
    std::printf("resumed from %s at step %llu\n", from.c_str(), static_cast<unsigned long long>(st.step));
  }
  std::size_t params = 0;
  m.parameters().for_each([&](const Parameter<float>& p) { params += p.size(); });
  std::printf("spikegpt train: %s (%zu train / %zu validation chars, vocabulary %zu), %zu layers, width %zu, "
              "%.2fM parameters, batch %zu x %zu, %zu steps, lr %g -> %g, dropout %g, %d threads\n",
              data.c_str(), corpus.splits.train.size(), corpus.splits.validation.size(), cfg.vocab,
              cfg.layers, cfg.d_model, static_cast<double>(params) / 1e6, batch, cfg.context, steps, lr,
              lr_final, cfg.dropout, max_threads());
  std::fflush(stdout);
  const auto valid = std::span<const TokenId>(corpus.splits.validation)
                         .first(std::min(eval_chars, corpus.splits.validation.size()));
  const auto t0 = Clock::now();
  double smoothed = 0, eval_secs = 0;
  const std::size_t first_step = static_cast<std::size_t>(st.step);
  for (std::size_t step = first_step; step < steps; ++step) {
    const WindowBatch wb = random_windows(corpus.splits.train, cfg.context, batch, st.rngs["data"]);
    const double rate = opt.lr();
    Tape<float> tape;
    m.parameters().zero_grad();
    const auto loss = m.loss(tape, wb.inputs.span(), wb.targets.span(), batch, true, &st.rngs["dropout"]);
    tape.backward(loss);
    clip_grad_norm(m.parameters(), 1.0);
    opt.step();
    const double lv = loss.value().data()[0];
    check(std::isfinite(lv), "the loss is ", lv, " at step ", step + 1, "; try a smaller --lr");
    smoothed = step == first_step ? lv : 0.9 * smoothed + 0.1 * lv;
    const bool last = step + 1 == steps;
    if ((step + 1) % log_every == 0 || last) {
      const double secs = seconds_since(t0) - eval_secs;
      const double done = static_cast<double>(step + 1 - first_step);
      std::printf("step %5zu  loss %.4f  bits/char %.3f  %.0f tokens/s  ETA %.0f s  lr %.2e  ", step + 1,
                  smoothed, smoothed / std::log(2.0), done * static_cast<double>(batch * cfg.context) / secs,
                  secs / done * static_cast<double>(steps - step - 1), rate);
      print_rates(stdout, m.firing_rates());
      std::printf("\n");
      std::fflush(stdout);
    }
    if ((step + 1) % every == 0 || last) {
      const auto te = Clock::now();
      print_eval("  validation", evaluate(m, valid, cfg.context, 8));
      if (a.has("checkpoint")) {
        st.step = step + 1;
        save_checkpoint(a.get("checkpoint", ""), m.parameters(), opt, st);
      }
      eval_secs += seconds_since(te);
    }
  }
  const std::string out = a.get("out", "spikegpt.safetensors");
  save_weights(m, out, weights_metadata(cfg, corpus.vocab));
  std::printf("wrote %s (%.1f s, of which %.1f s validation)\n", out.c_str(), seconds_since(t0), eval_secs);
  return 0;
}

int cmd_eval(const Args& a) {
  a.allow({"weights", "vocab", "text", "data", "split", "eval-chars", "context", "batch"}, "eval");
  Loaded l = load_model(a, true);
  const std::size_t context = l.model->config().context, batch = a.size("batch", 8);
  check(batch > 0, "--batch must be positive");
  std::vector<TokenId> toks;
  std::string what;
  if (a.has("text")) {
    check(!a.has("split"), "give either --text FILE or --split (of --data)");
    what = a.get("text", "");
    toks = l.vocab->encode(read_text_file(what));
  } else {
    const Corpus corpus = load_corpus(a.get("data", default_data()), &*l.vocab);
    const std::string split = a.get("split", "validation");
    check(split == "validation" || split == "test", "--split must be validation or test");
    what = split;
    toks = split == "test" ? corpus.splits.test : corpus.splits.validation;
  }
  const auto span =
      std::span<const TokenId>(toks).first(std::min(a.size("eval-chars", toks.size()), toks.size()));
  check(span.size() >= 2, "", what, " has fewer than 2 characters to score");
  const auto t0 = Clock::now();
  const EvalResult e = evaluate(*l.model, span, context, batch);
  const double secs = seconds_since(t0);
  print_eval(what.c_str(), e);
  std::printf("(windows of %zu characters, %.1f s, %.0f tokens/s)\n", context, secs,
              static_cast<double>(e.count) / secs);
  print_metrics(stdout, l.model->config(), e.act);
  return 0;
}

int cmd_generate(const Args& a) {
  a.allow({"weights", "vocab", "prompt", "length", "temperature", "top-p", "seed", "context"}, "generate");
  Loaded l = load_model(a, true);
  const CharTokenizer& vocab = *l.vocab;
  const std::string prompt = a.get("prompt", "In the beginning");
  const std::size_t length = a.size("length", 300);
  const double temperature = a.real("temperature", 1.0), top_p = a.real("top-p", 0.85);
  check(temperature >= 0, "--temperature must be >= 0");
  check(top_p > 0 && top_p <= 1, "--top-p must be in (0, 1]");
  Rng rng(a.size("seed", 7));
  const std::vector<TokenId> ids = vocab.encode(prompt);
  check(!ids.empty(), "the prompt is empty");
  SpikeGptState<float> state;
  Tensor<float> z;
  for (TokenId t : ids) z = l.model->step(std::span<const TokenId>(&t, 1), state);
  std::printf("%s", prompt.c_str());
  const auto t0 = Clock::now();
  SpikeGptActivity act;
  for (std::size_t i = 0; i < length; ++i) {
    const TokenId next = sample_token(z.span(), temperature, top_p, rng);
    std::printf("%s", vocab.decode(std::span<const TokenId>(&next, 1)).c_str());
    std::fflush(stdout);
    z = l.model->step(std::span<const TokenId>(&next, 1), state);
    act += spike_gpt_activity(*l.model, 1);
  }
  std::printf("\n");
  std::fflush(stdout);
  const double secs = seconds_since(t0);
  std::fprintf(stderr, "generated %zu characters in %.2f s (%.0f tokens/s, recurrent mode); ", length, secs,
               static_cast<double>(length) / std::max(secs, 1e-9));
  print_rates(stderr, rates_of(act, l.model->config().d_model));
  std::fprintf(stderr, "\n");
  print_metrics(stderr, l.model->config(), act);
  return 0;
}

int cmd_logits(const Args& a) {
  a.allow({"weights", "vocab", "tokens", "out", "mode", "context"}, "logits");
  Loaded l = load_model(a, false);
  check(a.has("tokens") && a.has("out"), "logits needs --tokens 3,1,4,1 and --out OUT.safetensors");
  const std::vector<TokenId> ids = parse_token_list(a.get("tokens", ""));
  const std::string mode = a.get("mode", "parallel");
  check(mode == "parallel" || mode == "recurrent", "--mode must be parallel or recurrent");
  SpikeGPT<float>& m = *l.model;
  const std::size_t T = ids.size(), V = m.config().vocab;
  Tensor<float> logits({T, V});
  SpikeGptActivity act;
  if (mode == "parallel") {
    NoGradGuard ng;
    Tape<float> tape;
    const auto z = m.logits(tape, ids, 1, false);
    logits.copy_from(z.value());
    act = spike_gpt_activity(m, T);
  } else {
    for (std::size_t t = 0; t < T; ++t) // step() sees one token at a time: name the position in --tokens
      check(ids[t] >= 0 && static_cast<std::size_t>(ids[t]) < V, "token id ", ids[t], " at position ", t,
            " of --tokens is outside the vocabulary [0, ", V, ")");
    SpikeGptState<float> state;
    for (std::size_t t = 0; t < T; ++t) {
      m.step(std::span<const TokenId>(&ids[t], 1), state,
             TensorView<float>(logits.data() + t * V, Shape{1, V}));
      act += spike_gpt_activity(m, 1);
    }
  }
  const Rates rates = rates_of(act, m.config().d_model);
  SafetensorsWriter w;
  w.add("logits", logits);
  for (std::size_t i = 0; i < rates.size(); ++i) {
    const std::string pre = "firing_rate." + std::to_string(i);
    for (int k = 0; k < 2; ++k) {
      const float r = static_cast<float>(rates[i][k]);
      w.add_values(pre + (k == 0 ? ".att" : ".ffn"), std::span<const float>(&r, 1), {1});
    }
  }
  w.set_metadata("mode", mode);
  w.set_metadata("tokens", a.get("tokens", ""));
  w.save(a.get("out", ""));
  std::printf("wrote logits [%zu, %zu] (%s mode) to %s; ", T, V, mode.c_str(), a.get("out", "").c_str());
  print_rates(stdout, rates);
  std::printf("\n");
  print_metrics(stdout, m.config(), act);
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    const Args a = parse_args(argc, argv, 2);
    if (cmd == "train") return cmd_train(a);
    if (cmd == "eval") return cmd_eval(a);
    if (cmd == "generate") return cmd_generate(a);
    if (cmd == "logits") return cmd_logits(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spikegpt: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: spikegpt train|generate|eval|logits [options] (see the top of spikegpt.cpp)\n");
  return 2;
}
