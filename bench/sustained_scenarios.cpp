// sustained_append: appends at saturation for --sustained-seconds (default 60) while 4 subscribers
// tail the log, the shape under which SQLite's WAL used to grow without bound. Reports the WAL's
// largest size beside its limit, the append rate of every tenth of the run (the last tenth beside
// the first), bytes on disk per event once the store is closed (beside the 200-byte payload), and
// the process's peak RSS.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "bench.h"
#include "store/sqlite/sqlite_event_store.h"

namespace herald::bench {
namespace {

Result<Json> run_sustained(const Options& opt) {
  StoreOptions store_options;
  store_options.durable = true;
  if (opt.wal_limit_bytes > 0) store_options.sqlite_wal_limit_bytes = opt.wal_limit_bytes;
  auto fresh = FreshStore::open(opt, opt.kind, store_options);
  if (!fresh) return fresh.status();
  EventStore& store = (*fresh)->store();
  const std::filesystem::path wal_path =
      opt.kind == StoreKind::sqlite ? (*fresh)->directory() / "events.db-wal" : std::filesystem::path{};

  const double seconds = opt.sustained_seconds > 0 ? opt.sustained_seconds : 60.0;
  constexpr int kTenths = 10;
  constexpr int kWriters = 4;
  constexpr std::size_t kBatch = 10;
  std::atomic_bool stop{false};
  std::atomic_int64_t written{0};
  std::atomic<std::uintmax_t> wal_max{0};
  std::mutex error_mu;
  Status first_error;  // guarded by error_mu
  auto fail = [&](const Status& s) {
    std::lock_guard lk(error_mu);
    if (first_error.is_ok()) first_error = s;
    stop = true;
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (std::int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        auto r = store.append("sustained-" + std::to_string(w) + "-" + std::to_string(i % 10'000),
                              ExpectedVersion::any(), make_events(i, kBatch));
        if (!r) return fail(r.status());
        written.fetch_add(static_cast<std::int64_t>(kBatch), std::memory_order_relaxed);
      }
    });
  }
  std::atomic_int64_t tailed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::int64_t from = 0;
      const std::size_t page = 100 + 200 * static_cast<std::size_t>(t);
      while (!stop.load(std::memory_order_relaxed)) {
        auto slice = store.read_all(from, page);
        if (!slice) return fail(slice.status());
        from = slice->next_position;
        tailed.fetch_add(static_cast<std::int64_t>(slice->events.size()), std::memory_order_relaxed);
        if (slice->end_of_log) (void)store.wait_for(from - 1, std::chrono::milliseconds(20));
      }
    });
  }
  if (!wal_path.empty()) {
    threads.emplace_back([&] {
      std::error_code ec;
      while (!stop.load(std::memory_order_relaxed)) {
        auto size = std::filesystem::file_size(wal_path, ec);
        if (!ec && size > wal_max.load()) wal_max = size;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }

  std::vector<double> rates;
  const auto start = std::chrono::steady_clock::now();
  std::int64_t last = 0;
  for (int tenth = 1; tenth <= kTenths && !stop.load(); ++tenth) {
    const auto until = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(seconds * tenth / kTenths));
    while (std::chrono::steady_clock::now() < until && !stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::int64_t now_written = written.load();
    rates.push_back(static_cast<double>(now_written - last) / (seconds / kTenths));
    last = now_written;
  }
  stop = true;
  for (auto& t : threads) t.join();
  {
    std::lock_guard lk(error_mu);
    if (!first_error.is_ok()) return first_error;
  }
  const double elapsed = seconds_between(start, std::chrono::steady_clock::now());
  std::int64_t counted_wal_max = 0;
  std::int64_t escalations = 0;
  if (auto c = detail::sqlite_counters(store)) {
    counted_wal_max = c->wal_max_bytes;
    escalations = c->escalated_checkpoints;
  }
  const std::int64_t events = written.load();
  store.close();  // checkpoints the WAL into the database and removes it
  std::int64_t bytes = 0;
  if (opt.kind == StoreKind::sqlite) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator((*fresh)->directory(), ec)) {
      if (entry.is_regular_file(ec)) bytes += static_cast<std::int64_t>(entry.file_size(ec));
    }
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);

  Json j;
  j["scenario"] = "sustained_append";
  j["store"] = to_string(opt.kind);
  j["events"] = events;
  j["seconds"] = round_to(elapsed, 2);
  j["events_per_s"] = round_to(static_cast<double>(events) / elapsed, 0);
  j["writers"] = kWriters;
  j["batch"] = kBatch;
  j["tailing_subscribers"] = 4;
  j["tailed_events"] = tailed.load();
  j["wal_limit_bytes"] = store_options.sqlite_wal_limit_bytes;
  j["wal_max_bytes"] = std::max<std::int64_t>(static_cast<std::int64_t>(wal_max.load()), counted_wal_max);
  j["wal_max_over_limit"] = round_to(static_cast<double>(j["wal_max_bytes"].get<std::int64_t>()) /
                                         static_cast<double>(store_options.sqlite_wal_limit_bytes),
                                     2);
  j["escalated_checkpoints"] = escalations;
  Json tenths = Json::array();
  for (double r : rates) tenths.push_back(round_to(r, 0));
  j["events_per_s_by_tenth"] = tenths;
  if (rates.size() == kTenths && rates.front() > 0) {
    j["last_over_first_tenth"] = round_to(rates.back() / rates.front(), 3);
  }
  j["bytes_per_event"] = events > 0 ? round_to(static_cast<double>(bytes) / static_cast<double>(events), 1) : 0.0;
  j["payload_bytes"] = kPayloadBytes;
  j["rss_max_mib"] = round_to(static_cast<double>(usage.ru_maxrss) / 1024.0, 1);
  return j;
}

}  // namespace

void register_sustained_scenarios(Registry& r) {
  r.add({"sustained_append",
         "4 writers x 10 events at saturation for --sustained-seconds (60) with 4 tailing readers: "
         "WAL max vs limit, rate by tenth, bytes/event, RSS",
         run_sustained});
}

}  // namespace herald::bench
