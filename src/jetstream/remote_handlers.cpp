// Remote handlers: durable pull consumers (one per handler and partition, MaxAckPending 1) that
// call herald::EventHandler classes and settle each message with ack, nak-with-delay or term.
#include <nats/nats.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "bus/dispatch_context.h"
#include "herald/jetstream.h"
#include "jetstream/event_message.h"
#include "jetstream/nats_session.h"

namespace herald::jetstream {
namespace {

double unit_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

struct Registered {
  std::shared_ptr<EventHandler> handler;
  RetryPolicy retry;
  // Counters, written by the handler's partition threads; guarded by RemoteHandlersImpl::stats_mu_.
  RemoteHandlerStats stats;
};

class RemoteHandlersImpl final : public RemoteHandlers {
 public:
  RemoteHandlersImpl(EventStore& store, RemoteHandlerOptions options) : store_(store), options_(std::move(options)) {}
  ~RemoteHandlersImpl() override { stop(); }

  Status add(std::shared_ptr<EventHandler> handler, RetryPolicy retry) override {
    if (handler == nullptr) return Status::invalid_argument("handler is null");
    const std::string name = handler->name();
    if (name.empty()) return Status::invalid_argument("handler name is empty");
    std::lock_guard g(life_mu_);
    if (started_) return Status::failed_precondition("remote handlers already started");
    for (const auto& r : handlers_) {
      if (r->stats.name == name) return Status::already_exists("handler '" + name + "' already added");
    }
    auto r = std::make_unique<Registered>();
    r->handler = std::move(handler);
    r->retry = std::move(retry);
    r->stats.name = name;
    std::lock_guard sg(stats_mu_);
    handlers_.push_back(std::move(r));
    return Status::ok();
  }

  Status start() override {
    std::lock_guard g(life_mu_);
    if (started_) return Status::failed_precondition("remote handlers already started");
    detail::SessionOptions so;
    so.url = options_.nats_url;
    so.name = "herald-remote-handlers";
    auto session = detail::Session::open(so);
    if (!session) return session.status();
    HERALD_RETURN_IF_ERROR(detail::ensure_stream((*session)->js(), options_.stream));
    std::vector<natsSubscription*> subs;
    std::vector<std::pair<Registered*, int>> owners;
    for (auto& r : handlers_) {
      const auto types = r->handler->event_types();
      for (int p = 0; p < options_.stream.partitions; ++p) {
        std::string filter = options_.stream.subject_prefix + ".*.p" + std::to_string(p) + ".";
        filter += types.size() == 1 ? detail::subject_token(types.front()) : std::string("*");
        const std::string durable = detail::subject_token(r->stats.name) + "_p" + std::to_string(p);
        jsSubOptions so2;
        jsSubOptions_Init(&so2);
        so2.Stream = options_.stream.name.c_str();
        so2.Config.AckPolicy = js_AckExplicit;
        so2.Config.MaxAckPending = 1;  // the partition's order: nothing later before this settles
        so2.Config.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.ack_wait).count();
        so2.Config.MaxDeliver = -1;    // the RetryPolicy decides when to give up, not the server
        natsSubscription* sub = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus s = js_PullSubscribe(&sub, (*session)->js(), filter.c_str(), durable.c_str(), nullptr, &so2, &jerr);
        if (s != NATS_OK) {
          for (auto* x : subs) natsSubscription_Destroy(x);
          return detail::nats_error(s, "pull consumer " + durable, jerr);
        }
        subs.push_back(sub);
        owners.emplace_back(r.get(), p);
      }
    }
    session_ = std::move(*session);
    stopping_ = false;
    for (std::size_t i = 0; i < subs.size(); ++i) {
      subs_.push_back(subs[i]);
      threads_.emplace_back([this, sub = subs[i], r = owners[i].first] { run_partition(sub, *r); });
    }
    started_ = true;
    return Status::ok();
  }

  void stop() override {
    std::lock_guard g(life_mu_);
    if (!started_) return;
    stopping_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
    // Destroy without unsubscribing: the durable consumers (and their positions) stay.
    for (auto* s : subs_) natsSubscription_Destroy(s);
    subs_.clear();
    session_.reset();
    started_ = false;
  }

  std::vector<RemoteHandlerStats> stats() const override {
    std::vector<RemoteHandlerStats> out;
    std::lock_guard g(stats_mu_);
    for (const auto& r : handlers_) out.push_back(r->stats);
    return out;
  }

 private:
  void count(std::int64_t RemoteHandlerStats::*field, Registered& r) {
    std::lock_guard g(stats_mu_);
    ++(r.stats.*field);
  }

