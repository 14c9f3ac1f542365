// Configuration precedence (flags > env > TOML > defaults) and clear errors for bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "herald/system.h"

namespace {

using herald::StatusCode;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("herald-config-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write_file(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, DefaultsWhenNothingIsGiven) {
  auto r = herald::parse_config({}, {});
  ASSERT_TRUE(r) << r.status().to_string();
  const auto& c = r->config;
  EXPECT_FALSE(r->help);
  EXPECT_EQ(c.data_dir, "./data");
  EXPECT_EQ(c.effective_store_url(), "sqlite://./data/events.db");
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 8080);
  EXPECT_EQ(c.http.body_limit_bytes, 1u << 20);
  EXPECT_EQ(c.http.admin_token, "");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.handler_defaults.retry.max_attempts, 5);
}

TEST_F(ConfigTest, DataDirMovesTheDefaultStore) {
  auto r = herald::parse_config({"--data-dir", "/var/lib/shop/"}, {});
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->config.effective_store_url(), "sqlite:///var/lib/shop/events.db");
  auto explicit_store = herald::parse_config({"--data-dir", "/x", "--store", "memory:"}, {});
  ASSERT_TRUE(explicit_store);
  EXPECT_EQ(explicit_store->config.effective_store_url(), "memory:");
}

TEST_F(ConfigTest, FlagsBeatEnvBeatFileBeatDefaults) {
  auto file = write_file("herald.toml", R"(
log_level = "debug"
[http]
port = 1111
host = "0.0.0.0"
[retry]
max_attempts = 7
initial_delay_ms = 250
)");
  std::map<std::string, std::string> env = {{"HERALD_PORT", "2222"}, {"HERALD_RETRY_MAX_ATTEMPTS", "8"}};

  auto all = herald::parse_config({"--config", file, "--port", "3333"}, env);
  ASSERT_TRUE(all) << all.status().to_string();
  EXPECT_EQ(all->config.http.port, 3333);                           // flag
  EXPECT_EQ(all->config.handler_defaults.retry.max_attempts, 8);    // env over file
  EXPECT_EQ(all->config.handler_defaults.retry.initial_delay, std::chrono::milliseconds(250));  // file
  EXPECT_EQ(all->config.http.host, "0.0.0.0");                      // file
  EXPECT_EQ(all->config.log_level, "debug");                        // file
  EXPECT_EQ(all->config.http.body_limit_bytes, 1u << 20);           // default
  EXPECT_EQ(all->config.config_file, file);

  auto no_flag = herald::parse_config({"--config", file}, env);
  ASSERT_TRUE(no_flag);
  EXPECT_EQ(no_flag->config.http.port, 2222);

  auto file_only = herald::parse_config({"--config", file}, {});
  ASSERT_TRUE(file_only);
  EXPECT_EQ(file_only->config.http.port, 1111);
  EXPECT_EQ(file_only->config.handler_defaults.retry.max_attempts, 7);
}

TEST_F(ConfigTest, ConfigFileCanComeFromTheEnvironment) {
  auto file = write_file("env.toml", "[http]\nadmin_token = \"from-file\"\n");
  auto r = herald::parse_config({}, {{"HERALD_CONFIG", file}});
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->config.http.admin_token, "from-file");
  auto flag = herald::parse_config({"--admin-token", "from-flag"}, {{"HERALD_CONFIG", file}});
  ASSERT_TRUE(flag);
  EXPECT_EQ(flag->config.http.admin_token, "from-flag");
}

