// spiking_bert: a BERT teacher and its SpikingBERT student on the bundled six-way KJV section task
// (examples/data/kjv_sections_*.tsv): teacher training, distillation, training without a teacher,
// evaluation with firing rates, synaptic operations and energy, prediction, and the conformance outputs.
//
//   spiking_bert run      [--dir DIR] [--teacher-steps N] [--general-steps N] [--task-steps N]
//                         [--pred-steps N] [--T 16]          the self-contained default: trains a teacher,
//                                                            distils a student, trains one without a teacher,
//                                                            evaluates both at T = 4, 8, 16, 32
//   spiking_bert teacher  --out T.safetensors [--layers 4] [--width 128] [--heads 4] [--ffn 256]
//                         [--steps 600] [--batch 32] [--lr 1e-3] [--max-len 40] [--seed 1]
//                         [--init PRETRAINED.safetensors]   (fine-tunes a pretrained BERT imported by
//                                                            tools/import_hf_bert.py; --lr default 1e-4)
//   spiking_bert distill  --teacher T.safetensors --out S.safetensors [--layers 2] [--T 16]
//                         [--general-steps 200] [--task-steps 300] [--pred-steps 300] [--batch 32] [--lr
//                         1e-3] [--threshold 1] [--feedback 0|1]
//   spiking_bert train    --teacher T.safetensors --out S.safetensors [--layers 2] [--T 16] [--steps 600]
//                         [--threshold 1] [--feedback 0|1]
//                         (labels only, no distillation; the teacher file gives the vocabulary and widths)
//   spiking_bert eval     --weights W.safetensors [--split dev|test] [--T 16]
//   spiking_bert predict  --weights W.safetensors --text "..." [--T 16]
//   spiking_bert logits   --weights S.safetensors --tokens 2,17,3 --T 16 --out OUT.safetensors
//   spiking_bert hidden   --teacher T.safetensors --tokens 2,17,3 --out OUT.safetensors
//
// Weights files are safetensors under Hugging Face BERT names; the metadata holds "model" (bert or
// spiking_bert), "config" (config.json), "vocab" (vocab.txt), "labels", "max_len" and, for a student,
// "threshold" and "feedback" (1 when the student has W_s from O back to E). The vocabulary is word-level (the
// training set's words seen twice or more, lower-cased, with punctuation split as BERT's basic tokenizer
// does), used through spikelm's WordPieceTokenizer.
#include "common.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>

namespace {
using namespace spikelm_examples;

std::string data_file(const std::string& split) {
  return std::string(SPIKELM_EXAMPLES_DATA_DIR) + "/kjv_sections_" + split + ".tsv";
}

/// Words of an ASCII text as BERT's basic tokenizer splits them (lower-cased; punctuation on its own).
std::vector<std::string> basic_words(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(cur);
    cur.clear();
  };
  for (unsigned char c : text) {
    if (std::isspace(c)) {
      flush();
    } else if (std::ispunct(c)) {
      flush();
      out.emplace_back(1, static_cast<char>(c));
    } else {
      cur.push_back(static_cast<char>(std::tolower(c)));
    }
  }
  flush();
  return out;
}

