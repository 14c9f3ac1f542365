// A relay process for the crash tests: relays <store-url> to <nats-url> until killed (or until
// stdin closes). Exit 2 on bad arguments or an unopenable store.
#include <cstdio>
#include <string>
#include <thread>

#include "herald/jetstream.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: relay_child <store-url> <nats-url> [stream] [replicas]\n");
    return 2;
  }
  auto store = herald::open_store(argv[1]);
  if (!store) {
    std::fprintf(stderr, "relay_child: %s\n", store.status().to_string().c_str());
    return 2;
  }
  herald::jetstream::RelayOptions o;
  o.nats_url = argv[2];
  o.stream.name = argc > 3 ? argv[3] : "CRASH";
  o.stream.subject_prefix = "crash";
  o.stream.replicas = argc > 4 ? std::stoi(argv[4]) : 1;
  o.stream.partitions = 4;
  o.instance_id = "relay-child";  // the same owner each time: a restart renews its own lease
  o.lease_ttl = std::chrono::milliseconds(2000);
  o.ack_timeout = std::chrono::milliseconds(2000);
  o.retry_max = std::chrono::milliseconds(500);
  auto relay = herald::jetstream::Relay::create(**store, o);
  if (!relay) {
    std::fprintf(stderr, "relay_child: %s\n", relay.status().to_string().c_str());
    return 2;
  }
  if (!(*relay)->start().is_ok()) return 2;
  // Runs until SIGKILL, or stops cleanly when the parent closes our stdin.
  while (std::getchar() != EOF) {
  }
  (*relay)->stop();
  return 0;
}
