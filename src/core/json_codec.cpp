#include "core/json_codec.h"

#include <simdjson.h>

namespace herald::detail {

bool is_valid_json(std::string_view text) noexcept {
  // Validation runs on every appended payload; simdjson checks a 200-byte payload about ten times
  // faster than nlohmann::json::accept. One parser per thread: it keeps its buffers between calls,
  // and its depth limit is ours (simdjson's default is 1024, deeper than nlohmann can dump safely).
  try {
    thread_local simdjson::dom::parser parser(simdjson::SIMDJSON_MAXSIZE_BYTES);
    thread_local bool allocated = false;
    if (!allocated) {
      if (parser.allocate(4096, kMaxJsonDepth) != simdjson::SUCCESS) return false;
      allocated = true;
    }
    return parser.parse(text.data(), text.size(), /*realloc_if_needed=*/true).error() ==
           simdjson::SUCCESS;
  } catch (...) {
    return false;
  }
}

bool json_depth_within(std::string_view text, std::size_t max_depth) noexcept {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return true;
}

std::string encode_extra(const EventMetadata& m) {
  if (m.extra.empty()) return {};
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m.extra) j[k] = v;
  return j.dump();
}

bool decode_extra(std::string_view text, EventMetadata& m) {
  m.extra.clear();
  if (text.empty()) return true;
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) return false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string()) return false;
    m.extra.emplace(it.key(), it.value().get<std::string>());
  }
  return true;
}

nlohmann::json metadata_to_json(const EventMetadata& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : m.extra) j[k] = v;
  if (!m.correlation_id.empty()) j["correlation_id"] = m.correlation_id;
  if (!m.causation_id.empty()) j["causation_id"] = m.causation_id;
  if (!m.actor.empty()) j["actor"] = m.actor;
  return j;
}

bool metadata_from_json(const nlohmann::json& j, EventMetadata& out) {
  if (!j.is_object()) return false;
  out = {};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string()) return false;
    const std::string& k = it.key();
    std::string v = it.value().get<std::string>();
    if (k == "correlation_id") out.correlation_id = std::move(v);
    else if (k == "causation_id") out.causation_id = std::move(v);
    else if (k == "actor") out.actor = std::move(v);
    else out.extra.emplace(k, std::move(v));
  }
  return true;
}

}  // namespace herald::detail
