// Tests for simd/: every kernel against a plain scalar loop in double precision, on sizes that are not
// multiples of the SIMD width, empty inputs and chunk boundaries. Built twice: with SIMD and with
// SPIKELM_DISABLE_SIMD (the scalar fallback).
#include "test_util.hpp"

#include <functional>

using namespace spikelm;
using spikelm_test::awkward_sizes;
using spikelm_test::random_vector;
using spikelm_test::require_close;

namespace {
template <class T>
double tol() {
  return std::is_same_v<T, float> ? 2e-6 : 1e-13;
}

template <class T, class Kernel, class Ref>
void check_unary(const char* name, Kernel kernel, Ref ref, T lo = T(-4), T hi = T(4), double rtol_scale = 1) {
  for (std::size_t n : awkward_sizes()) {
    auto x = random_vector<T>(n, n + 1, lo, hi);
    std::vector<T> y(n), want(n);
    kernel(x.data(), y.data(), n);
    for (std::size_t i = 0; i < n; ++i) want[i] = static_cast<T>(ref(static_cast<double>(x[i])));
    require_close(y.data(), want.data(), n, tol<T>() * rtol_scale, tol<T>() * rtol_scale, name);
    // in place
    std::vector<T> inplace = x;
    kernel(inplace.data(), inplace.data(), n);
    require_close(inplace.data(), y.data(), n, 0, 0, name);
  }
}

template <class T, class Kernel, class Ref>
void check_binary(const char* name, Kernel kernel, Ref ref, T lo = T(-4), T hi = T(4),
                  double rtol_scale = 1) {
  for (std::size_t n : awkward_sizes()) {
    auto a = random_vector<T>(n, n + 10, lo, hi);
    auto b = random_vector<T>(n, n + 20, lo, hi);
    std::vector<T> out(n), want(n);
    kernel(a.data(), b.data(), out.data(), n);
    for (std::size_t i = 0; i < n; ++i)
      want[i] = static_cast<T>(ref(static_cast<double>(a[i]), static_cast<double>(b[i])));
    require_close(out.data(), want.data(), n, tol<T>() * rtol_scale, tol<T>() * rtol_scale, name);
  }
}

double gelu_ref(double x) {
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}
double gelu_tanh_ref(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / 3.141592653589793) * (x + 0.044715 * x * x * x)));
}
double sigmoid_ref(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
} // namespace

TEST_CASE("SIMD is what this build says it is") {
#if defined(SPIKELM_DISABLE_SIMD)
  CHECK(simd::lanes<float, simd::default_arch> == 0);
#else
  CHECK(simd::lanes<float, simd::default_arch> >= 4);
#endif
}

TEST_CASE_TEMPLATE("elementwise arithmetic", T, float, double) {
  check_binary<T>(
      "add", [](auto... a) { simd::add(a...); }, [](double a, double b) { return a + b; });
  check_binary<T>(
      "sub", [](auto... a) { simd::sub(a...); }, [](double a, double b) { return a - b; });
  check_binary<T>(
      "mul", [](auto... a) { simd::mul(a...); }, [](double a, double b) { return a * b; });
  check_binary<T>(
      "div", [](auto... a) { simd::div(a...); }, [](double a, double b) { return a / b; }, T(0.5), T(4));
  check_unary<T>(
      "scale", [](const T* x, T* y, std::size_t n) { simd::scale(T(-2.5), x, y, n); },
      [](double x) { return -2.5 * x; });
  for (std::size_t n : awkward_sizes()) {
    auto x = random_vector<T>(n, 1), y = random_vector<T>(n, 2), want = y;
    simd::axpy(T(0.75), x.data(), y.data(), n);
    for (std::size_t i = 0; i < n; ++i) want[i] = static_cast<T>(0.75 * double(x[i]) + double(want[i]));
    require_close(y.data(), want.data(), n, tol<T>(), tol<T>(), "axpy");
  }
}