/// vocab.txt text: the special tokens, then the words seen at least `min_count` times (most frequent first).
std::string build_vocab(const std::vector<std::string>& texts, std::size_t min_count) {
  std::map<std::string, std::size_t> freq;
  for (const auto& t : texts)
    for (const auto& w : basic_words(t)) ++freq[w];
  std::vector<std::pair<std::string, std::size_t>> words(freq.begin(), freq.end());
  std::stable_sort(words.begin(), words.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (const auto& [w, n] : words)
    if (n >= min_count) v += w + "\n";
  return v;
}

std::string join(const std::vector<std::string>& xs, char sep) {
  std::string s;
  for (std::size_t i = 0; i < xs.size(); ++i) s += (i ? std::string(1, sep) : "") + xs[i];
  return s;
}
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

/// A model file's shared parts.
struct Meta {
  std::string model;
  BertConfig cfg;
  std::string vocab;
  std::vector<std::string> labels;
  std::size_t max_len = 40;
  float threshold = 1.0f;
  bool feedback = false; ///< the student's W_s from the last layer's O back to E

  [[nodiscard]] SpikingBertOptions student_options() const {
    SpikingBertOptions o;
    o.threshold = threshold;
    o.feedback = feedback;
    return o;
  }
  [[nodiscard]] std::map<std::string, std::string> to_map() const {
    return {{"model", model},
            {"config", cfg.to_json()},
            {"vocab", vocab},
            {"labels", join(labels, '\n')},
            {"max_len", std::to_string(max_len)},
            {"threshold", std::to_string(threshold)},
            {"feedback", feedback ? "1" : "0"}};
  }
  static Meta read(const SafetensorsReader& r, const std::string& path) {
    const auto& m = r.metadata();
    auto get = [&](const char* k) {
      auto it = m.find(k);
      check(it != m.end(), path, " lacks the metadata key \"", k, "\" (not written by spiking_bert?)");
      return it->second;
    };
    Meta meta;
    meta.model = get("model");
    meta.cfg = BertConfig::from_json(get("config"), path + " config");
    meta.vocab = get("vocab");
    meta.labels = split(get("labels"), '\n');
    meta.max_len = Args{{{"max_len", get("max_len")}}}.size("max_len", 40);
    meta.threshold = static_cast<float>(Args{{{"threshold", get("threshold")}}}.real("threshold", 1.0));
    meta.feedback = m.count("feedback") != 0 && m.at("feedback") == "1";
    return meta;
  }
};

void save_model(const ParameterSet<float>& ps, const Meta& meta, const std::string& path) {
  SafetensorsWriter w;
  ps.for_each([&](const Parameter<float>& p) { w.add(p.name, p.value); });
  for (const auto& [k, v] : meta.to_map()) w.set_metadata(k, v);
  w.save(path);
}
/// Encoded batches of the labeled task.
struct Task {
  LabeledDataset train, dev, test;
};
Task load_task() {
  Task t;
  t.train = read_labeled_tsv(data_file("train"));
  t.dev = read_labeled_tsv(data_file("dev"), t.train.label_names);
  t.test = read_labeled_tsv(data_file("test"), t.train.label_names);
  return t;
}

BertBatch encode(const WordPieceTokenizer& tok, const std::vector<std::string>& texts, std::size_t max_len) {
  EncodeOptions o;
  o.max_length = max_len;
  o.truncation = true;
  const BatchEncoding e = tok.encode_batch(texts, o);
  BertBatch b;
  b.batch = e.ids.dim(0);
  b.length = e.ids.dim(1);
  b.ids.assign(e.ids.data(), e.ids.data() + e.ids.size());
  b.types.assign(e.token_type_ids.data(), e.token_type_ids.data() + e.token_type_ids.size());
  b.mask.assign(e.attention_mask.data(), e.attention_mask.data() + e.attention_mask.size());
  return b;
}

std::vector<std::size_t> sample(std::size_t n, std::size_t k, Rng& rng) {
  std::vector<std::size_t> idx(k);
  for (auto& i : idx) i = rng.uniform_index(n);
  return idx;
}

/// Runs `steps` optimisation steps of loss_fn(step) with Adam (warm-up, cosine decay) and logs the loss.
template <class F>
void optimise(ParameterSet<float>& ps, std::size_t steps, double lr, const char* what, std::size_t log_every,
              F&& loss_fn) {
  if (steps == 0) return;
  Adam<float> opt(ps, {.lr = lr, .weight_decay = 0.01, .decoupled = true}); // AdamW, as BERT
  opt.set_schedule(schedule::warmup_cosine(std::max<std::size_t>(steps / 10, 1), steps, 0.1));
  const auto t0 = Clock::now();
  double smoothed = 0;
  for (std::size_t s = 0; s < steps; ++s) {
    Tape<float> tape;
    ps.zero_grad();
    const Var<float> loss = loss_fn(tape, s);
    tape.backward(loss);
    clip_grad_norm(ps, 1.0);
    opt.step();
    const double lv = loss.value().data()[0];
    check(std::isfinite(lv), what, ": the loss is ", lv, " at step ", s + 1, "; try a smaller --lr");
    smoothed = s == 0 ? lv : 0.95 * smoothed + 0.05 * lv;
    if ((s + 1) % log_every == 0 || s + 1 == steps) {
      std::printf("  %s step %4zu  loss %.4f  (%.1f s)\n", what, s + 1, smoothed, seconds_since(t0));
      std::fflush(stdout);
    }
  }
}

std::vector<std::string> pick(const std::vector<std::string>& xs, const std::vector<std::size_t>& idx) {
  std::vector<std::string> out;
  for (std::size_t i : idx) out.push_back(xs[i]);
  return out;
}
std::vector<std::int64_t> pick(const std::vector<std::int64_t>& xs, const std::vector<std::size_t>& idx) {
  std::vector<std::int64_t> out;
  for (std::size_t i : idx) out.push_back(xs[i]);
  return out;
}

// ---- teacher ----------------------------------------------------------------------------------------------

/// Loads every tensor of a pretrained BERT file (tools/import_hf_bert.py) into `m` by name; the classifier
/// (new for the task) and, if the file has none, the pooler keep their random initialisation.
void init_teacher(Bert<float>& m, const SafetensorsReader& r, const std::string& path) {
  // Shapes are checked by load_parameters; tensors the model lacks are ignored, missing ones checked below.
  const std::size_t loaded = load_parameters(m.parameters(), r, ParameterIoOptions::partial()).loaded.size();
  std::vector<std::string> random;
  m.parameters().for_each([&](const Parameter<float>& p) {
    if (!r.contains(p.name)) random.push_back(p.name);
  });
  for (const std::string& n : random)
    check(n.rfind("classifier.", 0) == 0 || n.rfind("pooler.", 0) == 0, path, " lacks ", n,
          " (not a complete BERT encoder)");
  std::printf("teacher: %zu tensors from %s; new: %s\n", loaded, path.c_str(), join(random, ' ').c_str());
}

int cmd_teacher(const Args& a) {
  a.allow({"out", "init", "layers", "width", "heads", "ffn", "steps", "batch", "lr", "max-len", "seed",
           "min-count"},
          "teacher");
  const Task task = load_task();
  Meta meta;
  meta.model = "bert";
  meta.labels = task.train.label_names;
  meta.max_len = a.size("max-len", 40);
  std::unique_ptr<SafetensorsReader> init;
  if (a.has("init")) {
    // A pretrained encoder (tools/import_hf_bert.py): its vocabulary and shape; a new classifier.
    for (const char* k : {"layers", "width", "heads", "ffn", "min-count"})
      check(!a.has(k), "--", k, " cannot be combined with --init (the pretrained file fixes it)");
    init = std::make_unique<SafetensorsReader>(SafetensorsReader::open(a.get("init", "")));
    const Meta pre = Meta::read(*init, a.get("init", ""));
    check(pre.model == "bert", a.get("init", ""), " holds a ", pre.model, ", not a BERT encoder");
    meta.vocab = pre.vocab;
    meta.cfg = pre.cfg;
    check(meta.max_len <= meta.cfg.max_positions, "--max-len ", meta.max_len, " exceeds the model's ",
          meta.cfg.max_positions, " positions");
  } else {
    meta.vocab = build_vocab(task.train.texts, a.size("min-count", 2));
    meta.cfg.hidden = a.size("width", 128);
    meta.cfg.layers = a.size("layers", 4);
    meta.cfg.heads = a.size("heads", 4);
    meta.cfg.intermediate = a.size("ffn", 256);
    meta.cfg.max_positions = meta.max_len;
  }
  const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab(meta.vocab);
  meta.cfg.vocab = tok.vocab_size();
  meta.cfg.labels = meta.labels.size();
  meta.cfg.validate();
  const std::size_t steps = a.size("steps", 600), batch = a.size("batch", 32);
  Bert<float> m(meta.cfg);
  Rng rng(a.size("seed", 1));
  m.reset_parameters(rng);
  if (init) init_teacher(m, *init, a.get("init", ""));
  std::printf(
      "teacher: %zu layers, width %zu, %zu heads, vocabulary %zu, %zu labels; %zu steps of batch %zu\n",
      meta.cfg.layers, meta.cfg.hidden, meta.cfg.heads, meta.cfg.vocab, meta.cfg.labels, steps, batch);
  // Fine-tuning a pretrained encoder wants a smaller step than training one from scratch.
  optimise(m.parameters(), steps, a.real("lr", init ? 1e-4 : 1e-3), "teacher", 50,
           [&](Tape<float>& tape, std::size_t) {
             const auto idx = sample(task.train.size(), batch, rng);
             const auto labels = pick(task.train.labels, idx);
             const auto o = m.forward(tape, encode(tok, pick(task.train.texts, idx), meta.max_len));
             return cross_entropy(o.logits, std::span<const std::int64_t>(labels));
           });
  save_model(m.parameters(), meta, a.get("out", "teacher.safetensors"));
  std::printf("wrote %s\n", a.get("out", "teacher.safetensors").c_str());
  return 0;
}

// ---- loading
// ------------------------------------------------------------------------------------------------

struct LoadedTeacher {
  Meta meta;
  std::unique_ptr<Bert<float>> model;
};
LoadedTeacher load_teacher(const std::string& path) {
  const SafetensorsReader r = SafetensorsReader::open(path);
  LoadedTeacher t{Meta::read(r, path), nullptr};
  check(t.meta.model == "bert", path, " holds a ", t.meta.model, ", not a BERT teacher");
  t.model = std::make_unique<Bert<float>>(t.meta.cfg);
  load_parameters(t.model->parameters(), r);
  return t;
}
struct LoadedStudent {
  Meta meta;
  std::unique_ptr<SpikingBert<float>> model;
};
LoadedStudent load_student(const std::string& path) {
  const SafetensorsReader r = SafetensorsReader::open(path);
  LoadedStudent s{Meta::read(r, path), nullptr};
  check(s.meta.model == "spiking_bert", path, " holds a ", s.meta.model, ", not a SpikingBERT student");
  s.model = std::make_unique<SpikingBert<float>>(s.meta.cfg, s.meta.student_options());
  load_parameters(s.model->parameters(), r);
  return s;
}

/// A student shaped like the teacher but with `layers` layers, initialised from the teacher's embeddings
/// and first layers.
LoadedStudent student_from(const LoadedTeacher& t, const Args& a) {
  LoadedStudent s{t.meta, nullptr};
  s.meta.model = "spiking_bert";
  s.meta.cfg.layers = a.size("layers", 2);
  s.meta.threshold = static_cast<float>(a.real("threshold", 1.0));
  s.meta.feedback = a.size("feedback", 0) != 0;
  s.model = std::make_unique<SpikingBert<float>>(s.meta.cfg, s.meta.student_options());
  Rng rng(7);
  s.model->reset_parameters(rng);
  s.model->init_from(t.model->parameters());
  return s;
}

// ---- distillation and training
// -----------------------------------------------------------------------------

struct TeacherTargets {
  std::vector<Tensor<float>> hidden, scores;
  Tensor<float> logits;
};
TeacherTargets teacher_targets(Bert<float>& t, const BertBatch& b) {
  NoGradGuard ng;
  Tape<float> tape;
  const auto o = t.forward(tape, b);
  TeacherTargets out;
  for (const auto& h : o.hidden) out.hidden.emplace_back(h.value());
  for (const auto& s : o.scores) out.scores.emplace_back(s.value());
  out.logits = Tensor<float>(o.logits.value());
  return out;
}

int cmd_distill(const Args& a) {
  a.allow({"teacher", "out", "layers", "T", "general-steps", "task-steps", "pred-steps", "batch", "lr",
           "seed", "threshold", "feedback"},
          "distill");
  check(a.has("teacher"), "distill needs --teacher T.safetensors");
  LoadedTeacher t = load_teacher(a.get("teacher", ""));
  LoadedStudent s = student_from(t, a);
  const std::size_t T = a.size("T", 16), batch = a.size("batch", 32);
  const double lr = a.real("lr", 1e-3);
  const Task task = load_task();
  const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab(t.meta.vocab);
  // general stage: unlabeled verses of the whole corpus
  std::vector<std::string> verses;
  {
    std::stringstream ss(read_text_file(default_data()));
    std::string line;
    while (std::getline(ss, line))
      if (line.size() > 20) verses.push_back(line);
  }
  Rng rng(a.size("seed", 2));
  SpikingBert<float>& m = *s.model;
  auto intermediate = [&](const std::vector<std::string>& texts) {
    return [&, texts_ref = &texts](Tape<float>& tape, std::size_t) {
      const BertBatch b =
          encode(tok, pick(*texts_ref, sample(texts_ref->size(), batch, rng)), t.meta.max_len);
      const TeacherTargets tt = teacher_targets(*t.model, b);
      const auto o = m.forward_train(tape, b, T);
      std::vector<Var<float>> fitted;
      for (const auto& r : o.reps) fitted.push_back(m.fit(r));
      return add(distill_hidden_loss<float>(fitted, tt.hidden),
                 distill_attention_loss<float>(o.scores, tt.scores));
    };
  };
  std::printf("distill: %zu-layer student of a %zu-layer teacher, T = %zu, batch %zu\n", s.meta.cfg.layers,
              t.meta.cfg.layers, T, batch);
  optimise(m.parameters(), a.size("general-steps", 200), lr, "general (hidden + attention)", 50,
           intermediate(verses));
  optimise(m.parameters(), a.size("task-steps", 300), lr, "task (hidden + attention)", 50,
           intermediate(task.train.texts));
  optimise(m.parameters(), a.size("pred-steps", 300), lr, "task (prediction)", 50,
           [&](Tape<float>& tape, std::size_t) {
             const BertBatch b =
                 encode(tok, pick(task.train.texts, sample(task.train.size(), batch, rng)), t.meta.max_len);
             const TeacherTargets tt = teacher_targets(*t.model, b);
             const auto o = m.forward_train(tape, b, T);
             return soft_cross_entropy(o.logits, tape.constant(std::move(tt.logits)));
           });
  save_model(m.parameters(), s.meta, a.get("out", "student.safetensors"));
  std::printf("wrote %s\n", a.get("out", "student.safetensors").c_str());
  return 0;
}

int cmd_train(const Args& a) {
  a.allow({"teacher", "out", "layers", "T", "steps", "batch", "lr", "seed", "threshold", "feedback"},
          "train");
  check(a.has("teacher"), "train needs --teacher T.safetensors (for the vocabulary and the widths)");
  LoadedTeacher t = load_teacher(a.get("teacher", ""));
  LoadedStudent s = student_from(t, a);
  const std::size_t T = a.size("T", 16), batch = a.size("batch", 32);
  const Task task = load_task();
  const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab(t.meta.vocab);
  Rng rng(a.size("seed", 3));
  SpikingBert<float>& m = *s.model;
  std::printf("train: %zu-layer student on the labels only, T = %zu, batch %zu\n", s.meta.cfg.layers, T,
              batch);
  optimise(m.parameters(), a.size("steps", 600), a.real("lr", 1e-3), "labels (cross-entropy)", 50,
           [&](Tape<float>& tape, std::size_t) {
             const auto idx = sample(task.train.size(), batch, rng);
             const auto labels = pick(task.train.labels, idx);
             const auto o =
                 m.forward_train(tape, encode(tok, pick(task.train.texts, idx), t.meta.max_len), T);
             return cross_entropy(o.logits, std::span<const std::int64_t>(labels));
           });
  save_model(m.parameters(), s.meta, a.get("out", "student.safetensors"));
  std::printf("wrote %s\n", a.get("out", "student.safetensors").c_str());
  return 0;
}

// ---- evaluation
// ----------------------------------------------------------------------------------------------

struct EvalResult {
  double accuracy = 0;
  std::vector<std::array<double, bert_population_count>> rates; // mean over tokens (padding included)
  double embedding_rate = 0;
  LayerOps total{"total", 0, 0, 0};
  OpsCounter ops;            // per layer, for the metrics report (tokens: B x L, padding included)
  FiringRateMonitor monitor; // per population
  std::size_t sequences = 0;
  double seconds = 0;
};

std::size_t argmax(const float* x, std::size_t n) {
  return static_cast<std::size_t>(std::max_element(x, x + n) - x);
}

EvalResult evaluate_student(SpikingBert<float>& m, const WordPieceTokenizer& tok, const LabeledDataset& d,
                            std::size_t max_len, std::size_t T) {
  EvalResult r;
  r.rates.assign(m.config().layers, {});
  const std::size_t B = 50, C = m.config().labels;
  std::size_t correct = 0, batches = 0;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < d.size(); i += B) {
    std::vector<std::size_t> idx(std::min(B, d.size() - i));
    std::iota(idx.begin(), idx.end(), i);
    const BertBatch b = encode(tok, pick(d.texts, idx), max_len);
    const SpikingBertRun<float> run = m.simulate(b, T);
    for (std::size_t k = 0; k < idx.size(); ++k)
      correct += argmax(run.logits.data() + k * C, C) == static_cast<std::size_t>(d.labels[idx[k]]);
    for (std::size_t l = 0; l < m.config().layers; ++l)
      for (std::size_t p = 0; p < bert_population_count; ++p)
        r.rates[l][p] += run.mean_rate(l, static_cast<BertPopulation>(p));
    r.embedding_rate += simd::sum(run.embedding_rates.data(), run.embedding_rates.size()) /
                        static_cast<double>(run.embedding_rates.size());
    const auto layer_ops = spiking_bert_ops(m.config(), run, b.batch, b.length);
    for (const LayerOps& o : layer_ops) r.total += o;
    r.ops.add(std::span<const LayerOps>(layer_ops));
    const std::uint64_t cells = b.batch * b.length * T;
    r.ops.add_tokens(b.batch * b.length);
    r.monitor.record("E", static_cast<std::uint64_t>(run.embedding_spikes), cells * m.config().hidden);
    for (std::size_t l = 0; l < m.config().layers; ++l)
      for (std::size_t p = 0; p < bert_population_count; ++p)
        r.monitor.record("layer." + std::to_string(l) + "." + bert_population_names[p],
                         static_cast<std::uint64_t>(run.spikes[l][p]), cells * run.rates[l][p].dim(2));
    ++batches;
  }
  r.seconds = seconds_since(t0);
  r.sequences = d.size();
  r.accuracy = static_cast<double>(correct) / static_cast<double>(d.size());
  for (auto& l : r.rates)
    for (double& v : l) v /= static_cast<double>(batches);
  r.embedding_rate /= static_cast<double>(batches);
  return r;
}

