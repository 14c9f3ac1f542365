#include "stream_reader.h"

#include <nats/nats.h>

#include <vector>

namespace herald::testing {

namespace {
std::string header(natsMsg* m, const char* key) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, key, &v) != NATS_OK || v == nullptr) return "";
  return v;
}
}  // namespace

namespace {
std::vector<StreamMessage> read_stream_once(const std::string& url, const std::string& stream,
                                            const std::string& subjects, std::string& error);
}

std::vector<StreamMessage> read_stream(const std::string& url, const std::string& stream, const std::string& subjects,
                                       std::string& error) {
  // A cluster that just lost or regained a node may stall one ordered consumer; a fresh one then
  // reads the same stream again from its first message.
  std::vector<StreamMessage> out;
  for (int attempt = 0; attempt < 3; ++attempt) {
    error.clear();
    out = read_stream_once(url, stream, subjects, error);
    if (error.empty()) break;
  }
  return out;
}

namespace {
std::vector<StreamMessage> read_stream_once(const std::string& url, const std::string& stream,
                                            const std::string& subjects, std::string& error) {
  std::vector<StreamMessage> out;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_ConnectTo(&nc, url.c_str());
  if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, nullptr);
  jsStreamInfo* si = nullptr;
  std::uint64_t last_seq = 0;
  if (s == NATS_OK) s = js_GetStreamInfo(&si, js, stream.c_str(), nullptr, nullptr);
  if (s == NATS_OK) {
    last_seq = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
  }
  if (s == NATS_OK && last_seq > 0) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Ordered = true;
    s = js_SubscribeSync(&sub, js, subjects.c_str(), nullptr, &so, nullptr);
  }
  while (s == NATS_OK && sub != nullptr) {
    natsMsg* m = nullptr;
    s = natsSubscription_NextMsg(&m, sub, 10'000);
    if (s != NATS_OK) break;
    jsMsgMetaData* meta = nullptr;
    StreamMessage sm;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
      sm.sequence = meta->Sequence.Stream;
      jsMsgMetaData_Destroy(meta);
    }
    const std::string pos = header(m, "Herald-Position");
    sm.position = pos.empty() ? -1 : std::stoll(pos);
    sm.id = header(m, "Nats-Msg-Id");
    sm.subject = natsMsg_GetSubject(m);
    sm.stream_id = header(m, "Herald-Stream");
    sm.type = header(m, "Herald-Type");
    sm.payload.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    natsMsg_Destroy(m);
    const bool last = sm.sequence >= last_seq;
    out.push_back(std::move(sm));
    if (last) break;
  }
  if (s != NATS_OK) error = std::string("reading stream ") + stream + ": " + natsStatus_GetText(s);
  if (sub != nullptr) {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  if (js != nullptr) jsCtx_Destroy(js);
  if (nc != nullptr) natsConnection_Destroy(nc);
  return out;
}

}  // namespace

std::string stream_leader(const std::string& url, const std::string& stream) {
  std::string leader;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  jsStreamInfo* si = nullptr;
  natsOptions* opts = nullptr;
  std::vector<std::string> urls;
  for (std::size_t start = 0; start <= url.size();) {
    std::size_t end = url.find(',', start);
    if (end == std::string::npos) end = url.size();
    if (end > start) urls.push_back(url.substr(start, end - start));
    start = end + 1;
  }
  std::vector<const char*> ptrs;
  for (auto& u : urls) ptrs.push_back(u.c_str());
  natsOptions_Create(&opts);
  natsOptions_SetServers(opts, ptrs.data(), static_cast<int>(ptrs.size()));
  if (natsConnection_Connect(&nc, opts) == NATS_OK && natsConnection_JetStream(&js, nc, nullptr) == NATS_OK &&
      js_GetStreamInfo(&si, js, stream.c_str(), nullptr, nullptr) == NATS_OK) {
    if (si->Cluster != nullptr && si->Cluster->Leader != nullptr) leader = si->Cluster->Leader;
    jsStreamInfo_Destroy(si);
  }
  if (js != nullptr) jsCtx_Destroy(js);
  if (nc != nullptr) natsConnection_Destroy(nc);
  natsOptions_Destroy(opts);
  return leader;
}

std::string check_exactly_once_in_order(const std::vector<StreamMessage>& messages, std::int64_t n) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].position != static_cast<std::int64_t>(i)) {
      return "message " + std::to_string(i) + " (sequence " + std::to_string(messages[i].sequence) + ") has position " +
             std::to_string(messages[i].position);
    }
  }
  if (static_cast<std::int64_t>(messages.size()) != n) {
    return "the stream holds " + std::to_string(messages.size()) + " messages, the store " + std::to_string(n);
  }
  return "";
}

}  // namespace herald::testing
