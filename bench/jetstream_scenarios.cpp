// relay_jetstream beside its baseline naive_jetstream_async_publish: events/s from the store to
// acknowledged JetStream messages, and the same number of messages published by a plain libnats
// async loop with no store, against the nats-server of --nats-url (skipped without one). Each
// scenario uses a stream of its own, deleted afterwards.
#include <nats/nats.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "bench.h"
#include "herald/id.h"
#include "herald/jetstream.h"

namespace herald::bench {
namespace {

constexpr std::int64_t kDefaultEvents = 100'000;

std::string fresh_stream_name(const char* what) {
  static std::atomic_int counter{0};
  return std::string("BENCH_") + what + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

Json skipped(const char* name, const char* why) {
  Json j;
  j["scenario"] = name;
  j["skipped"] = why;
  return j;
}

void delete_stream(const std::string& url, const std::string& stream) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK && natsConnection_JetStream(&js, nc, nullptr) == NATS_OK) {
    js_DeleteStream(js, stream.c_str(), nullptr, nullptr);
  }
  if (js != nullptr) jsCtx_Destroy(js);
  if (nc != nullptr) natsConnection_Destroy(nc);
}

Result<Json> run_relay_jetstream(const Options& opt) {
  if (opt.nats_url.empty()) return skipped("relay_jetstream", "no --nats-url");
  const std::int64_t n = opt.events > 0 ? opt.events : kDefaultEvents;
  auto fresh = FreshStore::open(opt, opt.kind);
  if (!fresh) return fresh.status();
  EventStore& store = (*fresh)->store();
  for (std::int64_t i = 0; i < n; i += 100) {
    auto r = store.append("bench-" + std::to_string(i % 997), ExpectedVersion::any(),
                          make_events(i, static_cast<std::size_t>(std::min<std::int64_t>(100, n - i))));
    if (!r) return r.status();
  }
  jetstream::RelayOptions ro;
  ro.nats_url = opt.nats_url;
  ro.stream.name = fresh_stream_name("relay");
  ro.stream.subject_prefix = "bench." + ro.stream.name;
  ro.use_lease = false;
  auto relay = jetstream::Relay::create(store, ro);
  if (!relay) return relay.status();
  const auto t0 = std::chrono::steady_clock::now();
  HERALD_RETURN_IF_ERROR((*relay)->start());
  Status done = (*relay)->wait_relayed(store.head_position(), std::chrono::minutes(5));
  const auto t1 = std::chrono::steady_clock::now();
  const std::string reason = (*relay)->health().reason;
  (*relay)->stop();
  delete_stream(opt.nats_url, ro.stream.name);
  if (!done.is_ok()) return Status::timeout("relay did not finish: " + reason);
  Json j = base_result("relay_jetstream", (*fresh)->kind(), n, seconds_between(t0, t1));
  j["max_pending_acks"] = ro.max_pending_acks;
  return j;
}

struct NaiveAcks {
  std::atomic_int64_t acked{0};
  std::atomic_int64_t failed{0};
};

void naive_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* acks = static_cast<NaiveAcks*>(closure);
  if (pa != nullptr && pae == nullptr) {
    acks->acked.fetch_add(1, std::memory_order_relaxed);
  } else {
    acks->failed.fetch_add(1, std::memory_order_relaxed);
  }
  natsMsg_Destroy(msg);
}

Result<Json> run_naive_jetstream_async_publish(const Options& opt) {
  if (opt.nats_url.empty()) return skipped("naive_jetstream_async_publish", "no --nats-url");
  const std::int64_t n = opt.events > 0 ? opt.events : kDefaultEvents;
  jetstream::StreamSettings settings;
  settings.name = fresh_stream_name("naive");
  settings.subject_prefix = "bench." + settings.name;
  HERALD_RETURN_IF_ERROR(jetstream::ensure_stream(opt.nats_url, settings));
  NaiveAcks acks;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  if (natsConnection_ConnectTo(&nc, opt.nats_url.c_str()) != NATS_OK) return Status::unavailable("connect");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 1024;  // the relay's default window
  jo.PublishAsync.AckHandler = naive_ack;
  jo.PublishAsync.AckHandlerClosure = &acks;
  natsConnection_JetStream(&js, nc, &jo);
  // The same ids, subjects and payloads a relay would send, with the same headers.
  std::vector<std::string> ids;
  ids.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) ids.push_back(new_uuid_v7());
  const std::string payload = make_payload(0);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::string subject = settings.subject_prefix + ".bench.p" + std::to_string(i % 16) + ".BenchEvent";
    natsMsg* m = nullptr;
    natsMsg_Create(&m, subject.c_str(), nullptr, payload.data(), static_cast<int>(payload.size()));
    natsMsgHeader_Set(m, "Herald-Position", std::to_string(i).c_str());
    natsMsgHeader_Set(m, "Herald-Stream", "bench-1");
    natsMsgHeader_Set(m, "Herald-Type", "BenchEvent");
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = ids[static_cast<std::size_t>(i)].c_str();
    if (js_PublishMsgAsync(js, &m, &po) != NATS_OK) acks.failed.fetch_add(1);
    natsMsg_Destroy(m);
  }
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = 60'000;
  js_PublishAsyncComplete(js, &wait);
  const auto t1 = std::chrono::steady_clock::now();
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  delete_stream(opt.nats_url, settings.name);
  if (acks.failed > 0) return Status::unavailable(std::to_string(acks.failed.load()) + " publishes failed");
  Json j = base_result("naive_jetstream_async_publish", opt.kind, n, seconds_between(t0, t1));
  j["store"] = "none";
  return j;
}

}  // namespace

void register_jetstream_scenarios(Registry& r) {
  r.add({"naive_jetstream_async_publish",
         "baseline: --events messages published by a plain libnats async loop (window 1024), no store",
         run_naive_jetstream_async_publish});
  r.add({"relay_jetstream", "events/s from the --store log to acknowledged JetStream messages (the relay)",
         run_relay_jetstream});
}

}  // namespace herald::bench
