// Tests for core/: Shape, Tensor, TensorView, Eigen interop (matmul), Rng, parallel helpers.
#include "test_util.hpp"

#include <set>

using namespace spikelm;
using spikelm_test::close;

TEST_CASE("Shape: rank, numel, strides, errors") {
  const Shape s{2, 3, 4};
  CHECK(s.rank() == 3);
  CHECK(s.numel() == 24);
  CHECK(s[-1] == 4);
  CHECK(s.stride(0) == 12);
  CHECK(s.stride(1) == 4);
  CHECK(s.stride(2) == 1);
  CHECK(s.drop_front() == Shape{3, 4});
  CHECK(s.with_front(5) == Shape{5, 3, 4});
  CHECK(s.str() == "[2, 3, 4]");
  CHECK(Shape{}.numel() == 1);
  CHECK_THROWS_AS((Shape{1, 2, 3, 4, 5}), Error);
  CHECK_THROWS_AS((void)s[3], Error);
  CHECK_THROWS_AS((void)s[-4], Error);
  CHECK_THROWS_WITH_AS((Shape{std::size_t(1) << 40, std::size_t(1) << 40}), doctest::Contains("too many"),
                       Error);
}

TEST_CASE_TEMPLATE("Tensor: construction, alignment, access, copies", T, float, double) {
  Tensor<T> a({2, 3});
  CHECK(a.size() == 6);
  CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % SPIKELM_DEFAULT_ALIGNMENT == 0);
  for (T v : a) CHECK(v == T(0));
  a(1, 2) = T(5);
  CHECK(a.at(1, 2) == T(5));
  CHECK(a.data()[5] == T(5));
  CHECK_THROWS_AS((void)a.at(2, 0), Error);
  CHECK_THROWS_AS((void)a.at(0), Error);

  Tensor<T> b = a; // deep copy
  b(0, 0) = T(1);
  CHECK(a(0, 0) == T(0));
  Tensor<T> c = std::move(b);
  CHECK(c(0, 0) == T(1));
  CHECK(b.empty());

  Tensor<T> d({2, 2}, {T(1), T(2), T(3), T(4)});
  CHECK(d(1, 0) == T(3));
  CHECK_THROWS_WITH_AS((Tensor<T>({2, 2}, {T(1), T(2)})), doctest::Contains("2 values for shape [2, 2]"),
                       Error);

  Tensor<T> empty;
  CHECK(empty.size() == 0);
  CHECK(empty.shape() == Shape{0});
  Tensor<T> zero_rows({0, 7});
  CHECK(zero_rows.size() == 0);
}

TEST_CASE("TensorView: slices, select, reshape without copies") {
  Tensor<float> t({4, 3});
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(i);
  auto s = t.slice(1, 3);
  CHECK(s.shape() == Shape{2, 3});
  CHECK(s.data() == t.data() + 3);
  s(0, 0) = -1.f;
  CHECK(t(1, 0) == -1.f);
  auto row = t[3];
  CHECK(row.shape() == Shape{3});
  CHECK(row(2) == 11.f);
  auto r = t.reshape({2, 6});
  CHECK(r(1, 0) == 6.f);
  CHECK_THROWS_WITH_AS((void)t.reshape({5, 2}), doctest::Contains("cannot view [4, 3]"), Error);
  CHECK_THROWS_AS((void)t.slice(2, 5), Error);
  CHECK_THROWS_AS((void)t[4], Error);
  TensorView<const float> cv = t.view();
  CHECK(cv(3, 2) == 11.f);
  Tensor<float> copy(cv.slice(2, 4));
  CHECK(copy.shape() == Shape{2, 3});
  CHECK(copy(0, 0) == 6.f);
  Tensor<float> other({4, 3});
  other.copy_from(t);
  CHECK(other(3, 2) == 11.f);
  CHECK_THROWS_AS(other.copy_from(copy), Error);
}

namespace {
template <class T>
void naive_matmul(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& c, Trans ta, Trans tb, T alpha, T beta) {
  const std::size_t m = c.dim(0), n = c.dim(1);
  const std::size_t k = ta == Trans::No ? a.dim(1) : a.dim(0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      T s = 0;
      for (std::size_t p = 0; p < k; ++p) {
        const T av = ta == Trans::No ? a(i, p) : a(p, i);
        const T bv = tb == Trans::No ? b(p, j) : b(j, p);
        s += av * bv;
      }
      c(i, j) = alpha * s + beta * c(i, j);
    }
}
} // namespace

TEST_CASE_TEMPLATE("matmul through Eigen matches a scalar reference, all transposes", T, float, double) {
  const std::size_t m = 7, k = 13, n = 5;
  for (Trans ta : {Trans::No, Trans::Yes})
    for (Trans tb : {Trans::No, Trans::Yes})
      for (T beta : {T(0), T(0.5)}) {
        auto av = spikelm_test::random_vector<T>(m * k, 1);
        auto bv = spikelm_test::random_vector<T>(k * n, 2);
        auto cv = spikelm_test::random_vector<T>(m * n, 3);
        Tensor<T> a(ta == Trans::No ? Shape{m, k} : Shape{k, m}, av);
        Tensor<T> b(tb == Trans::No ? Shape{k, n} : Shape{n, k}, bv);
        Tensor<T> c({m, n}, cv), want({m, n}, cv);
        matmul(a, b, c, ta, tb, T(1.5), beta);
        naive_matmul(a, b, want, ta, tb, T(1.5), beta);
        spikelm_test::require_close(c.data(), want.data(), c.size(), 1e-5, 1e-6, "matmul");
      }
}

