// libFuzzer target: event payloads and metadata, as every backend checks and decodes them
// (src/store/validation.cpp, src/core/json_codec.cpp). One input is read several ways:
//   - as a payload: is_valid_json (simdjson, depth-bounded) must never accept what nlohmann, which
//     handlers and the HTTP layer parse with, refuses, and json_depth_within must agree with it
//     about depth;
//   - as stored metadata: decode_extra (SQLite's column) and metadata_from_json (PostgreSQL's
//     jsonb) must round-trip through encode_extra / metadata_to_json;
//   - as an append (fields split by 0x1e/0x1f, layout in fuzz/README.md): prepare_append either
//     refuses it or gives every event a UUID, and a memory store then stores and returns exactly
//     those events.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_codec.h"
#include "herald/event_store.h"
#include "herald/id.h"
#include "store/validation.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "fuzz_event_codec: %s (input %zu bytes)\n", what, input.size());
  std::abort();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

void check_payload(std::string_view text) {
  const bool valid = herald::detail::is_valid_json(text);
  const bool shallow = herald::detail::json_depth_within(text, herald::kMaxJsonDepth);
  if (!valid) return;
  if (!shallow) fail("is_valid_json accepted JSON deeper than kMaxJsonDepth", text);
  auto parsed = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) fail("simdjson accepted a payload nlohmann refuses", text);
  // What the admin API and handlers do with a stored payload: dump it again.
  (void)parsed.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

void check_metadata(std::string_view text) {
  herald::EventMetadata m;
  if (herald::detail::decode_extra(text, m)) {
    herald::EventMetadata again;
    if (!herald::detail::decode_extra(herald::detail::encode_extra(m), again) || again.extra != m.extra) {
      fail("decode_extra(encode_extra(m)) differs from m", text);
    }
  }
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return;
  herald::EventMetadata from;
  if (!herald::detail::metadata_from_json(j, from)) return;
  herald::EventMetadata back;
  if (!herald::detail::metadata_from_json(herald::detail::metadata_to_json(from), back) ||
      back.correlation_id != from.correlation_id || back.causation_id != from.causation_id ||
      back.actor != from.actor || back.extra != from.extra) {
    fail("metadata_from_json(metadata_to_json(m)) differs from m", text);
  }
}

herald::StoreOptions limits() {
  herald::StoreOptions options;
  options.max_events_per_append = 32;
  options.max_payload_bytes = 4096;
  return options;
}

herald::EventStore& memory_store() {
  static auto* store = [] {
    auto s = herald::open_store("memory:", limits());
    if (!s) std::abort();
    return s->release();
  }();
  return *store;
}

// stream 0x1e event 0x1e event…, each event type 0x1f id 0x1f payload 0x1f metadata-extra.
void check_append(std::string_view text) {
  auto parts = split(text, '\x1e');
  const std::string stream(parts[0]);
  std::vector<herald::EventData> events;
  for (std::size_t i = 1; i < parts.size() && i <= 64; ++i) {
    auto f = split(parts[i], '\x1f');
    herald::EventData e;
    e.type = std::string(f[0]);
    if (f.size() > 1) e.id = std::string(f[1]);
    e.payload = f.size() > 2 ? std::string(f[2]) : std::string("{}");
    if (f.size() > 3) {
      auto m = nlohmann::json::parse(f[3].begin(), f[3].end(), nullptr, false);
      if (!m.is_discarded()) (void)herald::detail::metadata_from_json(m, e.metadata);
    }
    events.push_back(std::move(e));
  }
  const herald::StoreOptions options = limits();
  auto prepared = events;
  auto st = herald::detail::prepare_append(stream, herald::ExpectedVersion::any(), prepared, options);
  if (!st) {
    if (st.code() != herald::StatusCode::invalid_argument) fail("prepare_append failed with another code", text);
    // The store must refuse it the same way and write nothing.
    const auto head = memory_store().head_position();
    auto r = memory_store().append(stream, herald::ExpectedVersion::any(), events);
    if (r || r.status().code() != herald::StatusCode::invalid_argument) {
      // An id already stored is the one legitimate difference: the store sees the log.
      if (!r.is_ok() && r.status().code() == herald::StatusCode::already_exists) return;
      fail("the store accepted an append prepare_append refuses", text);
    }
    if (memory_store().head_position() != head) fail("a refused append wrote something", text);
    return;
  }
  for (const auto& e : prepared) {
    if (!herald::is_uuid(e.id)) fail("prepare_append left an event without a UUID", text);
  }
  const auto head_before = memory_store().head_position();
  auto r = memory_store().append(stream, herald::ExpectedVersion::any(), prepared);
  if (!r) {
    if (r.status().code() == herald::StatusCode::already_exists) return;  // ids seen by an earlier input
    fail("the store refused an append prepare_append accepted", text);
  }
  auto read = memory_store().read_all(r->first_position, prepared.size());
  if (!read || read->events.size() != prepared.size()) fail("the appended events cannot be read back", text);
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    const auto& got = read->events[i];
    const auto& want = prepared[i];
    if (got.id != want.id) fail("an event read back has another id", text);
    // The same ids appended again (with the same expected version) are a retry: the store answers
    // the first append's result, with that append's events.
    if (r->last_position <= head_before) continue;
    if (got.type != want.type) fail("an event read back has another type", text);
    if (got.payload != want.payload) fail("an event read back has another payload", text);
    if (got.stream_id != stream) fail("an event read back is in another stream", text);
    if (got.metadata.extra != want.metadata.extra || got.metadata.actor != want.metadata.actor) {
      fail("an event read back has other metadata", text);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_payload(text);
  check_metadata(text);
  check_append(text);
  return 0;
}
