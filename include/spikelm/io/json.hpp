// spikelm: strict JSON parsing for io/ (nlohmann-json): duplicate keys and nesting deeper than a format
// allows are errors, and every failure is a spikelm::Error naming the input.
#ifndef SPIKELM_IO_JSON_HPP
#define SPIKELM_IO_JSON_HPP

#include "../config.hpp"
#include "../core/error.hpp"

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

SPIKELM_NAMESPACE_BEGIN

/// Parses `text` as JSON. Throws spikelm::Error naming `where` on a syntax error, on a key that appears twice
/// in one object (nlohmann would keep the last silently) and on objects or arrays nested more than
/// `max_depth` levels deep (the top-level value is level 1).
[[nodiscard]] inline nlohmann::json parse_json_strict(std::string_view text, const std::string& where,
                                                      int max_depth) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> keys;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    switch (ev) {
    case json::parse_event_t::object_start:
    case json::parse_event_t::array_start:
      if (depth >= max_depth) fail(where, ": the JSON nests deeper than ", max_depth, " levels");
      if (ev == json::parse_event_t::object_start) keys.emplace_back();
      break;
    case json::parse_event_t::object_end:
      if (!keys.empty()) keys.pop_back();
      break;
    case json::parse_event_t::key:
      if (!keys.back().insert(parsed.get<std::string>()).second)
        fail(where, ": duplicate key \"", parsed.get<std::string>(), "\"");
      break;
    default:
      break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    fail(where, ": invalid JSON: ", e.what());
  }
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_IO_JSON_HPP
