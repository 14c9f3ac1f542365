// Domain kit: aggregates rebuilt from their streams, optimistic concurrency with re-decision,
// snapshots and upcasters, on the memory store.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "herald/aggregate.h"
#include "herald/event_store.h"

// Named (not anonymous) so the JSON functions the macros define are not "unused" when a test
// only encodes.
namespace account_events {

struct Deposited {
  static constexpr std::string_view kType = "Deposited";
  static constexpr int kSchemaVersion = 2;
  std::int64_t amount_cents = 0;
  std::string currency;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount_cents, currency)

struct Withdrawn {
  static constexpr std::string_view kType = "Withdrawn";
  std::int64_t amount_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Withdrawn, amount_cents)

}  // namespace account_events

namespace {

using account_events::Deposited;
using account_events::Withdrawn;
using herald::AggregateRoot;
using herald::ExpectedVersion;
using herald::RecordedEvent;
using herald::Repository;
using herald::RepositoryOptions;
using herald::Status;
using herald::StatusCode;

class Account final : public AggregateRoot {
 public:
  Status deposit(std::int64_t cents) {
    if (cents <= 0) return Status::invalid_argument("amount must be positive");
    return record(Deposited{cents, "EUR"});
  }
  Status withdraw(std::int64_t cents) {
    if (cents > balance) return Status::failed_precondition("insufficient funds");
    return record(Withdrawn{cents});
  }

  std::optional<nlohmann::json> snapshot() const override {
    return nlohmann::json{{"balance", balance}, {"operations", operations}};
  }
  Status restore(const nlohmann::json& state) override {
    balance = state.at("balance").get<std::int64_t>();
    operations = state.at("operations").get<int>();
    return {};
  }

  std::int64_t balance = 0;
  int operations = 0;
  std::vector<std::string> currencies;

 protected:
  Status apply(const RecordedEvent& e, const nlohmann::json& p) override {
    if (e.type == Deposited::kType) {
      balance += p.at("amount_cents").get<std::int64_t>();
      currencies.push_back(p.at("currency").get<std::string>());
    } else if (e.type == Withdrawn::kType) {
      balance -= p.at("amount_cents").get<std::int64_t>();
    } else {
      return Status::corruption("unknown event " + e.type);
    }
    ++operations;
    return {};
  }
};

std::unique_ptr<herald::EventStore> memory_store() {
  auto s = herald::open_store("memory:");
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return std::move(*s);
}

// Deposited v1 was {"amount": <whole euros>}; v2 is {"amount_cents", "currency"}.
std::shared_ptr<herald::UpcasterRegistry> account_upcasters() {
  auto reg = std::make_shared<herald::UpcasterRegistry>();
  EXPECT_TRUE(reg->add("Deposited", 1, [](nlohmann::json& p) -> Status {
    if (!p.contains("amount") || !p["amount"].is_number_integer()) {
      return Status::corruption("Deposited v1 without integer amount");
    }
    p["amount_cents"] = p["amount"].get<std::int64_t>() * 100;
    p["currency"] = "EUR";
    p.erase("amount");
    return {};
  }).is_ok());
  return reg;
}

TEST(Aggregate, NewAggregateSavesWithNoStreamAndReloads) {
  auto store = memory_store();
  Repository<Account> repo(*store, RepositoryOptions("account"));
  auto a = repo.load("a1");
  ASSERT_TRUE(a.is_ok());
  EXPECT_TRUE(a->is_new());
  ASSERT_TRUE(a->deposit(500).is_ok());
  ASSERT_TRUE(a->withdraw(200).is_ok());
  EXPECT_EQ(a->pending_events().size(), 2u);
  auto saved = repo.save(*a);
  ASSERT_TRUE(saved.is_ok()) << saved.status().to_string();
  EXPECT_EQ(saved->stream_version, 1);
  EXPECT_TRUE(a->pending_events().empty());
  EXPECT_EQ(a->version(), 1);

  auto again = repo.get("a1");
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->balance, 300);
  EXPECT_EQ(again->version(), 1);
  EXPECT_EQ(again->replayed_events(), 2);

  auto events = store->read_stream("account-a1", 0, 10, herald::ReadDirection::forwards);
  ASSERT_TRUE(events.is_ok());
  EXPECT_EQ(events->at(0).metadata.extra.at("schema"), "2");
  EXPECT_EQ(events->at(1).metadata.extra.at("schema"), "1");
}

