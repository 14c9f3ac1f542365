#include "store/postgres/pg_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <utility>

#include "store/postgres/pg_sql.h"
#include "store/postgres/pg_support.h"

namespace herald::detail::pg {

PgListener::PgListener(std::string url, std::chrono::milliseconds poll_interval, HeadSignal& head)
    : url_(std::move(url)), poll_interval_(poll_interval), head_(head) {}

PgListener::~PgListener() {
  stop();
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status PgListener::start() {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::internal("eventfd failed");
  try {
    thread_ = std::thread([this] { listen_loop(); });
  } catch (const std::system_error& e) {
    return Status::internal(std::string("cannot start the store's threads: ") + e.what());
  }
  return {};
}

void PgListener::wake() {
  if (wake_fd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void PgListener::stop() {
  stopping_.store(true);
  wake();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void PgListener::listen_loop() {
  Conn conn;
  std::string notify_prefix;  // "<our schema>:"; other schemas' notifications are not ours
  auto last_poll = std::chrono::steady_clock::now();
  while (!stopping_.load()) {
    if (!conn) {
      auto c = connect(url_);
      auto schema = c ? exec(c->get(), sql::kCurrentSchema, {}, "listen") : Result<Rows>(c.status());
      if (schema && !schema->is_null(0, 0) && exec_simple(c->get(), sql::kListen, "listen").is_ok()) {
        notify_prefix = schema->str(0, 0) + ":";
        conn = std::move(*c);
        // Notifications sent while we were not listening are lost: catch up once.
        poll_head(conn.get());
      }
    }
    const bool waiting = waiting_.load() > 0;
    constexpr std::chrono::milliseconds kIdle{1000};
    // Without a connection, retry it at least every second whatever the poll interval is.
    const auto interval = !conn     ? std::min(poll_interval_, kIdle)
                          : waiting ? poll_interval_
                                    : kIdle;
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {conn ? PQsocket(conn.get()) : -1, POLLIN, 0}};
    const int ready = ::poll(fds, conn ? 2 : 1, static_cast<int>(interval.count()));
    if (stopping_.load()) break;
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
      std::uint64_t drained = 0;
      [[maybe_unused]] auto n = ::read(wake_fd_, &drained, sizeof drained);
    }
    if (conn && ready > 0 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
      if (PQconsumeInput(conn.get()) == 0) {
        conn.reset();
        continue;
      }
      while (PGnotify* n = PQnotifies(conn.get())) {
        std::int64_t h = -1;
        if (n->extra != nullptr) {
          std::string_view text(n->extra);
          if (text.starts_with(notify_prefix)) {
            text.remove_prefix(notify_prefix.size());
            std::from_chars(text.data(), text.data() + text.size(), h);
          }
        }
        PQfreemem(n);
        head_.publish(h);
      }
    }
    // The fallback: while someone waits, ask the database now and then.
    const auto now = std::chrono::steady_clock::now();
    if (waiting_.load() > 0 && now - last_poll >= poll_interval_) {
      last_poll = now;
      if (conn && !poll_head(conn.get())) conn.reset();
    }
  }
}

bool PgListener::poll_head(PGconn* conn) {
  auto r = exec(conn, sql::kReadHead, {}, "poll head");
  if (!r) return false;
  head_.publish(r->i64(0, 0));
  return true;
}

}  // namespace herald::detail::pg