TEST_CASE_TEMPLATE("activations", T, float, double) {
  check_unary<T>(
      "exp", [](auto... a) { simd::exp(a...); }, [](double x) { return std::exp(x); }, T(-20), T(20));
  check_unary<T>(
      "sigmoid", [](auto... a) { simd::sigmoid(a...); }, sigmoid_ref, T(-30), T(30));
  check_unary<T>(
      "tanh", [](auto... a) { simd::tanh(a...); }, [](double x) { return std::tanh(x); });
  check_unary<T>(
      "gelu", [](auto... a) { simd::gelu(a...); }, gelu_ref, T(-6), T(6), 2);
  check_unary<T>(
      "gelu_tanh", [](auto... a) { simd::gelu_tanh(a...); }, gelu_tanh_ref, T(-6), T(6), 2);
  check_unary<T>(
      "relu", [](auto... a) { simd::relu(a...); }, [](double x) { return x > 0 ? x : 0; });
  check_unary<T>(
      "relu_sq", [](auto... a) { simd::relu_sq(a...); }, [](double x) { return x > 0 ? x * x : 0; });
}

TEST_CASE_TEMPLATE("activation backward passes match derivatives", T, float, double) {
  // f'(x) by central differences in double precision against the kernels' closed forms
  auto numeric = [](double (*f)(double), double x) {
    const double h = 1e-6;
    return (f(x + h) - f(x - h)) / (2 * h);
  };
  const double fd_tol = 2e-6;
  check_binary<T>(
      "sigmoid_backward",
      [](const T* x, const T* g, T* dx, std::size_t n) {
        std::vector<T> y(n);
        simd::sigmoid(x, y.data(), n);
        simd::sigmoid_backward(y.data(), g, dx, n);
      },
      [&](double x, double g) { return g * numeric(sigmoid_ref, x); }, T(-4), T(4),
      std::is_same_v<T, float> ? 4 : fd_tol / tol<T>());
  check_binary<T>(
      "tanh_backward",
      [](const T* x, const T* g, T* dx, std::size_t n) {
        std::vector<T> y(n);
        simd::tanh(x, y.data(), n);
        simd::tanh_backward(y.data(), g, dx, n);
      },
      [&](double x, double g) { return g * numeric([](double v) { return std::tanh(v); }, x); }, T(-3), T(3),
      std::is_same_v<T, float> ? 4 : fd_tol / tol<T>());
  check_binary<T>(
      "gelu_backward", [](auto... a) { simd::gelu_backward(a...); },
      [&](double x, double g) { return g * numeric(gelu_ref, x); }, T(-5), T(5),
      std::is_same_v<T, float> ? 4 : fd_tol / tol<T>());
  check_binary<T>(
      "gelu_tanh_backward", [](auto... a) { simd::gelu_tanh_backward(a...); },
      [&](double x, double g) { return g * numeric(gelu_tanh_ref, x); }, T(-5), T(5),
      std::is_same_v<T, float> ? 4 : fd_tol / tol<T>());
  check_binary<T>(
      "relu_backward", [](auto... a) { simd::relu_backward(a...); },
      [](double x, double g) { return x > 0 ? g : 0; });
  check_binary<T>(
      "relu_sq_backward", [](auto... a) { simd::relu_sq_backward(a...); },
      [](double x, double g) { return x > 0 ? 2 * x * g : 0; });
  check_binary<T>(
      "exp_backward", [](auto... a) { simd::exp_backward(a...); }, [](double y, double g) { return y * g; });
}

