// spikelm: the safetensors format (Hugging Face): a strict reader (header validated, tensors read on demand
// with positional reads), a writer that lays files out as the Python `safetensors` package does, F16/BF16
// conversions, and saving/loading a ParameterSet by name.
//
// Layout: 8 bytes (little-endian u64) N, then N bytes of UTF-8 JSON
//   {"__metadata__": {"key": "value", ...}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b,
//   e]}, ...}
// padded with spaces, then the data section. Offsets are relative to the data section; the tensors must tile
// it exactly (sorted by offset: the first starts at 0, each starts where the previous one ends, the last ends
// at the end of the file). Values are little-endian, row-major.
#ifndef SPIKELM_IO_SAFETENSORS_HPP
#define SPIKELM_IO_SAFETENSORS_HPP

#include "../autograd/parameter.hpp"
#include "../config.hpp"
#include "../core/error.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "file.hpp"
#include "json.hpp"
#include "utf8.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

// ---- dtypes -----------------------------------------------------------------------------------------------

/// The element types spikelm reads and writes (safetensors names in the comments).
enum class Dtype : std::uint8_t {
  F64,  ///< "F64": IEEE binary64
  F32,  ///< "F32": IEEE binary32
  F16,  ///< "F16": IEEE binary16
  BF16, ///< "BF16": bfloat16 (the top half of a binary32)
  I64,  ///< "I64": signed 64-bit integer
  I32,  ///< "I32": signed 32-bit integer
};

inline constexpr std::array<Dtype, 6> all_dtypes{Dtype::F64,  Dtype::F32, Dtype::F16,
                                                 Dtype::BF16, Dtype::I64, Dtype::I32};

/// Bytes per element.
[[nodiscard]] constexpr std::size_t dtype_size(Dtype d) noexcept {
  switch (d) {
  case Dtype::F64:
  case Dtype::I64:
    return 8;
  case Dtype::F32:
  case Dtype::I32:
    return 4;
  case Dtype::F16:
  case Dtype::BF16:
    return 2;
  }
  return 0;
}
/// The safetensors name ("F32", ...).
[[nodiscard]] constexpr std::string_view dtype_name(Dtype d) noexcept {
  switch (d) {
  case Dtype::F64:
    return "F64";
  case Dtype::F32:
    return "F32";
  case Dtype::F16:
    return "F16";
  case Dtype::BF16:
    return "BF16";
  case Dtype::I64:
    return "I64";
  case Dtype::I32:
    return "I32";
  }
  return "?";
}
[[nodiscard]] constexpr bool is_floating(Dtype d) noexcept {
  return d == Dtype::F64 || d == Dtype::F32 || d == Dtype::F16 || d == Dtype::BF16;
}
/// The dtype with safetensors name `name`, or nothing.
[[nodiscard]] inline std::optional<Dtype> parse_dtype(std::string_view name) noexcept {
  for (Dtype d : all_dtypes)
    if (dtype_name(d) == name) return d;
  return std::nullopt;
}
inline std::ostream& operator<<(std::ostream& os, Dtype d) {
  return os << dtype_name(d);
}

/// The dtype that stores T exactly: float F32, double F64, std::int32_t I32, std::int64_t I64.
template <class T>
[[nodiscard]] constexpr Dtype dtype_of() noexcept {
  if constexpr (std::is_same_v<T, float>)
    return Dtype::F32;
  else if constexpr (std::is_same_v<T, double>)
    return Dtype::F64;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return Dtype::I32;
  else {
    static_assert(std::is_same_v<T, std::int64_t>, "dtype_of: T must be float, double, int32_t or int64_t");
    return Dtype::I64;
  }
}

/// Element types the reader converts to and the writer converts from.
template <class T>
concept SafetensorsElement = std::is_same_v<T, float> || std::is_same_v<T, double> ||
    std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int64_t>;

// ---- 16-bit floats ----------------------------------------------------------------------------------------