double evaluate_teacher(Bert<float>& m, const WordPieceTokenizer& tok, const LabeledDataset& d,
                        std::size_t max_len) {
  const std::size_t B = 50, C = m.config().labels;
  std::size_t correct = 0;
  for (std::size_t i = 0; i < d.size(); i += B) {
    std::vector<std::size_t> idx(std::min(B, d.size() - i));
    std::iota(idx.begin(), idx.end(), i);
    NoGradGuard ng;
    Tape<float> tape;
    const auto o = m.forward(tape, encode(tok, pick(d.texts, idx), max_len));
    for (std::size_t k = 0; k < idx.size(); ++k)
      correct += argmax(o.logits.value().data() + k * C, C) == static_cast<std::size_t>(d.labels[idx[k]]);
  }
  return static_cast<double>(correct) / static_cast<double>(d.size());
}

void print_student_eval(const EvalResult& r, std::size_t T, const char* split) {
  const EnergyModel e;
  const double n = static_cast<double>(r.sequences);
  const double ac = static_cast<double>(r.total.ac) / n, mac = static_cast<double>(r.total.mac) / n;
  const double dense = static_cast<double>(r.total.dense_mac) / n;
  const double pj = ac * e.pj_per_ac + mac * e.pj_per_mac, dense_pj = dense * e.pj_per_mac;
  std::printf("student T=%zu %s accuracy %.2f %%  (%.1f sequences/s)\n", T, split, 100 * r.accuracy,
              n / std::max(r.seconds, 1e-9));
  std::printf("  rates E %.3f", r.embedding_rate);
  for (std::size_t l = 0; l < r.rates.size(); ++l) {
    std::printf(" | layer %zu", l);
    for (std::size_t p = 0; p < bert_population_count; ++p)
      std::printf(" %s %.3f", bert_population_names[p], r.rates[l][p]);
  }
  std::printf(
      "\n  per sequence: %.3g AC + %.3g MAC = %.3g uJ; teacher-shaped BERT %.3g MAC = %.3g uJ (%.2fx)\n", ac,
      mac, pj * 1e-6, dense, dense_pj * 1e-6, dense_pj / std::max(pj, 1e-12));
}

