#include "system/escaping_log_sink.h"

#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "core/log_text.h"

namespace herald::detail {
namespace {

// Read on every line, by whichever thread logs; written at start-up (set_log_escaping).
std::atomic_bool escaping{true};

// Forwards to `inner`, escaping the message text when it needs it (most lines do not: one scan).
class EscapingSink final : public spdlog::sinks::sink {
 public:
  explicit EscapingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {
    set_level(inner_->level());
  }

  void log(const spdlog::details::log_msg& msg) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (!escaping.load(std::memory_order_relaxed) || is_log_safe(text)) {
      inner_->log(msg);
      return;
    }
    const std::string escaped = escape_for_log(text);
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    inner_->log(copy);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

 private:
  const std::shared_ptr<spdlog::sinks::sink> inner_;  // thread-safe sinks (the _mt kind)
};

}  // namespace

void install_escaping_log_sinks() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto current = spdlog::default_logger();
    std::vector<spdlog::sink_ptr> wrapped;
    for (const auto& s : current->sinks()) {
      if (std::dynamic_pointer_cast<EscapingSink>(s)) {
        wrapped.push_back(s);
      } else {
        wrapped.push_back(std::make_shared<EscapingSink>(s));
      }
    }
    auto logger = std::make_shared<spdlog::logger>(current->name(), wrapped.begin(), wrapped.end());
    logger->set_level(current->level());
    logger->flush_on(current->flush_level());
    spdlog::set_default_logger(std::move(logger));
  });
}

void set_log_escaping(bool escape) noexcept { escaping.store(escape, std::memory_order_relaxed); }

}  // namespace herald::detail
