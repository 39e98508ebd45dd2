// egru_lm: a character-level EGRU language model (EvNN's LM setup) on a text file.
//
//   egru_lm train    [--data FILE] [--steps N] [--batch B] [--bptt T] [--emb E] [--hidden H] [--layers L]
//                    [--lr X] [--seed S] [--gru] [--dense] [--stateful] [--dropout P] [--out W.safetensors]
//                    [--checkpoint C.safetensors] [--every N] [--resume C.safetensors] [--eval-chars N]
//                    [--thr-mean X | X0,X1,..] [--dampening G] [--support S] [--freeze-thr]
//                    [--activity-penalty P]
//   egru_lm eval     --weights W [--data FILE] [--split validation|test] [--eval-chars N] [--context N]
//                    [--carry-h]
//   egru_lm generate --weights W [--prompt TEXT] [--length N] [--temperature X] [--top-p P] [--seed S]
//   egru_lm logits   --weights W --tokens 3,1,4,1 --out OUT.safetensors
//
// The text (default: examples/data/kjv.txt, the bundled King James Bible) is split 90/5/5 into train,
// validation and test. Training draws random windows of --bptt characters (zero state) or, with --stateful,
// walks --batch contiguous streams carrying y from window to window (EvNN's recipe); it uses AdamW with
// global-norm clipping 0.25; evaluation scores every character of the split once with non-overlapping
// windows (--context, default 128; training evaluates with --bptt), carrying the recurrent state between
// windows (as EvNN's LM carries y; --carry-h also carries h, as streaming does). --gru trains a plain GRU of
// the same size (the dense baseline). Weights are written as safetensors under EvNN's parameter names, with
// the character vocabulary and the configuration in the metadata. Each command prints perplexity, bits per
// character and the activity sparsity of every layer (fraction of y = 0); training also prints the backward
// sparsity. eval, and train after its last evaluation, then print a table of each layer's firing rate (1 -
// activity sparsity), synaptic operations and energy per token and its dense-equivalent ratio (metrics/,
// docs/metrics.md).
#include "common.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace {
using namespace spikelm_examples;

std::map<std::string, std::string> config_metadata(const EgruLmConfig& cfg, const CharTokenizer& vocab) {
  return {{"model", "egru_lm"},
          {"vocab", vocab.to_json()},
          {"cell", cfg.cell.gru ? "gru" : "egru"},
          {"dampening", std::to_string(cfg.cell.dampening)},
          {"support", std::to_string(cfg.cell.support)}};
}

/// The configuration from the tensor shapes of a weights file (vocabulary, embedding, hidden, layers).
EgruLmConfig infer_config(const SafetensorsReader& r) {
  check(r.contains("embeddings.weight") && r.contains("decoder.decoder.bias"),
        "egru_lm: the weights file has no embeddings.weight / decoder.decoder.bias: not an EGRU LM");
  EgruLmConfig cfg;
  const auto& emb = r.info("embeddings.weight");
  check(emb.shape.size() == 2, "egru_lm: embeddings.weight must be [vocab, emb]");
  cfg.vocab = emb.shape[0];
  cfg.embedding = emb.shape[1];
  std::size_t layers = 0;
  while (r.contains("rnns." + std::to_string(layers) + ".kernel")) ++layers;
  check(layers > 0, "egru_lm: the weights file has no rnns.0.kernel");
  cfg.layers = layers;
  cfg.hidden = layers > 1 ? r.info("rnns.0.thr").shape.at(0) : cfg.embedding;
  const auto& meta = r.metadata();
  if (auto it = meta.find("cell"); it != meta.end()) cfg.cell.gru = it->second == "gru";
  if (auto it = meta.find("dampening"); it != meta.end()) cfg.cell.dampening = std::stod(it->second);
  if (auto it = meta.find("support"); it != meta.end()) cfg.cell.support = std::stod(it->second);
  cfg.dropout_output = 0.0;
  return cfg;
}

struct Loaded {
  std::unique_ptr<EgruLM<float>> lm;
  CharTokenizer vocab;
};

Loaded load_model(const std::string& path) {
  const SafetensorsReader r = SafetensorsReader::open(path);
  auto it = r.metadata().find("vocab");
  check(it != r.metadata().end(), "egru_lm: ", path, " has no 'vocab' metadata (not written by egru_lm)");
  Loaded l{std::make_unique<EgruLM<float>>(infer_config(r)), CharTokenizer::from_json(it->second)};
  check(l.vocab.vocab_size() == l.lm->config().vocab, "egru_lm: vocabulary of ", l.vocab.vocab_size(),
        " characters but embeddings.weight has ", l.lm->config().vocab, " rows");
  load_parameters(l.lm->parameters(), r);
  return l;
}