TEST(Aggregate, GetOfMissingIsNotFoundAndEmptyIdInvalid) {
  auto store = memory_store();
  Repository<Account> repo(*store, RepositoryOptions("account"));
  EXPECT_EQ(repo.get("nobody").status().code(), StatusCode::not_found);
  EXPECT_EQ(repo.load("").status().code(), StatusCode::invalid_argument);
}

TEST(Aggregate, RejectedCommandRecordsNothing) {
  auto store = memory_store();
  Repository<Account> repo(*store, RepositoryOptions("account"));
  auto r = repo.execute("a1", [](Account& a) { return a.withdraw(1); });
  EXPECT_EQ(r.status().code(), StatusCode::failed_precondition);
  EXPECT_EQ(store->head_position(), -1);
}

TEST(Aggregate, StaleSaveConflictsWithActualVersion) {
  auto store = memory_store();
  Repository<Account> repo(*store, RepositoryOptions("account"));
  ASSERT_TRUE(repo.execute("a1", [](Account& a) { return a.deposit(100); }).is_ok());
  auto first = repo.load("a1");
  auto second = repo.load("a1");
  ASSERT_TRUE(first->withdraw(100).is_ok());
  ASSERT_TRUE(second->withdraw(100).is_ok());
  ASSERT_TRUE(repo.save(*first).is_ok());
  auto conflict = repo.save(*second);
  ASSERT_EQ(conflict.status().code(), StatusCode::wrong_expected_version);
  EXPECT_EQ(conflict.status().actual_version(), 1);
  EXPECT_EQ(second->pending_events().size(), 1u);  // kept for the caller to inspect
}

TEST(Aggregate, ExecuteRedecidesOnFreshStateAfterConflict) {
  auto store = memory_store();
  Repository<Account> repo(*store, RepositoryOptions("account"));
  ASSERT_TRUE(repo.execute("a1", [](Account& a) { return a.deposit(100); }).is_ok());
  int calls = 0;
  // The first decision is overtaken by a concurrent withdrawal; the second sees the new balance
  // and refuses, so the invariant (no overdraft) holds.
  auto r = repo.execute("a1", [&](Account& a) -> Status {
    ++calls;
    if (calls == 1) {
      Repository<Account> other(*store, RepositoryOptions("account"));
      EXPECT_TRUE(other.execute("a1", [](Account& b) { return b.withdraw(80); }).is_ok());
    }
    return a.withdraw(50);
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(r.status().code(), StatusCode::failed_precondition);
  EXPECT_EQ(repo.get("a1")->balance, 20);
}

TEST(Aggregate, ExecuteGivesUpAfterMaxAttempts) {
  auto store = memory_store();
  Repository<Account> repo(*store, RepositoryOptions("account").with_max_attempts(3));
  ASSERT_TRUE(repo.execute("a1", [](Account& a) { return a.deposit(100); }).is_ok());
  int calls = 0;
  auto r = repo.execute("a1", [&](Account& a) -> Status {
    ++calls;
    // Someone else always writes in between.
    EXPECT_TRUE(store->append("account-a1", ExpectedVersion::any(),
                              {herald::EventData{"", "Withdrawn", R"({"amount_cents":1})", {}}})
                    .is_ok());
    return a.deposit(1);
  });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.status().code(), StatusCode::wrong_expected_version);
}

TEST(Aggregate, SnapshotIsUsedAndGivesTheSameState) {
  auto store = memory_store();
  Repository<Account> snap_repo(*store, RepositoryOptions("account").with_snapshots(5));
  for (int i = 1; i <= 12; ++i) {
    ASSERT_TRUE(snap_repo.execute("a1", [&](Account& a) { return a.deposit(i); }).is_ok());
  }
  auto with_snapshot = snap_repo.get("a1");
  ASSERT_TRUE(with_snapshot.is_ok());
  // Snapshots were written after 5 and 10 events: the load starts at version 9 and replays 2.
  ASSERT_TRUE(with_snapshot->loaded_snapshot_version().has_value());
  EXPECT_EQ(*with_snapshot->loaded_snapshot_version(), 9);
  EXPECT_EQ(with_snapshot->replayed_events(), 2);

  Repository<Account> plain_repo(*store, RepositoryOptions("account"));
  auto full = plain_repo.get("a1");
  ASSERT_TRUE(full.is_ok());
  EXPECT_FALSE(full->loaded_snapshot_version().has_value());
  EXPECT_EQ(full->replayed_events(), 12);
  EXPECT_EQ(with_snapshot->balance, full->balance);
  EXPECT_EQ(with_snapshot->balance, 78);
  EXPECT_EQ(with_snapshot->operations, full->operations);
  EXPECT_EQ(with_snapshot->version(), full->version());

  // Saving from a snapshot-loaded aggregate continues at the right version.
  ASSERT_TRUE(with_snapshot->withdraw(8).is_ok());
  auto saved = snap_repo.save(*with_snapshot);
  ASSERT_TRUE(saved.is_ok()) << saved.status().to_string();
  EXPECT_EQ(saved->stream_version, 12);
  EXPECT_EQ(plain_repo.get("a1")->balance, 70);
}

TEST(Aggregate, SnapshotOfAnotherSchemaIsIgnored) {
  auto store = memory_store();
  Repository<Account> repo(*store, RepositoryOptions("account").with_snapshots(2));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(repo.execute("a1", [](Account& a) { return a.deposit(10); }).is_ok());
  ASSERT_TRUE(store->transact([](herald::StoreTransaction& tx) {
    return tx.put_document("snapshots", "account-a1",
                           R"({"schema":99,"version":3,"state":{"balance":-1,"operations":0}})");
  }).is_ok());
  auto a = repo.get("a1");
  ASSERT_TRUE(a.is_ok());
  EXPECT_FALSE(a->loaded_snapshot_version().has_value());
  EXPECT_EQ(a->balance, 40);
}

TEST(Upcasters, OldVersionEventsAreUpcastOnRead) {
  auto store = memory_store();
  // Written by an older build: schema 1 explicitly, and one with no schema key at all.
  herald::EventData v1{"", "Deposited", R"({"amount":3})", {}};
  v1.metadata.extra["schema"] = "1";
  herald::EventData unversioned{"", "Deposited", R"({"amount":2})", {}};
  ASSERT_TRUE(store->append("account-old", ExpectedVersion::no_stream(), {v1, unversioned}).is_ok());

  Repository<Account> repo(*store, RepositoryOptions("account").with_upcasters(account_upcasters()));
  auto a = repo.get("old");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->balance, 500);
  EXPECT_EQ(a->currencies, (std::vector<std::string>{"EUR", "EUR"}));

  // New events are written as v2 and read without upcasting.
  ASSERT_TRUE(a->deposit(1).is_ok());
  ASSERT_TRUE(repo.save(*a).is_ok());
  EXPECT_EQ(repo.get("old")->balance, 501);
}

