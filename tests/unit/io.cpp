// Tests for io/: UTF-8, F16/BF16 conversions (against torch), safetensors round trips for every dtype, files
// written in the Python package's layout (fixtures from tests/reference/io.py), malformed files, parameter
// save/load, atomic writes, checkpoints with a kill-and-resume run in a child process, the byte, char
// (SpikeGPT vocab.json) and WordPiece (Hugging Face BertTokenizer fixtures) tokenizers, text datasets and
// the bundled corpus.
#include "fixtures.hpp"
#include "test_util.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace spikelm;
namespace fs = std::filesystem;

namespace {

std::string source_path(const std::string& rel) {
  return std::string(SPIKELM_TESTS_SOURCE_DIR) + "/" + rel;
}
const spikelm_test::Fixtures& fx() {
  static const spikelm_test::Fixtures f("reference/fixtures/io/values.txt");
  return f;
}

/// A fresh scratch directory under the system temp directory, removed at scope exit.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const std::string& tag) {
    path = fs::temp_directory_path() /
           ("spikelm-io-" + tag + "-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void spit(const fs::path& p, std::string_view s) {
  std::ofstream out(p, std::ios::binary);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

/// A safetensors file from a header (taken as is) and data bytes.
std::string make_file(std::string_view header, std::string_view data) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + std::string(header) + std::string(data);
}

/// Expects from_bytes(bytes) to throw spikelm::Error whose message contains `what`.
void expect_rejected(const std::string& bytes, const std::string& what) {
  INFO("expected an error containing: ", what);
  CHECK_THROWS_WITH_AS(SafetensorsReader::from_bytes(bytes), doctest::Contains(what.c_str()), Error);
}

/// memcmp that accepts the null pointers of empty tensors.
bool same_bytes(const void* a, const void* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n) == 0;
}

std::vector<double> as_doubles(const Tensor<double>& t) {
  return std::vector<double>(t.begin(), t.end());
}

} // namespace

// ---- UTF-8
// -------------------------------------------------------------------------------------------------

TEST_CASE("utf8: decode, encode and the ill-formed sequences that are rejected") {
  const std::string s = "a\xC3\xA9\xE2\x9C\x93\xF0\x9F\x98\x80"; // a, é, ✓, 😀
  CHECK(utf8::to_code_points(s, "t") == std::u32string{U'a', 0xE9, 0x2713, 0x1F600});
  CHECK(utf8::encode(utf8::to_code_points(s, "t")) == s);
  CHECK(utf8::is_valid(s));
  CHECK(utf8::is_valid(""));
  const std::vector<std::pair<std::string, std::size_t>> bad{
      {"ab\x80", 2},               // stray continuation byte
      {"\xC0\x80", 0},             // overlong NUL
      {"x\xE0\x80\x80", 1},        // overlong 3-byte
      {"\xED\xA0\x80", 0},         // surrogate U+D800
      {"\xF4\x90\x80\x80", 0},     // above U+10FFFF
      {"ok\xE2\x82", 2},           // truncated sequence
      {"\xF8\x88\x80\x80\x80", 0}, // 5-byte form
      {"\xE2\x28\xA1", 0},         // bad continuation
      {"\xC3\xA9\xFF", 2},         // 0xFF
  };
  for (const auto& item : bad) {
    const std::string& bytes = item.first; // named, not bound: clang 14 cannot capture bindings in INFO
    const std::size_t at = item.second;
    INFO("input ", spikelm::utf8::detail::hex_bytes(bytes, 0, 8));
    REQUIRE(utf8::find_invalid(bytes).has_value());
    CHECK(*utf8::find_invalid(bytes) == at);
    CHECK_THROWS_WITH_AS(utf8::validate(bytes, "my text"),
                         doctest::Contains(("my text: invalid UTF-8 at byte " + std::to_string(at)).c_str()),
                         Error);
  }
  std::string out;
  CHECK_THROWS_AS(utf8::append(out, 0xD800), Error);
  CHECK_THROWS_AS(utf8::append(out, 0x110000), Error);
  CHECK(out.empty());
}

// ---- 16-bit floats
// -----------------------------------------------------------------------------------------