struct EvalResult {
  double nll = 0; ///< mean negative log-likelihood (nats per character)
  std::size_t count = 0;
  std::vector<double> sparsity;
  double overall_sparsity = 0; ///< fraction of y = 0 over the units of all layers (EvNN's mean activity)
  OpsCounter ops;              ///< synaptic operations per layer (metrics/egru.hpp)
  FiringRateMonitor rates;     ///< events per layer: firing rate = 1 - activity sparsity
};

EvalResult evaluate(EgruLM<float>& lm, std::span<const TokenId> tokens, std::size_t context,
                    bool carry_h = false) {
  EvalResult res;
  const std::size_t L = lm.num_layers();
  std::vector<std::size_t> zeros(L, 0), steps(L, 0);
  EgruLmState<float> state;
  NoGradGuard ng;
  for (std::size_t s = 0; s + 1 < tokens.size(); s += context) {
    const std::size_t len = std::min(context, tokens.size() - 1 - s);
    Tape<float> tape;
    const auto logp = lm.forward(tape, tokens.subspan(s, len), 1, false, nullptr, &state, carry_h);
    for (std::size_t t = 0; t < len; ++t)
      res.nll -= static_cast<double>(logp.value()(t, static_cast<std::size_t>(tokens[s + t + 1])));
    res.count += len;
    record_egru_lm(lm, res.ops, &res.rates);
    for (std::size_t l = 0; l < L; ++l) {
      zeros[l] += lm.activity()[l].unit_steps - lm.activity()[l].events;
      steps[l] += lm.activity()[l].unit_steps;
    }
  }
  res.nll /= static_cast<double>(std::max<std::size_t>(res.count, 1));
  for (std::size_t l = 0; l < L; ++l)
    res.sparsity.push_back(steps[l] ? static_cast<double>(zeros[l]) / static_cast<double>(steps[l]) : 0.0);
  const auto all_steps = std::accumulate(steps.begin(), steps.end(), std::size_t(0));
  if (all_steps)
    res.overall_sparsity = static_cast<double>(std::accumulate(zeros.begin(), zeros.end(), std::size_t(0))) /
                           static_cast<double>(all_steps);
  return res;
}

void print_eval(const char* what, const EvalResult& e) {
  std::printf("%s: %zu chars, loss %.4f nats, perplexity %.3f, %.4f bits/char, activity sparsity", what,
              e.count, e.nll, std::exp(e.nll), e.nll / std::log(2.0));
  for (double s : e.sparsity) std::printf(" %.3f", s);
  std::printf(" (all units %.3f)\n", e.overall_sparsity);
}

/// Per-layer firing rates, synaptic operations and energy per token of an evaluation (docs/metrics.md).
void print_metrics(const EvalResult& e) {
  if (e.ops.tokens() == 0) return;
  const MetricsReport rep = make_report(e.ops, &e.rates);
  std::printf("%s", rep.table().c_str());
  std::printf("dense-equivalent energy / event-driven energy: %.2fx\n", rep.dense_ratio());
}

