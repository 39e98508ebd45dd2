// Tests for spike/: SpikeTensor packing, event lists, rates; event-driven accumulate kernels against dense
// scalar references, including all-zero and all-one patterns, and thread-count independence.
#include "test_util.hpp"

using namespace spikelm;
using spikelm_test::random_vector;
using spikelm_test::require_close;

namespace {
Tensor<float> random_spikes(std::size_t rows, std::size_t n, double p, std::uint64_t seed) {
  Tensor<float> d({rows, n});
  Rng(seed).fill_bernoulli(d.span(), p);
  return d;
}
} // namespace

TEST_CASE("SpikeTensor: from_dense, events, counts, rates, round trip") {
  Tensor<float> d({3, 70});
  d(0, 0) = 1, d(0, 63) = 1, d(0, 64) = 1, d(0, 69) = 1;
  d(2, 5) = 0.7f; // >= 0.5 threshold counts
  d(2, 6) = 0.2f; // below threshold
  const auto s = SpikeTensor::from_dense(d);
  CHECK(s.steps() == 1);
  CHECK(s.rows() == 3);
  CHECK(s.neurons() == 70);
  CHECK(s.words_per_row() == 2);
  CHECK(s.count() == 5);
  CHECK(s.count(1) == 0);
  const auto ev = s.events(0);
  REQUIRE(ev.size() == 4);
  CHECK(ev[0] == 0);
  CHECK(ev[1] == 63);
  CHECK(ev[2] == 64);
  CHECK(ev[3] == 69);
  CHECK(s.test(0, 64));
  CHECK_FALSE(s.test(0, 65));
  CHECK(s.test(2, 5));
  CHECK_FALSE(s.test(2, 6));
  CHECK(s.rate() == doctest::Approx(5.0 / 210.0));
  const auto per = s.rate_per_neuron();
  CHECK(per[0] == doctest::Approx(1.0 / 3.0));
  CHECK(per[1] == 0.0);
  const auto back = s.to_dense<double>();
  CHECK(back.shape() == Shape{3, 70});
  CHECK(back(0, 69) == 1.0);
  CHECK(back(2, 5) == 1.0);
  CHECK(back(2, 6) == 0.0);
  CHECK_THROWS_AS((void)s.test(3, 0), Error);
  CHECK_THROWS_AS((void)s.test(0, 70), Error);
  CHECK_THROWS_AS((void)s.events(3), Error);
}

TEST_CASE("SpikeTensor: time axis, set/set_row and stale events") {
  Tensor<float> d({4, 2, 10});
  d(3, 1, 9) = 1;
  d(0, 0, 0) = 1;
  auto s = SpikeTensor::from_dense(d);
  CHECK(s.steps() == 4);
  CHECK(s.total_rows() == 8);
  CHECK(s.row_index(3, 1) == 7);
  CHECK(s.events(3, 1).size() == 1);
  CHECK(s.test(3, 1, 9));
  CHECK(s.to_dense(true).shape() == Shape{4, 2, 10});
  s.set(1, 4);
  CHECK_FALSE(s.events_valid());
  CHECK_THROWS_WITH_AS((void)s.count(), doctest::Contains("rebuild_events"), Error);
  s.rebuild_events();
  CHECK(s.count() == 3);
  const float row[10] = {0, 1, 0, 1, 0, 1, 0, 0, 0, 1};
  s.set_row(7, row);
  s.rebuild_events();
  CHECK(s.count(7) == 4);
  s.set(7, 9, false);
  s.rebuild_events();
  CHECK(s.count(7) == 3);
  CHECK_THROWS_AS(SpikeTensor::from_dense(Tensor<float>({5})), Error);
  // memory: at most one bit per neuron-step (padded to words) plus events and row offsets
  const SpikeTensor big(16, 32, 1024);
  CHECK(big.memory_bytes() <= 16 * 32 * 1024 / 8 + (16 * 32 + 1) * sizeof(std::size_t));
}

