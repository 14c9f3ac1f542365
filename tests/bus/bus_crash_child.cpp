// bus_crash_child: runs the bus on a sqlite store so that the crash test can SIGKILL it.
//
//   bus_crash_child <db-file> <seen-log> work   publish events and handle them until killed
//   bus_crash_child <db-file> <seen-log> drain  handle what is committed, stop cleanly, exit 0
//
// The handler "counter" (2 lanes) appends the event id to <seen-log> (the at-least-once record:
// a duplicate line is allowed, a missing one is not) and then counts the event in a document
// inside exactly_once (the projection the test expects to be exact).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "herald/event_bus.h"

namespace {

using namespace std::chrono_literals;

class CountingHandler final : public herald::EventHandler {
 public:
  explicit CountingHandler(int seen_fd) : seen_fd_(seen_fd) {}
  std::string name() const override { return "counter"; }
  std::vector<std::string> event_types() const override { return {"Tick"}; }
  herald::Status handle(const herald::RecordedEvent& e, herald::HandlerContext& ctx) override {
    // The "seen" record goes first: exactly_once may commit the checkpoint past this event, so
    // after that commit the event is never handed out again and a line written later could be
    // lost to a kill. Written first, a kill before the commit just means a second line.
    std::string line = e.id + "\n";
    // One write() with O_APPEND: the line lands whole in the file even if we are killed next.
    if (::write(seen_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return herald::Status::unavailable("cannot write seen log");
    }
    return ctx.exactly_once(e, [&](herald::StoreTransaction& tx) -> herald::Status {
      auto doc = tx.get_document("crash", "count");
      std::int64_t n = 0;
      if (doc) n = nlohmann::json::parse(*doc).at("n").get<std::int64_t>();
      else if (doc.status().code() != herald::StatusCode::not_found) return doc.status();
      HERALD_RETURN_IF_ERROR(tx.put_document("crash-events", e.id, R"({"seen":true})"));
      return tx.put_document("crash", "count", nlohmann::json{{"n", n + 1}}.dump());
    });
  }

 private:
  int seen_fd_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: bus_crash_child <db-file> <seen-log> work|drain\n");
    return 64;
  }
  std::string db = argv[1];
  std::string mode = argv[3];
  int fd = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) {
    std::perror("open seen log");
    return 1;
  }
  herald::StoreOptions so;
  so.durable = false;  // WAL + synchronous=NORMAL survives a process kill, which is what we test
  auto opened = herald::open_store("sqlite://" + db, so);
  if (!opened) {
    std::fprintf(stderr, "open store: %s\n", opened.status().to_string().c_str());
    return 1;
  }
  std::shared_ptr<herald::EventStore> store(std::move(*opened));
  herald::BusOptions bo;
  bo.poll_interval = 20ms;
  herald::EventBus bus(store, bo);
  herald::HandlerOptions ho;
  ho.lanes = 2;
  ho.batch_size = 16;  // small batches: more checkpoint saves and more kill points between them
  ho.retry = herald::RetryPolicy::fixed_delays({5ms}, 1000);
  if (auto st = bus.register_handler(std::make_shared<CountingHandler>(fd), ho); !st) {
    std::fprintf(stderr, "register: %s\n", st.to_string().c_str());
    return 1;
  }
  if (auto st = bus.start(); !st) {
    std::fprintf(stderr, "start: %s\n", st.to_string().c_str());
    return 1;
  }
  if (mode == "work") {
    // Publish until killed (the bound only guards against a parent that forgot us).
    auto end = std::chrono::steady_clock::now() + 20s;
    for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
      std::vector<herald::EventData> batch(static_cast<std::size_t>(1 + i % 3));
      for (auto& e : batch) {
        e.type = "Tick";
        e.payload = R"({"i":)" + std::to_string(i) + "}";
      }
      auto r = bus.publish("tick-" + std::to_string(i % 7), herald::ExpectedVersion::any(), std::move(batch));
      if (!r) std::fprintf(stderr, "publish: %s\n", r.status().to_string().c_str());
      std::this_thread::sleep_for(1ms);
    }
    return 3;
  }
  if (mode != "drain") return 64;
  auto end = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < end) {
    auto st = bus.handler_status("counter");
    if (st && st->lag == 0) {
      auto report = bus.stop(std::chrono::steady_clock::now() + 5s);
      return report.clean ? 0 : 4;
    }
    std::this_thread::sleep_for(5ms);
  }
  std::fprintf(stderr, "drain: handler did not catch up\n");
  return 2;
}