TEST_CASE_TEMPLATE("reductions", T, float, double) {
  for (std::size_t n : awkward_sizes()) {
    auto x = random_vector<T>(n, 3 * n + 1);
    auto y = random_vector<T>(n, 3 * n + 2);
    double s = 0, d = 0, q = 0, m = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) {
      s += x[i], d += double(x[i]) * y[i], q += double(x[i]) * x[i];
      m = std::max(m, double(x[i]));
    }
    const double t = std::is_same_v<T, float> ? 1e-5 * std::sqrt(double(n) + 1) : 1e-12;
    CHECK(spikelm_test::close(double(simd::sum(x.data(), n)), s, t, t));
    CHECK(spikelm_test::close(double(simd::dot(x.data(), y.data(), n)), d, t, t));
    CHECK(spikelm_test::close(double(simd::sum_sq(x.data(), n)), q, t, t));
    CHECK(spikelm_test::close(double(simd::norm2(x.data(), n)), std::sqrt(q), t, t));
    if (n > 0) CHECK(double(simd::max(x.data(), n)) == m);
  }
  CHECK_THROWS_AS(simd::max(static_cast<const T*>(nullptr), 0), Error);
  // same result with one or two threads (fixed chunking)
  auto big = random_vector<T>(100003, 9);
  T s1, s2;
  {
    ScopedThreads one(1);
    s1 = simd::sum(big.data(), big.size());
  }
  {
    ScopedThreads two(2);
    s2 = simd::sum(big.data(), big.size());
  }
  CHECK(s1 == s2);
}

TEST_CASE_TEMPLATE("row softmax and log-softmax, forward and backward", T, float, double) {
  for (std::size_t cols : {1, 3, 8, 17, 100, 1031}) {
    const std::size_t rows = 5;
    auto x = random_vector<T>(rows * cols, cols, T(-10), T(10));
    x[0] = T(80); // a large logit: the stable form must not overflow
    auto g = random_vector<T>(rows * cols, cols + 1);
    std::vector<T> y(rows * cols), ly(rows * cols), dx(rows * cols), ldx(rows * cols);
    simd::softmax_rows(x.data(), y.data(), rows, cols);
    simd::log_softmax_rows(x.data(), ly.data(), rows, cols);
    simd::softmax_backward_rows(y.data(), g.data(), dx.data(), rows, cols);
    simd::log_softmax_backward_rows(ly.data(), g.data(), ldx.data(), rows, cols);
    for (std::size_t r = 0; r < rows; ++r) {
      const T* xr = x.data() + r * cols;
      const T* gr = g.data() + r * cols;
      double m = -INFINITY, s = 0;
      for (std::size_t c = 0; c < cols; ++c) m = std::max(m, double(xr[c]));
      for (std::size_t c = 0; c < cols; ++c) s += std::exp(double(xr[c]) - m);
      std::vector<double> p(cols);
      double gp = 0, gs = 0;
      for (std::size_t c = 0; c < cols; ++c) {
        p[c] = std::exp(double(xr[c]) - m) / s;
        gp += gr[c] * p[c];
        gs += gr[c];
      }
      for (std::size_t c = 0; c < cols; ++c) {
        const std::size_t i = r * cols + c;
        const double t = std::is_same_v<T, float> ? 2e-5 : 1e-12;
        REQUIRE(spikelm_test::close(double(y[i]), p[c], t, t));
        REQUIRE(spikelm_test::close(double(ly[i]), double(xr[c]) - m - std::log(s), t, t));
        REQUIRE(spikelm_test::close(double(dx[i]), p[c] * (gr[c] - gp), t, t));
        REQUIRE(spikelm_test::close(double(ldx[i]), gr[c] - p[c] * gs, t, t));
      }
    }
  }
}