TEST_CASE("SpikeTensor: empty extents") {
  const SpikeTensor s(0, 5);
  CHECK(s.count() == 0);
  CHECK(s.rate() == 0.0);
  const auto d = SpikeTensor::from_dense(Tensor<float>({3, 0}));
  CHECK(d.count() == 0);
  CHECK(d.to_dense().size() == 0);
}

TEST_CASE_TEMPLATE("spike_matmul forward, weight and input gradients match dense references", T, float,
                   double) {
  for (std::size_t n_in : {1, 7, 64, 130}) {
    for (std::size_t n_out : {1, 3, 16, 37, 129, 300}) {
      for (double p : {0.0, 0.1, 0.5, 1.0}) {
        const std::size_t R = 5;
        auto dense = random_spikes(R, n_in, p, n_in * 1000 + n_out);
        const auto s = SpikeTensor::from_dense(dense);
        Tensor<T> w({n_in, n_out}, random_vector<T>(n_in * n_out, n_out));
        Tensor<T> g({R, n_out}, random_vector<T>(R * n_out, n_in));
        Tensor<T> out({R, n_out}), want({R, n_out});
        spike_matmul(s, w, out);
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t c = 0; c < n_out; ++c) {
            T acc = 0;
            for (std::size_t i = 0; i < n_in; ++i)
              if (dense(r, i) != 0.f) acc += w(i, c);
            want(r, c) = acc;
          }
        const double t = std::is_same_v<T, float> ? 1e-5 : 1e-12;
        require_close(out.data(), want.data(), out.size(), t, t, "forward");

        // accumulate adds to what is there
        Tensor<T> acc2({R, n_out}, T(1));
        spike_matmul(s, w, acc2, true);
        for (std::size_t i = 0; i < acc2.size(); ++i)
          REQUIRE(spikelm_test::close(acc2.data()[i], want.data()[i] + T(1), t, t));

        // weight gradient: only rows of active inputs change
        Tensor<T> dw({n_in, n_out}, T(0.5)), want_dw({n_in, n_out}, T(0.5));
        spike_matmul_weight_grad(s, g, dw);
        for (std::size_t i = 0; i < n_in; ++i)
          for (std::size_t c = 0; c < n_out; ++c)
            for (std::size_t r = 0; r < R; ++r)
              if (dense(r, i) != 0.f) want_dw(i, c) += g(r, c);
        require_close(dw.data(), want_dw.data(), dw.size(), t, t, "weight grad");

        // input gradient is dense g W^T
        Tensor<T> gi({R, n_in}), want_gi({R, n_in});
        spike_matmul_input_grad(g, w, gi);
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t i = 0; i < n_in; ++i) {
            T a = 0;
            for (std::size_t c = 0; c < n_out; ++c) a += g(r, c) * w(i, c);
            want_gi(r, i) = a;
          }
        require_close(gi.data(), want_gi.data(), gi.size(), 1e-5, 1e-5, "input grad");
      }
    }
  }
}

TEST_CASE("spike_matmul: time axis as extra rows, thread-count independent") {
  Tensor<float> d({6, 3, 200});
  Rng(1).fill_bernoulli(d.span(), 0.2);
  const auto s = SpikeTensor::from_dense(d);
  Tensor<float> w({200, 513}, random_vector<float>(200 * 513, 2));
  Tensor<float> o1({6, 3, 513}), o2({18, 513});
  {
    ScopedThreads one(1);
    spike_matmul(s, w, o1);
  }
  {
    ScopedThreads two(2);
    spike_matmul(s, w, o2);
  }
  CHECK(std::equal(o1.begin(), o1.end(), o2.begin()));
  Tensor<float> g({18, 513}, random_vector<float>(18 * 513, 3));
  Tensor<float> dw1({200, 513}), dw2({200, 513});
  {
    ScopedThreads one(1);
    spike_matmul_weight_grad(s, g, dw1);
  }
  {
    ScopedThreads two(2);
    spike_matmul_weight_grad(s, g, dw2);
  }
  CHECK(std::equal(dw1.begin(), dw1.end(), dw2.begin()));
}