int cmd_eval(const Args& a) {
  a.allow({"weights", "split", "T"}, "eval");
  check(a.has("weights"), "eval needs --weights W.safetensors");
  const std::string path = a.get("weights", ""), which = a.get("split", "dev");
  check(which == "dev" || which == "test", "--split must be dev or test");
  const Task task = load_task();
  const LabeledDataset& d = which == "dev" ? task.dev : task.test;
  const SafetensorsReader r = SafetensorsReader::open(path);
  const Meta meta = Meta::read(r, path);
  const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab(meta.vocab);
  if (meta.model == "bert") {
    LoadedTeacher t = load_teacher(path);
    std::printf("teacher %s accuracy %.2f %%\n", which.c_str(),
                100 * evaluate_teacher(*t.model, tok, d, meta.max_len));
    return 0;
  }
  LoadedStudent s = load_student(path);
  const std::size_t T = a.size("T", 16);
  const EvalResult res = evaluate_student(*s.model, tok, d, meta.max_len, T);
  print_student_eval(res, T, which.c_str());
  std::printf("%s", make_report(res.ops, &res.monitor).table().c_str()); // per token, docs/metrics.md
  return 0;
}

int cmd_predict(const Args& a) {
  a.allow({"weights", "text", "T"}, "predict");
  check(a.has("weights") && a.has("text"), "predict needs --weights W.safetensors and --text \"...\"");
  const std::string path = a.get("weights", "");
  const SafetensorsReader r = SafetensorsReader::open(path);
  const Meta meta = Meta::read(r, path);
  const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab(meta.vocab);
  const BertBatch b = encode(tok, {a.get("text", "")}, meta.max_len);
  Tensor<float> logits;
  if (meta.model == "bert") {
    LoadedTeacher t = load_teacher(path);
    NoGradGuard ng;
    Tape<float> tape;
    logits = Tensor<float>(t.model->forward(tape, b).logits.value());
  } else {
    LoadedStudent s = load_student(path);
    logits = s.model->simulate(b, a.size("T", 16)).logits;
  }
  const std::size_t C = meta.labels.size();
  std::printf("%s\n", meta.labels[argmax(logits.data(), C)].c_str());
  for (std::size_t c = 0; c < C; ++c) std::printf("  %-10s %.4f\n", meta.labels[c].c_str(), logits.data()[c]);
  return 0;
}