TEST_CASE("F16 and BF16 conversions round to nearest even exactly as torch") {
  const auto& x = fx()["conv/x_bits"].values;
  const auto& h = fx()["conv/f16_bits"].values;
  const auto& b = fx()["conv/bf16_bits"].values;
  REQUIRE(x.size() == h.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float v = std::bit_cast<float>(static_cast<std::uint32_t>(x[i]));
    INFO("x = ", v, " (bits ", x[i], ")");
    if (std::isnan(v)) {
      CHECK(std::isnan(from_f16(to_f16(v))));
      CHECK(std::isnan(from_f16(to_f16(static_cast<double>(v)))));
      CHECK(std::isnan(from_bf16(to_bf16(v))));
      CHECK(std::isnan(from_bf16(to_bf16(static_cast<double>(v)))));
      continue;
    }
    CHECK(to_f16(v) == static_cast<std::uint16_t>(h[i])); // float overloads (integer operations)
    CHECK(to_bf16(v) == static_cast<std::uint16_t>(b[i]));
    CHECK(to_f16(static_cast<double>(v)) == static_cast<std::uint16_t>(h[i])); // double overloads
    CHECK(to_bf16(static_cast<double>(v)) == static_cast<std::uint16_t>(b[i]));
  }
  // Every non-NaN 16-bit pattern decodes and re-encodes to itself through both overloads; decoding is exact
  // (bf16 is float's top half; f16 checked against the value m 2^(e-25) computed in double).
  for (std::uint32_t bits = 0; bits < 65536; ++bits) {
    const auto u = static_cast<std::uint16_t>(bits);
    const float f = from_f16(u), g = from_bf16(u);
    const std::uint32_t e = (bits >> 10) & 31, m = bits & 1023;
    if (e != 31) {
      const double mag = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(double(m + 1024), int(e) - 25);
      REQUIRE(static_cast<double>(f) == ((bits & 0x8000) ? -mag : mag));
    }
    if (!std::isnan(f)) REQUIRE((to_f16(f) == u && to_f16(static_cast<double>(f)) == u));
    if (!std::isnan(g)) REQUIRE((to_bf16(g) == u && to_bf16(static_cast<double>(g)) == u));
    REQUIRE(std::bit_cast<std::uint32_t>(g) == (bits << 16));
  }
  // The float overloads agree with the double ones: a sweep of all floats (every 1021st pattern) and dense
  // sweeps over the f16 subnormal range, the f16 overflow threshold and the bf16 overflow threshold.
  const auto agree = [](std::uint32_t bits) {
    const float v = std::bit_cast<float>(bits);
    if (std::isnan(v)) return std::isnan(from_f16(to_f16(v))) && std::isnan(from_bf16(to_bf16(v)));
    return to_f16(v) == to_f16(static_cast<double>(v)) && to_bf16(v) == to_bf16(static_cast<double>(v));
  };
  std::size_t checked = 0, bad = 0;
  for (std::uint64_t bits = 0; bits < (std::uint64_t(1) << 32); bits += 1021, ++checked)
    bad += !agree(static_cast<std::uint32_t>(bits));
  for (std::uint32_t bits = 0x32800000u; bits < 0x39000000u; bits += 61, ++checked) bad += !agree(bits);
  for (std::uint32_t bits = 0x477E0000u; bits < 0x47810000u; ++bits, ++checked) bad += !agree(bits);
  for (std::uint32_t bits = 0x7F7E0000u; bits <= 0x7F800000u; ++bits, ++checked)
    bad += !agree(bits | 0x80000000u);
  CHECK(checked > 5'000'000);
  CHECK(bad == 0);
  CHECK(from_f16(0x3C00) == 1.0f);
  CHECK(from_f16(0x0001) == std::ldexp(1.0f, -24));
  CHECK(std::isinf(from_f16(0xFC00)));
  CHECK(to_f16(1e6) == 0x7C00);
  CHECK(to_f16(-0.0) == 0x8000);
  CHECK(to_f16(std::ldexp(1.0f, -25)) == 0x0000); // tie: to even (zero)
  CHECK(to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
  CHECK(to_bf16(std::numeric_limits<float>::max()) == 0x7F80); // rounds up to infinity
}

// ---- safetensors
// ---------------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("safetensors: round trip of every dtype through memory and files", T, float, double) {
  ScratchDir dir("roundtrip");
  const std::vector<Shape> shapes{Shape{},     Shape{0},       Shape{7},
                                  Shape{3, 5}, Shape{2, 0, 3}, Shape{2, 3, 4, 5}};
  SafetensorsWriter w;
  std::map<std::string, Tensor<T>> want;
  std::uint64_t seed = 1;
  for (Dtype d : {Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16}) {
    for (const auto& s : shapes) {
      Tensor<T> t(s);
      const auto vals = spikelm_test::random_vector<T>(t.size(), seed++, T(-100), T(100));
      std::copy(vals.begin(), vals.end(), t.data());
      const std::string name = std::string(dtype_name(d)) + "/" + s.str();
      w.add(name, t, d);
      Tensor<T> expect(s);
      for (std::size_t i = 0; i < t.size(); ++i) {
        const T v = t.data()[i];
        expect.data()[i] = d == Dtype::F64   ? static_cast<T>(static_cast<double>(v))
                           : d == Dtype::F32 ? static_cast<T>(static_cast<float>(v))
                           : d == Dtype::F16 ? static_cast<T>(from_f16(to_f16(static_cast<double>(v))))
                                             : static_cast<T>(from_bf16(to_bf16(static_cast<double>(v))));
      }
      want.emplace(name, std::move(expect));
    }
  }
  Tensor<std::int64_t> i64({2, 3}, {0, -1, 1, std::numeric_limits<std::int64_t>::min(),
                                    std::numeric_limits<std::int64_t>::max(), 42});
  Tensor<std::int32_t> i32(
      {4}, {0, -7, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()});
  w.add("ints/i64", i64);
  w.add("ints/i32", i32);
  w.add("ints/i64_as_i32", Tensor<std::int64_t>({2}, {5, -6}), Dtype::I32);
  w.set_metadata("note", "round trip");

  const fs::path file = dir.path / "all.safetensors";
  w.save(file);
  const std::string bytes = w.to_bytes();
  CHECK(slurp(file) == bytes);
  const std::vector<SafetensorsReader> readers{SafetensorsReader::from_bytes(bytes),
                                               SafetensorsReader::open(file)};
  for (const SafetensorsReader& r : readers) {
    CHECK(r.metadata().at("note") == "round trip");
    CHECK(r.tensors().size() == want.size() + 3);
    for (const auto& entry : want) {
      const std::string& name = entry.first; // named, not bound: clang 14 cannot capture bindings in INFO
      const auto& expect = entry.second;
      INFO(name);
      const Tensor<T> got = r.read<T>(name);
      REQUIRE(got.shape() == expect.shape());
      CHECK(same_bytes(got.data(), expect.data(), got.size() * sizeof(T)));
      Tensor<T> into(expect.shape());
      r.read_into(name, into.view());
      CHECK(same_bytes(into.data(), expect.data(), got.size() * sizeof(T)));
      CHECK(r.read_flat<T>(name).size() == expect.size());
    }
    const auto gi64 = r.read<std::int64_t>("ints/i64");
    CHECK(std::equal(gi64.begin(), gi64.end(), i64.begin()));
    const auto gi32 = r.read<std::int32_t>("ints/i32");
    CHECK(std::equal(gi32.begin(), gi32.end(), i32.begin()));
    CHECK(r.read<std::int64_t>("ints/i32")(2) == std::numeric_limits<std::int32_t>::min());
    CHECK(r.read<T>("ints/i64_as_i32")(1) == T(-6));
    CHECK(r.info("ints/i64_as_i32").dtype == Dtype::I32);
    // Integer targets refuse floating dtypes; I64 values outside int32 throw.
    CHECK_THROWS_WITH_AS((void)r.read<std::int32_t>("F32/[7]"),
                         doctest::Contains("read it as float or double"), Error);
    CHECK_THROWS_WITH_AS((void)r.read<std::int32_t>("ints/i64"), doctest::Contains("does not fit in int32"),
                         Error);
    CHECK_THROWS_WITH_AS((void)r.read<T>("nope"), doctest::Contains("no tensor named 'nope'"), Error);
    Tensor<T> wrong({3});
    CHECK_THROWS_WITH_AS(r.read_into("F32/[7]", wrong.view()), doctest::Contains("expected [3]"), Error);
  }
}

TEST_CASE("safetensors: tensors of rank above 4, raw bytes, writer checks") {
  SafetensorsWriter w;
  std::vector<float> v(32);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  w.add_values("r5", std::span<const float>(v), {2, 2, 2, 2, 2});
  std::string raw(4, '\0');
  raw[0] = '\x01';
  w.add_raw("raw", Dtype::I32, {1}, raw);
  const auto r = SafetensorsReader::from_bytes(w.to_bytes());
  CHECK(r.info("r5").shape == std::vector<std::uint64_t>{2, 2, 2, 2, 2});
  CHECK(r.read_flat<float>("r5") == v);
  CHECK_THROWS_WITH_AS((void)r.read<float>("r5"), doctest::Contains("rank 5"), Error);
  CHECK(r.read_raw("raw") == raw);
  CHECK(r.read_flat<std::int64_t>("raw") == std::vector<std::int64_t>{1});

  CHECK_THROWS_WITH_AS(w.add_raw("raw", Dtype::I32, {1}, raw), doctest::Contains("already added"), Error);
  CHECK_THROWS_WITH_AS(w.add_raw("x", Dtype::F32, {3}, raw), doctest::Contains("4 bytes for 3 elements"),
                       Error);
  CHECK_THROWS_WITH_AS(w.add_raw("", Dtype::F32, {1}, raw), doctest::Contains("empty tensor name"), Error);
  CHECK_THROWS_WITH_AS(w.add_raw("__metadata__", Dtype::F32, {1}, raw), doctest::Contains("reserved"), Error);
  CHECK_THROWS_WITH_AS(w.add_raw("bad\xFF", Dtype::F32, {1}, raw), doctest::Contains("invalid UTF-8"), Error);
  CHECK_THROWS_WITH_AS(w.set_metadata("k", "\xC0\x80"), doctest::Contains("invalid UTF-8"), Error);
  CHECK_THROWS_WITH_AS(w.add("f", Tensor<float>({1}), Dtype::I32),
                       doctest::Contains("cannot be stored as I32"), Error);
  CHECK_THROWS_WITH_AS(w.add("i", Tensor<std::int32_t>({1}), Dtype::F32),
                       doctest::Contains("cannot be stored as F32"), Error);
  CHECK_THROWS_WITH_AS(w.add("big", Tensor<std::int64_t>({1}, {std::int64_t(1) << 40}), Dtype::I32),
                       doctest::Contains("does not fit in I32"), Error);
  CHECK_THROWS_WITH_AS(
      w.add_values("s", std::span<const float>(v), {std::uint64_t(1) << 40, std::uint64_t(1) << 40}),
      doctest::Contains("shape overflows"), Error);

  // The header is padded with spaces to a multiple of 8; data order is by dtype then by name; no metadata
  // key when there is none.
  SafetensorsWriter o;
  o.add("b", Tensor<float>({1}), Dtype::F16);
  o.add("a", Tensor<float>({1}), Dtype::F16);
  o.add("z", Tensor<std::int64_t>({1}));
  o.add("c", Tensor<double>({1}));
  o.add("y", Tensor<float>({1}), Dtype::BF16);
  o.add("x", Tensor<std::int32_t>({1}));
  o.add("w", Tensor<float>({1}));
  const std::string h = o.header();
  CHECK(h.size() % 8 == 0);
  CHECK(h.find("__metadata__") == std::string::npos);
  CHECK(h.rfind("{\"z\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},\"c\":", 0) == 0);
  std::vector<std::string> order;
  const auto ordered = SafetensorsReader::from_bytes(o.to_bytes());
  for (const auto& t : ordered.tensors()) order.push_back(t.name);
  CHECK(order == std::vector<std::string>{"z", "c", "w", "x", "y", "a", "b"});
  CHECK(SafetensorsWriter().to_bytes() == make_file("{}      ", ""));
}