TEST(Upcasters, WithoutTheUpcasterOldEventsDoNotApply) {
  auto store = memory_store();
  ASSERT_TRUE(store->append("account-old", ExpectedVersion::no_stream(),
                            {herald::EventData{"", "Deposited", R"({"amount":3})", {}}}).is_ok());
  Repository<Account> repo(*store, RepositoryOptions("account"));
  EXPECT_EQ(repo.get("old").status().code(), StatusCode::corruption);
}

TEST(Upcasters, RegistryRulesAndErrors) {
  herald::UpcasterRegistry reg;
  auto step = [](nlohmann::json&) { return Status{}; };
  EXPECT_EQ(reg.add("", 1, step).code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.add("T", 0, step).code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.add("T", 1, nullptr).code(), StatusCode::invalid_argument);
  ASSERT_TRUE(reg.add("T", 2, step).is_ok());
  EXPECT_EQ(reg.add("T", 2, step).code(), StatusCode::already_exists);
  EXPECT_EQ(reg.current_version("T"), 3);
  EXPECT_EQ(reg.current_version("Other"), 1);

  RecordedEvent e;
  e.id = "e1";
  e.type = "T";
  e.payload = "{}";
  e.metadata.extra["schema"] = "1";  // the 1 → 2 step is missing
  EXPECT_EQ(reg.upcast(e).code(), StatusCode::corruption);
  e.metadata.extra["schema"] = "4";  // from the future
  EXPECT_EQ(reg.upcast(e).code(), StatusCode::corruption);
  e.metadata.extra["schema"] = "x";
  EXPECT_EQ(reg.upcast(e).code(), StatusCode::corruption);
  e.metadata.extra["schema"] = "2";
  EXPECT_TRUE(reg.upcast(e).is_ok());
  EXPECT_EQ(e.metadata.extra["schema"], "3");
}

}  // namespace