int cmd_logits(const Args& a) {
  a.allow({"weights", "tokens", "T", "out"}, "logits");
  check(a.has("weights") && a.has("tokens") && a.has("out"),
        "logits needs --weights S.safetensors, --tokens 2,17,3 and --out OUT.safetensors");
  LoadedStudent s = load_student(a.get("weights", ""));
  const std::vector<TokenId> ids = parse_token_list(a.get("tokens", ""));
  const std::size_t T = a.size("T", 16);
  const SpikingBertRun<float> run = s.model->simulate(BertBatch::single(ids), T);
  SafetensorsWriter w;
  w.add_values("logits", std::span<const float>(run.logits.data(), run.logits.size()), {run.logits.size()});
  const std::uint64_t L = ids.size();
  w.add_values("rates.E", std::span<const float>(run.embedding_rates.data(), run.embedding_rates.size()),
               {L, s.meta.cfg.hidden});
  for (std::size_t l = 0; l < run.rates.size(); ++l)
    for (std::size_t p = 0; p < bert_population_count; ++p) {
      const Tensor<float>& r = run.rates[l][p];
      w.add_values("rates." + std::to_string(l) + "." + bert_population_names[p],
                   std::span<const float>(r.data(), r.size()), {L, r.dim(2)});
    }
  w.set_metadata("T", std::to_string(T));
  w.set_metadata("tokens", a.get("tokens", ""));
  w.save(a.get("out", ""));
  std::printf("wrote logits [%zu] and the rates of %zu populations (T = %zu) to %s\n", run.logits.size(),
              1 + run.rates.size() * bert_population_count, T, a.get("out", "").c_str());
  return 0;
}