TEST_CASE("safetensors: files in the Python package's layout are read, and written byte for byte") {
  const std::string path = source_path("reference/fixtures/io/dtypes.safetensors");
  const auto r = SafetensorsReader::open(path);
  CHECK(r.metadata().at("format") == "pt");
  CHECK(r.metadata().at("unicode") == "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80");
  CHECK(r.metadata().at("escapes") == "quote \" backslash \\ newline \n tab \t");
  CHECK(r.data_offset() % 8 == 0);
  CHECK(r.info("bf16").dtype == Dtype::BF16);
  CHECK(r.info("f16").dtype == Dtype::F16);
  CHECK(r.info("scalar").shape.empty());
  CHECK(r.info("empty").shape == std::vector<std::uint64_t>{0, 3});
  SafetensorsWriter w;
  for (const auto& name : r.names()) {
    INFO(name);
    const auto& want = fx()["dtypes/" + name];
    const auto got = r.read<double>(name);
    CHECK(got.shape() == (r.info(name).shape.empty() ? Shape{} : want.shape));
    REQUIRE(got.size() == want.values.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got.data()[i] == want.values[i]);
    w.add_raw(name, r.info(name).dtype, r.info(name).shape, r.read_raw(name));
  }
  CHECK(r.read<std::int64_t>("i64")(3) == std::numeric_limits<std::int64_t>::min());
  CHECK(r.read<float>("f16")(5) == std::ldexp(1.0f, -14));
  for (const auto& [k, v] : r.metadata()) w.set_metadata(k, v);
  CHECK(w.to_bytes() == slurp(path)); // same layout, byte for byte

  // A torch module's state dict: load by name into a ParameterSet, and save_parameters reproduces the file.
  const std::string model = source_path("reference/fixtures/io/model.safetensors");
  ParameterSet<float> ps;
  ps.add("emb.weight", Tensor<float>({11, 4}));
  ps.add("ln.weight", Tensor<float>({4}));
  ps.add("ln.bias", Tensor<float>({4}));
  ps.add("head.weight", Tensor<float>({3, 4}));
  ps.add("head.bias", Tensor<float>({3}));
  const auto report = load_parameters(ps, fs::path(model));
  CHECK(report.loaded.size() == 5);
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  ps.for_each([&](const Parameter<float>& p) {
    const auto& want = fx()["model/" + p.name];
    for (std::size_t i = 0; i < p.size(); ++i)
      CHECK(static_cast<double>(p.value.data()[i]) == want.values[i]);
  });
  ScratchDir dir("model");
  save_parameters(ps, dir.path / "m.safetensors", {{"format", "pt"}});
  CHECK(slurp(dir.path / "m.safetensors") == slurp(model));
}

