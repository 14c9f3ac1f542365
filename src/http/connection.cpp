#include "http/connection.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <exception>

#include "core/log_text.h"
#include "herald/id.h"

namespace herald::http::detail {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Small reads while a header arrives, so that 1,000 slow clients pin 4 KiB each, not 64.
constexpr std::size_t kHeadReadBytes = 4096;
constexpr std::size_t kBodyReadBytes = 16 * 1024;
// How long a closing connection keeps reading (and discarding) what the client still sends: closing
// a socket with unread data makes the kernel send a reset, which can destroy the response before
// the client has read it.
constexpr auto kLingerTime = std::chrono::seconds(1);
// The minimum body rate applies from this long after the header on.
constexpr auto kRateGrace = std::chrono::seconds(1);

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()); }

bool says_close(const Response& r) {
  for (const auto& [name, value] : r.headers) {
    if (name.size() == 10 && std::equal(name.begin(), name.end(), "connection", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      return value.find("close") != std::string::npos;
    }
  }
  return false;
}

// At most one warning a second however many requests find the queue full.
void warn_overloaded(std::size_t queued) {
  static std::atomic<std::int64_t> last_ns{0};
  const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::int64_t last = last_ns.load();
  if (now - last > 1'000'000'000 && last_ns.compare_exchange_strong(last, now)) {
    spdlog::warn("http: every worker is busy and {} requests are queued: answering 503", queued);
  }
}

}  // namespace

Connection::Connection(std::shared_ptr<ServerCore> core, tcp::socket socket, bool counted)
    : core_(std::move(core)),
      socket_(std::move(socket)),
      executor_(socket_.get_executor()),
      timer_(executor_),
      counted_(counted),
      accepted_(Clock::now()) {
  error_code ec;
  auto peer = socket_.remote_endpoint(ec);
  if (!ec) remote_ = peer.address().to_string();
  // The header limit is checked before reading more, so the buffer holds at most a header and one
  // read beyond it: the memory a connection can pin is bounded by the options.
  buffer_.max_size(core_->options.max_header_bytes + kBodyReadBytes);
}

Connection::~Connection() {
  (counted_ ? core_->open_connections : core_->rejecting).fetch_sub(1);
  if (registered_) core_->untrack(registration_);
}

template <class F>
void Connection::guarded(F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("http connection from {}: {}; closing it", remote_, e.what());
    close_now();
  } catch (...) {
    spdlog::error("http connection from {}: unknown exception; closing it", remote_);
    close_now();
  }
}

void Connection::start() noexcept {
  guarded([&] {
    error_code ec;
    socket_.non_blocking(true, ec);  // lets write() send a response at once when the socket takes it
    read_head();
  });
}

void Connection::reject() noexcept {
  guarded([&] {
    error_code ec;
    socket_.non_blocking(true, ec);
    auto r = Response::error(503, "unavailable", "the server has too many connections open; retry later");
    r.headers["Retry-After"] = "1";
    answer_now(std::move(r), new_uuid_v7(), true);
  });
}

void Connection::begin_shutdown() noexcept {
  guarded([&] {
    shutting_down_ = true;
    if (phase_ == Phase::head && idle_) close_now();
  });
}

void Connection::force_close() noexcept { close_now(); }

// ---- reading ----

void Connection::read_head() {
  const auto& o = core_->options;
  phase_ = Phase::head;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(o.max_header_bytes, UINT32_MAX)));
  parser_->body_limit(o.body_limit_bytes);
  parser_->eager(false);  // stop after the header: check_head decides before the body is read
  head_consumed_ = 0;
  deadline_hit_ = false;
  if (buffer_.size() == 0) {
    idle_ = true;
    if (shutting_down_ || core_->stopping.load()) return close_now();
    arm(first_request_ ? accepted_ + o.header_timeout : Clock::now() + o.idle_timeout);
    read_more();
  } else {
    idle_ = false;  // a pipelined request is already here
    arm(Clock::now() + o.header_timeout);
    parse();
  }
}

