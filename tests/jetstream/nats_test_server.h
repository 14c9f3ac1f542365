// nats-server processes for tests: one JetStream server, or a three-node JetStream cluster, on
// free loopback ports with their storage in a temporary directory. Each server is killed when
// its object is destroyed.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace herald::testing {

// The nats-server binary (PATH, then /usr/sbin), or "" when it is not installed.
std::string nats_server_binary();

// A free TCP port on 127.0.0.1 (bound, read and released; racy in theory, fine in tests).
int free_loopback_port();

class NatsTestServer {
 public:
  // Starts `nats-server -js` on 127.0.0.1:<free port> storing under `store_dir`, and waits until
  // it accepts connections. extra_args: e.g. cluster flags. Null when it did not come up.
  static std::unique_ptr<NatsTestServer> start(const std::string& store_dir, std::vector<std::string> extra_args = {},
                                               int port = 0);
  ~NatsTestServer();

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  bool running() const { return pid_ > 0; }
  // SIGKILL, reaped.
  void kill();
  // SIGTERM (a clean shutdown), reaped.
  void stop();
  // Starts again with the same port, storage and flags. False when it did not come up.
  bool restart();

 private:
  NatsTestServer() = default;
  bool spawn();
  int port_ = 0;
  std::string store_dir_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
};

// Three nats-server processes forming one JetStream cluster ("herald") on loopback.
struct NatsTestCluster {
  std::vector<std::unique_ptr<NatsTestServer>> nodes;
  // "nats://127.0.0.1:a,nats://127.0.0.1:b,nats://127.0.0.1:c"
  std::string urls() const;
  // Null when a node did not come up.
  static std::unique_ptr<NatsTestCluster> start(const std::string& base_dir);
};

// A fresh temporary directory (mkdtemp under $TMPDIR or /tmp); removed by remove_tree.
std::string make_temp_dir(const std::string& prefix);
void remove_tree(const std::string& dir);

}  // namespace herald::testing