TEST_CASE("safetensors: truncated, malformed and hostile inputs throw spikelm::Error with a useful message") {
  SafetensorsWriter w;
  w.add("a", Tensor<float>({2, 2}, {1, 2, 3, 4}));
  w.add("b", Tensor<float>({3}, {5, 6, 7}), Dtype::F16);
  w.set_metadata("k", "v");
  const std::string good = w.to_bytes();
  REQUIRE_NOTHROW((void)SafetensorsReader::from_bytes(good));
  // Every truncation is detected.
  for (std::size_t n = 0; n < good.size(); ++n) {
    INFO("truncated to ", n, " bytes");
    CHECK_THROWS_AS(SafetensorsReader::from_bytes(good.substr(0, n)), Error);
  }
  expect_rejected(good.substr(0, 5), "truncated: 5 bytes, shorter than the 8-byte header length");
  expect_rejected(good.substr(0, 20), "truncated: the header length is");
  expect_rejected(good.substr(0, good.size() - 1), "run past the end of the data section");
  expect_rejected(good + "xx", "the last 2 bytes of the data section (from offset 22) belong to no tensor");

  // Declared header lengths that are huge are rejected before anything is allocated.
  std::string huge = good;
  huge[7] = '\x7F';
  expect_rejected(huge, "exceeds the limit of 100000000 bytes");
  std::string over = good;
  const std::uint64_t lim = safetensors_max_header_bytes + 1;
  for (int i = 0; i < 8; ++i) over[static_cast<std::size_t>(i)] = static_cast<char>((lim >> (8 * i)) & 0xFF);
  expect_rejected(over, "exceeds the limit");

  const std::string d16(16, '\0');
  const auto hdr = [](const std::string& entries) { return "{" + entries + "}"; };
  // Offsets.
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), ""),
                  "data_offsets [0, 16] run past the end of the data section (0 bytes)");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), d16),
                  "data_offsets [8, 0] are reversed");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]})"), d16),
                  "shape [3] of F32 needs 12 bytes but data_offsets [0, 16] span 16");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})"),
                            d16),
                  "tensor 'b' [8, 16) overlaps tensor 'a' [0, 12)");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})"),
                            std::string(8, '\0')),
                  "overlaps");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})"), d16),
                  "4 bytes of the data section before tensor 'a' (offset 0) belong to no tensor");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), d16),
                  "the last 8 bytes of the data section (from offset 8) belong to no tensor");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]})"), d16),
                  "data_offsets must be non-negative integers");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0]})"), d16),
                  "needs \"data_offsets\": [begin, end]");
  // Huge declared sizes: overflow, or sizes no file holds (nothing is allocated for them).
  expect_rejected(
      make_file(hdr(R"("a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]})"),
                d16),
      "the element count of its shape overflows 64 bits");
  expect_rejected(
      make_file(hdr(R"("a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]})"), d16),
      "needs more than 2^64 bytes");
  expect_rejected(
      make_file(hdr(R"("a":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]})"), d16),
      "run past the end of the data section (16 bytes)");
  expect_rejected(
      make_file(hdr(R"("a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]})"), d16),
      "shape entries must be non-negative integers");
  // Header contents.
  expect_rejected(make_file("{\"a\xFF\":1}", ""), "the JSON header is not valid UTF-8 (byte 3 of the header");
  expect_rejected(make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", ""),
                  "(JSON header): invalid JSON");
  expect_rejected(make_file(" {}", ""), "must start with '{'");
  expect_rejected(make_file("[]", ""), "must start with '{'");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]})"), "xx"),
                  "unsupported dtype \"U8\"");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})"),
                            d16),
                  "duplicate key \"a\"");
  expect_rejected(
      make_file(hdr(R"("a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]})"), d16),
      "duplicate key \"dtype\"");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]})"), d16),
                  "nests deeper");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), d16),
                  "shape entries must be non-negative integers, got 2.0");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), d16),
                  "shape entries must be non-negative integers, got -2");
  expect_rejected(make_file(hdr(R"("a":{"shape":[2],"data_offsets":[0,8]})"), d16),
                  "has no string \"dtype\"");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","data_offsets":[0,8]})"), d16),
                  "has no \"shape\" array");
  expect_rejected(make_file(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1})"), d16),
                  "unknown field \"x\"");
  expect_rejected(make_file(hdr(R"("a":3)"), d16), "entry \"a\" is not an object");
  expect_rejected(
      make_file(hdr(R"("":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), std::string(8, '\0')),
      "empty name");
  expect_rejected(make_file(hdr(R"("__metadata__":{"k":1})"), ""),
                  "__metadata__ value of \"k\" is not a string");
  expect_rejected(make_file(hdr(R"("__metadata__":[])"), ""), "__metadata__ must be an object");
  // A valid minimal file, with trailing spaces, and an empty one.
  CHECK(SafetensorsReader::from_bytes(make_file("{}", "")).tensors().empty());
  CHECK(SafetensorsReader::from_bytes(make_file("{\"__metadata__\":{}}   ", "")).metadata().empty());
}

TEST_CASE("safetensors: file errors (missing file, file truncated after opening)") {
  ScratchDir dir("files");
  CHECK_THROWS_WITH_AS(SafetensorsReader::open(dir.path / "missing.safetensors"),
                       doctest::Contains("cannot open"), Error);
  CHECK_THROWS_WITH_AS(SafetensorsReader::open(dir.path), doctest::Contains("not a regular file"), Error);
  SafetensorsWriter w;
  w.add("a", Tensor<float>({64}));
  const fs::path p = dir.path / "t.safetensors";
  w.save(p);
  const auto r = SafetensorsReader::open(p);
  fs::resize_file(p, fs::file_size(p) - 10);
  CHECK_THROWS_WITH_AS((void)r.read<float>("a"), doctest::Contains("unexpected end of"), Error);
  CHECK_THROWS_WITH_AS(SafetensorsReader::open(p), doctest::Contains("run past the end"), Error);
}

TEST_CASE("parameters: save and load by name, missing, unexpected and mis-shaped tensors, partial loads") {
  ScratchDir dir("params");
  ParameterSet<float> src;
  src.add("w", Tensor<float>({2, 3}, {1, 2, 3, 4, 5, 6}));
  src.add("b", Tensor<float>({3}, {7, 8, 9}));
  const fs::path file = dir.path / "p.safetensors";
  save_parameters(src, file, {{"epoch", "3"}});
  CHECK(SafetensorsReader::open(file).metadata().at("epoch") == "3");

  ParameterSet<double> dst; // loads with conversion F32 -> double
  dst.add("w", Tensor<double>({2, 3}));
  dst.add("b", Tensor<double>({3}));
  const auto rep = load_parameters(dst, file);
  CHECK(rep.loaded == std::vector<std::string>{"b", "w"});
  CHECK(as_doubles(dst["w"].value) == std::vector<double>{1, 2, 3, 4, 5, 6});

  ParameterSet<float> extra;
  extra.add("w", Tensor<float>({2, 3}, 0.5f));
  extra.add("b", Tensor<float>({3}));
  extra.add("gain", Tensor<float>({3}, 0.25f));
  CHECK_THROWS_WITH_AS(load_parameters(extra, file),
                       doctest::Contains("missing (no tensor '<name>'): 'gain'"), Error);
  CHECK(extra["w"].value(0, 0) == 0.5f); // a failed load changes nothing
  const auto partial = load_parameters(extra, file, ParameterIoOptions::partial());
  CHECK(partial.missing == std::vector<std::string>{"gain"});
  CHECK(extra["w"].value(1, 2) == 6.0f);
  CHECK(extra["gain"].value(0) == 0.25f);

  ParameterSet<float> fewer;
  fewer.add("w", Tensor<float>({2, 3}));
  CHECK_THROWS_WITH_AS(load_parameters(fewer, file), doctest::Contains("unexpected tensors: 'b'"), Error);
  CHECK(load_parameters(fewer, file, {.allow_unexpected = true}).unexpected == std::vector<std::string>{"b"});

  ParameterSet<float> wrong;
  wrong.add("w", Tensor<float>({3, 2}));
  wrong.add("b", Tensor<float>({3}));
  CHECK_THROWS_WITH_AS(
      load_parameters(wrong, file, ParameterIoOptions::partial()),
      doctest::Contains("shape mismatch: 'w' has shape [2, 3] in the file, the parameter has [3, 2]"), Error);

  // Prefixes: only tensors under the prefix count; stored as another dtype.
  save_parameters(src, dir.path / "pre.safetensors", {}, Dtype::BF16, "enc.");
  ParameterSet<float> pre;
  pre.add("w", Tensor<float>({2, 3}));
  pre.add("b", Tensor<float>({3}));
  CHECK_THROWS_AS(load_parameters(pre, dir.path / "pre.safetensors"), Error);
  load_parameters(pre, dir.path / "pre.safetensors", {.prefix = "enc."});
  CHECK(pre["b"].value(2) == 9.0f);
  CHECK(SafetensorsReader::open(dir.path / "pre.safetensors").info("enc.w").dtype == Dtype::BF16);
}

TEST_CASE("write_file_atomic: a failed write leaves the old file and no temporary file") {
  ScratchDir dir("atomic");
  const fs::path p = dir.path / "f.bin";
  write_file_atomic(p, [](FileSink& s) { s.write("old content"); });
  CHECK(slurp(p) == "old content");
  CHECK_THROWS_WITH_AS(write_file_atomic(p,
                                         [](FileSink& s) {
                                           s.write("new partial content");
                                           fail("producer failed");
                                         }),
                       doctest::Contains("producer failed"), Error);
  CHECK(slurp(p) == "old content");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) ++entries;
  CHECK(entries == 1);
  // Large writes (beyond the sink's buffer) are complete.
  std::string big(3u << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>('a' + i % 26);
  write_file_atomic(p, [&](FileSink& s) {
    s.write(big.data(), 10);
    s.write(big.data() + 10, big.size() - 10);
  });
  CHECK(slurp(p) == big);
  CHECK_THROWS_WITH_AS(write_file_atomic(dir.path / "no" / "such" / "dir.bin", [](FileSink&) {}),
                       doctest::Contains("cannot create a temporary file"), Error);
  fs::create_directory(dir.path / "adir");
  fs::create_directory(dir.path / "adir" / "inner");
  CHECK_THROWS_WITH_AS(write_file_atomic(dir.path / "adir", [](FileSink& s) { s.write("x"); }),
                       doctest::Contains("cannot rename"), Error);
  entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) ++entries;
  CHECK(entries == 2); // f.bin and adir: the temporary file was removed
  CHECK_THROWS_WITH_AS((void)read_file(p, 10), doctest::Contains("more than the limit of 10"), Error);
}

// ---- checkpoints
// ---------------------------------------------------------------------------------------------

namespace {
/// A small regression MLP trained with AdamW, a warm-up/cosine schedule, clipping, dropout and random
/// minibatches: every piece of state a checkpoint must carry.
struct Trainer {
  static constexpr std::size_t n_in = 8, n_hidden = 16, rows = 256, batch = 32;
  static constexpr std::uint64_t total_steps = 60;
  ParameterSet<float> ps;
  std::unique_ptr<AdamW<float>> opt;
  Rng data_rng{11}, dropout_rng{12};
  Tensor<float> x{Shape{rows, n_in}}, y{Shape{rows, 1}};
  std::uint64_t step = 0;