int cmd_train(const Args& a) {
  const std::string data = a.get("data", default_data());
  const Corpus corpus = load_corpus(data);
  EgruLmConfig cfg;
  cfg.vocab = corpus.vocab.vocab_size();
  cfg.embedding = a.size("emb", 128);
  cfg.hidden = a.size("hidden", 256);
  cfg.layers = a.size("layers", 3);
  if (a.get("thr-mean", "").find(',') != std::string::npos)
    cfg.layer_thr_mean = a.reals("thr-mean"); // one mean per layer: X0,X1,...
  else
    cfg.thr_mean = a.real("thr-mean", cfg.thr_mean);
  cfg.cell.dampening = a.real("dampening", cfg.cell.dampening);
  cfg.cell.support = a.real("support", cfg.cell.support);
  cfg.cell.activity_penalty = a.real("activity-penalty", 0.0);
  const double p = a.real("dropout", 0.1);
  cfg.dropout_embedding = p;
  cfg.dropout_forward = p;
  cfg.dropout_output = p;
  cfg.cell.dropconnect = p;
  cfg.cell.gru = a.has("gru");
  cfg.cell.mode = a.has("dense") || cfg.cell.gru ? EgruMode::Dense : EgruMode::EventDriven;
  const std::size_t steps = a.size("steps", 600), batch = a.size("batch", 16), bptt = a.size("bptt", 64);
  const std::size_t every = a.size("every", 200), eval_chars = a.size("eval-chars", 20000);
  const std::uint64_t seed = a.size("seed", 1);

  EgruLM<float> lm(cfg);
  Rng init(seed);
  lm.reset_parameters(init);
  if (a.has("freeze-thr"))
    for (std::size_t l = 0; l < cfg.layers; ++l)
      lm.parameters()["rnns." + std::to_string(l) + ".thr"].requires_grad = false;
  AdamW<float> opt(lm.parameters(),
                   {.lr = a.real("lr", 3e-3), .beta1 = a.real("beta1", 0.9), .weight_decay = 1e-6});
  opt.set_schedule(schedule::warmup_cosine(steps / 20 + 1, steps, 0.1));
  CheckpointState st;
  st.rngs["data"] = Rng(seed + 1000);
  st.rngs["dropout"] = Rng(seed + 2000);
  if (a.has("resume")) {
    st = load_checkpoint(a.get("resume", ""), lm.parameters(), opt);
    std::printf("resumed from %s at step %llu\n", a.get("resume", "").c_str(),
                static_cast<unsigned long long>(st.step));
  }
  std::printf(
      "egru_lm train: %s (%zu train / %zu validation chars, vocabulary %zu), %s, %zu layers, emb %zu, "
      "hidden %zu, batch %zu x %zu, %zu steps\n",
      data.c_str(), corpus.splits.train.size(), corpus.splits.validation.size(), cfg.vocab,
      cfg.cell.gru ? "GRU (dense baseline)" : "EGRU", cfg.layers, cfg.embedding, cfg.hidden, batch, bptt,
      steps);
  const auto valid = std::span<const TokenId>(corpus.splits.validation)
                         .first(std::min(eval_chars, corpus.splits.validation.size()));
  // --stateful: contiguous streams, each window continuing the last with the carried y (EvNN's training);
  // otherwise random windows from a zero state. After --resume the carried state starts from zero.
  const bool stateful = a.has("stateful");
  const StreamWindows streams(corpus.splits.train, bptt, batch);
  EgruLmState<float> carried;
  const auto t0 = Clock::now();
  double smoothed = 0;
  const std::size_t first_step = static_cast<std::size_t>(st.step);
  EvalResult last_eval;
  for (std::size_t step = first_step; step < steps; ++step) {
    const std::size_t k = step % streams.windows();
    if (stateful && k == 0) carried = EgruLmState<float>{}; // a new pass over the streams
    const WindowBatch wb =
        stateful ? streams.window(k) : random_windows(corpus.splits.train, bptt, batch, st.rngs["data"]);
    Tape<float> tape;
    lm.parameters().zero_grad();
    const auto loss = lm.loss(tape, wb.inputs.span(), wb.targets.span(), batch, true, &st.rngs["dropout"],
                              stateful ? &carried : nullptr);
    tape.backward(loss);
    check_finite_step(step, loss.value().data()[0], lm.parameters());
    clip_grad_norm(lm.parameters(), 0.25);
    opt.step();
    const double lv = loss.value().data()[0];
    smoothed = step == first_step ? lv : 0.95 * smoothed + 0.05 * lv;
    const bool last = step + 1 == steps;
    if ((step + 1) % 25 == 0 || last) {
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      const double done = static_cast<double>(step + 1 - first_step);
      std::printf("step %5zu  loss %.4f  bits/char %.3f  %.0f chars/s  ETA %.0f s  sparsity", step + 1,
                  smoothed, smoothed / std::log(2.0), done * static_cast<double>(batch * bptt) / secs,
                  secs / done * static_cast<double>(steps - step - 1));
      for (const auto& act : lm.activity()) std::printf(" %.3f", act.sparsity());
      std::printf("  backward sparsity");
      for (const auto& act : lm.activity()) std::printf(" %.3f", act.backward_sparsity());
      std::printf("\n");
      std::fflush(stdout);
    }
    if ((step + 1) % every == 0 || last) {
      last_eval = evaluate(lm, valid, bptt);
      print_eval("  validation", last_eval);
      if (a.has("checkpoint")) {
        st.step = step + 1;
        save_checkpoint(a.get("checkpoint", ""), lm.parameters(), opt, st);
      }
    }
  }
  const std::string out = a.get("out", "egru_lm.safetensors");
  save_parameters(lm.parameters(), out, config_metadata(cfg, corpus.vocab));
  std::printf("wrote %s (%.1f s of training)\n", out.c_str(),
              std::chrono::duration<double>(Clock::now() - t0).count());
  print_metrics(last_eval);
  return 0;
}

