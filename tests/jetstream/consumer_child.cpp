// A remote-handler process for the crash test: counts "Counted" events exactly once into its own
// store (sqlite) from JetStream. Runs until killed, or with a target count exits 0 once the count
// reaches it (1 after 60 s without).
#include <cstdio>
#include <string>
#include <thread>

#include "herald/jetstream.h"

namespace {

class Counter final : public herald::EventHandler {
 public:
  std::string name() const override { return "crash.counter"; }
  std::vector<std::string> event_types() const override { return {"Counted"}; }
  herald::Status handle(const herald::RecordedEvent& e, herald::HandlerContext& ctx) override {
    return ctx.exactly_once(e, [&](herald::StoreTransaction& tx) -> herald::Status {
      std::int64_t n = 0;
      auto doc = tx.get_document("counts", "total");
      if (doc) n = std::stoll(*doc);
      return tx.put_document("counts", "total", std::to_string(n + 1));
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: consumer_child <store-url> <nats-url> <stream> [target]\n");
    return 2;
  }
  auto store = herald::open_store(argv[1]);
  if (!store) return 2;
  herald::jetstream::RemoteHandlerOptions o;
  o.nats_url = argv[2];
  o.stream.name = argv[3];
  o.stream.subject_prefix = "consumer";
  o.stream.partitions = 4;
  o.ack_wait = std::chrono::milliseconds(1000);
  o.fetch_wait = std::chrono::milliseconds(1000);
  auto c = herald::jetstream::RemoteHandlers::create(**store, o);
  if (!c || !(*c)->add(std::make_shared<Counter>()).is_ok()) return 2;
  if (!(*c)->start().is_ok()) return 3;
  const long target = argc > 4 ? std::stol(argv[4]) : -1;
  for (int i = 0; i < 600 || target < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (target < 0) continue;
    auto d = (*store)->read_document("counts", "total");
    if (d && std::stol(*d) >= target) {
      (*c)->stop();
      return 0;
    }
  }
  return 1;
}
