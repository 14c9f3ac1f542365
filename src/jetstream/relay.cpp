// The relay: the store's global log into one JetStream stream, in position order, each event once
// in the stream (see herald/jetstream.h for the promise).
//
// One thread owns the session, the read cursor and the lease; libnats's thread reports each
// publish's ack through on_ack. The window of unacked publishes is bounded by max_pending_acks.
// Every publish names the previous event's id as the stream's expected last message id, so a
// failed publish makes every later one fail too instead of landing after a gap; the relay then
// waits for the window to empty, re-reads the stream's last message and resumes after it. That
// also covers a restart outside the duplicate window and a takeover by another instance.
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

#include "herald/id.h"
#include "herald/jetstream.h"
#include "jetstream/event_message.h"
#include "jetstream/nats_session.h"

namespace herald::jetstream {

std::string relay_checkpoint_name(std::string_view stream_name) {
  return "herald.jetstream.relay/" + std::string(stream_name);
}

Status validate(const StreamSettings& s) {
  if (s.name.empty() || s.name.size() > 64) return Status::invalid_argument("stream name must be 1 to 64 characters");
  for (char c : s.name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return Status::invalid_argument("stream name '" + s.name + "' may hold only letters, digits, '_' and '-'");
  }
  if (s.subject_prefix.empty() || s.subject_prefix.front() == '.' || s.subject_prefix.back() == '.' ||
      s.subject_prefix.find("..") != std::string::npos) {
    return Status::invalid_argument("subject prefix '" + s.subject_prefix + "' must be dot-separated non-empty tokens");
  }
  for (char c : s.subject_prefix) {
    if (c == '.') continue;
    if (detail::subject_token(std::string_view(&c, 1)) != std::string_view(&c, 1)) {
      return Status::invalid_argument("subject prefix '" + s.subject_prefix + "' may hold only letters, digits, '_', '-' and '.'");
    }
  }
  if (s.replicas < 1 || s.replicas > 5) return Status::invalid_argument("replicas must be 1 to 5");
  if (s.duplicate_window < std::chrono::minutes(2)) return Status::invalid_argument("duplicate window must be at least 2 minutes");
  if (s.partitions < 1 || s.partitions > 1024) return Status::invalid_argument("partitions must be 1 to 1024");
  return Status::ok();
}

Status ensure_stream(std::string_view nats_url, const StreamSettings& settings) {
  HERALD_RETURN_IF_ERROR(validate(settings));
  detail::SessionOptions so;
  so.url = std::string(nats_url);
  so.name = "herald-ensure-stream";
  auto session = detail::Session::open(so);
  if (!session) return session.status();
  return detail::ensure_stream((*session)->js(), settings);
}

namespace {

using Clock = std::chrono::steady_clock;

class RelayImpl final : public Relay {
 public:
  RelayImpl(EventStore& store, RelayOptions options)
      : store_(store),
        options_(std::move(options)),
        checkpoint_name_(relay_checkpoint_name(options_.stream.name)),
        lease_name_("herald.jetstream.relay/" + options_.stream.name),
        owner_(options_.instance_id.empty() ? new_uuid_v7() : options_.instance_id) {}

  ~RelayImpl() override { stop(); }

  Status start() override {
    std::lock_guard lk(life_mu_);
    if (thread_.joinable()) return Status::failed_precondition("relay already started");
    stopping_ = false;
    {
      std::lock_guard g(mu_);
      running_ = true;
      reason_ = "starting";
    }
    thread_ = std::thread([this] { run(); });
    return Status::ok();
  }

  void stop() override {
    std::lock_guard lk(life_mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
    thread_.join();
    std::lock_guard g(mu_);
    running_ = false;
    leader_ = false;
    reason_ = "stopped";
    cv_.notify_all();
  }

  RelayHealth health() const override {
    RelayHealth h;
    std::lock_guard g(mu_);
    h.running = running_;
    h.leader = leader_;
    h.healthy = running_ && reason_.empty();
    if (running_ && !leader_ && reason_.rfind("standby", 0) == 0) h.healthy = true;
    h.reason = reason_;
    h.checkpoint = acked_through_;
    h.head = store_.head_position();
    h.published = published_;
    h.pending = pending_;
    h.failures = failures_;
    return h;
  }

  Status wait_relayed(std::int64_t position, std::chrono::milliseconds timeout) override {
    std::unique_lock g(mu_);
    const bool done = cv_.wait_for(g, timeout, [&] { return acked_through_ > position || !running_; });
    if (acked_through_ > position) return Status::ok();
    if (!running_) return Status::cancelled("relay stopped");
    return done ? Status::ok() : Status::timeout("position " + std::to_string(position) + " not relayed yet");
  }

 private:
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    static_cast<RelayImpl*>(closure)->ack(msg, pa, pae);
    natsMsg_Destroy(msg);
  }

