// SIGINT/SIGTERM -> wake the thread blocked in wait_for_shutdown_signal(). The handler only
// write()s one byte to a pipe (async-signal-safe); the waiting thread read()s it.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>

#include "herald/system.h"

namespace herald {

namespace {

// The pipe's ends, set once under g_once, then only read (also from signal handlers: lock-free
// atomics are async-signal-safe).
std::atomic_int g_read_fd{-1};
std::atomic_int g_write_fd{-1};
std::once_flag g_once;

extern "C" void on_shutdown_signal(int sig) {
  int saved = errno;  // a handler must not clobber the interrupted code's errno
  unsigned char byte = static_cast<unsigned char>(sig);
  int fd = g_write_fd.load();
  if (fd >= 0) (void)!write(fd, &byte, 1);
  errno = saved;
}

void setup() {
  std::call_once(g_once, [] {
    int fds[2];
    if (pipe(fds) != 0) return;
    for (int fd : fds) fcntl(fd, F_SETFD, FD_CLOEXEC);
    // Never block a signal handler on a full pipe; a dropped byte only loses a duplicate wake-up.
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    g_read_fd = fds[0];
    g_write_fd = fds[1];
  });
}

}  // namespace

int wait_for_shutdown_signal() {
  setup();
  struct sigaction sa {};
  sa.sa_handler = on_shutdown_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  int fd = g_read_fd.load();
  if (fd < 0) {
    // No pipe: fall back to pause(); a signal still interrupts it.
    pause();
    return SIGTERM;
  }
  unsigned char byte = 0;
  while (true) {
    auto n = read(fd, &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

void request_shutdown() noexcept {
  // From a signal handler the pipe exists already (handlers are installed after setup()); from a
  // normal thread setup() may run here so that the wake-up is buffered for a later wait.
  if (g_write_fd.load() < 0) setup();
  on_shutdown_signal(0);
}

}  // namespace herald