void Connection::read_more() {
  const std::size_t room = buffer_.max_size() - buffer_.size();
  // The header limit is enforced before this, so only an endless chunk header gets here.
  if (room == 0) return refuse(Refusal{400, "bad_request", "a chunk header is too long"});
  const std::size_t want = phase_ == Phase::body ? kBodyReadBytes : kHeadReadBytes;
  socket_.async_read_some(buffer_.prepare(std::min(want, room)),
                          [self = shared_from_this()](const error_code& ec, std::size_t n) {
                            self->guarded([&] { self->on_read(ec, n); });
                          });
}

void Connection::on_read(const error_code& ec, std::size_t n) {
  if (phase_ != Phase::head && phase_ != Phase::body) return;  // closed meanwhile
  if (deadline_hit_) {
    if (idle_) return close_now();  // nothing was asked: no answer owed
    const auto& o = core_->options;
    if (phase_ == Phase::head) {
      return refuse(Refusal{408, "request_timeout", "the request header did not arrive within " + ms(o.header_timeout) + " ms"});
    }
    return refuse(Refusal{408, "request_timeout",
                          "the body did not arrive within " + ms(o.body_timeout) + " ms at " +
                              std::to_string(o.body_min_bytes_per_s) + " bytes/s or more"});
  }
  if (ec) return close_now();  // EOF or reset: the client left, nothing to answer
  buffer_.commit(n);
  if (idle_ && n > 0) {
    idle_ = false;
    // The first request's header deadline already counts from the accept.
    if (!first_request_) arm(Clock::now() + core_->options.header_timeout);
  }
  parse();
}

void Connection::parse() {
  const auto& o = core_->options;
  auto buffered = [&] { return std::string_view(static_cast<const char*>(buffer_.data().data()), buffer_.size()); };
  while (buffer_.size() > 0 && !parser_->is_done()) {
    error_code ec;
    const std::size_t used = parser_->put(buffer_.data(), ec);
    if (ec && ec != beast_http::error::need_more) return refuse(refusal_for(ec, buffered(), *parser_, o));
    buffer_.consume(used);
    if (phase_ == Phase::head) {
      head_consumed_ += used;
      if (parser_->is_header_done()) {
        // Beast checks the request line and the fields against the limit separately, and a header
        // completed by its last read is not checked at all; this is the limit on the whole header.
        if (head_consumed_ > o.max_header_bytes) {
          return refuse(refusal_for(beast_http::error::header_limit, buffered(), *parser_, o));
        }
        if (auto refusal = check_head(*parser_, o)) return refuse(*refusal);
        phase_ = Phase::body;
        body_started_ = Clock::now();
        parser_->eager(true);
        if (!parser_->is_done() && parser_->expect_continue && parser_->version >= 11) send_continue();
        if (phase_ == Phase::closed) return;
        continue;
      }
    }
    if (ec || used == 0) break;  // needs more bytes
  }
  if (parser_->is_done()) return dispatch();
  if (phase_ == Phase::head && head_consumed_ + buffer_.size() > o.max_header_bytes) {
    // Everything buffered belongs to an unfinished header: no need to read more to refuse it.
    return refuse(refusal_for(beast_http::error::header_limit, buffered(), *parser_, o));
  }
  if (phase_ == Phase::body) arm(body_deadline());
  read_more();
}

Connection::Clock::time_point Connection::body_deadline() const {
  const auto& o = core_->options;
  auto deadline = body_started_ + o.body_timeout;
  if (o.body_min_bytes_per_s > 0) {
    const double seconds_earned =
        static_cast<double>(parser_->request.body.size()) / static_cast<double>(o.body_min_bytes_per_s);
    deadline = std::min(deadline, body_started_ + kRateGrace +
                                      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_earned)));
  }
  return deadline;
}

