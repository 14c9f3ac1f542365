// shop/payments — charging an order through a payment gateway. Stream "payment-<order_id>":
// PaymentRequested (by the orders saga), then PaymentCaptured or PaymentDeclined (by the
// "payments.processor" handler). A gateway timeout is a retryable error: the bus retries the
// handler and, when attempts run out, dead-letters the request; the order stays pending until a
// redrive.
#pragma once

#include <memory>
#include <string>

#include "herald/aggregate.h"
#include "herald/system.h"

namespace shop::payments {

struct PaymentRequested {
  static constexpr std::string_view kType = "PaymentRequested";
  std::string order_id;
  std::int64_t amount_cents = 0;
  std::string payment_token;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PaymentRequested, order_id, amount_cents, payment_token)

struct PaymentCaptured {
  static constexpr std::string_view kType = "PaymentCaptured";
  std::string order_id;
  std::int64_t amount_cents = 0;
  std::string transaction_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PaymentCaptured, order_id, amount_cents, transaction_id)

struct PaymentDeclined {
  static constexpr std::string_view kType = "PaymentDeclined";
  std::string order_id, reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PaymentDeclined, order_id, reason)

enum class PaymentState { none, requested, captured, declined };

class Payment final : public herald::AggregateRoot {
 public:
  // Each is a no-op (ok, nothing recorded) unless the payment is in the state before it.
  herald::Status request(const std::string& order_id, std::int64_t amount, const std::string& token,
                         std::string event_id);
  herald::Status capture(const std::string& transaction_id, std::string event_id);
  herald::Status decline(const std::string& reason, std::string event_id);

  PaymentState state = PaymentState::none;
  std::int64_t amount_cents = 0;
  std::string payment_token;

 protected:
  herald::Status apply(const herald::RecordedEvent& e, const nlohmann::json& p) override;
};

herald::Repository<Payment> payment_repository(herald::EventStore& store);

// What a gateway answers for one charge.
struct ChargeOutcome {
  bool approved = false;
  std::string transaction_id;  // when approved
  std::string decline_reason;  // when declined
};

// A payment provider. Thread-safe. charge() is idempotent per order id (the idempotency key real
// gateways take), so a retried charge never bills twice.
class PaymentGateway {
 public:
  virtual ~PaymentGateway() = default;
  // A decision, or timeout/unavailable when the gateway did not answer (retry later).
  virtual herald::Result<ChargeOutcome> charge(const std::string& order_id, std::int64_t amount_cents,
                                               const std::string& payment_token) = 0;
};

// Accepts any token except "tok_declined" (declined: card_declined) and "tok_timeout" (never
// answers: timeout). Stateless, so thread-safe.
class SimulatedGateway final : public PaymentGateway {
 public:
  herald::Result<ChargeOutcome> charge(const std::string& order_id, std::int64_t amount_cents,
                                       const std::string& payment_token) override;
};

// Saga command: appends PaymentRequested with `event_id` unless the payment was requested before.
herald::Status request_payment(herald::EventStore& store, const std::string& order_id, std::int64_t amount_cents,
                               const std::string& payment_token, const herald::EventMetadata& metadata,
                               const std::string& event_id);

// "payments.processor".
std::shared_ptr<herald::EventHandler> make_processor(std::shared_ptr<PaymentGateway> gateway);

std::unique_ptr<herald::Module> make_module(std::shared_ptr<PaymentGateway> gateway = nullptr);

}  // namespace shop::payments
