#include "system/log_format.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <string>

#include "core/log_context.h"
#include "core/log_text.h"
#include "system/escaping_log_sink.h"

namespace herald::detail {
namespace {

// RFC 3339 in UTC with microseconds, the precision spdlog's clock gives.
void append_time(spdlog::log_clock::time_point t, std::string& out) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  long frac = static_cast<long>(us % 1'000'000);
  if (frac < 0) {  // before 1970: the remainder's sign follows the dividend
    frac += 1'000'000;
    --secs;
  }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];  // room for any int the compiler cannot rule out (-Wformat-truncation)
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  out += buf;
}

void append_field(std::string_view name, std::string_view value, std::string& out) {
  out += ",\"";
  out += name;
  out += "\":\"";
  append_json_escaped(value, out);
  out += '"';
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    // One reusable buffer per thread: a line is built without allocating once it has warmed up.
    thread_local std::string line;
    line.clear();
    line += "{\"time\":\"";
    append_time(msg.time, line);
    line += "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += '"';
    const std::string_view logger(msg.logger_name.data(), msg.logger_name.size());
    append_field("logger", logger.empty() ? std::string_view("herald") : logger, line);
    append_field("message", std::string_view(msg.payload.data(), msg.payload.size()), line);
    const LogContext& ctx = current_log_context;
    if (!ctx.request_id.empty()) append_field("request_id", ctx.request_id, line);
    if (ctx.handler != nullptr) append_field("handler", *ctx.handler, line);
    if (ctx.event != nullptr) {
      append_field("event_id", ctx.event->id, line);
      append_field("stream", ctx.event->stream_id, line);
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view name) noexcept {
  if (name == "text") return LogFormat::text;
  if (name == "json") return LogFormat::json;
  return std::nullopt;
}

std::unique_ptr<spdlog::formatter> make_json_log_formatter() { return std::make_unique<JsonFormatter>(); }

void apply_log_format(LogFormat format) {
  install_escaping_log_sinks();
  static LogFormat current = LogFormat::text;  // what the sinks were last given (start-up only)
  set_log_escaping(format == LogFormat::text);
  if (format == LogFormat::json) {
    // Every time, not only on a change: a sink added since the last call gets the formatter too.
    spdlog::default_logger()->set_formatter(make_json_log_formatter());
  } else if (current == LogFormat::json) {
    spdlog::default_logger()->set_pattern("%+");  // spdlog's default; a pattern set by the program is kept otherwise
  }
  current = format;
}

}  // namespace herald::detail