void Connection::send_continue() {
  static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
  error_code ec;
  const std::size_t n = socket_.write_some(asio::buffer(k100.data(), k100.size()), ec);
  // Nothing else is being written, so the socket buffer takes 25 bytes unless the client stopped
  // reading altogether; half an interim response would corrupt the stream, so give up then.
  if (!ec && n == k100.size()) return;
  if (ec == asio::error::would_block && n == 0) return;  // the client sends the body after its own wait
  close_now();
}

// ---- handling ----

void Connection::dispatch() {
  RawRequest& req = parser_->request;
  req.remote_addr = remote_;
  first_request_ = false;
  head_request_ = req.method == "HEAD";
  keep_alive_ = parser_->keep_alive();
  http10_ = parser_->version == 10;
  request_id_ = client_request_id(req);
  phase_ = Phase::handling;
  const std::uint64_t generation = ++generation_;
  arm(Clock::now() + core_->options.handler_timeout);
  WorkerPool::Task task = [self = shared_from_this(), generation, request = std::move(req)]() mutable {
    self->run_on_worker(generation, request);
  };
  parser_.reset();
  if (!core_->pool.try_submit(std::move(task))) {
    ++generation_;
    disarm();
    warn_overloaded(core_->options.max_queued_requests);
    auto r = Response::error(503, "unavailable",
                             "every worker is busy and " + std::to_string(core_->options.max_queued_requests) +
                                 " requests are queued; retry later");
    r.headers["Retry-After"] = "1";
    answer_now(std::move(r), request_id_.empty() ? new_uuid_v7() : request_id_, false);
  }
}

// On a worker thread: reads only core_ and executor_, which are const.
void Connection::run_on_worker(std::uint64_t generation, RawRequest& request) noexcept {
  try {
    Answer answer;
    try {
      answer = core_->pipeline.handle(request);
    } catch (const std::exception& e) {
      answer.response = Response::error(500, "internal", std::string("unhandled exception: ") + e.what());
    }
    asio::post(executor_, [self = shared_from_this(), generation, answer = std::move(answer)]() mutable {
      self->guarded([&] { self->on_answer(generation, std::move(answer)); });
    });
  } catch (...) {
    // Out of memory building or posting the answer: the handler deadline answers the client.
    spdlog::error("http worker: could not deliver an answer; the handler deadline will answer");
  }
}

void Connection::on_answer(std::uint64_t generation, Answer answer) {
  if (generation != generation_ || phase_ != Phase::handling) return;  // answered 503 or closed meanwhile
  disarm();
  const bool close = answer.close_connection || says_close(answer.response);
  std::string id = !answer.request_id.empty() ? std::move(answer.request_id)
                   : !request_id_.empty()     ? request_id_
                                              : new_uuid_v7();
  answer_now(std::move(answer.response), std::move(id), close);
}

void Connection::refuse(const Refusal& r) {
  const std::string method = parser_ ? parser_->request.method : std::string();
  const std::string target = parser_ ? parser_->request.target.substr(0, 200) : std::string();
  spdlog::info("http {} {} -> {} {}: {} (from {})", herald::detail::escape_for_log(method),
               herald::detail::escape_for_log(target), r.status, r.code, herald::detail::escape_for_log(r.message),
               remote_);
  head_request_ = method == "HEAD";
  keep_alive_ = false;
  disarm();
  answer_now(Response::error(r.status, r.code, r.message), new_uuid_v7(), true);
}

// ---- writing ----

void Connection::answer_now(Response response, std::string request_id, bool close) {
  // stopping is read too: stop() sets it before it gets round to telling each connection.
  close = close || !keep_alive_ || shutting_down_ || core_->stopping.load();
  WireOptions w;
  w.head = head_request_;
  w.close = close;
  w.keep_alive_10 = http10_ && !close;
  write(serialize_response(response, request_id, w), close);
}