  void ack(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) {
    const std::int64_t p = detail::position_of(msg);
    std::lock_guard g(mu_);
    --pending_;
    last_ack_at_ = Clock::now();
    if (pa != nullptr && pae == nullptr) {
      ++published_;
      if (p == acked_through_) {
        ++acked_through_;
        while (!acked_ahead_.empty() && *acked_ahead_.begin() == acked_through_) {
          acked_ahead_.erase(acked_ahead_.begin());
          ++acked_through_;
        }
      } else if (p > acked_through_) {
        acked_ahead_.insert(p);
      }
    } else if (!publish_failed_) {
      publish_failed_ = true;
      std::string text = "publish of position " + std::to_string(p) + " failed";
      if (pae != nullptr) {
        text += ": ";
        text += pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(pae->Err);
        if (pae->ErrCode != 0) text += " (JetStream error " + std::to_string(static_cast<int>(pae->ErrCode)) + ")";
      }
      publish_error_ = std::move(text);
    }
    cv_.notify_all();
  }

  void set_reason(std::string reason, bool leader) {
    std::lock_guard g(mu_);
    reason_ = std::move(reason);
    leader_ = leader;
  }

  // A failure: reported, counted, and followed by a backoff sleep (doubling up to retry_max).
  void fail(const Status& st) {
    {
      std::lock_guard g(mu_);
      reason_ = st.to_string();
      ++failures_;
    }
    const auto delay = backoff_;
    backoff_ = std::min(options_.retry_max, backoff_ * 2);
    sleep_unless_stopping(delay);
  }

  void sleep_unless_stopping(std::chrono::milliseconds d) {
    std::unique_lock g(mu_);
    cv_.wait_for(g, d, [&] { return stopping_.load(); });
  }

  // Renews the lease when due. True while the lease is safely ours.
  bool hold_lease() {
    if (!options_.use_lease) return true;
    const auto now = Clock::now();
    const auto renew_every = std::max(std::chrono::milliseconds(10), options_.lease_ttl / 3);
    if (now - last_renewal_attempt_ >= renew_every || !lease_held_) {
      last_renewal_attempt_ = now;
      auto r = store_.try_acquire_lease(lease_name_, owner_, options_.lease_ttl);
      if (r && r->outcome == LeaseOutcome::acquired) {
        const bool lapsed = lease_held_ && r->token != lease_token_;
        lease_token_ = r->token;
        lease_valid_until_ = now + options_.lease_ttl * 8 / 10;
        lease_held_ = true;
        if (lapsed) {
          // Granted anew after it expired: another relay may have published and saved in the gap.
          // Answer "not held" once, so run() drops the session and resyncs from the stream.
          set_reason("the relay lease expired and was taken back; resyncing", false);
          return false;
        }
      } else {
        lease_held_ = false;
        set_reason(r ? "standby: another instance holds the relay lease" : "standby: lease: " + r.status().to_string(), false);
      }
    }
    return lease_held_ && Clock::now() < lease_valid_until_;
  }

  // Waits until no publish is pending, up to ack_timeout; then gives up on the rest (libnats hands
  // them back and drops their late acks), which the resync that follows accounts for.
  void drain_pending() {
    std::unique_lock g(mu_);
    cv_.wait_for(g, options_.ack_timeout, [&] { return pending_ <= 0; });
    if (pending_ > 0 && session_) {
      g.unlock();
      natsMsgList list{};
      if (js_PublishAsyncGetPendingList(&list, session_->js()) == NATS_OK) {
        g.lock();
        pending_ -= list.Count;
        g.unlock();
        natsMsgList_Destroy(&list);
      }
      g.lock();
    }
  }

  void drop_session() {
    if (!session_) return;
    drain_pending();
    session_.reset();
    std::lock_guard g(mu_);
    pending_ = 0;
  }

  Status open_session() {
    detail::SessionOptions so;
    so.url = options_.nats_url;
    so.name = "herald-relay " + owner_;
    so.request_wait_ms = options_.ack_timeout.count();
    so.ack_handler = &RelayImpl::on_ack;
    so.ack_closure = this;
    so.max_pending_async = options_.max_pending_acks + 16;
    auto s = detail::Session::open(so);
    if (!s) return s.status();
    HERALD_RETURN_IF_ERROR(detail::ensure_stream((*s)->js(), options_.stream));
    session_ = std::move(*s);
    return Status::ok();
  }