TEST_CASE_TEMPLATE("LayerNorm forward and backward against a scalar reference", T, float, double) {
  for (std::size_t cols : {1, 5, 16, 33, 768}) {
    const std::size_t rows = 4;
    auto x = random_vector<T>(rows * cols, cols + 7, T(-3), T(5));
    auto gamma = random_vector<T>(cols, 1, T(0.5), T(1.5));
    auto beta = random_vector<T>(cols, 2);
    auto dy = random_vector<T>(rows * cols, 3);
    const T eps = T(1e-5);
    std::vector<T> y(rows * cols), mean(rows), rstd(rows), dx(rows * cols), dgamma(cols, T(1)),
        dbeta(cols, T(2));
    simd::layernorm_rows(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols,
                         eps);
    simd::layernorm_backward_rows(dy.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                                  dgamma.data(), dbeta.data(), rows, cols);
    std::vector<double> wdg(cols, 1.0), wdb(cols, 2.0);
    const double t = std::is_same_v<T, float> ? 5e-5 : 1e-11;
    for (std::size_t r = 0; r < rows; ++r) {
      double mu = 0, var = 0;
      for (std::size_t c = 0; c < cols; ++c) mu += x[r * cols + c];
      mu /= double(cols);
      for (std::size_t c = 0; c < cols; ++c) var += (x[r * cols + c] - mu) * (x[r * cols + c] - mu);
      var /= double(cols);
      const double rs = 1 / std::sqrt(var + double(eps));
      REQUIRE(spikelm_test::close(double(mean[r]), mu, t, t));
      REQUIRE(spikelm_test::close(double(rstd[r]), rs, t, t));
      double s1 = 0, s2 = 0;
      for (std::size_t c = 0; c < cols; ++c) {
        const double xh = (x[r * cols + c] - mu) * rs;
        REQUIRE(spikelm_test::close(double(y[r * cols + c]), xh * gamma[c] + beta[c], t, t));
        const double g = double(dy[r * cols + c]) * gamma[c];
        s1 += g, s2 += g * xh;
        wdg[c] += double(dy[r * cols + c]) * xh;
        wdb[c] += dy[r * cols + c];
      }
      for (std::size_t c = 0; c < cols; ++c) {
        const double xh = (x[r * cols + c] - mu) * rs;
        const double g = double(dy[r * cols + c]) * gamma[c];
        const double want = rs * (g - s1 / double(cols) - xh * s2 / double(cols));
        REQUIRE(spikelm_test::close(double(dx[r * cols + c]), want, 10 * t, 10 * t));
      }
    }
    for (std::size_t c = 0; c < cols; ++c) {
      REQUIRE(spikelm_test::close(double(dgamma[c]), wdg[c], t, t));
      REQUIRE(spikelm_test::close(double(dbeta[c]), wdb[c], t, t));
    }
    // without the affine part
    std::vector<T> y2(rows * cols);
    simd::layernorm_rows<simd::default_arch, T>(x.data(), nullptr, nullptr, y2.data(), nullptr, nullptr, rows,
                                                cols, eps);
    for (std::size_t c = 0; c < cols; ++c) {
      const double want = (double(y[c]) - beta[c]) / gamma[c];
      REQUIRE(spikelm_test::close(double(y2[c]), want, 10 * t, 10 * t));
    }
  }
}

TEST_CASE("LayerNorm backward by finite differences (double)") {
  const std::size_t rows = 2, cols = 6;
  auto x = random_vector<double>(rows * cols, 1);
  auto gamma = random_vector<double>(cols, 2, 0.5, 1.5);
  auto beta = random_vector<double>(cols, 3);
  auto w = random_vector<double>(rows * cols, 4); // loss = sum(w * y)
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& gv) {
    std::vector<double> y(rows * cols);
    simd::layernorm_rows(xv.data(), gv.data(), beta.data(), y.data(), static_cast<double*>(nullptr),
                         static_cast<double*>(nullptr), rows, cols, 1e-5);
    double l = 0;
    for (std::size_t i = 0; i < y.size(); ++i) l += w[i] * y[i];
    return l;
  };
  std::vector<double> y(rows * cols), mean(rows), rstd(rows), dx(rows * cols), dg(cols, 0.0);
  simd::layernorm_rows(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), rows, cols,
                       1e-5);
  simd::layernorm_backward_rows(w.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                                dg.data(), static_cast<double*>(nullptr), rows, cols);
  const double h = 1e-6;
  for (std::size_t i = 0; i < x.size(); ++i) {
    auto xp = x, xm = x;
    xp[i] += h, xm[i] -= h;
    CHECK(spikelm_test::close(dx[i], (loss(xp, gamma) - loss(xm, gamma)) / (2 * h), 1e-6, 1e-8));
  }
  for (std::size_t c = 0; c < cols; ++c) {
    auto gp = gamma, gm = gamma;
    gp[c] += h, gm[c] -= h;
    CHECK(spikelm_test::close(dg[c], (loss(x, gp) - loss(x, gm)) / (2 * h), 1e-6, 1e-8));
  }
}
