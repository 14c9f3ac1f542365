// herald/jetstream.h — the store's log relayed to NATS JetStream, and durable handlers that run in
// another process from it.
//
// The store stays the source of truth: its global log *is* the transactional outbox. The relay
// tails it from a checkpoint kept in the same store and publishes each event to one JetStream
// stream; a RemoteHandlers object in another process runs ordinary herald::EventHandler classes
// from that stream, with the consumer process's own store for dead letters and inbox records.
//
//   herald::jetstream::RelayOptions options;
//   options.nats_url = "nats://127.0.0.1:4222";
//   auto relay = herald::jetstream::Relay::create(*store, options);
//   if (!relay) { log(relay.status().to_string()); return 1; }
//   (*relay)->start();                           // returns at once; relays on its own thread
//   ...  (*relay)->health()  ...
//   (*relay)->stop();
//
// Subject of an event: "<prefix>.<category>.p<partition>.<type>", where partition =
// FNV-1a(stream id) mod partitions; tokens are sanitised (characters outside [A-Za-z0-9_-] become
// '_'), and the headers below carry the exact values. Headers of every message:
//   Nats-Msg-Id          the event id (JetStream drops a re-publish inside the duplicate window)
//   Herald-Position      global position in the store (decimal)
//   Herald-Stream        stream id            Herald-Version   version in the stream (decimal)
//   Herald-Type          event type           Herald-Recorded-At  RFC 3339 UTC, microseconds
//   Herald-Correlation-Id, Herald-Causation-Id, Herald-Actor   when not empty
//   Herald-Extra         metadata.extra as a JSON object, when not empty
// Text headers are percent-encoded outside printable ASCII (and '%' itself), so no stored byte can
// break the header framing. The body is the payload (JSON text).
//
// Ordering: every publish carries the previous event's id as JetStream's expected last message id,
// so the stream holds the relayed events in position order with no gap, whatever fails; after any
// error the relay re-reads the stream's last message and resumes after it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "herald/event_store.h"
#include "herald/handler.h"
#include "herald/status.h"

namespace herald::jetstream {

// The JetStream stream events go to. The same values must be given to the relay and to every
// consumer process.
struct StreamSettings {
  std::string name = "HERALD";          // JetStream stream name ([A-Za-z0-9_-], at most 64)
  std::string subject_prefix = "herald"; // one or more subject tokens, e.g. "shop.events"
  int replicas = 1;                      // 1..5; R3 on a three-node cluster
  // JetStream's dedupe window for Nats-Msg-Id; at least 2 minutes (a relay restarted inside it
  // re-publishes nothing twice even before it re-reads the stream's tail).
  std::chrono::milliseconds duplicate_window{std::chrono::minutes(2)};
  int partitions = 16;  // 1..1024; the partition token in each subject
};

// Checks the settings: invalid_argument naming the field when one is out of range.
Status validate(const StreamSettings& settings);

// The partition of a stream id: FNV-1a of its bytes mod `partitions` (stable across builds and
// platforms). REQUIRES: partitions >= 1.
int partition_of(std::string_view stream_id, int partitions);

// The subject an event is published on (see the top of this file).
std::string subject_for(const StreamSettings& settings, const RecordedEvent& event);

struct RelayOptions {
  std::string nats_url = "nats://127.0.0.1:4222";  // comma-separated for a cluster
  StreamSettings stream;
  // Publishes awaiting JetStream's ack at most; the relay reads no further ahead.
  int max_pending_acks = 1024;
  std::size_t read_batch = 512;                     // events per store read
  std::chrono::milliseconds ack_timeout{5000};      // a publish not acked by then counts as failed
  std::chrono::milliseconds checkpoint_interval{100};  // checkpoint saves while events flow
  std::chrono::milliseconds retry_initial{100};     // backoff after a failure, doubling …
  std::chrono::milliseconds retry_max{5000};        // … to at most this
  // Hold a lease in the store so one instance relays at a time (on for shared stores). The
  // relay publishes only while its last renewal is younger than 80% of the ttl.
  bool use_lease = true;
  std::chrono::milliseconds lease_ttl{5000};
  std::string instance_id;  // lease owner; empty: a fresh UUID
};

// A snapshot of the relay. Thread-safe to take at any time.
struct RelayHealth {
  bool running = false;   // start() was called and stop() not yet
  bool leader = false;    // holds the lease (always true without leases) and relays
  bool healthy = false;   // leader and connected, stream verified, nothing failing; or standby
  std::string reason;     // why not healthy (or "standby: …"); empty when healthy and leading
  std::int64_t checkpoint = 0;  // next position to relay: every earlier one is acked by JetStream
  std::int64_t head = -1;       // the store's head position
  std::int64_t published = 0;   // messages acknowledged since start (duplicates included)
  std::int64_t pending = 0;     // publishes awaiting an ack now
  std::int64_t failures = 0;    // failed attempts (connect, verify, publish) since start
  std::int64_t lag() const { return head + 1 - checkpoint; }
};

// The checkpoint name of a relay to `stream_name`: "herald.jetstream.relay/<stream_name>".
std::string relay_checkpoint_name(std::string_view stream_name);

// Tails a store's log into a JetStream stream.
// Thread-safety: start, stop and health may be called from any thread.
class Relay {
 public:
  // Checks the options (invalid_argument naming the field). Connects to nothing yet: the
  // connection, the stream's creation or verification and any outage are handled by the relay's
  // thread, and reported through health(). `store` must outlive the relay.
  static Result<std::unique_ptr<Relay>> create(EventStore& store, RelayOptions options);

