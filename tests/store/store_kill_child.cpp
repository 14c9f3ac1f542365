// store_kill_child: appends under load until it is SIGKILLed, for store_kill_soak_test.
//
//   store_kill_child <store-url>
//
// Four threads each own eight streams ("soak-<thread>-<n>") and append batches of 1 to 3 events
// to them with exact expected versions (continuing where an earlier, killed child stopped). Every
// event's payload names its own id, stream and version and carries a padding string and its
// length, so a torn or misplaced event is detectable. Each acknowledged append is reported on
// stdout as one line "<stream> <first-version> <id> <id>…", written with one write() after the
// append returned, so a line is only ever printed for an append the store acknowledged.
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_store.h"
#include "herald/id.h"

namespace {

std::mutex g_out_mu;  // guards writes to stdout, so lines never interleave

std::string padding(std::size_t n) {
  std::string p;
  p.reserve(n);
  for (std::size_t i = 0; i < n; ++i) p.push_back(static_cast<char>('a' + i % 26));
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: store_kill_child <store-url>\n");
    return 64;
  }
  auto opened = herald::open_store(argv[1]);
  if (!opened) {
    std::fprintf(stderr, "store_kill_child: %s\n", opened.status().to_string().c_str());
    return 1;
  }
  herald::EventStore& store = **opened;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      std::vector<std::string> streams;
      std::vector<std::int64_t> versions;
      for (int n = 0; n < 8; ++n) {
        streams.push_back("soak-" + std::to_string(t) + "-" + std::to_string(n));
        auto v = store.stream_version(streams.back());
        if (!v) _exit(2);
        versions.push_back(*v);
      }
      for (std::uint64_t i = 0;; ++i) {
        const std::size_t s = i % streams.size();
        const std::size_t count = 1 + (i * 7 + static_cast<std::uint64_t>(t)) % 3;
        std::vector<herald::EventData> batch;
        for (std::size_t k = 0; k < count; ++k) {
          herald::EventData e;
          e.id = herald::new_uuid_v7();
          e.type = "SoakAppended";
          const std::string pad = padding(16 + (i + k) % 200);
          e.payload = nlohmann::json{{"id", e.id},
                                     {"stream", streams[s]},
                                     {"version", versions[s] + 1 + static_cast<std::int64_t>(k)},
                                     {"pad", pad},
                                     {"pad_length", pad.size()}}
                          .dump();
          batch.push_back(std::move(e));
        }
        const auto expected = versions[s] < 0 ? herald::ExpectedVersion::no_stream()
                                              : herald::ExpectedVersion::exact(versions[s]);
        auto r = store.append(streams[s], expected, batch);
        // A retryable failure is retried with the same ids and expected version (idempotent).
        while (!r && r.status().code() == herald::StatusCode::unavailable) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          r = store.append(streams[s], expected, batch);
        }
        if (!r) {
          std::fprintf(stderr, "store_kill_child: append: %s\n", r.status().to_string().c_str());
          _exit(3);
        }
        std::string line = streams[s] + " " + std::to_string(versions[s] + 1);
        for (const auto& e : batch) line += " " + e.id;
        line += "\n";
        versions[s] += static_cast<std::int64_t>(count);
        std::lock_guard lock(g_out_mu);
        if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}