  Trainer() {
    Rng init(7);
    Tensor<float> w1({n_hidden, n_in}), b1({n_hidden}), w2({1, n_hidden}), b2({1});
    init.fill_normal(w1.span(), 0.0f, 0.3f);
    init.fill_normal(w2.span(), 0.0f, 0.3f);
    ps.add("l1.weight", std::move(w1));
    ps.add("l1.bias", std::move(b1));
    ps.add("l2.weight", std::move(w2));
    ps.add("l2.bias", std::move(b2));
    opt = std::make_unique<AdamW<float>>(ps, AdamW<float>::Options{.lr = 0.02, .weight_decay = 0.05});
    opt->set_schedule(schedule::warmup_cosine(5, total_steps));
    Rng data(99);
    data.fill_uniform(x.span(), -1.0f, 1.0f);
    for (std::size_t r = 0; r < rows; ++r) {
      float s = 0;
      for (std::size_t k = 0; k < n_in; ++k) s += std::sin(static_cast<float>(k + 1) * x(r, k));
      y(r, 0) = s / 4;
    }
  }
  void train_step() {
    Tensor<float> xb({batch, n_in}), yb({batch, 1});
    for (std::size_t i = 0; i < batch; ++i) {
      const auto r = static_cast<std::size_t>(data_rng.uniform_index(rows));
      for (std::size_t k = 0; k < n_in; ++k) xb(i, k) = x(r, k);
      yb(i, 0) = y(r, 0);
    }
    Tape<float> tape;
    ps.zero_grad();
    auto h =
        tanh(linear(tape.constant(std::move(xb)), tape.param(ps["l1.weight"]), tape.param(ps["l1.bias"])));
    h = dropout(h, 0.1, dropout_rng);
    const auto out = linear(h, tape.param(ps["l2.weight"]), tape.param(ps["l2.bias"]));
    tape.backward(mse_loss(out, tape.constant(std::move(yb))));
    clip_grad_norm(ps, 1.0);
    opt->step();
    ++step;
  }
  void save(const fs::path& p) const {
    save_checkpoint(p, ps, *opt,
                    {step, {{"data", data_rng}, {"dropout", dropout_rng}}, {{"run", "kill-test"}}});
  }
  void restore(const fs::path& p) {
    const CheckpointState s = load_checkpoint(p, ps, *opt);
    step = s.step;
    data_rng = s.rngs.at("data");
    dropout_rng = s.rngs.at("dropout");
  }
  /// Parameters and optimizer moments, as bytes.
  [[nodiscard]] std::string state_bytes() const {
    std::string b;
    ps.for_each([&](const Parameter<float>& p) {
      b.append(reinterpret_cast<const char*>(p.value.data()), p.size() * sizeof(float));
    });
    const auto& m = opt->first_moment();
    const auto& v = opt->second_moment();
    b.append(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(float));
    b.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    return b;
  }
};

fs::path self_executable() {
  return fs::read_symlink("/proc/self/exe");
}
} // namespace

TEST_CASE("checkpoint: parameters, optimizer state, step, Rng streams and metadata round trip") {
  ScratchDir dir("ckpt");
  Trainer a;
  for (int i = 0; i < 7; ++i) a.train_step();
  const fs::path p = dir.path / "c.safetensors";
  a.save(p);
  const auto st = read_checkpoint_state(p);
  CHECK(st.step == 7);
  CHECK(st.metadata == std::map<std::string, std::string>{{"run", "kill-test"}});
  CHECK(st.rngs.at("data").counter() == a.data_rng.counter());
  CHECK(st.rngs.at("dropout").seed() == 12);
  const auto r = SafetensorsReader::open(p);
  CHECK(r.metadata().at("spikelm.optimizer") == "adamw");
  CHECK(r.contains("model/l1.weight"));
  CHECK(r.contains("optimizer/exp_avg/l2.bias"));
  CHECK(r.contains("optimizer/exp_avg_sq/l1.weight"));

  Trainer b;
  b.restore(p);
  CHECK(b.step == 7);
  CHECK(b.opt->steps() == 7);
  CHECK(b.state_bytes() == a.state_bytes());
  a.train_step();
  b.train_step();
  CHECK(b.state_bytes() == a.state_bytes());

  // SGD: with momentum the buffer is saved; without, there is none and a restore clears it.
  ParameterSet<double> ps;
  ps.add("p", Tensor<double>({3}, {1, 2, 3}));
  SGD<double> sgd(ps, {.lr = 0.1, .momentum = 0.9});
  ps["p"].grad.fill(1.0);
  sgd.step();
  save_checkpoint(dir.path / "s.safetensors", ps, sgd, {.step = 1});
  ParameterSet<double> ps2;
  ps2.add("p", Tensor<double>({3}));
  SGD<double> sgd2(ps2, {.lr = 0.1, .momentum = 0.9});
  load_checkpoint(dir.path / "s.safetensors", ps2, sgd2);
  CHECK(sgd2.momentum_buffer() == sgd.momentum_buffer());
  CHECK(as_doubles(ps2["p"].value) == as_doubles(ps["p"].value));
  SGD<double> plain(ps, {.lr = 0.1});
  plain.step();
  save_checkpoint(dir.path / "plain.safetensors", ps, plain);
  SGD<double> plain2(ps2, {.lr = 0.1});
  plain2.momentum_buffer().assign(3, 5.0);
  load_checkpoint(dir.path / "plain.safetensors", ps2, plain2);
  CHECK(plain2.momentum_buffer().empty());
  CHECK(plain2.steps() == 1);

  // Errors: another optimizer kind, changed options, another parameter set (nothing is modified), reserved
  // metadata keys, files that are not checkpoints.
  Adam<double> adam(ps2, {});
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "s.safetensors", ps2, adam),
                       doctest::Contains("state of a 'sgd' optimizer, not of a 'adam'"), Error);
  SGD<double> other(ps2, {.lr = 0.5, .momentum = 0.9});
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "s.safetensors", ps2, other),
                       doctest::Contains("differ from"), Error);
  load_checkpoint(dir.path / "s.safetensors", ps2, other, {.allow_optimizer_changes = true});
  CHECK(other.steps() == 1);
  Trainer c;
  ParameterSet<float> bigger;
  bigger.add("l1.weight", Tensor<float>({Trainer::n_hidden, Trainer::n_in}, 3.0f));
  bigger.add("extra", Tensor<float>({2}));
  AdamW<float> opt2(bigger, {.lr = 0.02, .weight_decay = 0.05});
  CHECK_THROWS_WITH_AS(load_checkpoint(p, bigger, opt2), doctest::Contains("is missing"), Error);
  CHECK(bigger["l1.weight"].value(0, 0) == 3.0f);
  CHECK(opt2.first_moment().empty());
  CHECK_THROWS_WITH_AS(
      save_checkpoint(dir.path / "x.safetensors", ps, sgd, {.metadata = {{"spikelm.step", "1"}}}),
      doctest::Contains("reserved prefix"), Error);
  save_parameters(ps, dir.path / "notckpt.safetensors");
  CHECK_THROWS_WITH_AS(read_checkpoint_state(dir.path / "notckpt.safetensors"),
                       doctest::Contains("not a spikelm checkpoint"), Error);
  // Loading the weights of a checkpoint alone (e.g. for inference): they live under "model/".
  ParameterSet<float> weights;
  weights.add("l1.weight", Tensor<float>({Trainer::n_hidden, Trainer::n_in}));
  weights.add("l1.bias", Tensor<float>({Trainer::n_hidden}));
  weights.add("l2.weight", Tensor<float>({1, Trainer::n_hidden}));
  weights.add("l2.bias", Tensor<float>({1}));
  load_parameters(weights, p, {.prefix = "model/"});
  CHECK(weights["l2.bias"].value(0) == r.read<float>("model/l2.bias")(0));
}

// The child half of the kill-and-resume test: runs only when the parent starts this executable with the
// environment variable set (and --no-skip); trains with a checkpoint every 10 steps, reports step 35 and
// then keeps re-saving a second checkpoint until it is killed.
TEST_CASE("checkpoint: kill-and-resume child (run by the parent test)" * doctest::skip()) {
  const char* dir = std::getenv("SPIKELM_IO_KILL_TEST_DIR");
  if (!dir) return;
  Trainer t;
  while (t.step < 35) {
    t.train_step();
    if (t.step % 10 == 0) t.save(fs::path(dir) / "ckpt.safetensors");
  }
  spit(fs::path(dir) / "reached-35", "35");
  for (;;) t.save(fs::path(dir) / "spam.safetensors"); // killed somewhere in here, possibly mid-write
}

