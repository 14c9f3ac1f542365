// One accepted TCP connection: reads requests with deadlines, hands each complete one to the worker
// pool, writes the answers in request order, and closes when the framing can no longer be trusted,
// a deadline passes, or the server stops.
//
// Threading: a connection belongs to one io_context, which exactly one I/O thread runs, so all of
// its state below is touched only from that thread and needs no lock. Workers never touch it: they
// post the answer back to the connection's executor (the only member they read, which is const).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "http/server_core.h"
#include "http/wire.h"

namespace herald::http::detail {

class Connection final : public std::enable_shared_from_this<Connection> {
 public:
  // `counted`: the connection counts against max_connections (the acceptor already counted it);
  // otherwise it is an over-limit one for reject() (counted in ServerCore::rejecting).
  Connection(std::shared_ptr<ServerCore> core, boost::asio::ip::tcp::socket socket, bool counted);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Once, before start() or reject(), from the acceptor's thread.
  void set_registration(ServerCore::Registry::iterator it) {
    registration_ = it;
    registered_ = true;
  }

  // Each of the following must run on executor() (post it there). None throws.
  void start() noexcept;           // serve requests
  void reject() noexcept;          // answer 503 (over max_connections) and close
  void begin_shutdown() noexcept;  // close now when idle, else after the request in progress
  void force_close() noexcept;     // close now, whatever is in progress

  const boost::asio::any_io_executor& executor() const { return executor_; }

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { head, body, handling, writing, lingering, closed };

  template <class F>
  void guarded(F&& f) noexcept;

  void read_head();
  void read_more();
  void on_read(const error_code& ec, std::size_t n);
  void parse();
  Clock::time_point body_deadline() const;
  void send_continue();
  void dispatch();
  void run_on_worker(std::uint64_t generation, RawRequest& request) noexcept;
  void on_answer(std::uint64_t generation, Answer answer);
  void refuse(const Refusal& r);
  void answer_now(Response response, std::string request_id, bool close);
  void write(std::string bytes, bool close);
  void on_written();
  void close_gracefully();
  void linger();
  void close_now();

  // One timer serves every deadline. arm() only moves the wait earlier; a wait that fires before
  // the current deadline (because it moved later) waits again, so the common case of a deadline
  // moving later costs no timer operation.
  void arm(Clock::time_point deadline);
  void disarm() { deadline_ = Clock::time_point::max(); }
  void on_timer(const error_code& ec, std::uint64_t epoch);
  void on_deadline();

  const std::shared_ptr<ServerCore> core_;
  boost::asio::ip::tcp::socket socket_;
  const boost::asio::any_io_executor executor_;
  boost::asio::steady_timer timer_;
  const bool counted_;
  bool registered_ = false;
  ServerCore::Registry::iterator registration_;
  std::string remote_;
  const Clock::time_point accepted_;

  boost::beast::flat_buffer buffer_;  // received, not yet parsed; bounded (see the constructor)
  std::optional<RequestParser> parser_;
  std::size_t head_consumed_ = 0;  // bytes of this request's header the parser already took
  Phase phase_ = Phase::head;
  bool idle_ = true;           // Phase::head and not one byte of the next request yet
  bool first_request_ = true;  // its header deadline counts from the accept
  bool shutting_down_ = false;
  bool deadline_hit_ = false;  // the timer cancelled the pending read
  Clock::time_point body_started_;

  // The request being handled: what the response must know about it.
  std::uint64_t generation_ = 0;  // bumped when a handler's answer is no longer wanted
  bool head_request_ = false;
  bool keep_alive_ = false;
  bool http10_ = false;
  std::string request_id_;  // for a 503 when the handler misses its deadline

  std::string out_;  // the response being written
  std::size_t out_sent_ = 0;
  bool close_after_write_ = false;

  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point timer_expiry_;
  bool timer_waiting_ = false;
  std::uint64_t timer_epoch_ = 0;
};

}  // namespace herald::http::detail