TEST_CASE("matmul: shape errors name the shapes, empty and k = 0 products") {
  Tensor<float> a({2, 3}), b({4, 5}), c({2, 5});
  CHECK_THROWS_WITH_AS(matmul(a, b, c), doctest::Contains("A [2, 3]"), Error);
  Tensor<float> a1({3}), c1({2, 5});
  CHECK_THROWS_WITH_AS(matmul(a1, b, c1), doctest::Contains("rank-2"), Error);
  Tensor<float> z({2, 0}), zb({0, 5}), out({2, 5}, 7.f);
  matmul(z, zb, out);
  for (float v : out) CHECK(v == 0.f);
  Tensor<float> e({0, 3}), eb({3, 2}), eo({0, 2});
  matmul(e, eb, eo); // nothing to do, must not throw
}

TEST_CASE("batched_matmul over the leading axis") {
  const std::size_t B = 3, m = 4, k = 5, n = 2;
  Tensor<double> a({B, m, k}, spikelm_test::random_vector<double>(B * m * k, 4));
  Tensor<double> b({B, k, n}, spikelm_test::random_vector<double>(B * k * n, 5));
  Tensor<double> c({B, m, n});
  batched_matmul(a, b, c);
  for (std::size_t i = 0; i < B; ++i) {
    Tensor<double> ai(a[i]), bi(b[i]), want({m, n});
    naive_matmul(ai, bi, want, Trans::No, Trans::No, 1.0, 0.0);
    spikelm_test::require_close(c[i].data(), want.data(), m * n, 1e-12, 1e-12, "batched");
  }
  Tensor<double> bad({B + 1, k, n});
  CHECK_THROWS_AS(batched_matmul(a, bad, c), Error);
}

TEST_CASE("as_matrix maps without copying") {
  Tensor<float> t({2, 3, 4});
  auto m = as_matrix(t);
  CHECK(m.rows() == 6);
  CHECK(m.cols() == 4);
  CHECK(m.data() == t.data());
  m(5, 3) = 9.f;
  CHECK(t(1, 2, 3) == 9.f);
}

TEST_CASE("Rng: deterministic, counter-based, thread-count independent") {
  Rng a(42), b(42), c(43);
  CHECK(a.next_u64() == b.next_u64());
  CHECK(a.next_u64() != c.next_u64());

  std::vector<float> x1(50000), x2(50000);
  {
    ScopedThreads one(1);
    Rng r(7);
    r.fill_normal(std::span<float>(x1));
    CHECK(r.counter() == 50000);
  }
  {
    ScopedThreads two(2);
    Rng r(7);
    r.fill_normal(std::span<float>(x2));
  }
  CHECK(x1 == x2);

  // statistics of uniform / normal / bernoulli draws
  std::vector<double> u(200000), nrm(200000), bern(200000);
  Rng r(11);
  r.fill_uniform(std::span<double>(u), -2.0, 2.0);
  r.fill_normal(std::span<double>(nrm), 1.0, 3.0);
  r.fill_bernoulli(std::span<double>(bern), 0.2);
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  };
  double var = 0;
  const double mn = mean(nrm);
  for (double x : nrm) var += (x - mn) * (x - mn);
  var /= static_cast<double>(nrm.size());
  CHECK(std::abs(mean(u)) < 0.02);
  for (double x : u) REQUIRE((x >= -2.0 && x < 2.0));
  CHECK(std::abs(mn - 1.0) < 0.03);
  CHECK(std::abs(var - 9.0) < 0.15);
  CHECK(std::abs(mean(bern) - 0.2) < 0.005);

  // a fill equals the same number of sequential draws starting from the same counter
  Rng s1(5), s2(5);
  std::vector<float> f(10);
  s1.fill_uniform(std::span<float>(f));
  for (float v : f) CHECK(v == s2.uniform<float>());

  std::set<std::uint64_t> idx;
  Rng ri(3);
  for (int i = 0; i < 1000; ++i) {
    const auto k = ri.uniform_index(10);
    REQUIRE(k < 10);
    idx.insert(k);
  }
  CHECK(idx.size() == 10);
  CHECK_THROWS_AS(ri.uniform_index(0), Error);
  CHECK(Rng(1).fork(0).next_u64() != Rng(1).fork(1).next_u64());
}

TEST_CASE("parallel_for visits each index once") {
  std::vector<int> hits(100000, 0);
  parallel_for(hits.size(), std::size_t(1) << 30, [&](std::size_t i) { hits[i] += 1; });
  for (int h : hits) REQUIRE(h == 1);
  CHECK_THROWS_AS(set_num_threads(0), Error);
  CHECK(std::string(version_string()) == SPIKELM_VERSION_STRING);
}