TEST_CASE("checkpoint: training killed with SIGKILL resumes from its checkpoint to identical final weights") {
  // The uninterrupted run.
  Trainer ref;
  while (ref.step < Trainer::total_steps) ref.train_step();

  ScratchDir dir("kill");
  const std::string exe = self_executable().string();
  std::vector<std::string> args{exe, "--test-case=checkpoint: kill-and-resume child (run by the parent test)",
                                "--no-skip=true", "--no-version=true"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  REQUIRE(::setenv("SPIKELM_IO_KILL_TEST_DIR", dir.path.c_str(), 1) == 0);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ);
  ::unsetenv("SPIKELM_IO_KILL_TEST_DIR");
  REQUIRE(rc == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(dir.path / "reached-35") && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, WNOHANG) == 0); // the child must not have exited
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(fs::exists(dir.path / "reached-35"));
  std::this_thread::sleep_for(std::chrono::milliseconds(30)); // let it get into the save loop
  REQUIRE(::kill(pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  // Whatever the kill interrupted, the files in place are complete checkpoints.
  CHECK(read_checkpoint_state(dir.path / "ckpt.safetensors").step == 30);
  if (fs::exists(dir.path / "spam.safetensors"))
    CHECK(read_checkpoint_state(dir.path / "spam.safetensors").step == 35);

  // Everything of the first process is gone; a new one restores the checkpoint and finishes the run.
  Trainer resumed;
  resumed.restore(dir.path / "ckpt.safetensors");
  CHECK(resumed.step == 30);
  while (resumed.step < Trainer::total_steps) resumed.train_step();
  const std::string want = ref.state_bytes(), got = resumed.state_bytes();
  REQUIRE(want.size() == got.size());
  CHECK(std::memcmp(want.data(), got.data(), want.size()) == 0);
  CHECK(resumed.data_rng.counter() == ref.data_rng.counter());
}

// ---- tokenizers
// ----------------------------------------------------------------------------------------------

TEST_CASE("ByteTokenizer: every byte round trips") {
  ByteTokenizer t;
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const auto ids = t.encode(all);
  CHECK(ids.size() == 256);
  CHECK(ids[200] == 200);
  CHECK(t.decode(ids) == all);
  CHECK(ByteTokenizer::vocab_size() == 256);
  CHECK_THROWS_WITH_AS((void)t.decode(std::vector<TokenId>{1, 256}),
                       doctest::Contains("id 256 at position 1"), Error);
}

TEST_CASE("CharTokenizer: SpikeGPT's vocab.json (UTF-16) and ids, save, load and errors") {
  const std::string text = slurp(source_path("reference/fixtures/io/char_text.txt"));
  const fs::path vocab_file = source_path("reference/fixtures/io/char_vocab.json");
  const CharTokenizer built = CharTokenizer::from_text(text);
  const CharTokenizer loaded = CharTokenizer::load(vocab_file);
  CHECK(built.characters() == loaded.characters());
  CHECK(std::is_sorted(built.characters().begin(), built.characters().end()));
  const auto ids = built.encode(text);
  const auto& want = fx()["char/ids"].values;
  REQUIRE(ids.size() == want.size());
  for (std::size_t i = 0; i < ids.size(); ++i) CHECK(static_cast<double>(ids[i]) == want[i]);
  CHECK(built.decode(ids) == text);

  ScratchDir dir("chars");
  built.save(dir.path / "v16.json", true);
  CHECK(slurp(dir.path / "v16.json") == slurp(vocab_file)); // byte-identical to what SpikeGPT's code writes
  built.save(dir.path / "v8.json");
  CHECK(CharTokenizer::load(dir.path / "v8.json").characters() == built.characters());
  CHECK(built.to_json().rfind(R"({"0": "\u0001", "1": "\t", "2": "\n", "3": "\r", "4": "\u001f", "5": " ")",
                              0) == 0);

  CHECK_THROWS_WITH_AS((void)built.encode("hi \xE2\x98\x83"),
                       doctest::Contains("U+2603 ('\xE2\x98\x83') at byte 3"), Error);
  CHECK(built.encode("h\xE2\x98\x83", built.id(U'.')) ==
        std::vector<TokenId>{built.id(U'h'), built.id(U'.')});
  CHECK_THROWS_WITH_AS((void)built.id(U'?'), doctest::Contains("U+003F is not in the vocabulary"), Error);
  CHECK(utf8::codepoint_name(0x1F600) == "U+1F600");
  CHECK_THROWS_WITH_AS((void)built.encode("ab\xC3"), doctest::Contains("invalid UTF-8 at byte 2"), Error);
  CHECK_THROWS_AS((void)CharTokenizer::from_text("\xED\xA0\x80"), Error);
  CHECK_THROWS_WITH_AS((void)built.decode(std::vector<TokenId>{-1}),
                       doctest::Contains("outside the vocabulary"), Error);
  CHECK_THROWS_AS((void)built.encode("a", TokenId(100000)), Error);
  CHECK_THROWS_WITH_AS((void)CharTokenizer::from_json(R"({"0": "a", "0": "b"})"),
                       doctest::Contains("duplicate key \"0\""), Error);
  CHECK_THROWS_WITH_AS((void)CharTokenizer::from_json(R"({"0": "a", "2": "b"})"),
                       doctest::Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS((void)CharTokenizer::from_json(R"({"0": "ab"})"),
                       doctest::Contains("not exactly one character"), Error);
  CHECK_THROWS_WITH_AS((void)CharTokenizer::from_json(R"({"0": 1})"), doctest::Contains("not a string"),
                       Error);
  CHECK_THROWS_WITH_AS((void)CharTokenizer::from_json(R"({"01": "a"})"),
                       doctest::Contains("not a decimal id"), Error);
  CHECK_THROWS_WITH_AS((void)CharTokenizer::from_json(R"({"0": "a", "1": "a"})"),
                       doctest::Contains("appears twice"), Error);
  CHECK_THROWS_WITH_AS((void)CharTokenizer::from_json("[1,"), doctest::Contains("invalid JSON"), Error);
  CHECK_THROWS_WITH_AS((void)CharTokenizer::from_json(R"({"0": ["a"]})"), doctest::Contains("nests deeper"),
                       Error);
  CHECK_THROWS_WITH_AS(CharTokenizer(std::vector<char32_t>{0xD800}),
                       doctest::Contains("U+D800 is not a Unicode"), Error);
  spit(dir.path / "odd.json", std::string("\xFF\xFE{\x00\"", 5));
  CHECK_THROWS_WITH_AS((void)CharTokenizer::load(dir.path / "odd.json"),
                       doctest::Contains("odd number of bytes"), Error);
  spit(dir.path / "sur.json", std::string("\xFF\xFE\x00\xDC", 4));
  CHECK_THROWS_WITH_AS((void)CharTokenizer::load(dir.path / "sur.json"),
                       doctest::Contains("unpaired UTF-16 low surrogate"), Error);
  spit(dir.path / "bad8.json", "{\"0\": \"\xFF\"}");
  CHECK_THROWS_WITH_AS((void)CharTokenizer::load(dir.path / "bad8.json"),
                       doctest::Contains("invalid UTF-8 at byte 7"), Error);
  spit(dir.path / "bom8.json", "\xEF\xBB\xBF{\"0\": \"x\"}");
  CHECK(CharTokenizer::load(dir.path / "bom8.json").characters() == std::vector<char32_t>{U'x'});
}

namespace {
const nlohmann::json& wordpiece_fixture() {
  static const nlohmann::json j =
      nlohmann::json::parse(slurp(source_path("reference/fixtures/io/wordpiece.json")));
  return j;
}
const std::string& vocab_text() {
  static const std::string v = slurp(source_path("reference/fixtures/io/vocab.txt"));
  return v;
}
EncodeOptions to_options(const nlohmann::json& o) {
  EncodeOptions e;
  e.add_special_tokens = o.value("add_special_tokens", true);
  e.max_length = o.value("max_length", std::size_t(0));
  e.truncation = o.value("truncation", false);
  e.pad_to_max_length = o.value("padding", std::string()) == "max_length";
  return e;
}
} // namespace

TEST_CASE("WordPieceTokenizer matches Hugging Face's BertTokenizer (uncased and cased)") {
  const auto& fxj = wordpiece_fixture();
  for (const bool lower : {true, false}) {
    const auto tok = WordPieceTokenizer::from_vocab(vocab_text(), {.do_lower_case = lower});
    const auto& cases = fxj[lower ? "uncased" : "cased"];
    REQUIRE(cases.size() > 30);
    for (const auto& c : cases) {
      const auto text = c["text"].get<std::string>();
      INFO((lower ? "uncased" : "cased"), " text: ", text);
      CHECK(tok.tokenize(text) == c["tokens"].get<std::vector<std::string>>());
      const Encoding e = tok.encode(text);
      CHECK(e.ids == c["ids"].get<std::vector<TokenId>>());
      CHECK(e.attention_mask == std::vector<TokenId>(e.ids.size(), 1));
      CHECK(tok.decode(e.ids) == c["decode"].get<std::string>());
      CHECK(tok.decode(e.ids, true) == c["decode_skip"].get<std::string>());
    }
  }
  const auto tok = WordPieceTokenizer::from_vocab(vocab_text());
  for (const auto& c : fxj["pairs"]) {
    INFO("pair: ", c["a"].get<std::string>(), " | ", c["b"].get<std::string>(), " ", c["options"].dump());
    const Encoding e =
        tok.encode(c["a"].get<std::string>(), c["b"].get<std::string>(), to_options(c["options"]));
    CHECK(e.ids == c["ids"].get<std::vector<TokenId>>());
    CHECK(e.token_type_ids == c["token_type_ids"].get<std::vector<TokenId>>());
    CHECK(e.attention_mask == c["attention_mask"].get<std::vector<TokenId>>());
  }
  for (const auto& c : fxj["single_options"]) {
    INFO("single: ", c["a"].get<std::string>(), " ", c["options"].dump());
    const Encoding e = tok.encode(c["a"].get<std::string>(), to_options(c["options"]));
    CHECK(e.ids == c["ids"].get<std::vector<TokenId>>());
    CHECK(e.token_type_ids == c["token_type_ids"].get<std::vector<TokenId>>());
    CHECK(e.attention_mask == c["attention_mask"].get<std::vector<TokenId>>());
  }
}

TEST_CASE("WordPieceTokenizer: vocabulary files, batches and errors") {
  const auto tok = WordPieceTokenizer::from_vocab(vocab_text());
  CHECK(tok.pad_id() == 0);
  CHECK(tok.unk_id() == 3);
  CHECK(tok.cls_id() == 4);
  CHECK(tok.sep_id() == 5);
  CHECK(tok.mask_id() == 6);
  CHECK(tok.id_to_token(4) == "[CLS]");
  CHECK(tok.token_to_id("no-such-token") == tok.unk_id());
  CHECK_THROWS_WITH_AS((void)tok.id_to_token(100000), doctest::Contains("outside the vocabulary"), Error);
  CHECK_THROWS_WITH_AS((void)tok.encode("ok \xFF"), doctest::Contains("invalid UTF-8 at byte 3"), Error);
  CHECK_THROWS_WITH_AS((void)tok.encode("a", "b", {.max_length = 2, .truncation = true}),
                       doctest::Contains("leaves no room"), Error);
  CHECK(tok.basic_tokenize("Hello, [MASK]!") == std::vector<std::string>{"hello", ",", "[MASK]", "!"});
  CHECK(tok.encode("hello", {.add_special_tokens = false}).ids == tok.encode_ids("hello"));

  // CRLF and CR line ends, an empty line (a token of its own), duplicates (the last line wins).
  const auto v =
      WordPieceTokenizer::from_vocab("[PAD]\r\n[UNK]\r[CLS]\n[SEP]\n[MASK]\n\nhello\nworld\nhello\n");
  CHECK(v.vocab_size() == 9);
  CHECK(v.id_to_token(5).empty());
  CHECK(v.token_to_id("hello") == 8);
  CHECK(v.id_to_token(6) == "hello");
  CHECK(v.encode("hello world").ids == std::vector<TokenId>{2, 8, 7, 3});
  CHECK_THROWS_WITH_AS((void)WordPieceTokenizer::from_vocab("[PAD]\n[UNK]\n[CLS]\n[SEP]\n"),
                       doctest::Contains("the mask token '[MASK]' is not in the vocabulary"), Error);
  CHECK_THROWS_WITH_AS((void)WordPieceTokenizer::from_vocab("[PAD]\n\xC3\n"),
                       doctest::Contains("invalid UTF-8"), Error);
  CHECK_THROWS_WITH_AS((void)WordPieceTokenizer::load("/nonexistent/vocab.txt"),
                       doctest::Contains("cannot open"), Error);
  // max_input_chars_per_word and custom options.
  const auto short_words = WordPieceTokenizer::from_vocab(vocab_text(), {.max_input_chars_per_word = 3});
  CHECK(short_words.tokenize("the quick") == std::vector<std::string>{"the", "[UNK]"});
  const auto no_cjk = WordPieceTokenizer::from_vocab(vocab_text(), {.tokenize_chinese_chars = false});
  CHECK(no_cjk.basic_tokenize("\xE6\x88\x91\xE7\x88\xB1") ==
        std::vector<std::string>{"\xE6\x88\x91\xE7\x88\xB1"});
  const auto keep_accents = WordPieceTokenizer::from_vocab(vocab_text(), {.strip_accents = false});
  CHECK(keep_accents.basic_tokenize("Caf\xC3\xA9") == std::vector<std::string>{"caf\xC3\xA9"});
  const auto cased_strip =
      WordPieceTokenizer::from_vocab(vocab_text(), {.do_lower_case = false, .strip_accents = true});
  CHECK(cased_strip.basic_tokenize("Caf\xC3\xA9") == std::vector<std::string>{"Cafe"});

  // Batches: padded to the longest, or to max_length; pairs.
  const std::vector<std::string> texts{"hello", "the quick brown fox"};
  const BatchEncoding b = tok.encode_batch(texts);
  CHECK(b.ids.shape() == Shape{2, 6});
  CHECK(b.ids(0, 2) == tok.sep_id());
  CHECK(b.ids(0, 3) == tok.pad_id());
  CHECK(b.attention_mask(0, 3) == 0);
  CHECK(b.attention_mask(1, 5) == 1);
  const BatchEncoding p =
      tok.encode_batch(texts, {.max_length = 8, .truncation = true, .pad_to_max_length = true}, texts);
  CHECK(p.ids.shape() == Shape{2, 8});
  CHECK(p.token_type_ids(0, 3) == 1);
  CHECK_THROWS_AS((void)tok.encode_batch(texts, {}, std::vector<std::string>{"x"}), Error);
}

// ---- datasets ---------------------------------------------------------------------------------------------

TEST_CASE("datasets: splits, random training windows, evaluation windows, shuffling") {
  std::vector<TokenId> toks(1000);
  for (std::size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<TokenId>(i);
  const auto s = split_tokens(toks, 0.05, 0.05);
  CHECK(s.train.size() == 900);
  CHECK(s.validation.size() == 50);
  CHECK(s.test.size() == 50);
  CHECK(s.validation.front() == 900);
  CHECK(s.test.back() == 999);
  CHECK(split_tokens(toks, 0, 0).train.size() == 1000);
  CHECK(split_tokens(toks, 0.5, 0.5).train.empty());
  CHECK_THROWS_AS((void)split_tokens(toks, 0.7, 0.5), Error);

  Rng r1(5), r2(5);
  const WindowBatch a = random_windows(s.train, 16, 8, r1);
  const WindowBatch b = random_windows(s.train, 16, 8, r2);
  CHECK(a.inputs.shape() == Shape{8, 16});
  CHECK(std::equal(a.inputs.begin(), a.inputs.end(), b.inputs.begin()));
  CHECK(r1.counter() == 8);
  for (std::size_t r = 0; r < 8; ++r)
    for (std::size_t t = 0; t < 16; ++t) {
      CHECK(a.targets(r, t) == a.inputs(r, t) + 1);
      CHECK(a.inputs(r, t) < 899);
    }
  // Every start position is reachable, the last one included.
  std::vector<TokenId> tiny{0, 1, 2, 3};
  std::set<TokenId> starts;
  Rng r3(1);
  for (int i = 0; i < 200; ++i) starts.insert(random_windows(tiny, 2, 1, r3).inputs(0, 0));
  CHECK(starts == std::set<TokenId>{0, 1});
  CHECK_THROWS_AS((void)random_windows(tiny, 4, 1, r3), Error);

  const EvalWindows ev(s.validation, 16, 2, -1, -100);
  CHECK(ev.predictions() == 49);
  CHECK(ev.windows() == 4);
  CHECK(ev.batches() == 2);
  std::size_t scored = 0;
  std::vector<TokenId> seen_targets;
  for (std::size_t i = 0; i < ev.batches(); ++i) {
    const WindowBatch w = ev.batch(i);
    for (std::size_t k = 0; k < w.targets.size(); ++k)
      if (w.targets.data()[k] != -100) {
        ++scored;
        seen_targets.push_back(w.targets.data()[k]);
        CHECK(w.inputs.data()[k] + 1 == w.targets.data()[k]);
      }
  }
  CHECK(scored == 49);
  CHECK(seen_targets.front() == 901);
  CHECK(seen_targets.back() == 949);
  const WindowBatch last = ev.batch(1);
  CHECK(last.inputs(1, 0) == 948);
  CHECK(last.inputs(1, 1) == -1);
  CHECK_THROWS_AS((void)ev.batch(2), Error);

  Rng sh1(3), sh2(3);
  const auto perm = shuffled_indices(100, sh1);
  CHECK(perm == shuffled_indices(100, sh2));
  CHECK(std::set<std::size_t>(perm.begin(), perm.end()).size() == 100);
  CHECK(perm != shuffled_indices(100, sh1));
}

TEST_CASE("datasets: contiguous streams for stateful training continue each row's text") {
  std::vector<TokenId> toks(103);
  for (std::size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<TokenId>(i);
  // 102 predictions over 4 streams: 25 tokens each (tokens 100..102 unused), windows of 10, 10 and 5.
  const StreamWindows sw(toks, 10, 4);
  CHECK(sw.stream_length() == 25);
  CHECK(sw.windows() == 3);
  std::vector<std::vector<TokenId>> row_inputs(4);
  for (std::size_t k = 0; k < sw.windows(); ++k) {
    const WindowBatch w = sw.window(k);
    const std::size_t len = k + 1 == sw.windows() ? 5 : 10;
    REQUIRE(w.inputs.shape() == Shape{4, len});
    for (std::size_t r = 0; r < 4; ++r)
      for (std::size_t t = 0; t < len; ++t) {
        CHECK(w.targets(r, t) == w.inputs(r, t) + 1);
        row_inputs[r].push_back(w.inputs(r, t));
      }
  }
  // Concatenated windows give each row's stream exactly once, in order.
  for (std::size_t r = 0; r < 4; ++r) {
    REQUIRE(row_inputs[r].size() == 25);
    for (std::size_t t = 0; t < 25; ++t) CHECK(row_inputs[r][t] == static_cast<TokenId>(r * 25 + t));
  }
  CHECK(sw.window(3).inputs(0, 0) == 0); // wraps to the start of the next epoch
  CHECK(sw.window(3).targets(3, 9) == 85);
  CHECK_THROWS_AS(StreamWindows(toks, 0, 4), Error);
  CHECK_THROWS_AS(StreamWindows(std::span<const TokenId>(toks).first(4), 10, 4), Error);
}

TEST_CASE("labeled TSV reader") {
  const auto d = parse_labeled_tsv("text\tlabel\r\nfirst\tpos\nsecond\twith tab\tneg\n\nthird\tpos\n",
                                   "t.tsv", {}, true);
  CHECK(d.size() == 3);
  CHECK(d.label_names == std::vector<std::string>{"neg", "pos"});
  CHECK(d.texts[1] == "second\twith tab");
  CHECK(d.labels == std::vector<std::int64_t>{1, 0, 1});
  CHECK(d.label_id("pos") == 1);
  CHECK_THROWS_AS((void)d.label_id("x"), Error);
  const auto fixed = parse_labeled_tsv("a\tpos\n", "u.tsv", {"pos", "neg"});
  CHECK(fixed.labels == std::vector<std::int64_t>{0});
  CHECK_THROWS_WITH_AS((void)parse_labeled_tsv("a\tmaybe\n", "u.tsv", {"pos", "neg"}),
                       doctest::Contains("label 'maybe'"), Error);
  CHECK_THROWS_WITH_AS((void)parse_labeled_tsv("ok\tpos\nno tab here\n", "v.tsv"),
                       doctest::Contains("v.tsv:2: no tab"), Error);
  CHECK_THROWS_WITH_AS((void)parse_labeled_tsv("ok\tpos\nbad \xFF\tneg\n", "w.tsv"),
                       doctest::Contains("w.tsv:2: invalid UTF-8 at byte 4"), Error);
  CHECK_THROWS_WITH_AS((void)parse_labeled_tsv("x\t\n", "e.tsv"), doctest::Contains("e.tsv:1: empty label"),
                       Error);
  CHECK_THROWS_WITH_AS((void)parse_labeled_tsv("x\ta\n", "d.tsv", {"a", "a"}),
                       doctest::Contains("listed twice"), Error);
  CHECK_THROWS_WITH_AS((void)read_labeled_tsv("/nonexistent.tsv"), doctest::Contains("cannot open"), Error);
}

TEST_CASE("bundled corpus: the KJV text and the section-classification splits load") {
  const std::string data = std::string(SPIKELM_TESTS_SOURCE_DIR) + "/../examples/data/";
  const std::string text = read_text_file(data + "kjv.txt");
  CHECK(text.size() > 4'000'000);
  CHECK(text.size() < 4'194'304);
  CHECK(text.rfind("Genesis\nIn the beginning God created the heaven and the earth.\n", 0) == 0);
  const auto chars = CharTokenizer::from_text(text);
  CHECK(chars.vocab_size() < 100);
  const auto train = read_labeled_tsv(data + "kjv_sections_train.tsv");
  CHECK(train.label_names ==
        std::vector<std::string>{"epistles", "gospels", "history", "law", "poetry", "prophets"});
  const auto dev = read_labeled_tsv(data + "kjv_sections_dev.tsv", train.label_names);
  const auto test = read_labeled_tsv(data + "kjv_sections_test.tsv", train.label_names);
  CHECK(train.size() == 4200);
  CHECK(dev.size() == 600);
  CHECK(test.size() == 600);
  std::set<std::string> seen(train.texts.begin(), train.texts.end());
  for (const auto& t : dev.texts) CHECK(seen.insert(t).second); // no text in two splits
  for (const auto& t : test.texts) CHECK(seen.insert(t).second);
  const auto tok = WordPieceTokenizer::from_vocab(vocab_text());
  CHECK(tok.encode(train.texts[0]).ids.front() == tok.cls_id());
}

// Run by the tools/convert_checkpoint ctest (tests/tools/convert_roundtrip.py), which converts PyTorch
// checkpoints and passes the converted file and its expected values through the environment.
TEST_CASE("convert_checkpoint: spikelm reads a converted file (run by the converter test)" *
          doctest::skip()) {
  const char* file = std::getenv("SPIKELM_IO_CONVERTED");
  const char* expect = std::getenv("SPIKELM_IO_CONVERTED_EXPECT");
  REQUIRE(file != nullptr);
  REQUIRE(expect != nullptr);
  const auto r = SafetensorsReader::open(file);
  const spikelm_test::Fixtures want(fs::relative(expect, SPIKELM_TESTS_SOURCE_DIR).string());
  ParameterSet<float> ps;
  for (const auto& name : r.names()) {
    INFO(name);
    REQUIRE(want.has(name));
    const auto got = r.read_flat<double>(name);
    REQUIRE(got.size() == want[name].values.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == want[name].values[i]);
    if (is_floating(r.info(name).dtype)) ps.add(name, Tensor<float>(r.info(name).tensor_shape()));
  }
  const auto report = load_parameters(ps, fs::path(file), {.allow_unexpected = true});
  CHECK(report.loaded.size() == ps.size());
  CHECK(ps["emb.weight"].value(3, 2) == r.read<float>("head.weight")(3, 2)); // tied weights, both written
}
