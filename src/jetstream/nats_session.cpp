#include "jetstream/nats_session.h"

#include <string>
#include <vector>

namespace herald::jetstream::detail {

Status nats_error(natsStatus s, std::string_view what, jsErrCode js_code) {
  std::string text(what);
  text += ": ";
  text += natsStatus_GetText(s);
  if (js_code != 0) text += " (JetStream error " + std::to_string(static_cast<int>(js_code)) + ")";
  switch (s) {
    case NATS_TIMEOUT:
      return Status::timeout(std::move(text));
    case NATS_CONNECTION_CLOSED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_IO_ERROR:
      return Status::unavailable(std::move(text));
    default:
      // JetStream answered with a refusal (a stream config clash, a wrong expected last id …).
      if (js_code != 0) return Status::failed_precondition(std::move(text));
      return Status::unavailable(std::move(text));
  }
}

Result<std::unique_ptr<Session>> Session::open(const SessionOptions& options) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return nats_error(s, "nats options");
  struct OptionsGuard {
    natsOptions* o;
    ~OptionsGuard() { natsOptions_Destroy(o); }
  } guard{opts};
  // A comma-separated list names the servers of a cluster (SetURL takes one URL only).
  std::vector<std::string> urls;
  for (std::size_t start = 0; start <= options.url.size();) {
    std::size_t end = options.url.find(',', start);
    if (end == std::string::npos) end = options.url.size();
    std::string one = options.url.substr(start, end - start);
    while (!one.empty() && one.front() == ' ') one.erase(0, 1);
    while (!one.empty() && one.back() == ' ') one.pop_back();
    if (!one.empty()) urls.push_back(std::move(one));
    start = end + 1;
  }
  if (urls.empty()) return Status::invalid_argument("nats url is empty");
  std::vector<const char*> url_ptrs;
  for (const auto& u : urls) url_ptrs.push_back(u.c_str());
  s = natsOptions_SetServers(opts, url_ptrs.data(), static_cast<int>(url_ptrs.size()));
  if (s != NATS_OK) return Status::invalid_argument("nats url '" + options.url + "': " + natsStatus_GetText(s));
  if (!options.name.empty()) natsOptions_SetName(opts, options.name.c_str());
  // Reconnect for ever: an outage is waited out, never turned into a closed connection.
  natsOptions_SetAllowReconnect(opts, true);
  natsOptions_SetMaxReconnect(opts, -1);
  natsOptions_SetReconnectWait(opts, 250);
  natsOptions_SetTimeout(opts, 2000);
  natsOptions_SetFailRequestsOnDisconnect(opts, true);
  natsOptions_SetPingInterval(opts, 1000);
  natsOptions_SetMaxPingsOut(opts, 3);

  std::unique_ptr<Session> session(new Session());
  s = natsConnection_Connect(&session->nc_, opts);
  if (s != NATS_OK) return nats_error(s, "connect to " + options.url);

  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options.request_wait_ms;
  jo.PublishAsync.AckHandler = options.ack_handler;
  jo.PublishAsync.AckHandlerClosure = options.ack_closure;
  if (options.max_pending_async > 0) jo.PublishAsync.MaxPending = options.max_pending_async;
  s = natsConnection_JetStream(&session->js_, session->nc_, &jo);
  if (s != NATS_OK) return nats_error(s, "JetStream context");
  return session;
}

Session::~Session() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

std::string stream_subjects(const StreamSettings& settings) { return settings.subject_prefix + ".>"; }

Status ensure_stream(jsCtx* js, const StreamSettings& settings) {
  const std::string subjects = stream_subjects(settings);
  const std::int64_t dup_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(settings.duplicate_window).count();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js, settings.name.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    struct InfoGuard {
      jsStreamInfo* p;
      ~InfoGuard() { jsStreamInfo_Destroy(p); }
    } guard{si};
    const jsStreamConfig* c = si->Config;
    std::string problems;
    bool has_subject = false;
    for (int i = 0; i < c->SubjectsLen; ++i) has_subject = has_subject || subjects == c->Subjects[i];
    if (!has_subject) problems += " subjects do not include '" + subjects + "';";
    if (c->Storage != js_FileStorage) problems += " storage is memory, not file;";
    if (c->Replicas != settings.replicas && !(c->Replicas == 0 && settings.replicas == 1)) {
      problems += " replicas " + std::to_string(c->Replicas) + ", configured " + std::to_string(settings.replicas) + ";";
    }
    if (c->Duplicates != dup_ns) {
      problems += " duplicate window " + std::to_string(c->Duplicates / 1'000'000) + " ms, configured " +
                  std::to_string(settings.duplicate_window.count()) + " ms;";
    }
    if (c->Retention != js_LimitsPolicy) problems += " retention is not limits;";
    if (!problems.empty()) {
      problems.pop_back();
      return Status::failed_precondition("JetStream stream '" + settings.name +
                                         "' exists with a different configuration:" + problems);
    }
    return Status::ok();
  }
  if (jerr != JSStreamNotFoundErr) return nats_error(s, "stream info of '" + settings.name + "'", jerr);

  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = settings.name.c_str();
  const char* subject_list[] = {subjects.c_str()};
  cfg.Subjects = subject_list;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Retention = js_LimitsPolicy;
  cfg.Replicas = settings.replicas;
  cfg.Duplicates = dup_ns;
  s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
  if (s != NATS_OK) return nats_error(s, "create stream '" + settings.name + "'", jerr);
  jsStreamInfo_Destroy(si);
  return Status::ok();
}

}  // namespace herald::jetstream::detail