namespace detail {
/// Round half to even of a non-negative value below 2^52.
inline double round_half_even(double q) noexcept {
  double r = std::floor(q);
  const double d = q - r;
  if (d > 0.5 || (d == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return r;
}
/// Encodes x (one rounding, to nearest even) into a binary float with E exponent and M mantissa bits:
/// overflow gives infinity, NaN gives the quiet NaN with x's sign, subnormals are kept.
template <int E, int M>
std::uint16_t encode_minifloat(double x) noexcept {
  constexpr int bias = (1 << (E - 1)) - 1, emin = 1 - bias, emax = bias;
  constexpr std::uint32_t exp_mask = ((1u << E) - 1u) << M, one = 1u << M;
  const std::uint32_t sign = std::signbit(x) ? (1u << (E + M)) : 0u;
  if (std::isnan(x)) return static_cast<std::uint16_t>(sign | exp_mask | (1u << (M - 1)));
  const double a = std::fabs(x);
  if (std::isinf(a)) return static_cast<std::uint16_t>(sign | exp_mask);
  if (a < std::ldexp(1.0, emin)) { // subnormal (or rounds up to the smallest normal, which encodes alike)
    const auto m = static_cast<std::uint32_t>(round_half_even(std::ldexp(a, M - emin)));
    return static_cast<std::uint16_t>(sign | m);
  }
  int e2 = 0;
  (void)std::frexp(a, &e2);
  int exp = e2 - 1; // a = s * 2^exp with s in [1, 2)
  auto m = static_cast<std::uint32_t>(round_half_even(std::ldexp(a, M - exp)));
  if (m == 2 * one) m = one, ++exp;
  if (exp > emax) return static_cast<std::uint16_t>(sign | exp_mask);
  return static_cast<std::uint16_t>(sign | (static_cast<std::uint32_t>(exp + bias) << M) | (m - one));
}
} // namespace detail

/// IEEE binary16 bits of x, rounded to nearest even (overflow to infinity, NaN to a quiet NaN). From a double
/// there is exactly one rounding (no detour through float).
[[nodiscard]] inline std::uint16_t to_f16(double x) noexcept {
  return detail::encode_minifloat<5, 10>(x);
}
/// binary16 bits of a float: the same result as to_f16(double(x)), with integer operations.
[[nodiscard]] inline std::uint16_t to_f16(float x) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);  // NaN
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u); // |x| >= 65520 (or inf): inf
  if (a >= 0x38800000u) {                                                  // normal: rebias, drop 13 bits
    std::uint32_t r = a - 0x38000000u;
    r += 0x0FFFu + ((r >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (r >> 13));
  }
  if (a <= 0x33000000u) return sign;            // |x| <= 2^-25 rounds to zero (2^-25 is a tie, to even)
  const std::uint32_t shift = 126u - (a >> 23); // subnormal: round(|x| * 2^24), shift in [14, 24]
  const std::uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;
  std::uint32_t m = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (m & 1u))) ++m;
  return static_cast<std::uint16_t>(sign | m);
}
/// bfloat16 bits of x, rounded to nearest even (overflow to infinity, NaN to a quiet NaN), one rounding.
[[nodiscard]] inline std::uint16_t to_bf16(double x) noexcept {
  return detail::encode_minifloat<8, 7>(x);
}
/// bfloat16 bits of a float: the same result as to_bf16(double(x)), with integer operations.
[[nodiscard]] inline std::uint16_t to_bf16(float x) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u); // quiet NaN
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
/// The value of binary16 bits (exact as float; NaN payloads kept).
[[nodiscard]] inline float from_f16(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  std::uint32_t bits;
  if (e == 0x1F) {
    bits = sign | 0x7F800000u | (m << 13);
  } else if (e != 0) {
    bits = sign | ((e + 112u) << 23) | (m << 13);
  } else if (m == 0) {
    bits = sign;
  } else { // subnormal m 2^-24: normalize on the highest set bit p
    const auto p = static_cast<std::uint32_t>(std::bit_width(m)) - 1u;
    bits = sign | ((p + 103u) << 23) | ((m ^ (1u << p)) << (23u - p));
  }
  return std::bit_cast<float>(bits);
}
/// The value of bfloat16 bits (exact as float; NaN payloads kept).
[[nodiscard]] inline float from_bf16(std::uint16_t bits) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

// ---- header -----------------------------------------------------------------------------------------------