int cmd_eval(const Args& a) {
  Loaded m = load_model(a.get("weights", "egru_lm.safetensors"));
  const Corpus corpus = load_corpus(a.get("data", default_data()), &m.vocab);
  const std::string split = a.get("split", "validation");
  check(split == "validation" || split == "test", "egru_lm eval: --split must be validation or test");
  const auto& toks = split == "test" ? corpus.splits.test : corpus.splits.validation;
  const auto span =
      std::span<const TokenId>(toks).first(std::min(a.size("eval-chars", toks.size()), toks.size()));
  const std::size_t context = a.size("context", 128);
  check(context > 0, "egru_lm eval: --context must be positive");
  const EvalResult e = evaluate(*m.lm, span, context, a.has("carry-h"));
  print_eval(split.c_str(), e);
  print_metrics(e);
  return 0;
}

int cmd_generate(const Args& a) {
  Loaded m = load_model(a.get("weights", "egru_lm.safetensors"));
  const std::string prompt = a.get("prompt", "In the beginning");
  const std::size_t length = a.size("length", 300);
  const double temperature = a.real("temperature", 0.8), top_p = a.real("top-p", 1.0);
  check(temperature > 0, "egru_lm generate: --temperature must be positive");
  check(top_p > 0 && top_p <= 1, "egru_lm generate: --top-p must be in (0, 1]");
  Rng rng(a.size("seed", 7));
  std::vector<TokenId> ids = m.vocab.encode(prompt);
  check(!ids.empty(), "egru_lm generate: the prompt is empty");
  EgruLmState<float> state;
  NoGradGuard ng;
  Tape<float> tape;
  auto logp = m.lm->forward(tape, ids, 1, false, nullptr, &state, true);
  std::vector<TokenId> out;
  const std::size_t V = m.lm->config().vocab;
  Tape<float> tp; // outlives the loop: logp must stay readable until the next forward
  for (std::size_t i = 0; i < length; ++i) {
    const float* row = logp.value().data() + (logp.value().dim(0) - 1) * V;
    const TokenId next = sample_token(std::span<const float>(row, V), temperature, top_p, rng);
    out.push_back(next);
    tp.clear();
    logp = m.lm->forward(tp, std::span<const TokenId>(&out.back(), 1), 1, false, nullptr, &state, true);
  }
  std::printf("%s%s\n", prompt.c_str(), m.vocab.decode(out).c_str());
  return 0;
}

int cmd_logits(const Args& a) {
  Loaded m = load_model(a.get("weights", "egru_lm.safetensors"));
  check(a.has("tokens") && a.has("out"), "egru_lm logits: needs --tokens 3,1,4 and --out OUT.safetensors");
  const std::vector<TokenId> ids = parse_token_list(a.get("tokens", ""));
  NoGradGuard ng;
  Tape<float> tape;
  const auto logp = m.lm->forward(tape, ids, 1, false);
  SafetensorsWriter w;
  w.add("logits", Tensor<float>(logp.value()));
  for (std::size_t l = 0; l < m.lm->num_layers(); ++l) {
    Tensor<float> rate({1});
    rate.data()[0] = static_cast<float>(m.lm->activity()[l].activity());
    w.add("activity." + std::to_string(l), rate);
  }
  w.save(a.get("out", ""));
  std::printf("wrote log-probabilities [%zu, %zu] to %s\n", ids.size(), m.lm->config().vocab,
              a.get("out", "").c_str());
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    const Args a = parse_args(argc, argv, 2, {"gru", "dense", "freeze-thr", "stateful", "carry-h"});
    if (cmd == "train") return cmd_train(a);
    if (cmd == "eval") return cmd_eval(a);
    if (cmd == "generate") return cmd_generate(a);
    if (cmd == "logits") return cmd_logits(a);
    std::fprintf(stderr,
                 "usage: egru_lm train|eval|generate|logits [options] (see the top of egru_lm.cpp)\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "egru_lm: %s\n", e.what());
    return 1;
  }
}