TEST_CASE("spike_matmul: shape errors") {
  const SpikeTensor s(4, 10);
  Tensor<float> w({10, 6}), out({4, 6}), bad_w({9, 6}), bad_out({4, 5}), g({4, 6}), gi({4, 10}),
      bad_gi({4, 9});
  CHECK_THROWS_WITH_AS(spike_matmul(s, bad_w, out), doctest::Contains("[9, 6]"), Error);
  CHECK_THROWS_WITH_AS(spike_matmul(s, w, bad_out), doctest::Contains("[4, 5]"), Error);
  CHECK_THROWS_AS(spike_matmul_weight_grad(s, bad_out, w), Error);
  CHECK_THROWS_AS(spike_matmul_weight_grad(s, g, bad_w), Error);
  CHECK_THROWS_AS(spike_matmul_input_grad(g, w, bad_gi), Error);
  spike_matmul_input_grad(g, w, gi);
}

TEST_CASE_TEMPLATE("weighted_sum_rows and weighted_sum_rows_streamed: graded events match a scalar loop", T,
                   float, double) {
  // widths across the 8-batch panel, single-batch and scalar tails; column ranges not starting at 0; event
  // counts that are and are not a multiple of the streamed kernel's four rows per pass
  const std::size_t rows = 37, ld = 101;
  const auto src = random_vector<T>(rows * ld, 3);
  const auto coef = random_vector<T>(rows, 4);
  const std::vector<std::uint32_t> idx8{0, 3, 4, 9, 17, 18, 30, 36}, idx7{1, 2, 9, 10, 11, 25, 35};
  for (int kernel = 0; kernel < 2; ++kernel)
    for (const auto* idx : {&idx8, &idx7})
      for (std::size_t c0 : {std::size_t(0), std::size_t(5)})
        for (std::size_t c1 : {c0, c0 + 1, c0 + 7, c0 + 33, c0 + 64, ld}) {
          CAPTURE(kernel);
          CAPTURE(idx->size());
          CAPTURE(c0);
          CAPTURE(c1);
          auto dst = random_vector<T>(ld, 5);
          std::vector<T> ref = dst;
          for (std::size_t c = c0; c < c1; ++c)
            for (auto i : *idx) ref[c] += coef[i] * src[i * ld + c];
          if (kernel == 0)
            detail::weighted_sum_rows<simd::default_arch>(src.data(), ld, idx->data(), idx->size(),
                                                          coef.data(), dst.data(), c0, c1);
          else
            detail::weighted_sum_rows_streamed<simd::default_arch>(src.data(), ld, idx->data(), idx->size(),
                                                                   coef.data(), dst.data(), c0, c1);
          for (std::size_t c = 0; c < ld; ++c) CHECK(dst[c] == doctest::Approx(ref[c]).epsilon(1e-5));
        }
  // no events: the destination is unchanged
  auto dst = random_vector<T>(ld, 6);
  const auto before = dst;
  detail::weighted_sum_rows<simd::default_arch>(src.data(), ld, idx8.data(), 0, coef.data(), dst.data(), 0,
                                                ld);
  detail::weighted_sum_rows_streamed<simd::default_arch>(src.data(), ld, idx8.data(), 0, coef.data(),
                                                         dst.data(), 0, ld);
  CHECK(dst == before);
}

TEST_CASE_TEMPLATE(
    "weighted_sum_rows_streamed: per-event coefficients, and splits on SIMD multiples are exact", T, float,
    double) {
  const std::size_t rows = 29, ld = 203;
  const auto src = random_vector<T>(rows * ld, 13);
  const std::vector<std::uint32_t> idx{2, 2, 5, 11, 17, 28, 3}; // a row may repeat (one unit, two batch rows)
  const auto coef = random_vector<T>(idx.size(), 14);           // one coefficient per event
  auto dst = random_vector<T>(ld, 15);
  std::vector<T> ref = dst;
  for (std::size_t c = 0; c < ld; ++c)
    for (std::size_t e = 0; e < idx.size(); ++e) ref[c] += coef[e] * src[idx[e] * ld + c];
  auto whole = dst;
  detail::weighted_sum_rows_streamed<simd::default_arch, true>(src.data(), ld, idx.data(), idx.size(),
                                                               coef.data(), whole.data(), 0, ld);
  for (std::size_t c = 0; c < ld; ++c) CHECK(whole[c] == doctest::Approx(ref[c]).epsilon(1e-5));
  // the same sum over column blocks split at multiples of 16 gives the same bits
  auto split = dst;
  for (std::size_t c0 = 0; c0 < ld; c0 += 48)
    detail::weighted_sum_rows_streamed<simd::default_arch, true>(
        src.data(), ld, idx.data(), idx.size(), coef.data(), split.data(), c0, std::min(ld, c0 + 48));
  CHECK(split == whole);
}

