// libFuzzer target: the HTTP layer above the socket. Every input is one request (method, target,
// headers, body; layout in fuzz/README.md) handed to the RequestPipeline in front of the router
// of the whole shop (the eight modules, /health, /metrics and the admin API) over a memory store,
// with the bus running its handlers in the background, exactly as herald_shop assembles it.
//
// Beyond "no crash, no sanitizer report": every answer is a valid status with a JSON error body
// for any 4xx/5xx, and no input may provoke a 500 (a handler that threw, or a bug).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unistd.h>

#include "herald/system.h"
#include "http/request_pipeline.h"
#include "notifications/notifications.h"
#include "shop_modules.h"

namespace {

constexpr const char* kAdminToken = "fuzz-admin-token";

// Renders every message as the real mailers would (a message they would refuse fails here too).
class RenderingMailer final : public shop::notifications::Mailer {
 public:
  herald::Status send(const shop::notifications::Email& email) override {
    auto text = shop::notifications::render_rfc5322(email);
    return text ? herald::Status::ok() : text.status();
  }
};

struct Shop {
  std::unique_ptr<herald::EventSystem> system;
  std::unique_ptr<herald::http::detail::RequestPipeline> pipeline;
};

Shop& shop_instance() {
  // Built once and never destroyed: libFuzzer exits from inside its loop, with the bus running.
  static Shop* shop = [] {
    auto* s = new Shop;
    herald::SystemConfig config;
    const auto dir = std::filesystem::temp_directory_path() / ("herald-fuzz-http-" + std::to_string(::getpid()));
    config.data_dir = dir.string();
    config.store_url = "memory:";
    config.http_enabled = false;
    config.http.admin_token = kAdminToken;
    config.log_level = "off";  // the access log of every request would dominate the run
    s->system = std::make_unique<herald::EventSystem>(config);
    shop::ShopOverrides overrides;
    overrides.mailer = std::make_shared<RenderingMailer>();
    for (auto& m : shop::make_modules(overrides)) {
      if (!s->system->add_module(std::move(m))) std::abort();
    }
    if (auto st = s->system->initialize(); !st) {
      std::fprintf(stderr, "fuzz_http: initialize: %s\n", st.to_string().c_str());
      std::abort();
    }
    // The router lives as long as the system, which is never destroyed.
    std::shared_ptr<const herald::http::Router> router(&s->system->router(), [](const herald::http::Router*) {});
    s->pipeline = std::make_unique<herald::http::detail::RequestPipeline>(router, config.http);
    return s;
  }();
  return *shop;
}

// Splits off the next line (without its '\n'); the rest stays in `in`.
std::string_view next_line(std::string_view& in) {
  const auto nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shop_instance();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  herald::http::detail::RawRequest req;
  // Line 1: METHOD SP TARGET; then header lines "name: value" up to an empty line; then the body.
  std::string_view request_line = next_line(in);
  const auto sp = request_line.find(' ');
  req.method = std::string(request_line.substr(0, sp));
  req.target = sp == std::string_view::npos ? std::string("/") : std::string(request_line.substr(sp + 1));
  req.version = "HTTP/1.1";
  req.remote_addr = "127.0.0.1";
  bool has_host = false;
  while (!in.empty()) {
    std::string_view line = next_line(in);
    if (line.empty()) break;
    const auto colon = line.find(':');
    std::string name(line.substr(0, colon));
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "@admin") {  // shorthand, so the fuzzer reaches admin routes without learning the token
      req.headers.emplace_back("Authorization", std::string("Bearer ") + kAdminToken);
      continue;
    }
    if (name.size() == 4 && (name[0] | 0x20) == 'h') has_host = true;
    req.headers.emplace_back(std::move(name), std::string(value));
  }
  if (!has_host) req.headers.emplace_back("Host", "127.0.0.1:8080");
  req.body = std::string(in);
  bool has_length = false;
  for (const auto& [k, v] : req.headers) has_length |= k.size() == 14 && (k[0] | 0x20) == 'c' && (k[7] | 0x20) == 'l';
  if (!has_length && !req.body.empty()) req.headers.emplace_back("Content-Length", std::to_string(req.body.size()));

  auto answer = shop_instance().pipeline->handle(req);
  const auto& r = answer.response;
  if (r.status < 100 || r.status > 599) std::abort();
  if (r.status == 500) {
    std::fprintf(stderr, "fuzz_http: 500 for %s %s: %s\n", req.method.c_str(), req.target.c_str(), r.body.c_str());
    std::abort();
  }
  if (r.status >= 400 && r.content_type == "application/json") {
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("error") || !body["error"].is_string()) {
      std::fprintf(stderr, "fuzz_http: %d without an error body: %s\n", r.status, r.body.c_str());
      std::abort();
    }
  }
  return 0;
}
