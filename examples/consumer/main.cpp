// herald_consumer: appends and reads events with the SQLite store and runs a durable handler on
// the bus, through an installed Herald only (examples/consumer/CMakeLists.txt, Makefile).
// Exits 0 when everything behaved, 1 with a message otherwise.
//   herald_consumer [directory]     (default: a fresh directory under $TMPDIR or /tmp)
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "herald/event_bus.h"
#include "herald/sqlite_store.h"
#include "herald/version.h"

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "herald_consumer: FAILED: %s\n", what.c_str());
  return 1;
}

// Counts the OrderPlaced events it handles; the main thread waits on it.
class CountOrders final : public herald::EventHandler {
 public:
  std::string name() const override { return "consumer.count_orders"; }
  std::vector<std::string> event_types() const override { return {"OrderPlaced"}; }
  herald::Status handle(const herald::RecordedEvent&, herald::HandlerContext&) override {
    std::lock_guard lock(mu_);
    ++handled_;
    cv_.notify_all();
    return herald::Status::ok();
  }
  bool wait_for(int n, std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return handled_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int handled_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--version") {
    std::printf("herald_consumer (headers %s, library %s)\n", HERALD_VERSION_STRING, herald::version().data());
    return 0;
  }
  if (herald::version() != HERALD_VERSION_STRING) {
    return fail("headers are " HERALD_VERSION_STRING " but the library is " + std::string(herald::version()));
  }
  std::filesystem::path dir;
  if (argc > 1) {
    dir = argv[1];
  } else {
    std::string tmpl = (std::filesystem::temp_directory_path() / "herald-consumer-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return fail("mkdtemp");
    dir = tmpl;
  }

  auto opened = herald::open_sqlite_store((dir / "events.db").string());
  if (!opened) return fail("open: " + opened.status().to_string());
  std::shared_ptr<herald::EventStore> store = std::move(*opened);

  herald::EventBus bus(store);
  auto counter = std::make_shared<CountOrders>();
  if (auto s = bus.register_handler(counter); !s) return fail("register_handler: " + s.to_string());
  if (auto s = bus.start(); !s) return fail("start: " + s.to_string());

  std::vector<herald::EventData> events;
  for (int i = 0; i < 3; ++i) {
    herald::EventData e;
    e.type = "OrderPlaced";
    e.payload = "{\"n\":" + std::to_string(i) + "}";
    events.push_back(std::move(e));
  }
  auto written = bus.publish("order-1", herald::ExpectedVersion::no_stream(), events);
  if (!written) return fail("publish: " + written.status().to_string());
  if (written->first_position != 0 || written->last_position != 2 || written->stream_version != 2) {
    return fail("publish wrote positions " + std::to_string(written->first_position) + ".." +
                std::to_string(written->last_position));
  }
  // The same stream again with a stale expected version must be refused, and write nothing.
  auto stale = store->append("order-1", herald::ExpectedVersion::no_stream(), events);
  if (stale || stale.status().code() != herald::StatusCode::wrong_expected_version) {
    return fail("a stale append was not refused with wrong_expected_version");
  }

  auto read = store->read_stream("order-1", 0, 10, herald::ReadDirection::forwards);
  if (!read) return fail("read_stream: " + read.status().to_string());
  if (read->size() != 3) return fail("read_stream returned " + std::to_string(read->size()) + " events");
  for (std::size_t i = 0; i < read->size(); ++i) {
    const auto& e = (*read)[i];
    if (e.version != static_cast<std::int64_t>(i) || e.payload != events[i].payload) {
      return fail("event " + std::to_string(i) + " read back as version " + std::to_string(e.version) + " " + e.payload);
    }
  }

  if (!counter->wait_for(3, std::chrono::seconds(30))) return fail("the handler did not see 3 events within 30 s");
  auto report = bus.stop(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  if (!report.clean) return fail("the bus did not stop cleanly");
  auto checkpoint = store->load_checkpoint(counter->name());
  if (!checkpoint || *checkpoint != 3) return fail("checkpoint after stop is not 3");

  std::printf("herald_consumer: ok (herald %s, %s)\n", herald::version().data(), store->url().c_str());
  return 0;
}
