// Reads a whole JetStream stream back, in stream order, with an ordered consumer: what the
// relay tests compare against the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace herald::testing {

struct StreamMessage {
  std::uint64_t sequence = 0;
  std::int64_t position = -1;  // Herald-Position, -1 when absent
  std::string id;              // Nats-Msg-Id
  std::string subject;
  std::string stream_id;       // Herald-Stream (as sent, percent-encoded)
  std::string type;            // Herald-Type
  std::string payload;
};

// Every message of `stream` (subjects `subjects`) in stream order. Empty with `error` set when the
// server cannot be read.
std::vector<StreamMessage> read_stream(const std::string& url, const std::string& stream, const std::string& subjects,
                                       std::string& error);

// The server name of the stream's cluster leader ("" when unknown).
std::string stream_leader(const std::string& url, const std::string& stream);

// Positions 0..n-1 each exactly once and in order? "" when so, else a description of the first
// difference.
std::string check_exactly_once_in_order(const std::vector<StreamMessage>& messages, std::int64_t n);

}  // namespace herald::testing