/// One tensor of a safetensors file: its dtype, shape (any rank) and byte range in the data section.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0, end = 0;

  [[nodiscard]] std::uint64_t numel() const noexcept {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d; // cannot overflow: checked when the header was parsed
    return n;
  }
  [[nodiscard]] std::uint64_t nbytes() const noexcept { return end - begin; }
  /// The shape as a spikelm Shape; throws if the rank exceeds 4.
  [[nodiscard]] Shape tensor_shape() const {
    check(shape.size() <= max_rank, "safetensors: tensor '", name, "' has rank ", shape.size(),
          "; spikelm tensors have rank <= ", max_rank);
    std::vector<std::size_t> dims(shape.begin(), shape.end());
    return Shape(dims.begin(), dims.end());
  }
  [[nodiscard]] std::string shape_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s.append(i ? ", " : "").append(std::to_string(shape[i]));
    return s + "]";
  }
};

/// The largest header the reader accepts (the Python package's limit).
inline constexpr std::uint64_t safetensors_max_header_bytes = 100'000'000;

namespace detail {
/// Parses and validates a safetensors header (the N bytes after the length) for a data section of
/// `data_size` bytes. Fills `tensors` (sorted by offset) and `metadata`; throws spikelm::Error naming
/// `where`.
inline void parse_safetensors_header(std::string_view header, std::uint64_t data_size,
                                     const std::string& where, std::vector<TensorInfo>& tensors,
                                     std::map<std::string, std::string>& metadata) {
  using json = nlohmann::json;
  if (const auto bad = utf8::find_invalid(header))
    fail(where, ": the JSON header is not valid UTF-8 (byte ", *bad, " of the header, ",
         utf8::detail::hex_bytes(header, *bad, 4), ")");
  check(!header.empty() && header.front() == '{', where, ": the JSON header must start with '{'");
  // Duplicate keys (which nlohmann would silently overwrite) and nesting deeper than the format needs
  // (header object > tensor object > shape array) are rejected while parsing.
  const json root = parse_json_strict(header, detail::concat(where, " (JSON header)"), 3);
  check(root.is_object(), where, ": the JSON header is not an object");

  tensors.clear();
  metadata.clear();
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      check(entry.is_object(), where, ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : entry.items()) {
        check(v.is_string(), where, ": __metadata__ value of \"", k, "\" is not a string");
        metadata.emplace(k, v.get<std::string>());
      }
      continue;
    }
    check(!name.empty(), where, ": a tensor has an empty name");
    check(entry.is_object(), where, ": entry \"", name, "\" is not an object");
    TensorInfo t;
    t.name = name;
    for (const auto& [k, v] : entry.items())
      check(k == "dtype" || k == "shape" || k == "data_offsets", where, ": tensor '", name,
            "' has an unknown field \"", k, "\"");
    check(entry.contains("dtype") && entry["dtype"].is_string(), where, ": tensor '", name,
          "' has no string \"dtype\"");
    const auto dname = entry["dtype"].get<std::string>();
    const auto dt = parse_dtype(dname);
    check(dt.has_value(), where, ": tensor '", name, "' has unsupported dtype \"", dname,
          "\" (supported: F64, F32, F16, BF16, I64, I32)");
    t.dtype = *dt;
    check(entry.contains("shape") && entry["shape"].is_array(), where, ": tensor '", name,
          "' has no \"shape\" array");
    std::uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      check(d.is_number_unsigned(), where, ": tensor '", name,
            "': shape entries must be non-negative integers, got ", d.dump());
      const auto v = d.get<std::uint64_t>();
      check(v == 0 || numel <= std::numeric_limits<std::uint64_t>::max() / v, where, ": tensor '", name,
            "': the element count of its shape overflows 64 bits");
      numel *= v;
      t.shape.push_back(v);
    }
    check(entry.contains("data_offsets") && entry["data_offsets"].is_array() &&
              entry["data_offsets"].size() == 2,
          where, ": tensor '", name, "' needs \"data_offsets\": [begin, end]");
    const auto& off = entry["data_offsets"];
    check(off[0].is_number_unsigned() && off[1].is_number_unsigned(), where, ": tensor '", name,
          "': data_offsets must be non-negative integers, got ", off.dump());
    t.begin = off[0].get<std::uint64_t>();
    t.end = off[1].get<std::uint64_t>();
    check(t.begin <= t.end, where, ": tensor '", name, "': data_offsets [", t.begin, ", ", t.end,
          "] are reversed");
    const std::uint64_t esize = dtype_size(t.dtype);
    check(numel <= std::numeric_limits<std::uint64_t>::max() / esize, where, ": tensor '", name, "': shape ",
          t.shape_string(), " of ", dname, " needs more than 2^64 bytes");
    check(t.end - t.begin == numel * esize, where, ": tensor '", name, "': shape ", t.shape_string(), " of ",
          dname, " needs ", numel * esize, " bytes but data_offsets [", t.begin, ", ", t.end, "] span ",
          t.end - t.begin);
    check(t.end <= data_size, where, ": tensor '", name, "': data_offsets [", t.begin, ", ", t.end,
          "] run past the end of the data section (", data_size, " bytes)");
    tensors.push_back(std::move(t));
  }
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t pos = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.begin < pos)
      fail(where, ": tensor '", t.name, "' [", t.begin, ", ", t.end, ") overlaps tensor '", prev->name, "' [",
           prev->begin, ", ", prev->end, ")");
    if (t.begin > pos)
      fail(where, ": ", t.begin - pos, " bytes of the data section before tensor '", t.name, "' (offset ",
           pos, ") belong to no tensor");
    pos = t.end;
    prev = &t;
  }
  check(pos == data_size, where, ": the last ", data_size - pos, " bytes of the data section (from offset ",
        pos, ") belong to no tensor");
}
} // namespace detail