TEST_F(ConfigTest, EveryDocumentedFlagIsAccepted) {
  auto r = herald::parse_config(
      {"--store", "memory:", "--data-dir", "d", "--host", "::1", "--port", "0", "--admin-token", "t",
       "--retry-max-attempts", "3", "--retry-initial-delay-ms", "10", "--retry-max-delay-ms", "20",
       "--smtp-url", "smtp://127.0.0.1:2525", "--body-limit-bytes", "2048", "--log-level", "warn",
       "--handler-lanes", "4", "--start-from", "end", "--use-leases", "true", "--shutdown-timeout-ms", "1500"},
      {});
  ASSERT_TRUE(r) << r.status().to_string();
  const auto& c = r->config;
  EXPECT_EQ(c.store_url, "memory:");
  EXPECT_EQ(c.http.host, "::1");
  EXPECT_EQ(c.http.port, 0);
  EXPECT_EQ(c.http.admin_token, "t");
  EXPECT_EQ(c.handler_defaults.retry.max_attempts, 3);
  EXPECT_EQ(c.handler_defaults.retry.initial_delay, std::chrono::milliseconds(10));
  EXPECT_EQ(c.handler_defaults.retry.max_delay, std::chrono::milliseconds(20));
  EXPECT_EQ(c.smtp_url, "smtp://127.0.0.1:2525");
  EXPECT_EQ(c.http.body_limit_bytes, 2048u);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.handler_defaults.lanes, 4);
  EXPECT_EQ(c.handler_defaults.start_from, herald::StartFrom::end);
  EXPECT_TRUE(c.bus.use_leases);
  EXPECT_EQ(c.shutdown_timeout, std::chrono::milliseconds(1500));
}

TEST_F(ConfigTest, MalformedTomlIsAClearError) {
  auto file = write_file("bad.toml", "[http]\nport = = 8080\n");
  auto r = herald::parse_config({"--config", file}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find(file + ":2"), std::string::npos) << r.status().message();
}

TEST_F(ConfigTest, MissingTomlFileIsAnError) {
  auto r = herald::parse_config({"--config", (dir_ / "absent.toml").string()}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find("absent.toml"), std::string::npos);
}

TEST_F(ConfigTest, UnknownTomlKeyIsRejected) {
  auto file = write_file("unknown.toml", "[http]\nprot = 8080\n");
  auto r = herald::parse_config({"--config", file}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find("http.prot"), std::string::npos) << r.status().message();
}

TEST_F(ConfigTest, WrongTomlTypeIsRejected) {
  auto file = write_file("type.toml", "[http]\nport = \"eighty\"\n");
  auto r = herald::parse_config({"--config", file}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find("expected an integer"), std::string::npos) << r.status().message();
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  auto r = herald::parse_config({}, {{"HERALD_PORT", "http"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find("HERALD_PORT"), std::string::npos);
}

TEST_F(ConfigTest, OutOfRangeFlagNamesTheFlag) {
  auto r = herald::parse_config({"--port", "70000"}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find("--port"), std::string::npos);
  auto zero_attempts = herald::parse_config({"--retry-max-attempts", "0"}, {});
  ASSERT_FALSE(zero_attempts);
  EXPECT_EQ(zero_attempts.status().code(), StatusCode::invalid_argument);
  auto level = herald::parse_config({"--log-level", "loud"}, {});
  ASSERT_FALSE(level);
  EXPECT_EQ(level.status().code(), StatusCode::invalid_argument);
}

TEST_F(ConfigTest, UnknownFlagIsRejected) {
  auto r = herald::parse_config({"--prot", "1"}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
}

TEST_F(ConfigTest, HelpListsTheFlags) {
  auto r = herald::parse_config({"--help"}, {});
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->help);
  EXPECT_NE(r->help->find("--store"), std::string::npos);
  EXPECT_NE(r->help->find("HERALD_ADMIN_TOKEN"), std::string::npos);
}

TEST_F(ConfigTest, PerHandlerOverridesFromToml) {
  auto file = write_file("handlers.toml", R"(
[handler."notifications.send_welcome_email"]
retry_max_attempts = 2
lanes = 3
start_from = "end"
)");
  auto r = herald::parse_config({"--config", file}, {});
  ASSERT_TRUE(r) << r.status().to_string();
  auto it = r->config.handler_overrides.find("notifications.send_welcome_email");
  ASSERT_NE(it, r->config.handler_overrides.end());
  EXPECT_EQ(it->second.retry_max_attempts, 2);
  EXPECT_EQ(it->second.lanes, 3);
  EXPECT_EQ(it->second.start_from, herald::StartFrom::end);
  EXPECT_FALSE(it->second.retry_initial_delay);

  auto bad = write_file("bad_handler.toml", "[handler.x]\nlanes = 65\n");
  auto b = herald::parse_config({"--config", bad}, {});
  ASSERT_FALSE(b);
  EXPECT_EQ(b.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(b.status().message().find("handler.x.lanes"), std::string::npos) << b.status().message();
}

}  // namespace
