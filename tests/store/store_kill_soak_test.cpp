// Kill -9 soak: a child process (store_kill_child) appends from four threads and is SIGKILLed at
// a random moment, HERALD_SOAK_TRIALS times (default 10) per backend, on one store that grows
// across the trials. After every kill the store is reopened and must hold every acknowledged
// event exactly once (none lost, none duplicated), every event intact and where its payload says
// it belongs (none torn), every stream's versions 0..n-1 and the global positions 0..N-1 without
// a gap. sqlite always; postgres when HERALD_TEST_POSTGRES_URL is set (scripts/pg-temp start).
// scripts/soak [trials] runs it long.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_store.h"
#include "herald/id.h"
#ifdef HERALD_TEST_POSTGRES
#include <libpq-fe.h>

#include "postgres_test_util.h"
#include "store/postgres/pg_support.h"
#endif

extern char** environ;

namespace herald {
namespace {

int trials() {
  const char* v = std::getenv("HERALD_SOAK_TRIALS");
  const int n = v != nullptr ? std::atoi(v) : 10;
  return n > 0 ? n : 10;
}

struct Acked {
  std::string stream;
  std::int64_t first_version = 0;
  std::vector<std::string> ids;
};

// Runs one child on `url`, kills it `kill_after` after its first acknowledgement, and returns
// what it acknowledged.
std::vector<Acked> run_and_kill(const std::string& url, std::chrono::milliseconds kill_after) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<std::string> args = {HERALD_STORE_KILL_CHILD, url};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = -1;
  const int rc = ::posix_spawn(&child, HERALD_STORE_KILL_CHILD, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  EXPECT_EQ(rc, 0) << "posix_spawn " << HERALD_STORE_KILL_CHILD;
  std::string out;
  char buf[65536];
  if (rc == 0) {
    // The first acknowledgement: the child has opened the store and is appending.
    while (out.find('\n') == std::string::npos) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    // Keep the pipe drained while waiting, so the child never blocks on a full pipe.
    std::thread killer([&] {
      std::this_thread::sleep_for(kill_after);
      ::kill(child, SIGKILL);
    });
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    killer.join();
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child ended on its own (status " << status << ") before the kill";
  }
  ::close(fds[0]);
  std::vector<Acked> acked;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    Acked a;
    fields >> a.stream >> a.first_version;
    for (std::string id; fields >> id;) a.ids.push_back(id);
    EXPECT_FALSE(a.ids.empty()) << "malformed acknowledgement '" << line << "'";
    acked.push_back(std::move(a));
  }
  return acked;
}

// Checks the whole store; returns the number of events in it.
std::int64_t check_store(const std::string& url, const std::vector<Acked>& all_acked) {
  auto opened = open_store(url);
  EXPECT_TRUE(opened.is_ok()) << opened.status().to_string();
  if (!opened) return -1;
  EventStore& store = **opened;
  std::map<std::string, std::int64_t> next_version;  // per stream
  std::map<std::string, std::pair<std::string, std::int64_t>> where;  // id -> (stream, version)
  std::int64_t expected_position = 0;
  for (std::int64_t from = 0;;) {
    auto slice = store.read_all(from, 1000);
    EXPECT_TRUE(slice.is_ok()) << slice.status().to_string();
    if (!slice) return -1;
    for (const auto& e : slice->events) {
      EXPECT_EQ(e.position, expected_position) << "a gap in the global positions";
      expected_position = e.position + 1;
      auto& nv = next_version[e.stream_id];
      EXPECT_EQ(e.version, nv) << "a gap in the versions of " << e.stream_id;
      nv = e.version + 1;
      EXPECT_TRUE(where.emplace(e.id, std::make_pair(e.stream_id, e.version)).second)
          << "event " << e.id << " is stored twice";
      auto p = nlohmann::json::parse(e.payload, nullptr, false);
      EXPECT_TRUE(p.is_object()) << "torn payload at position " << e.position << ": " << e.payload;
      if (!p.is_object()) continue;
      EXPECT_EQ(p.value("id", ""), e.id) << "torn event at position " << e.position;
      EXPECT_EQ(p.value("stream", ""), e.stream_id) << "event in the wrong stream at " << e.position;
      EXPECT_EQ(p.value("version", std::int64_t{-1}), e.version) << "event at the wrong version";
      EXPECT_EQ(p.value("pad", std::string()).size(), p.value("pad_length", std::size_t{0}))
          << "torn padding at position " << e.position;
    }
    if (slice->end_of_log) break;
    from = slice->next_position;
  }
  EXPECT_EQ(store.head_position(), expected_position - 1);
  for (const auto& [stream, nv] : next_version) {
    auto v = store.stream_version(stream);
    EXPECT_TRUE(v.is_ok() && *v == nv - 1) << stream << ": stream_version disagrees with its events";
  }
  for (const auto& a : all_acked) {
    for (std::size_t k = 0; k < a.ids.size(); ++k) {
      auto it = where.find(a.ids[k]);
      EXPECT_NE(it, where.end()) << "acknowledged event " << a.ids[k] << " of " << a.stream << " was lost";
      if (it == where.end()) continue;
      EXPECT_EQ(it->second.first, a.stream);
      EXPECT_EQ(it->second.second, a.first_version + static_cast<std::int64_t>(k));
    }
  }
  return expected_position;
}

#ifdef HERALD_TEST_POSTGRES
constexpr const char* kChildApplication = "herald-kill-child";

// A killed client's last statement keeps running on its server backend and may still commit
// after the kill: wait until no backend of a child is left, so the check sees the final state.
void wait_for_postgres_children(const std::string& url) {
  auto conn = detail::pg::connect(url);
  ASSERT_TRUE(conn.is_ok()) << conn.status().to_string();
  const std::string sql = std::string("SELECT count(*) FROM pg_stat_activity WHERE application_name = '") +
                          kChildApplication + "'";
  for (int i = 0; i < 1000; ++i) {
    PGresult* r = PQexec(conn->get(), sql.c_str());
    const bool none = PQresultStatus(r) == PGRES_TUPLES_OK && std::string(PQgetvalue(r, 0, 0)) == "0";
    PQclear(r);
    if (none) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "a killed child's PostgreSQL backend is still running after 10 s";
}
#endif

// `settle` waits until nothing the killed child started can still change the store.
void soak(const std::string& url, const std::string& child_url, const std::function<void()>& settle) {
  std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> kill_after_ms(5, 300);
  std::vector<Acked> all_acked;
  std::int64_t last_count = 0;
  std::size_t acked_events = 0;
  const int n = trials();
  for (int trial = 0; trial < n; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial + 1) + " of " + std::to_string(n));
    auto acked = run_and_kill(child_url, std::chrono::milliseconds(kill_after_ms(rng)));
    ASSERT_FALSE(acked.empty()) << "the child acknowledged nothing before the kill";
    if (settle) settle();
    for (auto& a : acked) {
      acked_events += a.ids.size();
      all_acked.push_back(std::move(a));
    }
    const std::int64_t count = check_store(url, all_acked);
    ASSERT_GE(count, last_count) << "the store shrank";
    ASSERT_GE(count, static_cast<std::int64_t>(acked_events));
    last_count = count;
    if (::testing::Test::HasFailure()) return;
  }
  std::printf("kill soak: %d trials, %zu acknowledged events, %lld stored (unacknowledged but committed: %lld); "
              "none lost, none duplicated, none torn, gap-free\n",
              n, acked_events, static_cast<long long>(last_count),
              static_cast<long long>(last_count - static_cast<std::int64_t>(acked_events)));
}

TEST(StoreKillSoak, Sqlite) {
  const auto dir = std::filesystem::temp_directory_path() / ("herald-kill-soak-" + new_uuid_v7());
  std::filesystem::create_directories(dir);
  const std::string url = "sqlite://" + (dir / "events.db").string();
  soak(url, url, nullptr);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(StoreKillSoak, Postgres) {
#ifdef HERALD_TEST_POSTGRES
  if (std::getenv("HERALD_TEST_POSTGRES_URL") == nullptr) {
    GTEST_SKIP() << "HERALD_TEST_POSTGRES_URL is not set (scripts/pg-temp start prints one)";
  }
  const std::string url = testing::create_postgres_schema();
  const std::string child_url =
      url + (url.find('?') == std::string::npos ? "?" : "&") + "application_name=" + kChildApplication;
  soak(url, child_url, [&] { wait_for_postgres_children(url); });
#else
  GTEST_SKIP() << "built without the PostgreSQL backend";
#endif
}

}  // namespace
}  // namespace herald