  virtual ~Relay() = default;  // stops
  // Starts the relay thread. failed_precondition when already started.
  virtual Status start() = 0;
  // Stops: waits up to ack_timeout for pending acks, saves the checkpoint, releases the lease,
  // closes the connection. Idempotent.
  virtual void stop() = 0;
  virtual RelayHealth health() const = 0;
  // Blocks until the checkpoint passes `position` (ok), the timeout passes (timeout) or the relay
  // is stopped (cancelled). For tests and orderly shutdown.
  virtual Status wait_relayed(std::int64_t position, std::chrono::milliseconds timeout) = 0;
};

// Where a remote handler runs: a process other than the relay's, with a store of its own for dead
// letters and inbox records.
struct RemoteHandlerOptions {
  std::string nats_url = "nats://127.0.0.1:4222";
  StreamSettings stream;                        // as the relay's
  // Redelivery when a call neither acks nor naks (a crashed consumer): the partition waits this
  // long for a message the dead process had fetched. Longer than any handler call should take.
  std::chrono::milliseconds ack_wait{10'000};
  // One pull request's wait (bounds stop latency). Short ones cost more than polling: a message the
  // server hands to a pull request just as the client gives up on it is dropped by libnats and
  // comes back only after ack_wait.
  std::chrono::milliseconds fetch_wait{1000};
};

// Counters of one remote handler since start. Thread-safe to read through RemoteHandlers::stats.
struct RemoteHandlerStats {
  std::string name;
  std::int64_t processed = 0;      // calls that returned ok (acked)
  std::int64_t retried = 0;        // naks with a delay
  std::int64_t dead_lettered = 0;  // messages written to the dead letters and terminated
  std::int64_t skipped = 0;        // messages of other types on a shared filter, acked unhandled
};

// Runs herald::EventHandler classes from JetStream in this process. Each handler gets one durable
// pull consumer per partition ("<handler>_p<k>", the handler name sanitised), filtered on the
// server by its subject, with at most one unacked message: so each stream's events reach the
// handler in order, one partition after another event, while partitions run in parallel (one
// thread each). On ok the message is acked; on a retryable error it is naked with the handler's
// RetryPolicy delay (the redelivery count is HandlerContext::attempt); after the last attempt, on a
// permanent error, or for a message that is not a Herald event, a DeadLetter is added to this
// process's store and the message is terminated. HandlerContext::exactly_once works against that
// store. Delivery is at least once; effects through exactly_once happen once.
// Thread-safety: every method may be called from any thread.
class RemoteHandlers {
 public:
  // `store` must outlive the object. invalid_argument for bad options.
  static Result<std::unique_ptr<RemoteHandlers>> create(EventStore& store, RemoteHandlerOptions options);
  virtual ~RemoteHandlers() = default;  // stops
  // Before start only: failed_precondition after it; already_exists for a duplicate name;
  // invalid_argument for a null handler or an empty name.
  virtual Status add(std::shared_ptr<EventHandler> handler, RetryPolicy retry = {}) = 0;
  // Connects, creates or verifies the stream and the consumers, and starts the threads.
  // unavailable when NATS cannot be reached (nothing started); failed_precondition when started.
  virtual Status start() = 0;
  // Stops every thread (an unfinished call's message is redelivered later). Idempotent.
  virtual void stop() = 0;
  virtual std::vector<RemoteHandlerStats> stats() const = 0;
};

// Creates the stream, or verifies that an existing one has the same subjects, file storage, the
// replica count and the duplicate window. failed_precondition naming the mismatch; unavailable
// when JetStream does not answer. Used by the relay; public for operators' tools and tests.
Status ensure_stream(std::string_view nats_url, const StreamSettings& settings);

}  // namespace herald::jetstream
