#include "bus/live_feed.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace herald {

Subscription::Subscription(Subscription&& other) noexcept = default;

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    unsubscribe();
    active_ = std::move(other.active_);
  }
  return *this;
}

Subscription::~Subscription() { unsubscribe(); }

void Subscription::unsubscribe() {
  if (!active_) return;
  active_->end();
  active_.reset();
}

namespace bus {

void LiveSubscription::end() {
  {
    std::lock_guard lock(mu);
    active = false;
  }
  dropped.store(true, std::memory_order_release);
}

namespace {
constexpr std::chrono::milliseconds kWaitSlice{100};
constexpr std::size_t kBatch = 512;
}  // namespace

std::shared_ptr<LiveSubscription> LiveFeed::add(std::string type,
                                                  std::function<void(const RecordedEvent&)> fn) {
  auto impl = std::make_shared<LiveSubscription>();
  impl->type = std::move(type);
  impl->fn = std::move(fn);
  std::lock_guard lock(subs_mu_);
  impl->from_position = store_->head_position() + 1;
  subs_.push_back(impl);
  return impl;
}

void LiveFeed::start() {
  std::lock_guard lock(subs_mu_);
  if (started_ || stopping_.load()) return;
  started_ = true;
  next_position_ = store_->head_position() + 1;
  for (const auto& s : subs_) next_position_ = std::min(next_position_, s->from_position);
  thread_ = std::thread([this] { run(); });
}

void LiveFeed::stop() {
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

void LiveFeed::run() {
  std::int64_t pos = next_position_;
  std::vector<std::shared_ptr<LiveSubscription>> snapshot;
  while (!stopping_.load(std::memory_order_acquire)) {
    std::int64_t head = 0;
    {
      std::lock_guard lock(subs_mu_);
      std::erase_if(subs_, [](const auto& s) { return s->dropped.load(std::memory_order_acquire); });
      snapshot = subs_;
      head = store_->head_position();
    }
    if (snapshot.empty()) {
      // Nobody listens: skip ahead instead of reading events no one wants.
      pos = std::max(pos, head + 1);
      Status st = store_->wait_for(pos - 1, kWaitSlice);
      if (st.code() == StatusCode::cancelled) return;
      continue;
    }
    auto slice = cache_->read(pos, kBatch, ReadFilter{});
    if (!slice) {
      if (stopping_.load()) return;
      spdlog::warn("live feed: read failed: {}", slice.status().to_string());
      Status st = store_->wait_for(pos - 1, kWaitSlice);  // a bounded pause before trying again
      if (st.code() == StatusCode::cancelled) return;
      continue;
    }
    for (std::size_t i = 0; i < slice->size(); ++i) {
      const RecordedEvent& e = (*slice)[i];
      for (const auto& s : snapshot) {
        if (e.position < s->from_position || (s->type != "*" && s->type != e.type)) continue;
        std::lock_guard lock(s->mu);
        if (!s->active) continue;
        deliveries_.fetch_add(1, std::memory_order_relaxed);
        try {
          s->fn(e);
        } catch (const std::exception& ex) {
          spdlog::warn("live subscriber for {} threw on event {} ({}): {}", s->type, e.id, e.type, ex.what());
        } catch (...) {
          spdlog::warn("live subscriber for {} threw on event {} ({})", s->type, e.id, e.type);
        }
      }
    }
    pos = slice->next_position();
    if (slice->end_of_log()) {
      Status st = store_->wait_for(pos - 1, kWaitSlice);
      if (st.code() == StatusCode::cancelled) return;
    }
  }
}

}  // namespace bus
}  // namespace herald
