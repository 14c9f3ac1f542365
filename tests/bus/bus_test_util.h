// Helpers shared by the bus tests: stores, a handler built from a lambda, bounded waits.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "herald/clock.h"
#include "herald/event_bus.h"
#include "herald/event_store.h"
#include "herald/id.h"

namespace herald::testing {

inline std::shared_ptr<EventStore> memory_store() {
  auto s = open_store("memory:");
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return std::shared_ptr<EventStore>(std::move(*s));
}

// A fresh directory under the system temp dir, removed when destroyed.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("herald-bus-" + new_uuid_v7());
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::shared_ptr<EventStore> sqlite_store(const std::filesystem::path& file) {
  StoreOptions o;
  o.durable = false;  // survives a process crash, which is what these tests check; faster
  auto s = open_store("sqlite://" + file.string(), o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s ? std::shared_ptr<EventStore>(std::move(*s)) : nullptr;
}

// Waits (bounded) for `cond`; returns whether it came true. The bound is a hang guard, not a
// performance assertion.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

// A handler whose behaviour is a lambda; records what it saw.
class FnHandler final : public EventHandler {
 public:
  using Fn = std::function<Status(const RecordedEvent&, HandlerContext&)>;
  FnHandler(std::string name, std::vector<std::string> types, Fn fn = nullptr)
      : name_(std::move(name)), types_(std::move(types)), fn_(std::move(fn)) {}

  std::string name() const override { return name_; }
  std::vector<std::string> event_types() const override { return types_; }
  Status handle(const RecordedEvent& e, HandlerContext& ctx) override {
    Status st = fn_ ? fn_(e, ctx) : Status::ok();
    std::lock_guard lock(mu_);
    calls_.push_back(e);
    if (st.is_ok()) handled_.push_back(e);
    return st;
  }

  std::vector<RecordedEvent> handled() const {
    std::lock_guard lock(mu_);
    return handled_;
  }
  std::vector<RecordedEvent> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::size_t handled_count() const {
    std::lock_guard lock(mu_);
    return handled_.size();
  }
  std::vector<std::string> handled_ids() const {
    std::vector<std::string> out;
    for (const auto& e : handled()) out.push_back(e.id);
    return out;
  }

 private:
  std::string name_;
  std::vector<std::string> types_;
  Fn fn_;
  mutable std::mutex mu_;  // guards calls_ and handled_
  std::vector<RecordedEvent> calls_;
  std::vector<RecordedEvent> handled_;
};

inline EventData ev(std::string type, std::string payload = "{}") {
  EventData d;
  d.type = std::move(type);
  d.payload = std::move(payload);
  return d;
}

inline BusOptions fast_bus() {
  BusOptions o;
  o.poll_interval = std::chrono::milliseconds(20);
  return o;
}

inline RetryPolicy quick_retry(int attempts) {
  return RetryPolicy::fixed_delays({std::chrono::milliseconds(1)}, attempts);
}

// Wall and monotonic time that move only when the test says so, together: the bus's dead-letter
// times and the store's lease expiry (wall) agree with the bus's retry, lease and poll schedule
// (monotonic).
struct ManualTime {
  std::shared_ptr<ManualClock> wall = std::make_shared<ManualClock>(timestamp_from_micros(1'700'000'000'000'000));
  std::shared_ptr<ManualTimeSource> mono = std::make_shared<ManualTimeSource>();

  void advance(std::chrono::milliseconds d) const {
    wall->advance(d);
    mono->advance(d);
  }
  // `o` with this time as its clock and time source.
  BusOptions bus(BusOptions o = fast_bus()) const {
    o.clock = wall;
    o.time = mono;
    return o;
  }
  // A memory store whose clock (recorded_at, lease expiry) is `wall`.
  std::shared_ptr<EventStore> memory_store() const {
    StoreOptions so;
    so.clock = wall;
    auto s = open_store("memory:", so);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return std::shared_ptr<EventStore>(std::move(*s));
  }
};

}  // namespace herald::testing