TEST_CASE_TEMPLATE("dot_rows: one vector against several rows matches a scalar loop", T, float, double) {
  // row counts around the four-row block, lengths with SIMD and scalar tails
  const std::size_t rows = 23, ld = 101;
  const auto src = random_vector<T>(rows * ld, 11);
  const auto x = random_vector<T>(ld, 12);
  const std::vector<std::uint32_t> idx{0, 5, 6, 7, 13, 22, 3};
  for (std::size_t n_idx : {std::size_t(0), std::size_t(3), std::size_t(4), std::size_t(7)})
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(9), std::size_t(64), ld}) {
      CAPTURE(n_idx);
      CAPTURE(n);
      std::vector<T> out(idx.size(), T(-7));
      detail::dot_rows<simd::default_arch>(x.data(), src.data(), ld, idx.data(), n_idx, n, out.data());
      for (std::size_t k = 0; k < idx.size(); ++k) {
        T want = T(-7); // entries past n_idx are left alone
        if (k < n_idx) {
          want = T(0);
          for (std::size_t c = 0; c < n; ++c) want += x[c] * src[idx[k] * ld + c];
        }
        CHECK(out[k] == doctest::Approx(want).epsilon(1e-5));
      }
      // each product does not depend on the rows it was grouped with
      for (std::size_t k = 0; k < n_idx; ++k) {
        T alone = T(-7);
        detail::dot_rows<simd::default_arch>(x.data(), src.data(), ld, idx.data() + k, 1, n, &alone);
        CHECK(alone == out[k]);
      }
    }
}

TEST_CASE_TEMPLATE("pack_column_panels: panel-major copy read by weighted_sum_rows with a prefetch stream", T,
                   float, double) {
  const std::size_t rows = 37, cols = 101, w = detail::weighted_sum_panel<T, simd::default_arch>;
  const std::size_t panels = (cols + w - 1) / w;
  const auto src = random_vector<T>(rows * cols, 7);
  std::vector<T> packed(panels * rows * w, T(-1));
  detail::pack_column_panels(src.data(), rows, cols, cols, w, packed.data());
  for (std::size_t p = 0; p < panels; ++p)
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t c = 0; c < w; ++c) {
        const T want = p * w + c < cols ? src[i * cols + p * w + c] : T(0); // the last panel is zero-padded
        REQUIRE(packed[(p * rows + i) * w + c] == want);
      }
  // summing the panels (with the next panel as prefetch stream, many or few lines per event) equals the
  // row-major sum
  const auto coef = random_vector<T>(rows, 8);
  const std::vector<std::uint32_t> idx{1, 2, 8, 20, 21, 35};
  auto ref = random_vector<T>(cols, 9), got = ref;
  detail::weighted_sum_rows<simd::default_arch>(src.data(), cols, idx.data(), idx.size(), coef.data(),
                                                ref.data(), 0, cols);
  for (std::size_t p = 0; p < panels; ++p) {
    const std::size_t c0 = p * w, n = std::min(w, cols - c0);
    const T* next = p + 1 < panels ? packed.data() + (p + 1) * rows * w : nullptr;
    detail::weighted_sum_rows<simd::default_arch>(packed.data() + p * rows * w, w, idx.data(), idx.size(),
                                                  coef.data(), got.data() + c0, 0, n, next,
                                                  next ? (p % 2 ? 3 : rows * w * sizeof(T) / 64) : 0);
  }
  for (std::size_t c = 0; c < cols; ++c) CHECK(got[c] == doctest::Approx(ref[c]).epsilon(1e-6));
}
