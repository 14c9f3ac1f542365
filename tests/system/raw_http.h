// A raw-socket HTTP client for the server tests: it sends exactly the bytes a test gives it (no
// client library normalising a request line, a header or the framing) and reads responses back
// with a deadline. Blocking sockets, one per RawConnection; not thread-safe.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace herald::testing {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class RawConnection {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval five{5, 0};  // bounds connect() (Linux uses the send timeout for it)
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &five, sizeof five);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      connect_errno_ = errno;
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() { close(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  RawConnection(RawConnection&& o) noexcept
      : fd_(o.fd_), connect_errno_(o.connect_errno_), peer_closed_(o.peer_closed_), buf_(std::move(o.buf_)) {
    o.fd_ = -1;
  }

  bool connected() const { return fd_ >= 0; }
  int connect_errno() const { return connect_errno_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // The next complete response, or nullopt when the connection closed first or `timeout` passed.
  // `head`: the response answers a HEAD request (no body, whatever Content-Length says).
  std::optional<RawResponse> read_response(std::chrono::milliseconds timeout, bool head = false) {
    const auto until = Clock::now() + timeout;
    while (true) {
      if (auto r = take_response(head)) return r;
      if (!receive_until(until)) return std::nullopt;
    }
  }

  // Whether the server closes the connection (EOF or reset) within `timeout`; what arrives before
  // the close is kept for read_response.
  bool wait_closed(std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (!peer_closed_) {
      if (!receive_until(until) && !peer_closed_) return false;
    }
    return true;
  }

  // Without blocking: has the server closed it (or sent anything)?
  bool closed_or_answered() {
    if (peer_closed_ || !buf_.empty()) return true;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }

  const std::string& received() const { return buf_; }

 private:
  // Receives once before `until`; false on timeout or when the peer closed.
  bool receive_until(Clock::time_point until) {
    if (fd_ < 0 || peer_closed_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      peer_closed_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  std::optional<RawResponse> take_response(bool head) {
    auto end = buf_.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    RawResponse r;
    std::string_view head_text(buf_.data(), end);
    auto eol = head_text.find("\r\n");
    std::string_view status_line = head_text.substr(0, eol);
    if (status_line.size() < 12) return std::nullopt;
    r.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
    std::size_t pos = eol == std::string_view::npos ? head_text.size() : eol + 2;
    while (pos < head_text.size()) {
      auto next = head_text.find("\r\n", pos);
      if (next == std::string_view::npos) next = head_text.size();
      auto line = head_text.substr(pos, next - pos);
      auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        r.headers[name] = std::string(value);
      }
      pos = next + 2;
    }
    std::size_t length = 0;
    if (!head && r.status >= 200 && r.status != 204 && r.status != 304) {
      length = std::strtoull(r.header("content-length").c_str(), nullptr, 10);
    }
    if (buf_.size() < end + 4 + length) return std::nullopt;
    r.body = buf_.substr(end + 4, length);
    buf_.erase(0, end + 4 + length);
    return r;
  }

  int fd_ = -1;
  int connect_errno_ = 0;
  bool peer_closed_ = false;
  std::string buf_;
};

// The tests open a few thousand sockets (both ends in this process).
inline void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace herald::testing
