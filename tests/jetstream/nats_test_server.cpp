#include "nats_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace herald::testing {

std::string nats_server_binary() {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  dirs += ":/usr/sbin:/usr/local/sbin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/nats-server";
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

namespace {

bool accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::unique_ptr<NatsTestServer> NatsTestServer::start(const std::string& store_dir, std::vector<std::string> extra_args,
                                                      int port) {
  std::unique_ptr<NatsTestServer> s(new NatsTestServer());
  s->port_ = port > 0 ? port : free_loopback_port();
  s->store_dir_ = store_dir;
  s->extra_args_ = std::move(extra_args);
  if (!s->spawn()) return nullptr;
  return s;
}

bool NatsTestServer::spawn() {
  const std::string bin = nats_server_binary();
  if (bin.empty()) return false;
  std::filesystem::create_directories(store_dir_);
  std::vector<std::string> args = {bin, "-a", "127.0.0.1", "-p", std::to_string(port_), "-js", "-sd", store_dir_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  const std::string log = store_dir_ + "/server.log";
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::freopen(log.c_str(), "a", stdout);
    std::freopen(log.c_str(), "a", stderr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (pid < 0) return false;
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (accepts(port_)) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill();
  return false;
}

void NatsTestServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void NatsTestServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool NatsTestServer::restart() {
  if (pid_ > 0) return true;
  return spawn();
}

NatsTestServer::~NatsTestServer() { kill(); }

std::string NatsTestCluster::urls() const {
  std::string out;
  for (const auto& n : nodes) {
    if (!out.empty()) out += ',';
    out += n->url();
  }
  return out;
}

std::unique_ptr<NatsTestCluster> NatsTestCluster::start(const std::string& base_dir) {
  int cluster_ports[3];
  for (int& p : cluster_ports) p = free_loopback_port();
  auto c = std::make_unique<NatsTestCluster>();
  for (int i = 0; i < 3; ++i) {
    std::string routes;
    for (int j = 0; j < 3; ++j) {
      if (j == i) continue;
      if (!routes.empty()) routes += ',';
      routes += "nats://127.0.0.1:" + std::to_string(cluster_ports[j]);
    }
    auto node = NatsTestServer::start(base_dir + "/node" + std::to_string(i),
                                      {"-n", "node" + std::to_string(i), "--cluster_name", "herald", "--cluster",
                                       "nats://127.0.0.1:" + std::to_string(cluster_ports[i]), "--routes", routes});
    if (!node) return nullptr;
    c->nodes.push_back(std::move(node));
  }
  return c;
}

std::string make_temp_dir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != 0 ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return "";
  return buf.data();
}

void remove_tree(const std::string& dir) {
  std::error_code ec;
  if (!dir.empty()) std::filesystem::remove_all(dir, ec);
}

}  // namespace herald::testing
