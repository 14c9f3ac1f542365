// quickstart: the seed's four usage steps in C++.
//   1. initialize the event system: open a store, create the bus, start it
//   2. publish an event
//   3. register a handler class (a BaseEventHandler)
//   4. subscribe with a lambda (the simple, live, non-durable way)
//
//   quickstart [store-url]    (default: memory:)
//   quickstart --version
//
// Exits 0 once both the durable handler and the live subscriber saw the event (bounded wait).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

#include "herald/event_bus.h"
#include "herald/id.h"
#include "herald/typed_handler.h"
#include "herald/version.h"

namespace {

using namespace std::chrono_literals;

// An event type: a struct with kType and JSON conversion.
struct UserRegistered {
  static constexpr std::string_view kType = "UserRegistered";
  std::string user_id;
  std::string email;
  std::string name;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserRegistered, user_id, email, name)

// A durable handler: gets every UserRegistered at least once, even across restarts.
class SendWelcomeEmail final : public herald::BaseEventHandler<UserRegistered> {
 public:
  std::string name() const override { return "notifications.send_welcome_email"; }
  herald::Status on(const UserRegistered& e, const herald::RecordedEvent& raw, herald::HandlerContext& ctx) override {
    std::printf("[handler %s] welcome e-mail to %s <%s> (event %s at position %lld, attempt %d)\n",
                name().c_str(), e.name.c_str(), e.email.c_str(), raw.id.c_str(),
                static_cast<long long>(raw.position), ctx.attempt());
    sent.fetch_add(1);
    return herald::Status::ok();
  }
  std::atomic_int sent{0};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "--version") {
    const auto b = herald::build_info();
    std::printf("quickstart %.*s (%.*s, %.*s)\n", static_cast<int>(b.version.size()), b.version.data(),
                static_cast<int>(b.compiler.size()), b.compiler.data(), static_cast<int>(b.build_type.size()),
                b.build_type.data());
    return 0;
  }
  std::string url = argc > 1 ? argv[1] : "memory:";
  if (url.starts_with("sqlite://")) {
    std::filesystem::path p(url.substr(9));
    std::error_code ec;
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  }

  // 1. Initialize: the store holds events and the bus's checkpoints; the bus runs the handlers.
  auto opened = herald::open_store(url);
  if (!opened) {
    std::fprintf(stderr, "cannot open %s: %s\n", url.c_str(), opened.status().to_string().c_str());
    return 1;
  }
  std::shared_ptr<herald::EventStore> store(std::move(*opened));
  herald::BusOptions bus_options;
  bus_options.poll_interval = 50ms;
  herald::EventBus bus(store, bus_options);

  // 3. Register a handler class (before start, so it runs as soon as the bus starts).
  auto welcome = std::make_shared<SendWelcomeEmail>();
  if (auto st = bus.register_handler(welcome); !st) {
    std::fprintf(stderr, "register_handler: %s\n", st.to_string().c_str());
    return 1;
  }

  // 4. Subscribe with a lambda: live and in-process, for events committed from now on.
  std::atomic_int live_seen{0};
  auto subscription = bus.subscribe("UserRegistered", [&](const herald::RecordedEvent& e) {
    std::printf("[subscriber] %s on stream %s: %s\n", e.type.c_str(), e.stream_id.c_str(), e.payload.c_str());
    live_seen.fetch_add(1);
  });

  if (auto st = bus.start(); !st) {
    std::fprintf(stderr, "start: %s\n", st.to_string().c_str());
    return 1;
  }

  // 2. Publish: durable when it returns; the handlers run asynchronously.
  std::string user_id = herald::new_uuid_v7();
  auto written = bus.publish("user-" + user_id, herald::ExpectedVersion::no_stream(),
                             {herald::to_event(UserRegistered{user_id, "ada@example.com", "Ada"})});
  if (!written) {
    std::fprintf(stderr, "publish: %s\n", written.status().to_string().c_str());
    return 1;
  }
  std::printf("[publisher] published UserRegistered at position %lld; not waiting for handlers\n",
              static_cast<long long>(written->first_position));

  auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((welcome->sent.load() < 1 || live_seen.load() < 1) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  auto status = bus.handler_status(welcome->name());
  auto report = bus.stop(std::chrono::steady_clock::now() + 5s);
  if (status) {
    std::printf("[status] %s: state %s, processed %lld, checkpoint %lld, lag %lld\n", status->name.c_str(),
                std::string(herald::to_string(status->state)).c_str(), static_cast<long long>(status->processed),
                static_cast<long long>(status->checkpoint), static_cast<long long>(status->lag));
  }
  std::printf("[bus] published %lld event(s), %lld live deliveries; stopped %s\n",
              static_cast<long long>(bus.stats().published_events),
              static_cast<long long>(bus.stats().live_deliveries), report.clean ? "cleanly" : "with work left");
  if (welcome->sent.load() < 1 || live_seen.load() < 1) {
    std::fprintf(stderr, "timed out: handler saw %d, subscriber saw %d\n", welcome->sent.load(), live_seen.load());
    return 1;
  }
  return 0;
}