void Connection::write(std::string bytes, bool close) {
  phase_ = Phase::writing;
  close_after_write_ = close;
  out_ = std::move(bytes);
  error_code ec;
  // A response usually fits in the socket buffer: sent now, without a trip through the reactor.
  out_sent_ = socket_.write_some(asio::buffer(out_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
    out_sent_ = 0;
  }
  if (ec) return close_now();
  if (out_sent_ == out_.size()) return on_written();
  arm(Clock::now() + core_->options.write_timeout);
  asio::async_write(socket_, asio::buffer(out_.data() + out_sent_, out_.size() - out_sent_),
                    [self = shared_from_this()](const error_code& wec, std::size_t) {
                      self->guarded([&] {
                        if (self->phase_ != Phase::writing) return;
                        if (wec) return self->close_now();
                        self->on_written();
                      });
                    });
}

void Connection::on_written() {
  out_.clear();
  if (close_after_write_) return close_gracefully();
  if (buffer_.size() == 0) return read_head();
  // A pipelined request is waiting: parse it from a fresh stack frame, so that a long pipeline of
  // requests answered without a worker (503s) cannot grow the stack.
  asio::post(executor_, [self = shared_from_this()] {
    self->guarded([&] {
      if (self->phase_ == Phase::writing) self->read_head();
    });
  });
}

void Connection::close_gracefully() {
  phase_ = Phase::lingering;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return close_now();
  buffer_.consume(buffer_.size());
  arm(Clock::now() + kLingerTime);
  linger();
}

void Connection::linger() {
  socket_.async_read_some(buffer_.prepare(kHeadReadBytes), [self = shared_from_this()](const error_code& ec, std::size_t n) {
    self->guarded([&] {
      if (self->phase_ != Phase::lingering) return;
      if (ec) return self->close_now();  // EOF: the client has read everything and closed
      self->buffer_.commit(n);
      self->buffer_.consume(self->buffer_.size());
      self->linger();
    });
  });
}

void Connection::close_now() {
  if (phase_ == Phase::closed) return;
  phase_ = Phase::closed;
  ++generation_;
  disarm();
  error_code ec;
  socket_.close(ec);  // completes the pending read or write with operation_aborted
  try {
    timer_.cancel();  // releases the wait's reference to this connection now, not at its expiry
  } catch (...) {
  }
}

// ---- deadlines ----

void Connection::arm(Clock::time_point deadline) {
  deadline_ = deadline;
  if (timer_waiting_ && timer_expiry_ <= deadline) return;
  timer_expiry_ = deadline;
  timer_waiting_ = true;
  timer_.expires_at(deadline);  // cancels the wait in progress; its handler sees a stale epoch
  timer_.async_wait([self = shared_from_this(), epoch = ++timer_epoch_](const error_code& ec) {
    self->guarded([&] { self->on_timer(ec, epoch); });
  });
}

void Connection::on_timer(const error_code& ec, std::uint64_t epoch) {
  if (epoch != timer_epoch_) return;
  timer_waiting_ = false;
  if (ec || phase_ == Phase::closed || deadline_ == Clock::time_point::max()) return;
  if (Clock::now() < deadline_) return arm(deadline_);  // the deadline moved later meanwhile
  on_deadline();
}

void Connection::on_deadline() {
  switch (phase_) {
    case Phase::head:
    case Phase::body: {
      // A read is pending in these phases; cancelling it lets on_read answer 408 (or close an idle
      // connection) with the parser's state at hand.
      deadline_hit_ = true;
      error_code ec;
      socket_.cancel(ec);
      return;
    }
    case Phase::handling: {
      ++generation_;  // the handler's answer, when it comes, is dropped
      const auto& o = core_->options;
      std::string id = request_id_.empty() ? new_uuid_v7() : request_id_;
      spdlog::warn("http request {} from {}: the handler did not finish within {} ms; answered 503 (it keeps running)",
                   id, remote_, ms(o.handler_timeout));
      auto r = Response::error(503, "timeout",
                               "the request did not finish within " + ms(o.handler_timeout) +
                                   " ms; it may still take effect");
      r.headers["Retry-After"] = "1";
      return answer_now(std::move(r), std::move(id), false);
    }
    case Phase::writing:
    case Phase::lingering:
      return close_now();
    case Phase::closed:
      return;
  }
}

}  // namespace herald::http::detail
