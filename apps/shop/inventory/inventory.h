// shop/inventory — stock per product and reservations per order.
//
// Streams: "stock-<product_id>" (StockInitialized, StockReserved, StockReleased, StockCommitted)
// and "reservation-<order_id>", the inventory side of an order's saga: a request event
// (reserve / release / commit) appended by the orders saga, and the outcome appended by the
// "inventory.reservations" handler. Every step checks the aggregate's state first, so a
// redelivered request changes nothing twice.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "herald/aggregate.h"
#include "herald/system.h"

namespace shop::inventory {

struct StockLine {
  std::string product_id;
  std::int64_t quantity = 0;
  bool operator==(const StockLine&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockLine, product_id, quantity)

struct StockInitialized {
  static constexpr std::string_view kType = "StockInitialized";
  std::string product_id;
  std::int64_t quantity = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockInitialized, product_id, quantity)

struct StockReserved {
  static constexpr std::string_view kType = "StockReserved";
  std::string product_id, order_id;
  std::int64_t quantity = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockReserved, product_id, order_id, quantity)

struct StockReleased {
  static constexpr std::string_view kType = "StockReleased";
  std::string product_id, order_id;
  std::int64_t quantity = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockReleased, product_id, order_id, quantity)

struct StockCommitted {
  static constexpr std::string_view kType = "StockCommitted";
  std::string product_id, order_id;
  std::int64_t quantity = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockCommitted, product_id, order_id, quantity)

struct InventoryReservationRequested {
  static constexpr std::string_view kType = "InventoryReservationRequested";
  std::string order_id;
  std::vector<StockLine> items;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InventoryReservationRequested, order_id, items)

struct InventoryReserved {
  static constexpr std::string_view kType = "InventoryReserved";
  std::string order_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InventoryReserved, order_id)

struct InventoryReservationFailed {
  static constexpr std::string_view kType = "InventoryReservationFailed";
  std::string order_id, reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InventoryReservationFailed, order_id, reason)

struct InventoryReleaseRequested {
  static constexpr std::string_view kType = "InventoryReleaseRequested";
  std::string order_id, reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InventoryReleaseRequested, order_id, reason)

struct InventoryReleased {
  static constexpr std::string_view kType = "InventoryReleased";
  std::string order_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InventoryReleased, order_id)

struct InventoryCommitRequested {
  static constexpr std::string_view kType = "InventoryCommitRequested";
  std::string order_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InventoryCommitRequested, order_id)

struct InventoryCommitted {
  static constexpr std::string_view kType = "InventoryCommitted";
  std::string order_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InventoryCommitted, order_id)

// Stock of one product. on_hand counts units not yet sold; reserved ones are part of it.
class Stock final : public herald::AggregateRoot {
 public:
  herald::Status initialize(const std::string& product_id, std::int64_t quantity);
  // No-op when `order_id` already holds a reservation here. failed_precondition when fewer than
  // `quantity` units are available.
  herald::Status reserve(const std::string& order_id, std::int64_t quantity, std::string event_id);
  // No-op when `order_id` holds no reservation (never reserved, or already released/committed).
  herald::Status release(const std::string& order_id, std::string event_id);
  herald::Status commit(const std::string& order_id, std::string event_id);

  std::int64_t on_hand = 0;
  std::int64_t sold = 0;
  std::map<std::string, std::int64_t> reservations;  // by order id
  std::int64_t reserved() const;
  std::int64_t available() const { return on_hand - reserved(); }

  std::optional<nlohmann::json> snapshot() const override;
  herald::Status restore(const nlohmann::json& state) override;

 protected:
  herald::Status apply(const herald::RecordedEvent& e, const nlohmann::json& p) override;
};

enum class ReservationState { none, requested, reserved, failed, release_requested, released,
                              commit_requested, committed };

// The inventory side of one order.
class Reservation final : public herald::AggregateRoot {
 public:
  // Each step records its event only from the state before it; from any later state it is a
  // no-op (ok, nothing recorded), which is what makes redelivered saga events harmless.
  herald::Status request(const std::string& order_id, const std::vector<StockLine>& lines, std::string event_id);
  herald::Status mark_reserved(std::string event_id);
  herald::Status mark_failed(const std::string& why, std::string event_id);
  herald::Status request_release(const std::string& why, std::string event_id);
  herald::Status mark_released(std::string event_id);
  herald::Status request_commit(std::string event_id);
  herald::Status mark_committed(std::string event_id);

  ReservationState state = ReservationState::none;
  std::vector<StockLine> items;
  std::string reason;

 protected:
  herald::Status apply(const herald::RecordedEvent& e, const nlohmann::json& p) override;
};

herald::Repository<Stock> stock_repository(herald::EventStore& store);
herald::Repository<Reservation> reservation_repository(herald::EventStore& store);

// Creates the stock of a new product. invalid_argument for quantity < 0; already_exists when the
// product already has stock.
herald::Status initialize_stock(herald::EventStore& store, const std::string& product_id, std::int64_t quantity,
                                const herald::EventMetadata& metadata);

// Saga commands. Each appends its request to "reservation-<order_id>" with `event_id` unless the
// reservation is already at or past that step (then ok, nothing written).
herald::Status request_reservation(herald::EventStore& store, const std::string& order_id,
                                   const std::vector<StockLine>& items, const herald::EventMetadata& metadata,
                                   const std::string& event_id);
herald::Status request_release(herald::EventStore& store, const std::string& order_id, const std::string& reason,
                               const herald::EventMetadata& metadata, const std::string& event_id);
herald::Status request_commit(herald::EventStore& store, const std::string& order_id,
                              const herald::EventMetadata& metadata, const std::string& event_id);

// The handlers, for tests that drive them without a bus.
std::shared_ptr<herald::EventHandler> make_reservations_handler();  // "inventory.reservations"
std::shared_ptr<herald::EventHandler> make_stock_view_handler();    // "inventory.stock_view"

// Stock view document of a product {available, reserved, sold}, from collection "stock".
inline constexpr std::string_view kStockViewCollection = "stock";

std::unique_ptr<herald::Module> make_module();

}  // namespace shop::inventory
