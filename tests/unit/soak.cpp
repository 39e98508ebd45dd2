// Soak test (ctest label "soak", one test): trains an EGRU LM for many steps with a checkpoint every few
// steps, reloading the checkpoint now and then as a resumed run would, and checks that the resident memory
// stays flat once the first steps have warmed the allocator up. SPIKELM_SOAK_SECONDS (default 30) sets how
// long it runs.
#include "test_util.hpp"

#include <spikelm/models/egru_lm.hpp>
#include <spikelm/train/guard.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace spikelm;

namespace {
/// Resident set size in KiB, from /proc/self/statm (Linux).
double resident_kib() {
  std::ifstream f("/proc/self/statm");
  double pages_total = 0, pages_resident = 0;
  f >> pages_total >> pages_resident;
  return pages_resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1024.0;
}
} // namespace

TEST_CASE("soak: long training with periodic checkpoints keeps resident memory flat") {
  const char* env = std::getenv("SPIKELM_SOAK_SECONDS");
  const double seconds = env ? std::atof(env) : 30.0;
  REQUIRE(seconds > 0);
  const auto dir = std::filesystem::temp_directory_path() / ("spikelm_soak_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string ckpt = (dir / "soak.safetensors").string();

  EgruLmConfig cfg;
  cfg.vocab = 32;
  cfg.embedding = 32;
  cfg.hidden = 64;
  cfg.layers = 3;
  cfg.thr_mean = 0.1;
  cfg.dropout_embedding = cfg.dropout_forward = cfg.dropout_output = 0.1;
  cfg.cell.dropconnect = 0.1;
  EgruLM<float> lm(cfg);
  Rng init(11);
  lm.reset_parameters(init);
  AdamW<float> opt(lm.parameters(), {.lr = 2e-3});
  CheckpointState st;
  st.rngs["data"] = Rng(12);
  st.rngs["dropout"] = Rng(13);
  std::vector<std::int64_t> text(20000);
  for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<std::int64_t>((i * i + 3 * i) % 32);

  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double rss_warm = 0, rss_max = 0;
  std::size_t step = 0;
  for (; elapsed() < seconds || step < 60; ++step) {
    const WindowBatch wb = random_windows(text, 32, 8, st.rngs["data"]);
    Tape<float> tape;
    lm.parameters().zero_grad();
    const auto loss = lm.loss(tape, wb.inputs.span(), wb.targets.span(), 8, true, &st.rngs["dropout"]);
    tape.backward(loss);
    check_finite_step(step, loss.value().data()[0], lm.parameters());
    clip_grad_norm(lm.parameters(), 1.0);
    opt.step();
    if (step % 10 == 9) {
      st.step = step + 1;
      save_checkpoint(ckpt, lm.parameters(), opt, st);
    }
    if (step % 50 == 49) st = load_checkpoint(ckpt, lm.parameters(), opt); // as a resumed run would
    if (step == 40) rss_warm = resident_kib();
    if (step > 40) rss_max = std::max(rss_max, resident_kib());
  }
  std::filesystem::remove_all(dir);
  MESSAGE("soak: ", step, " steps in ", elapsed(), " s; resident memory after warm-up ", rss_warm / 1024.0,
          " MiB, largest later ", rss_max / 1024.0, " MiB");
  CHECK(step >= 60);
  // Flat: allow 8 MiB of allocator noise over the warm value (a leak of one step's tape, about 1 MiB here,
  // every step would exceed it within seconds).
  CHECK(rss_max < rss_warm + 8 * 1024.0);
}