// ---- reader -----------------------------------------------------------------------------------------------

/// A validated safetensors file or buffer. Opening a file reads and checks only the header; tensors are
/// read (and converted) on demand with positional reads, so a reader can be shared between threads.
/// Every malformed input throws spikelm::Error naming the file and the offending tensor, offset or byte.
class SafetensorsReader {
 public:
  /// Opens `path` and validates its header.
  static SafetensorsReader open(const std::filesystem::path& path) {
    SafetensorsReader r;
    r.where_ = detail::concat("safetensors file '", path.string(), "'");
    r.file_ = std::make_shared<ReadOnlyFile>(path);
    r.init(r.file_->size());
    return r;
  }
  /// Validates an in-memory file (the bytes are copied).
  static SafetensorsReader from_bytes(std::string_view bytes, std::string name = "safetensors buffer") {
    SafetensorsReader r;
    r.where_ = std::move(name);
    r.bytes_ = std::make_shared<std::string>(bytes);
    r.init(r.bytes_->size());
    return r;
  }

  /// Tensors in data order (by offset).
  [[nodiscard]] const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
  /// Tensor names, sorted.
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& t : tensors_) n.push_back(t.name);
    std::sort(n.begin(), n.end());
    return n;
  }
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  [[nodiscard]] bool contains(std::string_view name) const {
    return index_.find(std::string(name)) != index_.end();
  }
  [[nodiscard]] const TensorInfo& info(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    check(it != index_.end(), where_, ": no tensor named '", name, "'");
    return tensors_[it->second];
  }
  /// Byte offset of the data section (8 + header length) and the total size.
  [[nodiscard]] std::uint64_t data_offset() const noexcept { return data_offset_; }
  [[nodiscard]] std::uint64_t total_size() const noexcept { return total_size_; }

  /// The stored bytes of a tensor (little-endian, row-major).
  [[nodiscard]] std::string read_raw(std::string_view name) const {
    const TensorInfo& t = info(name);
    std::string out(static_cast<std::size_t>(t.nbytes()), '\0');
    read_bytes(data_offset_ + t.begin, out.data(), out.size());
    return out;
  }

  /// Reads tensor `name` (rank <= 4) converted to T. Floating T accepts every dtype (F16/BF16 exactly,
  /// F64 to float and integers with static_cast); integer T accepts I32 and I64 only (I64 values outside
  /// int32's range throw).
  template <SafetensorsElement T>
  [[nodiscard]] Tensor<T> read(std::string_view name) const {
    const TensorInfo& t = info(name);
    Tensor<T> out(t.tensor_shape(), uninitialized);
    convert_into(t, out.data());
    return out;
  }
  /// Reads tensor `name` (any rank) as a flat vector of T (conversions as read()).
  template <SafetensorsElement T>
  [[nodiscard]] std::vector<T> read_flat(std::string_view name) const {
    const TensorInfo& t = info(name);
    std::vector<T> out(static_cast<std::size_t>(t.numel()));
    convert_into(t, out.data());
    return out;
  }
  /// Reads tensor `name` into `dst`, whose shape must equal the stored one.
  template <SafetensorsElement T>
  void read_into(std::string_view name, TensorView<T> dst) const {
    const TensorInfo& t = info(name);
    check(t.shape.size() == dst.rank() && std::equal(t.shape.begin(), t.shape.end(), dst.shape().begin()),
          where_, ": tensor '", t.name, "' has shape ", t.shape_string(), ", expected ", dst.shape().str());
    convert_into(t, dst.data());
  }

 private:
  SafetensorsReader() = default;

  void init(std::uint64_t total) {
    if constexpr (std::endian::native != std::endian::little)
      fail("safetensors: big-endian hosts are not supported");
    total_size_ = total;
    check(total >= 8, where_, ": truncated: ", total, " bytes, shorter than the 8-byte header length");
    unsigned char len_bytes[8];
    read_bytes(0, len_bytes, 8);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
    check(n <= safetensors_max_header_bytes, where_, ": declared header length ", n, " exceeds the limit of ",
          safetensors_max_header_bytes, " bytes");
    check(n <= total - 8, where_, ": truncated: the header length is ", n, " bytes but only ", total - 8,
          " bytes follow");
    check(n >= 2, where_, ": header length ", n, " is too short for a JSON object");
    std::string header(static_cast<std::size_t>(n), '\0');
    read_bytes(8, header.data(), header.size());
    data_offset_ = 8 + n;
    detail::parse_safetensors_header(header, total - data_offset_, where_, tensors_, metadata_);
    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  void read_bytes(std::uint64_t offset, void* dst, std::size_t n) const {
    if (n == 0) return;
    if (file_) {
      file_->read_exact(offset, dst, n);
    } else {
      check(offset <= bytes_->size() && n <= bytes_->size() - offset, where_, ": read past the end");
      std::memcpy(dst, bytes_->data() + offset, n);
    }
  }

  template <class T>
  void convert_into(const TensorInfo& t, T* dst) const {
    const std::size_t n = static_cast<std::size_t>(t.numel());
    if constexpr (std::is_integral_v<T>) {
      check(!is_floating(t.dtype), where_, ": tensor '", t.name, "' has dtype ", t.dtype,
            "; read it as float or double, not as an integer type");
    }
    if (t.dtype == dtype_of<T>()) { // stored exactly as T: read straight into the destination
      read_bytes(data_offset_ + t.begin, dst, n * sizeof(T));
      return;
    }
    const std::size_t es = dtype_size(t.dtype);
    constexpr std::size_t chunk = 1 << 16;
    std::vector<unsigned char> buf(std::min(n, chunk) * es);
    for (std::size_t first = 0; first < n; first += chunk) {
      const std::size_t cnt = std::min(chunk, n - first);
      read_bytes(data_offset_ + t.begin + first * es, buf.data(), cnt * es);
      for (std::size_t i = 0; i < cnt; ++i) dst[first + i] = decode_one<T>(t, buf.data() + i * es, first + i);
    }
  }

  template <class T>
  T decode_one(const TensorInfo& t, const unsigned char* p, std::size_t index) const {
    switch (t.dtype) {
    case Dtype::F64:
      return static_cast<T>(load<double>(p));
    case Dtype::F32:
      return static_cast<T>(load<float>(p));
    case Dtype::F16:
      return static_cast<T>(from_f16(load<std::uint16_t>(p)));
    case Dtype::BF16:
      return static_cast<T>(from_bf16(load<std::uint16_t>(p)));
    case Dtype::I32:
      return static_cast<T>(load<std::int32_t>(p));
    case Dtype::I64: {
      const auto v = load<std::int64_t>(p);
      if constexpr (std::is_same_v<T, std::int32_t>) {
        check(v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max(),
              where_, ": tensor '", t.name, "' element ", index, " = ", v, " does not fit in int32");
      }
      return static_cast<T>(v);
    }
    }
    return T{};
  }
  template <class U>
  static U load(const unsigned char* p) noexcept {
    U v;
    std::memcpy(&v, p, sizeof(U));
    return v;
  }

  std::string where_;
  std::shared_ptr<ReadOnlyFile> file_;
  std::shared_ptr<std::string> bytes_;
  std::uint64_t total_size_ = 0, data_offset_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// ---- writer -----------------------------------------------------------------------------------------------

/// Collects tensors and metadata and writes them in the layout of the Python `safetensors` package: the
/// header lists "__metadata__" first (keys sorted; left out when empty), then the tensors in data order,
/// which is by dtype (I64, F64, F32, I32, BF16, F16) and then by name; each entry is
/// {"dtype", "shape", "data_offsets"}; the header is padded with spaces to a multiple of 8 bytes. The same
/// tensors and metadata give byte-identical files.
class SafetensorsWriter {
 public:
  SafetensorsWriter() {
    if constexpr (std::endian::native != std::endian::little)
      fail("safetensors: big-endian hosts are not supported");
  }

  /// Adds tensor `name` converted to `dtype`. Floating T converts to the floating dtypes (F16/BF16 rounded to
  /// nearest even); integer T to I32/I64 (values must fit).
  template <SafetensorsElement T>
  void add(const std::string& name, TensorView<const T> t, Dtype dtype = dtype_of<T>()) {
    std::vector<std::uint64_t> shape(t.shape().begin(), t.shape().end());
    add_values(name, std::span<const T>(t.data(), t.size()), std::move(shape), dtype);
  }
  template <TensorLike X>
  void add(const std::string& name, const X& t, Dtype dtype = dtype_of<tensor_value_t<X>>()) {
    add<tensor_value_t<X>>(name, cview(t), dtype);
  }
  /// Adds flat `values` under any `shape` (of any rank; the element count must match).
  template <SafetensorsElement T>
  void add_values(const std::string& name, std::span<const T> values, std::vector<std::uint64_t> shape,
                  Dtype dtype = dtype_of<T>()) {
    if constexpr (std::is_integral_v<T>) {
      check(!is_floating(dtype), "SafetensorsWriter: tensor '", name,
            "': integer values cannot be stored as ", dtype);
    } else {
      check(is_floating(dtype), "SafetensorsWriter: tensor '", name,
            "': floating-point values cannot be stored as ", dtype);
    }
    // float values take the float overloads of to_f16/to_bf16, everything else the double ones.
    using Narrow = std::conditional_t<std::is_same_v<T, float>, float, double>;
    const std::size_t es = dtype_size(dtype);
    std::string bytes(values.size() * es, '\0');
    auto* p = reinterpret_cast<unsigned char*>(bytes.data());
    for (std::size_t i = 0; i < values.size(); ++i) {
      const T v = values[i];
      switch (dtype) {
      case Dtype::F64:
        store(p + i * es, static_cast<double>(v));
        break;
      case Dtype::F32:
        store(p + i * es, static_cast<float>(v));
        break;
      case Dtype::F16:
        store(p + i * es, to_f16(static_cast<Narrow>(v)));
        break;
      case Dtype::BF16:
        store(p + i * es, to_bf16(static_cast<Narrow>(v)));
        break;
      case Dtype::I64:
        store(p + i * es, static_cast<std::int64_t>(v));
        break;
      case Dtype::I32:
        if constexpr (std::is_same_v<T, std::int64_t>) {
          check(v >= std::numeric_limits<std::int32_t>::min() &&
                    v <= std::numeric_limits<std::int32_t>::max(),
                "SafetensorsWriter: tensor '", name, "' element ", i, " = ", v, " does not fit in I32");
        }
        store(p + i * es, static_cast<std::int32_t>(v));
        break;
      }
    }
    add_raw(name, dtype, std::move(shape), std::move(bytes));
  }
  /// Adds a tensor from its stored bytes (little-endian, row-major); their count must be numel * dtype size.
  void add_raw(const std::string& name, Dtype dtype, std::vector<std::uint64_t> shape, std::string bytes) {
    check(!name.empty(), "SafetensorsWriter: empty tensor name");
    check(name != "__metadata__", "SafetensorsWriter: '__metadata__' is reserved");
    utf8::validate(name, "SafetensorsWriter: tensor name");
    check(entries_.find(name) == entries_.end(), "SafetensorsWriter: tensor '", name, "' was already added");
    std::uint64_t numel = 1;
    for (auto d : shape) {
      check(d == 0 || numel <= std::numeric_limits<std::uint64_t>::max() / d, "SafetensorsWriter: tensor '",
            name, "': shape overflows");
      numel *= d;
    }
    check(bytes.size() / dtype_size(dtype) == numel && bytes.size() % dtype_size(dtype) == 0,
          "SafetensorsWriter: tensor '", name, "': ", bytes.size(), " bytes for ", numel, " elements of ",
          dtype);
    entries_.emplace(name, Entry{dtype, std::move(shape), std::move(bytes)});
  }
  void set_metadata(const std::string& key, const std::string& value) {
    utf8::validate(key, "SafetensorsWriter: metadata key");
    utf8::validate(value, "SafetensorsWriter: metadata value");
    metadata_[key] = value;
  }
  [[nodiscard]] bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  /// The JSON header, padded with spaces to a multiple of 8 bytes.
  [[nodiscard]] std::string header() const {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata_.empty()) {
      nlohmann::ordered_json m = nlohmann::ordered_json::object();
      for (const auto& [k, v] : metadata_) m[k] = v;
      h["__metadata__"] = std::move(m);
    }
    std::uint64_t off = 0;
    for (const auto* e : ordered()) {
      nlohmann::ordered_json t = nlohmann::ordered_json::object();
      t["dtype"] = std::string(dtype_name(e->second.dtype));
      t["shape"] = e->second.shape;
      const std::uint64_t end = off + e->second.bytes.size();
      t["data_offsets"] = {off, end};
      off = end;
      h[e->first] = std::move(t);
    }
    std::string s = h.dump();
    s.append((8 - s.size() % 8) % 8, ' ');
    return s;
  }
  /// The whole file in memory.
  [[nodiscard]] std::string to_bytes() const {
    std::string out;
    write_to([&](const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); });
    return out;
  }
  /// Writes the file atomically (see write_file_atomic: temporary file, fsync, rename).
  void save(const std::filesystem::path& path) const {
    write_file_atomic(
        path, [&](FileSink& sink) { write_to([&](const void* p, std::size_t n) { sink.write(p, n); }); });
  }

 private:
  struct Entry {
    Dtype dtype;
    std::vector<std::uint64_t> shape;
    std::string bytes;
  };
  /// The Python package's data order: larger dtypes first (its dtype enumeration, descending), then names.
  static int rank(Dtype d) noexcept {
    switch (d) {
    case Dtype::I64:
      return 0;
    case Dtype::F64:
      return 1;
    case Dtype::F32:
      return 2;
    case Dtype::I32:
      return 3;
    case Dtype::BF16:
      return 4;
    case Dtype::F16:
      return 5;
    }
    return 6;
  }
  [[nodiscard]] std::vector<const std::pair<const std::string, Entry>*> ordered() const {
    std::vector<const std::pair<const std::string, Entry>*> v;
    for (const auto& e : entries_) v.push_back(&e);
    std::stable_sort(v.begin(), v.end(), [](const auto* a, const auto* b) {
      return rank(a->second.dtype) < rank(b->second.dtype);
    });
    return v;
  }
  template <class Out>
  void write_to(Out&& out) const {
    const std::string h = header();
    unsigned char len[8];
    std::uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out(len, 8);
    out(h.data(), h.size());
    for (const auto* e : ordered()) out(e->second.bytes.data(), e->second.bytes.size());
  }
  template <class U>
  static void store(unsigned char* p, U v) noexcept {
    std::memcpy(p, &v, sizeof(U));
  }

  std::map<std::string, Entry> entries_; // sorted by name (std::string's byte order, as Rust's)
  std::map<std::string, std::string> metadata_;
};