  // A dead letter in this process's store; a second one for the same event is fine (kept once).
  void dead_letter(Registered& r, const RecordedEvent* e, natsMsg* msg, std::uint64_t stream_seq, int attempts,
                   const Status& why) {
    DeadLetter d;
    d.handler = r.stats.name;
    if (e != nullptr) {
      d.position = e->position;
      d.event_id = e->id;
      d.event_type = e->type;
      d.stream_id = e->stream_id;
    } else {
      // Not a Herald event: named by its JetStream sequence, so each such message has its own entry.
      d.position = static_cast<std::int64_t>(stream_seq);
      d.event_id = "jetstream-seq-" + std::to_string(stream_seq);
      d.event_type = natsMsg_GetSubject(msg);
      d.stream_id = "(not a Herald event)";
    }
    d.attempts = attempts;
    d.last_error = why.to_string();
    const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    d.first_failed_at = now;
    d.last_failed_at = now;
    auto added = store_.add_dead_letter(d);
    if (!added && added.status().code() != StatusCode::already_exists) {
      // The dead letter could not be written: leave the message to be redelivered instead.
      natsMsg_NakWithDelay(msg, 1000, nullptr);
      return;
    }
    natsMsg_Term(msg, nullptr);
    count(&RemoteHandlerStats::dead_lettered, r);
  }

  void handle_message(natsMsg* msg, Registered& r, bus::DispatchContext& dispatch) {
    jsMsgMetaData* meta = nullptr;
    int attempt = 1;
    std::uint64_t seq = 0;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      attempt = static_cast<int>(std::min<std::uint64_t>(meta->NumDelivered, 1'000'000));
      seq = meta->Sequence.Stream;
      jsMsgMetaData_Destroy(meta);
    }
    auto event = detail::decode_event_message(msg);
    if (!event) {
      dead_letter(r, nullptr, msg, seq, attempt, event.status());
      return;
    }
    if (!r.handler->handles(event->type)) {
      natsMsg_Ack(msg, nullptr);
      count(&RemoteHandlerStats::skipped, r);
      return;
    }
    dispatch.begin_call(attempt);
    Status st = bus::call_handler(*r.handler, *event, dispatch.context());
    if (st.is_ok()) {
      natsMsg_Ack(msg, nullptr);
      count(&RemoteHandlerStats::processed, r);
      return;
    }
    if (st.code() == StatusCode::cancelled && stopping_) {
      natsMsg_Nak(msg, nullptr);  // handled again after the restart
      return;
    }
    if (r.retry.is_retryable(st) && attempt < r.retry.max_attempts) {
      natsMsg_NakWithDelay(msg, r.retry.delay_after(attempt, unit_random()).count(), nullptr);
      count(&RemoteHandlerStats::retried, r);
      return;
    }
    dead_letter(r, &*event, msg, seq, attempt, st);
  }

  void run_partition(natsSubscription* sub, Registered& r) {
    bus::DispatchContext dispatch(store_, r.stats.name, &stopping_);
    while (!stopping_) {
      natsMsgList list{};
      natsStatus s = natsSubscription_Fetch(&list, sub, 1, options_.fetch_wait.count(), nullptr);
      if (s != NATS_OK) {
        natsMsgList_Destroy(&list);
        if (s != NATS_TIMEOUT) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      for (int i = 0; i < list.Count; ++i) handle_message(list.Msgs[i], r, dispatch);
      natsMsgList_Destroy(&list);
    }
  }

  EventStore& store_;
  const RemoteHandlerOptions options_;
  std::mutex life_mu_;  // guards started_, threads_, subs_, session_; handlers_ grows under it and stats_mu_
  bool started_ = false;
  std::vector<std::unique_ptr<Registered>> handlers_;
  std::vector<std::thread> threads_;
  std::vector<natsSubscription*> subs_;
  std::unique_ptr<detail::Session> session_;
  std::atomic_bool stopping_{false};
  mutable std::mutex stats_mu_;  // guards every Registered::stats
};

}  // namespace

Result<std::unique_ptr<RemoteHandlers>> RemoteHandlers::create(EventStore& store, RemoteHandlerOptions options) {
  HERALD_RETURN_IF_ERROR(validate(options.stream));
  if (options.nats_url.empty()) return Status::invalid_argument("nats url is empty");
  if (options.ack_wait < std::chrono::milliseconds(100)) return Status::invalid_argument("ack_wait must be at least 100 ms");
  if (options.fetch_wait < std::chrono::milliseconds(10)) return Status::invalid_argument("fetch_wait must be at least 10 ms");
  return std::unique_ptr<RemoteHandlers>(new RemoteHandlersImpl(store, std::move(options)));
}

}  // namespace herald::jetstream
