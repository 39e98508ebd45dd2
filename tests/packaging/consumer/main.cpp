// Downstream program used by the packaging tests: includes spikelm the way a user does, computes values whose
// results are known, and returns non-zero (after printing what it got) on any mismatch.
#include <spikelm/spikelm.hpp>

#include <cstdio>
#include <cstring>

namespace {
int failures = 0;

void expect_eq(const char* what, float got, float want) {
  if (got != want) {
    std::printf("MISMATCH %s: got %g, expected %g\n", what, static_cast<double>(got),
                static_cast<double>(want));
    ++failures;
  }
}
} // namespace

int main() {
  // The headers found must be the version the build system reported.
  if (std::strcmp(SPIKELM_VERSION_STRING, SPIKELM_CONSUMER_EXPECTED_VERSION) != 0) {
    std::printf("MISMATCH version: headers say %s, CMake says %s\n", SPIKELM_VERSION_STRING,
                SPIKELM_CONSUMER_EXPECTED_VERSION);
    ++failures;
  }

  // Spikes: row 0 fires neurons 0, 2 and 4, row 1 fires neuron 1. With an all-ones weight every output of a
  // row is the number of spikes in that row.
  spikelm::Tensor<float> x({2, 5});
  x(0, 0) = 1.f;
  x(0, 2) = 1.f;
  x(0, 4) = 1.f;
  x(1, 1) = 1.f;
  const auto s = spikelm::SpikeTensor::from_dense(x);
  spikelm::Tensor<float> w({5, 3}, 1.f);
  spikelm::Tensor<float> o({2, 3});
  spikelm::spike_matmul(s, w, o);
  const float row_spikes[2] = {3.f, 1.f};
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t c = 0; c < 3; ++c) expect_eq("spike_matmul", o(r, c), row_spikes[r]);
  std::printf("spike_matmul: [[%g %g %g] [%g %g %g]]\n", static_cast<double>(o(0, 0)),
              static_cast<double>(o(0, 1)), static_cast<double>(o(0, 2)), static_cast<double>(o(1, 0)),
              static_cast<double>(o(1, 1)), static_cast<double>(o(1, 2)));

  // Dense matmul: [[1 2 3] [4 5 6]] x [[1 0] [0 1] [1 1]] = [[4 5] [10 11]].
  spikelm::Tensor<float> a({2, 3}, {1.f, 2.f, 3.f, 4.f, 5.f, 6.f});
  spikelm::Tensor<float> b({3, 2}, {1.f, 0.f, 0.f, 1.f, 1.f, 1.f});
  spikelm::Tensor<float> c({2, 2});
  spikelm::matmul(a, b, c);
  const float want[2][2] = {{4.f, 5.f}, {10.f, 11.f}};
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t k = 0; k < 2; ++k) expect_eq("matmul", c(r, k), want[r][k]);
  std::printf("matmul: [[%g %g] [%g %g]]\n", static_cast<double>(c(0, 0)), static_cast<double>(c(0, 1)),
              static_cast<double>(c(1, 0)), static_cast<double>(c(1, 1)));

  std::printf("spikelm %s consumer: %s\n", SPIKELM_VERSION_STRING, failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
