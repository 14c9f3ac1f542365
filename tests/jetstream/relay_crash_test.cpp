// The relay SIGKILLed at random moments while events are appended to PostgreSQL: JetStream must
// end with every event exactly once, in position order. Needs HERALD_TEST_POSTGRES_URL (skipped
// otherwise) and nats-server.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "herald/jetstream.h"
#include "nats_test_server.h"
#include "postgres_test_util.h"
#include "stream_reader.h"

namespace herald::jetstream {
namespace {

using namespace std::chrono_literals;

pid_t spawn_relay(const std::string& store_url, const std::string& nats_url, const std::string& stream, int replicas) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[0], 0);
    ::close(fds[1]);
    const std::string r = std::to_string(replicas);
    ::execl(HERALD_RELAY_CHILD, HERALD_RELAY_CHILD, store_url.c_str(), nats_url.c_str(), stream.c_str(), r.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);
  // The write end stays open in this process (leaked on purpose) until the child is killed.
  return pid;
}

void kill_child(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

std::int64_t checkpoint_of(EventStore& store, const std::string& stream) {
  auto cp = store.load_checkpoint(relay_checkpoint_name(stream));
  return cp ? *cp : 0;
}

struct CrashRun {
  int events = 50'000;
  int kills = 20;
  int replicas = 1;
  std::chrono::milliseconds min_pause{50}, max_pause{500};  // a child's life before its SIGKILL
  bool require_mid_load = true;  // at least half the kills must also land while appends go on
  int min_progress_kills = 10;    // kills that must each follow some relaying since the previous one
  // Optional extra fault during the run (a cluster node killed and restarted).
  std::function<void(int kill_index)> on_kill;
};

// Appends at least `events` in batches from one thread, and goes on appending until the relay
// child has been killed `kills` times, so every kill lands while appends go on. Each kill follows
// relaying progress since the previous one (the child is given up to 30 s to relay something, then
// lives a random pause longer), so the kills test what they claim whatever the machine's load.
void run_crash_scenario(EventStore& store, const std::string& store_url, const std::string& nats_url,
                        const std::string& stream, const std::string& subjects, const CrashRun& run) {
  std::atomic_bool append_failed{false};
  std::atomic_bool kills_done{false};
  std::thread appender([&] {
    constexpr int kBatch = 25;
    for (int i = 0; !append_failed && (!kills_done.load() || (i * kBatch) < run.events); ++i) {
      std::vector<EventData> batch(kBatch);
      for (auto& e : batch) {
        e.type = "Counted";
        e.payload = R"({"i":)" + std::to_string(i) + "}";
      }
      if (!store.append("counter-" + std::to_string(i % 101), ExpectedVersion::any(), std::move(batch))) {
        append_failed = true;
        return;
      }
      // Paced while the kills go on, so that the load outlasts them without growing unbounded.
      if (!kills_done.load() && i * kBatch >= run.events) std::this_thread::sleep_for(5ms);
    }
  });
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pause_ms(static_cast<int>(run.min_pause.count()), static_cast<int>(run.max_pause.count()));
  int killed_mid_load = 0;  // kills after which the relay had made progress and appends went on
  int killed_relaying = 0;  // kills after which the relay had made progress
  std::int64_t checkpoint_before = checkpoint_of(store, stream);
  for (int k = 0; k < run.kills; ++k) {
    pid_t child = spawn_relay(store_url, nats_url, stream, run.replicas);
    ASSERT_GT(child, 0);
    const auto progress_deadline = std::chrono::steady_clock::now() + 30s;
    while (checkpoint_of(store, stream) <= checkpoint_before && std::chrono::steady_clock::now() < progress_deadline) {
      std::this_thread::sleep_for(5ms);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    const bool appending = !append_failed.load();
    kill_child(child);
    const std::int64_t cp = checkpoint_of(store, stream);
    if (cp > checkpoint_before) ++killed_relaying;
    if (cp > checkpoint_before && appending) ++killed_mid_load;
    checkpoint_before = cp;
    if (run.on_kill) run.on_kill(k);
  }
  kills_done = true;
  appender.join();
  // Otherwise the kills tested nothing: each must land while the relay works and events arrive.
  EXPECT_GE(killed_relaying, run.min_progress_kills) << "kills that interrupted relaying";
  if (run.require_mid_load) {
    EXPECT_GE(killed_mid_load, run.kills / 2) << "kills that interrupted relaying under load";
  }
  std::printf("relay killed %d times: %d after progress since the previous kill, %d of them while appends went on\n",
              run.kills, killed_relaying, killed_mid_load);
  ASSERT_FALSE(append_failed);
  pid_t last = spawn_relay(store_url, nats_url, stream, run.replicas);
  const std::int64_t head = store.head_position();
  ASSERT_GE(head + 1, run.events);
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (checkpoint_of(store, stream) < head + 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  kill_child(last);
  ASSERT_EQ(checkpoint_of(store, stream), head + 1) << "the relay did not catch up";
  std::string error;
  auto msgs = herald::testing::read_stream(nats_url, stream, subjects, error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(herald::testing::check_exactly_once_in_order(msgs, head + 1), "");
  auto all = store.read_all(0, 100);
  ASSERT_TRUE(all);
  for (std::size_t i = 0; i < all->events.size() && i < msgs.size(); ++i) EXPECT_EQ(msgs[i].id, all->events[i].id);
}

// Counts "Counted" events once each through the inbox of its own store.
class InboxCounter final : public EventHandler {
 public:
  std::string name() const override { return "crash.inbox_counter"; }
  std::vector<std::string> event_types() const override { return {"Counted"}; }
  Status handle(const RecordedEvent& e, HandlerContext& ctx) override {
    return ctx.exactly_once(e, [&](StoreTransaction& tx) -> Status {
      std::int64_t n = 0;
      auto doc = tx.get_document("counts", "total");
      if (doc) n = std::stoll(*doc);
      return tx.put_document("counts", "total", std::to_string(n + 1));
    });
  }
};

class RelayCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* pg = std::getenv("HERALD_TEST_POSTGRES_URL");
    if (pg == nullptr || *pg == '\0') GTEST_SKIP() << "HERALD_TEST_POSTGRES_URL is not set (scripts/pg-temp start)";
    if (herald::testing::nats_server_binary().empty()) GTEST_SKIP() << "nats-server is not installed (scripts/setup)";
    dir_ = herald::testing::make_temp_dir("herald-relay-crash");
    store_url_ = herald::testing::create_postgres_schema();
    auto s = open_store(store_url_);
    ASSERT_TRUE(s) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override { herald::testing::remove_tree(dir_); }

  std::string dir_;
  std::string store_url_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(RelayCrashTest, KilledTwentyTimesWhileFiftyThousandEventsAreAppendedEveryEventOnceInOrder) {
  auto server = herald::testing::NatsTestServer::start(dir_ + "/js");
  ASSERT_NE(server, nullptr);
  run_crash_scenario(*store_, store_url_, server->url(), "CRASH", "crash.>", CrashRun{});
}

// A three-node cluster, an R3 stream, and one node SIGKILLed (and later restarted) during the run.
TEST_F(RelayCrashTest, ThreeNodeClusterWithANodeKilledDuringRelaying) {
  // Known to fail (issue 12 stays open): after the stream leader is killed under a running relay,
  // the relay can loop on "wrong last msg ID" (JetStream error 10070) and its reported checkpoint
  // moved backwards once (82740 -> 82513). Run it with HERALD_JETSTREAM_CLUSTER_TEST=1.
  if (std::getenv("HERALD_JETSTREAM_CLUSTER_TEST") == nullptr) {
    GTEST_SKIP() << "the leader-kill recovery of the relay is a known open bug; HERALD_JETSTREAM_CLUSTER_TEST=1 runs it";
  }
  auto cluster = herald::testing::NatsTestCluster::start(dir_ + "/cluster");
  ASSERT_NE(cluster, nullptr);
  StreamSettings settings;
  settings.name = "CRASH";
  settings.subject_prefix = "crash";
  settings.replicas = 3;
  settings.partitions = 4;
  // The cluster elects its JetStream leader a moment after the nodes accept connections.
  Status made = Status::unavailable("not tried");
  for (int i = 0; i < 100 && !made.is_ok(); ++i) {
    made = ensure_stream(cluster->urls(), settings);
    if (!made.is_ok()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(made.is_ok()) << made.to_string();
  CrashRun run;
  run.events = 20'000;
  run.kills = 6;
  run.replicas = 3;
  run.min_pause = std::chrono::milliseconds(800);
  run.max_pause = std::chrono::milliseconds(2500);
  run.require_mid_load = false;
  // While the killed leader's stream elects a new one, a child may relay nothing before its kill.
  run.min_progress_kills = 2;
  // The stream's leader is the node killed: the hardest case (a new leader must be elected).
  int killed_node = -1;
  run.on_kill = [&](int k) {
    if (k == 1) {
      const std::string leader = herald::testing::stream_leader(cluster->urls(), "CRASH");
      killed_node = leader.size() == 5 ? leader[4] - '0' : 1;
      if (killed_node < 0 || killed_node > 2) killed_node = 1;
      cluster->nodes[static_cast<std::size_t>(killed_node)]->kill();
    }
    if (k == 4) {
      ASSERT_TRUE(cluster->nodes[static_cast<std::size_t>(killed_node)]->restart());
    }
  };
  run_crash_scenario(*store_, store_url_, cluster->urls(), "CRASH", "crash.>", run);

  // And with one relay running throughout: how long relaying stalls when the leader dies.
  RelayOptions o;
  o.nats_url = cluster->urls();
  o.stream = settings;
  o.instance_id = "relay-child";
  o.ack_timeout = 2s;
  o.retry_max = 500ms;
  auto relay = Relay::create(*store_, o);
  ASSERT_TRUE(relay);
  ASSERT_TRUE((*relay)->start().is_ok());
  // On the consumer side, an inbox-protected projection in a store of its own.
  auto consumer_store = std::move(*open_store("memory:"));
  RemoteHandlerOptions ho;
  ho.nats_url = cluster->urls();
  ho.stream = settings;
  ho.ack_wait = 2s;
  auto consumer = RemoteHandlers::create(*consumer_store, ho);
  ASSERT_TRUE(consumer);
  ASSERT_TRUE((*consumer)->add(std::make_shared<InboxCounter>()).is_ok());
  ASSERT_TRUE((*consumer)->start().is_ok());
  std::atomic_bool stop{false};
  std::thread appender([&] {
    while (!stop) {
      std::vector<EventData> batch(10);
      for (auto& e : batch) {
        e.type = "Counted";
        e.payload = "{}";
      }
      (void)store_->append("counter-x", ExpectedVersion::any(), std::move(batch));
      std::this_thread::sleep_for(2ms);
    }
  });
  std::this_thread::sleep_for(1s);
  const std::string leader = herald::testing::stream_leader(cluster->urls(), "CRASH");
  const int victim = leader.size() == 5 ? leader[4] - '0' : 0;
  const std::int64_t before = (*relay)->health().checkpoint;
  const auto killed_at = std::chrono::steady_clock::now();
  cluster->nodes[static_cast<std::size_t>(victim)]->kill();
  // The first ack after the kill that moves the checkpoint past what was in flight then.
  const std::int64_t in_flight_end = store_->head_position() + 1;
  while ((*relay)->health().checkpoint <= in_flight_end &&
         std::chrono::steady_clock::now() - killed_at < 60s) {
    std::this_thread::sleep_for(5ms);
  }
  const auto stall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  std::printf("leader %s killed: relaying resumed after %lld ms (checkpoint %lld -> %lld)\n", leader.c_str(),
              static_cast<long long>(stall.count()), static_cast<long long>(before),
              static_cast<long long>((*relay)->health().checkpoint));
  RecordProperty("leader_kill_stall_ms", static_cast<int>(stall.count()));
  stop = true;
  appender.join();
  ASSERT_TRUE(cluster->nodes[static_cast<std::size_t>(victim)]->restart());
  ASSERT_TRUE((*relay)->wait_relayed(store_->head_position(), 60s).is_ok()) << (*relay)->health().reason;
  (*relay)->stop();
  std::string error;
  auto msgs = herald::testing::read_stream(cluster->urls(), "CRASH", "crash.>", error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(herald::testing::check_exactly_once_in_order(msgs, store_->head_position() + 1), "");
  // Every event, the first phase's included, counted exactly once on the consumer side.
  auto counted = [&] {
    auto d = consumer_store->read_document("counts", "total");
    return d ? std::stoll(*d) : 0;
  };
  const auto until = std::chrono::steady_clock::now() + 90s;
  while (counted() < store_->head_position() + 1 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
  }
  (*consumer)->stop();
  EXPECT_EQ(counted(), store_->head_position() + 1);
  std::printf("consumer counted %lld events once each (%lld handler calls acked)\n", static_cast<long long>(counted()),
              static_cast<long long>((*consumer)->stats()[0].processed));
}

}  // namespace
}  // namespace herald::jetstream