// ---- parameter sets ---------------------------------------------------------------------------------------

/// Options of save_parameters / load_parameters.
struct ParameterIoOptions {
  /// Tensor name = prefix + parameter name. When loading, only tensors whose names start with the prefix are
  /// considered; the others are ignored.
  std::string prefix{};
  /// Loading: parameters that have no tensor keep their values instead of being an error.
  bool allow_missing = false;
  /// Loading: tensors (under the prefix) that match no parameter are ignored instead of being an error.
  bool allow_unexpected = false;
  /// Partial load: both of the above.
  [[nodiscard]] static ParameterIoOptions partial(std::string prefix = {}) {
    return {std::move(prefix), true, true};
  }
};

/// What load_parameters did: parameter names loaded and missing, tensor names unexpected (all sorted).
struct ParameterLoadReport {
  std::vector<std::string> loaded{}, missing{}, unexpected{};
};

/// Adds every parameter of `params` to `writer` as prefix + name, stored as `dtype` (default: T's own).
template <class T>
void add_parameters(SafetensorsWriter& writer, const ParameterSet<T>& params, const std::string& prefix = {},
                    Dtype dtype = dtype_of<T>()) {
  params.for_each([&](const Parameter<T>& p) { writer.add(prefix + p.name, p.value.cview(), dtype); });
}

