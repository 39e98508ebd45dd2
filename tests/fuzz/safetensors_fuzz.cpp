// libFuzzer target: the safetensors reader on arbitrary bytes. Every input must either be rejected with
// spikelm::Error or give tensors whose every read succeeds and agrees with the header; a valid file must
// survive re-serialisation by the writer unchanged in content. Anything else (a crash, a sanitizer report,
// another exception type) is a bug.
#include <spikelm/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace spikelm;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<SafetensorsReader> parsed;
  try {
    parsed.emplace(SafetensorsReader::from_bytes(bytes));
  } catch (const Error&) {
    return 0; // rejected with a message: fine
  }
  const SafetensorsReader& r = *parsed;
  SafetensorsWriter w;
  for (const auto& t : r.tensors()) {
    const std::string raw = r.read_raw(t.name);
    require(raw.size() == t.nbytes());
    require(t.nbytes() == t.numel() * dtype_size(t.dtype));
    require(r.read_flat<double>(t.name).size() == t.numel());
    if (t.shape.size() <= max_rank) require(r.read<float>(t.name).size() == t.numel());
    if (!is_floating(t.dtype)) {
      require(r.read_flat<std::int64_t>(t.name).size() == t.numel());
      try {
        (void)r.read_flat<std::int32_t>(t.name);
      } catch (const Error&) {
        require(t.dtype == Dtype::I64);
      }
    }
    w.add_raw(t.name, t.dtype, t.shape, raw);
  }
  for (const auto& [k, v] : r.metadata()) w.set_metadata(k, v);
  const SafetensorsReader again = SafetensorsReader::from_bytes(w.to_bytes());
  require(again.tensors().size() == r.tensors().size());
  require(again.metadata() == r.metadata());
  for (const auto& t : r.tensors()) require(again.read_raw(t.name) == r.read_raw(t.name));
  return 0;
}
