#include "payments/payments.h"

#include "common/common.h"
#include "herald/id.h"
#include "herald/typed_handler.h"

namespace shop::payments {

using herald::RecordedEvent;
using herald::Status;

Status Payment::request(const std::string& order_id, std::int64_t amount, const std::string& token,
                        std::string event_id) {
  if (state != PaymentState::none) return {};
  if (amount < 0) return Status::invalid_argument("payment amount must be >= 0");
  return record(PaymentRequested{order_id, amount, token}, std::move(event_id));
}

Status Payment::capture(const std::string& transaction_id, std::string event_id) {
  if (state != PaymentState::requested) return {};
  return record(PaymentCaptured{id(), amount_cents, transaction_id}, std::move(event_id));
}

Status Payment::decline(const std::string& reason, std::string event_id) {
  if (state != PaymentState::requested) return {};
  return record(PaymentDeclined{id(), reason}, std::move(event_id));
}

Status Payment::apply(const RecordedEvent& e, const nlohmann::json& p) {
  if (e.type == PaymentRequested::kType) {
    state = PaymentState::requested;
    amount_cents = p.at("amount_cents").get<std::int64_t>();
    payment_token = p.at("payment_token").get<std::string>();
  } else if (e.type == PaymentCaptured::kType) {
    state = PaymentState::captured;
  } else if (e.type == PaymentDeclined::kType) {
    state = PaymentState::declined;
  } else {
    return Status::corruption("payment stream holds unknown event " + e.type);
  }
  return {};
}

herald::Repository<Payment> payment_repository(herald::EventStore& store) {
  return herald::Repository<Payment>(store, herald::RepositoryOptions("payment"));
}

herald::Result<ChargeOutcome> SimulatedGateway::charge(const std::string& order_id, std::int64_t /*amount_cents*/,
                                                       const std::string& payment_token) {
  if (payment_token == "tok_timeout") return Status::timeout("payment gateway did not answer for order " + order_id);
  ChargeOutcome out;
  if (payment_token == "tok_declined") {
    out.decline_reason = "card_declined";
    return out;
  }
  out.approved = true;
  out.transaction_id = herald::derived_uuid("payments.simulated_gateway", order_id);
  return out;
}

Status request_payment(herald::EventStore& store, const std::string& order_id, std::int64_t amount_cents,
                       const std::string& payment_token, const herald::EventMetadata& metadata,
                       const std::string& event_id) {
  return payment_repository(store)
      .execute(order_id, [&](Payment& p) { return p.request(order_id, amount_cents, payment_token, event_id); },
               metadata)
      .status();
}

namespace {

class Processor final : public herald::BaseEventHandler<PaymentRequested> {
 public:
  explicit Processor(std::shared_ptr<PaymentGateway> gateway) : gateway_(std::move(gateway)) {}
  std::string name() const override { return "payments.processor"; }

  Status on(const PaymentRequested& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    auto repo = payment_repository(ctx.store());
    auto payment = repo.load(e.order_id);
    if (!payment) return payment.status();
    if (payment->state != PaymentState::requested) return {};  // decided before
    auto outcome = gateway_->charge(e.order_id, e.amount_cents, e.payment_token);
    if (!outcome) return outcome.status();  // timeout/unavailable: retried by the bus
    const std::string id = follow_up_id(name(), raw, "outcome");
    return repo
        .execute(e.order_id,
                 [&](Payment& p) {
                   return outcome->approved ? p.capture(outcome->transaction_id, id)
                                            : p.decline(outcome->decline_reason, id);
                 },
                 caused_by(raw, name()))
        .status();
  }

 private:
  std::shared_ptr<PaymentGateway> gateway_;  // thread-safe by contract
};

class PaymentsModule final : public herald::Module {
 public:
  explicit PaymentsModule(std::shared_ptr<PaymentGateway> gateway) : gateway_(std::move(gateway)) {}
  std::string name() const override { return "payments"; }
  Status register_handlers(herald::HandlerRegistrar& r, herald::ModuleContext&) override {
    return r.add(make_processor(gateway_));
  }

 private:
  std::shared_ptr<PaymentGateway> gateway_;
};

}  // namespace

std::shared_ptr<herald::EventHandler> make_processor(std::shared_ptr<PaymentGateway> gateway) {
  return std::make_shared<Processor>(gateway ? std::move(gateway) : std::make_shared<SimulatedGateway>());
}

std::unique_ptr<herald::Module> make_module(std::shared_ptr<PaymentGateway> gateway) {
  if (!gateway) gateway = std::make_shared<SimulatedGateway>();
  return std::make_unique<PaymentsModule>(std::move(gateway));
}

}  // namespace shop::payments
