// libFuzzer target: store URLs (open_store and the PostgreSQL URL's redaction for logs).
//   - open_store on any text answers a store or invalid_argument/unavailable, never crashes.
//     A sqlite:// URL's path is confined to a scratch directory (its '/' become '_'), so the
//     fuzzer cannot write files elsewhere; postgres:// URLs are not opened (that would dial the
//     network) but parsed by libpq, and
//   - pg::redact_url, which every log line and error message naming a PostgreSQL URL goes
//     through, must leave no password that libpq would read from the URL.
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "herald/event_store.h"
#include "store/postgres/pg_support.h"

namespace {

const std::filesystem::path& scratch() {
  static const auto dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("herald-fuzz-url-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// The password libpq would use from `conninfo`, or nullopt when it does not parse or has none.
std::optional<std::string> libpq_password(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &err);
  if (err != nullptr) PQfreemem(err);
  if (options == nullptr) return std::nullopt;
  std::optional<std::string> password;
  for (auto* o = options; o->keyword != nullptr; ++o) {
    if (std::strcmp(o->keyword, "password") == 0 && o->val != nullptr && o->val[0] != '\0') password = o->val;
  }
  PQconninfoFree(options);
  return password;
}

void check_postgres(const std::string& url) {
  const std::string redacted = herald::detail::pg::redact_url(url);
  if (auto pw = libpq_password(redacted)) {
    std::fprintf(stderr, "fuzz_store_url: redact_url kept the password '%s' of %s in '%s'\n", pw->c_str(),
                 url.c_str(), redacted.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string url(reinterpret_cast<const char*>(data), size);
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    check_postgres(url);
    return 0;
  }
  if (url.starts_with("sqlite://") && url.size() > 9) {
    std::string name = url.substr(9);
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    if (name.size() > 200) name.resize(200);
    url = "sqlite://" + (scratch() / name).string();
  }
  auto store = herald::open_store(url);
  if (!store) {
    const auto code = store.status().code();
    if (code != herald::StatusCode::invalid_argument && code != herald::StatusCode::unavailable) {
      std::fprintf(stderr, "fuzz_store_url: %s: %s\n", url.c_str(), store.status().to_string().c_str());
      std::abort();
    }
  } else {
    (void)(*store)->head_position();
    store->reset();
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(scratch(), ec)) std::filesystem::remove_all(entry, ec);
  return 0;
}