  // Where to go on from: after the stream's last message when it is a Herald event of this store,
  // else from the stored checkpoint.
  Status resync() {
    drain_pending();
    std::int64_t checkpoint = 0;
    auto cp = store_.load_checkpoint(checkpoint_name_);
    if (cp) {
      checkpoint = *cp;
    } else if (cp.status().code() != StatusCode::not_found) {
      return cp.status();
    }
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, session_->js(), options_.stream.name.c_str(), nullptr, &jerr);
    if (s != NATS_OK) return detail::nats_error(s, "stream info of '" + options_.stream.name + "'", jerr);
    const std::uint64_t last_seq = si->State.LastSeq;
    const std::uint64_t msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    std::string last_id;
    std::int64_t next = checkpoint;
    if (msgs > 0 && last_seq > 0) {
      natsMsg* m = nullptr;
      s = js_GetMsg(&m, session_->js(), options_.stream.name.c_str(), last_seq, nullptr, &jerr);
      if (s != NATS_OK) return detail::nats_error(s, "read the stream's last message", jerr);
      const std::int64_t p = detail::position_of(m);
      const char* id = nullptr;
      if (natsMsgHeader_Get(m, detail::kHeaderMsgId, &id) == NATS_OK && id != nullptr) last_id = id;
      natsMsg_Destroy(m);
      if (p >= 0) {
        auto at = store_.read_all(p, 1);
        if (!at) return at.status();
        if (at->events.empty() || at->events.front().position != p || at->events.front().id != last_id) {
          return Status::failed_precondition("JetStream stream '" + options_.stream.name + "' ends with event " + last_id +
                                             " at position " + std::to_string(p) +
                                             ", which this store does not hold there: another store relays to it");
        }
        next = std::max(next, p + 1);
      }
    }
    {
      std::lock_guard g(mu_);
      acked_through_ = next;
      acked_ahead_.clear();
      publish_failed_ = false;
      publish_error_.clear();
      last_ack_at_ = Clock::now();
    }
    next_ = next;
    last_id_ = last_id;
    if (next != checkpoint) save_checkpoint(next);
    return Status::ok();
  }

  void save_checkpoint(std::int64_t position) {
    if (options_.use_lease && !(lease_held_ && Clock::now() < lease_valid_until_)) return;
    Status st = Status::ok();
    if (options_.use_lease) {
      // Fenced: refused once another relay acquired the lease, even if this one's clock thinks
      // its lease is still valid (a paused process, a stepped clock).
      st = store_.transact([&](StoreTransaction& tx) -> Status {
        HERALD_RETURN_IF_ERROR(tx.check_lease(lease_name_, lease_token_));
        return tx.save_checkpoint(checkpoint_name_, position);
      });
    } else {
      st = store_.save_checkpoint(checkpoint_name_, position);
    }
    if (st.is_ok()) saved_checkpoint_ = position;
    if (st.code() == StatusCode::lease_lost) {
      lease_held_ = false;
      set_reason("standby: another instance took the relay lease", false);
    }
    last_save_ = Clock::now();
  }

  // Publishes what the window allows. False when a publish could not be handed to libnats.
  Status publish_some(bool& published_any) {
    published_any = false;
    std::int64_t room;
    {
      std::lock_guard g(mu_);
      room = options_.max_pending_acks - pending_;
    }
    if (room <= 0) return Status::ok();
    auto slice = store_.read_all_shared(next_, std::min<std::size_t>(options_.read_batch, static_cast<std::size_t>(room)));
    if (!slice) return slice.status();
    for (const RecordedEvent* e : slice->events) {
      auto msg = detail::make_event_message(subject_for(options_.stream, *e), *e);
      if (!msg) return msg.status();
      natsMsg* m = *msg;
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MsgId = e->id.c_str();
      po.ExpectLastMsgId = last_id_.empty() ? nullptr : last_id_.c_str();
      po.MaxWait = options_.ack_timeout.count();
      {
        std::lock_guard g(mu_);
        ++pending_;
      }
      natsStatus s = js_PublishMsgAsync(session_->js(), &m, &po);
      if (s != NATS_OK) {
        natsMsg_Destroy(m);
        std::lock_guard g(mu_);
        --pending_;
        return detail::nats_error(s, "publish position " + std::to_string(e->position));
      }
      last_id_ = e->id;
      next_ = e->position + 1;
      published_any = true;
    }
    if (slice->events.empty() && slice->next_position > next_) next_ = slice->next_position;
    return Status::ok();
  }

