// The remote-handler process SIGKILLed 20 times while it consumes 5,000 events: the projection in
// its own store (exactly_once) ends with each event counted once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <thread>

#include "herald/jetstream.h"
#include "nats_test_server.h"

namespace herald::jetstream {
namespace {

using namespace std::chrono_literals;

pid_t spawn(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(HERALD_CONSUMER_CHILD, argv.data());
    ::_exit(127);
  }
  return pid;
}

TEST(ConsumerCrashTest, KilledTwentyTimesEachEventCountedOnce) {
  if (herald::testing::nats_server_binary().empty()) GTEST_SKIP() << "nats-server is not installed (scripts/setup)";
  const std::string dir = herald::testing::make_temp_dir("herald-consumer-crash");
  auto server = herald::testing::NatsTestServer::start(dir + "/js");
  ASSERT_NE(server, nullptr);
  auto source = std::move(*open_store("memory:"));
  RelayOptions ro;
  ro.nats_url = server->url();
  ro.stream.name = "CONSUMER";
  ro.stream.subject_prefix = "consumer";
  ro.stream.partitions = 4;
  auto relay = std::move(*Relay::create(*source, ro));
  ASSERT_TRUE(relay->start().is_ok());
  constexpr int kEvents = 5000;
  std::thread appender([&] {
    for (int i = 0; i < kEvents / 10; ++i) {
      std::vector<EventData> batch(10);
      for (auto& e : batch) {
        e.type = "Counted";
        e.payload = "{}";
      }
      (void)source->append("counter-" + std::to_string(i % 53), ExpectedVersion::any(), std::move(batch));
      std::this_thread::sleep_for(2ms);
    }
  });
  const std::string store_url = "sqlite://" + dir + "/consumer.db";
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pause(100, 400);
  for (int k = 0; k < 20; ++k) {
    pid_t child = spawn({HERALD_CONSUMER_CHILD, store_url, server->url(), "CONSUMER"});
    ASSERT_GT(child, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause(rng)));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  }
  appender.join();
  {
    // The killed processes did part of the work (otherwise the kills interrupted nothing).
    auto partial = open_store(store_url);
    ASSERT_TRUE(partial);
    auto n = (*partial)->read_document("counts", "total");
    ASSERT_TRUE(n) << "no killed consumer counted anything";
    EXPECT_GT(std::stol(*n), 0);
    std::printf("after 20 kills the consumer had counted %s of %d events\n", n->c_str(), kEvents);
  }
  ASSERT_TRUE(relay->wait_relayed(source->head_position(), 30s).is_ok());
  pid_t last = spawn({HERALD_CONSUMER_CHILD, store_url, server->url(), "CONSUMER", std::to_string(kEvents)});
  int status = 0;
  ::waitpid(last, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the consumer did not reach the count";
  relay->stop();
  auto store = open_store(store_url);
  ASSERT_TRUE(store);
  auto total = (*store)->read_document("counts", "total");
  ASSERT_TRUE(total);
  EXPECT_EQ(std::stol(*total), kEvents);
  herald::testing::remove_tree(dir);
}

}  // namespace
}  // namespace herald::jetstream
