// Crash test: a child process runs the bus on a sqlite store (bus_crash_child) and is killed with
// SIGKILL at random moments, 20 times. After each kill a fresh child drains what is committed;
// then every committed event must have been handled at least once (the seen log) and the
// inbox-protected projection must have counted each event exactly once.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "bus_test_util.h"

extern char** environ;

namespace herald {
namespace {

pid_t spawn_child(const std::string& db, const std::string& seen, const std::string& mode) {
  std::vector<std::string> args = {HERALD_BUS_CRASH_CHILD, db, seen, mode};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, HERALD_BUS_CRASH_CHILD, nullptr, nullptr, argv.data(), environ);
  EXPECT_EQ(rc, 0) << "posix_spawn failed";
  return rc == 0 ? pid : -1;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

struct Observed {
  std::vector<std::string> committed;  // event ids in the store
  std::int64_t counted = -1;           // the projection's counter
  std::size_t counted_docs = 0;        // per-event documents of the projection
};

Observed observe(const std::filesystem::path& db) {
  Observed o;
  auto store = testing::sqlite_store(db);
  if (!store) return o;
  for (std::int64_t pos = 0;;) {
    auto slice = store->read_all(pos, 1000);
    EXPECT_TRUE(slice.is_ok()) << slice.status().to_string();
    if (!slice) break;
    for (const auto& e : slice->events) o.committed.push_back(e.id);
    pos = slice->next_position;
    if (slice->end_of_log) break;
  }
  Status st = store->transact([&](StoreTransaction& tx) -> Status {
    auto doc = tx.get_document("crash", "count");
    if (doc) o.counted = nlohmann::json::parse(*doc).at("n").get<std::int64_t>();
    else if (doc.status().code() == StatusCode::not_found) o.counted = 0;
    else return doc.status();
    std::string after;
    for (;;) {
      auto page = tx.list_documents("crash-events", after, 1000);
      if (!page) return page.status();
      if (page->empty()) break;
      o.counted_docs += page->size();
      after = page->back().key;
    }
    return Status::ok();
  });
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_TRUE(store->list_dead_letters("counter")->empty());
  return o;
}

std::set<std::string> read_seen(const std::filesystem::path& file) {
  std::set<std::string> seen;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) seen.insert(line);
  }
  return seen;
}

TEST(BusCrash, KilledAtRandomEveryCommittedEventIsHandledAndCountedOnce) {
  testing::TempDir dir;
  const auto db = dir.path() / "events.db";
  const auto seen_log = dir.path() / "seen.log";
  std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> kill_after_ms(20, 250);
  std::size_t last_committed = 0;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    pid_t worker = spawn_child(db.string(), seen_log.string(), "work");
    ASSERT_GT(worker, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms(rng)));
    ASSERT_EQ(::kill(worker, SIGKILL), 0);
    EXPECT_EQ(wait_exit_code(worker), 128 + SIGKILL);

    pid_t drainer = spawn_child(db.string(), seen_log.string(), "drain");
    ASSERT_GT(drainer, 0);
    ASSERT_EQ(wait_exit_code(drainer), 0);

    Observed o = observe(db);
    auto seen = read_seen(seen_log);
    for (const auto& id : o.committed) ASSERT_EQ(seen.count(id), 1u) << "committed event never handled: " << id;
    EXPECT_EQ(o.counted, static_cast<std::int64_t>(o.committed.size()));
    EXPECT_EQ(o.counted_docs, o.committed.size());
    EXPECT_GE(o.committed.size(), last_committed);
    last_committed = o.committed.size();
  }
  EXPECT_GT(last_committed, 0u);
}

}  // namespace
}  // namespace herald