  void run() {
    bool need_resync = true;
    while (!stopping_) {
      if (!hold_lease()) {
        if (session_) {
          drop_session();
          need_resync = true;
        }
        sleep_unless_stopping(std::max(std::chrono::milliseconds(10), options_.lease_ttl / 5));
        continue;
      }
      if (!session_) {
        Status st = open_session();
        if (!st.is_ok()) {
          fail(st);
          continue;
        }
        need_resync = true;
      }
      if (!session_->connected()) {
        need_resync = true;
        fail(Status::unavailable("disconnected from NATS at " + options_.nats_url + ", reconnecting"));
        continue;
      }
      {
        std::lock_guard g(mu_);
        if (publish_failed_) {
          need_resync = true;
          reason_ = publish_error_;
          ++failures_;
        } else if (pending_ > 0 && Clock::now() - last_ack_at_ > options_.ack_timeout) {
          need_resync = true;
          reason_ = "no publish ack for " + std::to_string(options_.ack_timeout.count()) + " ms";
          ++failures_;
        }
      }
      if (need_resync) {
        Status st = resync();
        if (!st.is_ok()) {
          fail(st);
          continue;
        }
        need_resync = false;
      }
      bool published_any = false;
      Status st = publish_some(published_any);
      if (!st.is_ok()) {
        need_resync = true;
        fail(st);
        continue;
      }
      std::int64_t acked;
      {
        std::lock_guard g(mu_);
        acked = acked_through_;
        if (!publish_failed_) {
          reason_.clear();
          leader_ = true;
          backoff_ = options_.retry_initial;
        }
      }
      if (acked != saved_checkpoint_ && Clock::now() - last_save_ >= options_.checkpoint_interval) save_checkpoint(acked);
      if (!published_any) {
        std::unique_lock g(mu_);
        if (pending_ >= options_.max_pending_acks) {
          cv_.wait_for(g, std::chrono::milliseconds(50));
        } else {
          g.unlock();
          // Caught up: wait for the next append (or a short tick, for acks, lease and health).
          (void)store_.wait_for(next_ - 1, std::chrono::milliseconds(50));
        }
      }
    }
    if (session_) {
      drain_pending();
      std::int64_t acked;
      {
        std::lock_guard g(mu_);
        acked = acked_through_;
      }
      if (acked != saved_checkpoint_) save_checkpoint(acked);
      drop_session();
    }
    if (options_.use_lease && lease_held_) (void)store_.release_lease(lease_name_, owner_);
    lease_held_ = false;
  }

  EventStore& store_;
  const RelayOptions options_;
  const std::string checkpoint_name_;
  const std::string lease_name_;
  const std::string owner_;

  std::mutex life_mu_;  // serialises start and stop; guards thread_
  std::thread thread_;
  std::atomic_bool stopping_{false};

  // The relay thread's own state (no lock: only run() and what it calls touch it).
  std::unique_ptr<detail::Session> session_;
  std::int64_t next_ = 0;           // next position to publish
  std::string last_id_;             // id of the last message published (the stream's expected last)
  std::int64_t saved_checkpoint_ = -1;
  Clock::time_point last_save_{};
  bool lease_held_ = false;
  std::int64_t lease_token_ = 0;  // the fencing token of the current holding
  Clock::time_point lease_valid_until_{};
  Clock::time_point last_renewal_attempt_{};
  std::chrono::milliseconds backoff_{options_.retry_initial};

  // Shared with libnats's ack thread and health readers; guarded by mu_ (cv_ signals changes).
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t acked_through_ = 0;       // every position below is acked
  std::set<std::int64_t> acked_ahead_;   // acked positions above acked_through_
  std::int64_t pending_ = 0;             // publishes handed to libnats and not yet resolved
  bool publish_failed_ = false;
  std::string publish_error_;
  Clock::time_point last_ack_at_{};
  std::int64_t published_ = 0;
  std::int64_t failures_ = 0;
  bool running_ = false;
  bool leader_ = false;
  std::string reason_;
};

}  // namespace

Result<std::unique_ptr<Relay>> Relay::create(EventStore& store, RelayOptions options) {
  HERALD_RETURN_IF_ERROR(validate(options.stream));
  if (options.nats_url.empty()) return Status::invalid_argument("nats url is empty");
  if (options.max_pending_acks < 1 || options.max_pending_acks > 65536) {
    return Status::invalid_argument("max_pending_acks must be 1 to 65536");
  }
  if (options.read_batch < 1) return Status::invalid_argument("read_batch must be at least 1");
  if (options.ack_timeout < std::chrono::milliseconds(10)) return Status::invalid_argument("ack_timeout must be at least 10 ms");
  if (options.lease_ttl < std::chrono::milliseconds(30)) return Status::invalid_argument("lease_ttl must be at least 30 ms");
  if (options.retry_initial < std::chrono::milliseconds(1) || options.retry_max < options.retry_initial) {
    return Status::invalid_argument("retry_initial must be >= 1 ms and <= retry_max");
  }
  return std::unique_ptr<Relay>(new RelayImpl(store, std::move(options)));
}

}  // namespace herald::jetstream