int cmd_hidden(const Args& a) {
  a.allow({"teacher", "tokens", "out"}, "hidden");
  check(a.has("teacher") && a.has("tokens") && a.has("out"),
        "hidden needs --teacher T.safetensors, --tokens 2,17,3 and --out OUT.safetensors");
  LoadedTeacher t = load_teacher(a.get("teacher", ""));
  const std::vector<TokenId> ids = parse_token_list(a.get("tokens", ""));
  NoGradGuard ng;
  Tape<float> tape;
  const auto o = t.model->forward(tape, BertBatch::single(ids));
  SafetensorsWriter w;
  for (std::size_t i = 0; i < o.hidden.size(); ++i) {
    const auto h = o.hidden[i].value();
    w.add_values("hidden." + std::to_string(i), std::span<const float>(h.data(), h.size()),
                 {ids.size(), t.meta.cfg.hidden});
  }
  w.set_metadata("tokens", a.get("tokens", ""));
  w.save(a.get("out", ""));
  std::printf("wrote %zu hidden states [%zu, %zu] to %s\n", o.hidden.size(), ids.size(), t.meta.cfg.hidden,
              a.get("out", "").c_str());
  return 0;
}

int cmd_run(const Args& a) {
  a.allow({"dir", "teacher-steps", "general-steps", "task-steps", "pred-steps", "train-steps", "T"}, "run");
  const std::string dir = a.get("dir", ".");
  const std::string teacher = dir + "/teacher.safetensors",
                    distilled = dir + "/student_distilled.safetensors",
                    plain = dir + "/student_plain.safetensors";
  const std::string T = std::to_string(a.size("T", 16));
  const auto t0 = Clock::now();
  cmd_teacher(Args{{{"out", teacher}, {"steps", std::to_string(a.size("teacher-steps", 600))}}});
  cmd_eval(Args{{{"weights", teacher}, {"split", "dev"}}});
  cmd_distill(Args{{{"teacher", teacher},
                    {"out", distilled},
                    {"T", T},
                    {"general-steps", std::to_string(a.size("general-steps", 200))},
                    {"task-steps", std::to_string(a.size("task-steps", 300))},
                    {"pred-steps", std::to_string(a.size("pred-steps", 300))}}});
  cmd_train(Args{{{"teacher", teacher},
                  {"out", plain},
                  {"T", T},
                  {"steps", std::to_string(a.size("train-steps", 600))}}});
  for (const std::string& w : {distilled, plain}) {
    std::printf("== %s\n", w.c_str());
    for (const char* t : {"4", "8", "16", "32"}) cmd_eval(Args{{{"weights", w}, {"split", "dev"}, {"T", t}}});
  }
  std::printf("spiking_bert run: %.0f s\n", seconds_since(t0));
  return 0;
}
} // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "run";
  try {
    const Args a = parse_args(argc, argv, argc > 1 && argv[1][0] != '-' ? 2 : 1);
    if (cmd == "run" || cmd.rfind("--", 0) == 0) return cmd_run(a);
    if (cmd == "teacher") return cmd_teacher(a);
    if (cmd == "distill") return cmd_distill(a);
    if (cmd == "train") return cmd_train(a);
    if (cmd == "eval") return cmd_eval(a);
    if (cmd == "predict") return cmd_predict(a);
    if (cmd == "logits") return cmd_logits(a);
    if (cmd == "hidden") return cmd_hidden(a);
    std::fprintf(stderr,
                 "spiking_bert: unknown command '%s' (run, teacher, distill, train, eval, predict, "
                 "logits, hidden)\n",
                 cmd.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spiking_bert %s: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
