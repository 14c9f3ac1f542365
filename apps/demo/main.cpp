// herald_demo: appends a few events to a store and reads them back.
//   herald_demo [store-url]     (default: sqlite://./data/demo.db)
//   herald_demo --version
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "herald/event_store.h"
#include "herald/id.h"
#include "herald/version.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "--version") {
    const auto b = herald::build_info();
    std::printf("herald_demo %.*s (%.*s, %.*s)\n", static_cast<int>(b.version.size()), b.version.data(),
                static_cast<int>(b.compiler.size()), b.compiler.data(), static_cast<int>(b.build_type.size()),
                b.build_type.data());
    return 0;
  }
  std::string url = argc > 1 ? argv[1] : "sqlite://./data/demo.db";
  if (url.starts_with("sqlite://")) {
    std::filesystem::path p(url.substr(9));
    std::error_code ec;
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  }
  auto store = herald::open_store(url);
  if (!store) {
    std::fprintf(stderr, "cannot open %s: %s\n", url.c_str(), store.status().to_string().c_str());
    return 1;
  }
  std::string stream = "order-" + herald::new_uuid_v7().substr(0, 8);
  herald::EventMetadata md;
  md.correlation_id = herald::new_uuid_v7();
  md.actor = "demo";
  std::vector<herald::EventData> events = {
      {"", "OrderCreated", R"({"user_id":"u1","total_cents":4200})", md},
      {"", "PaymentCharged", R"({"amount_cents":4200})", md},
      {"", "OrderConfirmed", R"({})", md},
  };
  auto written = (*store)->append(stream, herald::ExpectedVersion::no_stream(), events);
  if (!written) {
    std::fprintf(stderr, "append failed: %s\n", written.status().to_string().c_str());
    return 1;
  }
  std::printf("appended %zu events to %s at positions %lld..%lld\n", events.size(), stream.c_str(),
              static_cast<long long>(written->first_position),
              static_cast<long long>(written->last_position));
  auto read = (*store)->read_stream(stream, 0, 100, herald::ReadDirection::forwards);
  if (!read) {
    std::fprintf(stderr, "read failed: %s\n", read.status().to_string().c_str());
    return 1;
  }
  for (const auto& e : *read) {
    std::printf("  #%lld %s v%lld %-15s %s  %s\n", static_cast<long long>(e.position),
                e.stream_id.c_str(), static_cast<long long>(e.version), e.type.c_str(),
                e.payload.c_str(), herald::format_rfc3339(e.recorded_at).c_str());
  }
  auto stats = (*store)->stats();
  if (stats) {
    std::printf("store %s: %lld events in %lld streams, %lld bytes on disk\n", (*store)->url().c_str(),
                static_cast<long long>(stats->total_events), static_cast<long long>(stats->stream_count),
                static_cast<long long>(stats->bytes_on_disk));
  }
  return 0;
}