/// Saves the parameter values to a safetensors file (atomically), with optional string metadata.
template <class T>
void save_parameters(const ParameterSet<T>& params, const std::filesystem::path& path,
                     const std::map<std::string, std::string>& metadata = {}, Dtype dtype = dtype_of<T>(),
                     const std::string& prefix = {}) {
  SafetensorsWriter w;
  add_parameters(w, params, prefix, dtype);
  for (const auto& [k, v] : metadata) w.set_metadata(k, v);
  w.save(path);
}

/// Loads parameter values by name from `reader`. By default every parameter must have a tensor of its exact
/// shape and every tensor (under options.prefix) must match a parameter; all problems are reported together
/// in one spikelm::Error and nothing is modified. Mis-shaped tensors are always an error. Values are
/// converted from the stored dtype (see SafetensorsReader::read).
template <class T>
ParameterLoadReport load_parameters(ParameterSet<T>& params, const SafetensorsReader& reader,
                                    const ParameterIoOptions& options = {}) {
  ParameterLoadReport report;
  std::vector<std::string> shape_errors;
  std::set<std::string> wanted;
  params.for_each([&](Parameter<T>& p) {
    const std::string tname = options.prefix + p.name;
    wanted.insert(tname);
    if (!reader.contains(tname)) {
      report.missing.push_back(p.name);
      return;
    }
    const TensorInfo& info = reader.info(tname);
    const bool same = info.shape.size() == p.value.rank() &&
                      std::equal(info.shape.begin(), info.shape.end(), p.value.shape().begin());
    if (!same)
      shape_errors.push_back(detail::concat("'", tname, "' has shape ", info.shape_string(),
                                            " in the file, the parameter has ", p.value.shape()));
    else
      report.loaded.push_back(p.name);
  });
  for (const auto& t : reader.tensors())
    if (t.name.compare(0, options.prefix.size(), options.prefix) == 0 && wanted.count(t.name) == 0)
      report.unexpected.push_back(t.name);
  std::sort(report.missing.begin(), report.missing.end());
  std::sort(report.unexpected.begin(), report.unexpected.end());
  std::string problems;
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < 20; ++i) s.append(i ? ", '" : "'").append(v[i]).append("'");
    if (v.size() > 20) s += detail::concat(", ... (", v.size(), " in all)");
    return s;
  };
  if (!shape_errors.empty()) {
    problems += "\n  shape mismatch: ";
    for (std::size_t i = 0; i < shape_errors.size(); ++i)
      problems.append(i ? "; " : "").append(shape_errors[i]);
  }
  if (!report.missing.empty() && !options.allow_missing)
    problems +=
        detail::concat("\n  missing (no tensor '", options.prefix, "<name>'): ", list(report.missing));
  if (!report.unexpected.empty() && !options.allow_unexpected)
    problems += detail::concat("\n  unexpected tensors: ", list(report.unexpected));
  if (!problems.empty())
    fail(
        "load_parameters: the file does not match the parameter set (use ParameterIoOptions::partial() for a "
        "partial load):",
        problems);
  // Read everything first, then assign, so a failing conversion leaves the parameters untouched.
  std::vector<Tensor<T>> values;
  values.reserve(report.loaded.size());
  for (const auto& name : report.loaded) values.push_back(reader.read<T>(options.prefix + name));
  for (std::size_t i = 0; i < values.size(); ++i) params[report.loaded[i]].value.copy_from(values[i].cview());
  std::sort(report.loaded.begin(), report.loaded.end());
  return report;
}

/// load_parameters from a file.
template <class T>
ParameterLoadReport load_parameters(ParameterSet<T>& params, const std::filesystem::path& path,
                                    const ParameterIoOptions& options = {}) {
  return load_parameters(params, SafetensorsReader::open(path), options);
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_IO_SAFETENSORS_HPP
