// Reads the golden fixtures written by the PyTorch scripts in tests/reference/ (a plain-text format:
// "tensor <name> <ndim> <dims...>" then one line of values).
#pragma once

#include <spikelm/spikelm.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace spikelm_test {

struct FixtureTensor {
  spikelm::Shape shape;
  std::vector<double> values;
  template <class T>
  spikelm::Tensor<T> as() const {
    std::vector<T> v(values.begin(), values.end());
    return spikelm::Tensor<T>(shape, std::span<const T>(v));
  }
};

class Fixtures {
 public:
  explicit Fixtures(const std::string& relative_path) {
    const std::string path = std::string(SPIKELM_TESTS_SOURCE_DIR) + "/" + relative_path;
    std::ifstream in(path);
    spikelm::check(static_cast<bool>(in), "cannot open fixture file ", path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream head(line);
      std::string kw, name;
      std::size_t ndim = 0;
      head >> kw >> name >> ndim;
      spikelm::check(kw == "tensor", "fixture ", path, ": expected 'tensor', got '", kw, "'");
      std::vector<std::size_t> dims(ndim);
      for (auto& d : dims) head >> d;
      FixtureTensor t{spikelm::Shape(dims.begin(), dims.end()), {}};
      spikelm::check(static_cast<bool>(std::getline(in, line)), "fixture ", path, ": missing values of ",
                     name);
      std::istringstream vals(line);
      double v;
      while (vals >> v) t.values.push_back(v);
      spikelm::check(t.values.size() == t.shape.numel(), "fixture ", name, ": ", t.values.size(),
                     " values for shape ", t.shape);
      tensors_[name] = std::move(t);
    }
  }
  [[nodiscard]] const FixtureTensor& operator[](const std::string& name) const {
    auto it = tensors_.find(name);
    spikelm::check(it != tensors_.end(), "fixture tensor '", name, "' not found");
    return it->second;
  }
  [[nodiscard]] bool has(const std::string& name) const { return tensors_.count(name) != 0; }

 private:
  std::map<std::string, FixtureTensor> tensors_;
};

} // namespace spikelm_test
