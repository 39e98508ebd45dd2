// Conan test_package: builds against the packaged spikelm and checks a computed value.
#include <spikelm/spikelm.hpp>

#include <cstdio>

int main() {
  // Neurons 1 and 3 of a single row spike; weight row i is filled with i + 1, so each output is 2 + 4 = 6.
  spikelm::Tensor<float> x({1, 4}, {0.f, 1.f, 0.f, 1.f});
  const auto spikes = spikelm::SpikeTensor::from_dense(x);
  spikelm::Tensor<float> w({4, 2});
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 2; ++j) w(i, j) = static_cast<float>(i + 1);
  spikelm::Tensor<float> out({1, 2});
  spikelm::spike_matmul(spikes, w, out);

  // The same product through the dense matmul.
  spikelm::Tensor<float> dense({1, 2});
  spikelm::matmul(x, w, dense);

  bool ok = true;
  for (std::size_t j = 0; j < 2; ++j) ok = ok && out(0, j) == 6.f && dense(0, j) == 6.f;
  std::printf("spikelm %s test_package: spike_matmul = [%g %g], matmul = [%g %g]: %s\n",
              SPIKELM_VERSION_STRING, static_cast<double>(out(0, 0)), static_cast<double>(out(0, 1)),
              static_cast<double>(dense(0, 0)), static_cast<double>(dense(0, 1)), ok ? "OK" : "MISMATCH");
  return ok ? 0 : 1;
}
