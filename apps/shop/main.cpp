// herald_shop — the reference shop service: the EventSystem with the eight shop modules.
//
//   herald_shop --data-dir /var/lib/shop --port 8080 [--smtp-url smtp://…] [--port-file PATH]
//               [--session-ttl-seconds N]
//
// Every flag but --port-file and --session-ttl-seconds (how long a sign-in lasts, default 86400)
// is the EventSystem's (see docs/configuration.md). Once serving, it
// prints "herald_shop listening on http://HOST:PORT" on stdout and, with --port-file, writes the
// port to PATH (atomically), which is how tests find a server started with --port 0. SIGINT or
// SIGTERM stops it gracefully.
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>  // environ

#include "herald/system.h"
#include "shop_modules.h"

namespace {

// Takes --port-file PATH / --port-file=PATH out of `args`. Returns false when the flag has no value.
bool take_port_file(std::vector<std::string>& args, std::string& path) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--port-file") {
      if (i + 1 >= args.size()) return false;
      path = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      return true;
    }
    if (args[i].rfind("--port-file=", 0) == 0) {
      path = args[i].substr(std::string("--port-file=").size());
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
      return !path.empty();
    }
  }
  return true;
}

// Takes --session-ttl-seconds N / --session-ttl-seconds=N out of `args`. False for a missing or
// malformed value (an integer from 1 to 31,536,000: one year).
bool take_session_ttl(std::vector<std::string>& args, std::chrono::seconds& ttl) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string value;
    std::size_t taken = 0;
    if (args[i] == "--session-ttl-seconds") {
      if (i + 1 >= args.size()) return false;
      value = args[i + 1];
      taken = 2;
    } else if (args[i].rfind("--session-ttl-seconds=", 0) == 0) {
      value = args[i].substr(std::string("--session-ttl-seconds=").size());
      taken = 1;
    } else {
      continue;
    }
    long long n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > 31'536'000) return false;
    ttl = std::chrono::seconds{n};
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i + taken));
    return true;
  }
  return true;
}

bool write_port_file(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string port_file;
  if (!take_port_file(args, port_file)) {
    std::fprintf(stderr, "herald_shop: --port-file needs a path\n");
    return 2;
  }
  shop::ShopOverrides overrides;
  if (!take_session_ttl(args, overrides.auth.session_ttl)) {
    std::fprintf(stderr, "herald_shop: --session-ttl-seconds needs an integer from 1 to 31536000\n");
    return 2;
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  auto parsed = herald::parse_config(args, env, "herald_shop");
  if (!parsed) {
    std::fprintf(stderr, "herald_shop: %s\n", parsed.status().message().c_str());
    return 2;
  }
  if (parsed->version) {
    std::fputs(parsed->version->c_str(), stdout);
    return 0;
  }
  if (parsed->help) {
    std::fputs(parsed->help->c_str(), stdout);
    std::fputs("  --port-file PATH        write the bound HTTP port to PATH once serving\n", stdout);
    std::fputs("  --session-ttl-seconds N how long a sign-in's bearer token lasts (default 86400)\n", stdout);
    return 0;
  }

  herald::EventSystem system(parsed->config);
  for (auto& module : shop::make_modules(overrides)) {
    if (auto s = system.add_module(std::move(module)); !s) {
      spdlog::error("herald_shop: {}", s.to_string());
      return 1;
    }
  }
  if (auto s = system.initialize(); !s) {
    spdlog::error("herald_shop: initialize failed: {}", s.to_string());
    return 1;
  }
  const int port = system.http_port();
  std::printf("herald_shop listening on http://%s:%d\n", system.config().http.host.c_str(), port);
  std::fflush(stdout);
  if (!port_file.empty() && !write_port_file(port_file, port)) {
    spdlog::error("herald_shop: cannot write port file {}", port_file);
    system.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    return 1;
  }
  return system.run_until_signal();
}
