#include "inventory/inventory.h"

#include "common/common.h"
#include "herald/id.h"
#include "herald/typed_handler.h"

namespace shop::inventory {

using herald::RecordedEvent;
using herald::Status;

// ---- Stock ----

std::int64_t Stock::reserved() const {
  std::int64_t sum = 0;
  for (const auto& [order, q] : reservations) sum += q;
  return sum;
}

Status Stock::initialize(const std::string& product_id, std::int64_t quantity) {
  if (!is_new()) return Status::already_exists("product " + product_id + " already has stock");
  if (quantity < 0) return Status::invalid_argument("field 'stock' must be an integer >= 0");
  return record(StockInitialized{product_id, quantity});
}

Status Stock::reserve(const std::string& order_id, std::int64_t quantity, std::string event_id) {
  if (is_new()) return Status::not_found("product " + id() + " has no stock record");
  if (reservations.count(order_id) != 0) return {};
  if (quantity <= 0) return Status::invalid_argument("reservation quantity must be >= 1");
  if (available() < quantity) {
    return Status::failed_precondition("product " + id() + ": " + std::to_string(quantity) + " requested, " +
                                       std::to_string(available()) + " available");
  }
  return record(StockReserved{id(), order_id, quantity}, std::move(event_id));
}

Status Stock::release(const std::string& order_id, std::string event_id) {
  auto it = reservations.find(order_id);
  if (it == reservations.end()) return {};
  return record(StockReleased{id(), order_id, it->second}, std::move(event_id));
}

Status Stock::commit(const std::string& order_id, std::string event_id) {
  auto it = reservations.find(order_id);
  if (it == reservations.end()) return {};
  return record(StockCommitted{id(), order_id, it->second}, std::move(event_id));
}

Status Stock::apply(const RecordedEvent& e, const nlohmann::json& p) {
  if (e.type == StockInitialized::kType) {
    on_hand = p.at("quantity").get<std::int64_t>();
  } else if (e.type == StockReserved::kType) {
    reservations[p.at("order_id").get<std::string>()] = p.at("quantity").get<std::int64_t>();
  } else if (e.type == StockReleased::kType) {
    reservations.erase(p.at("order_id").get<std::string>());
  } else if (e.type == StockCommitted::kType) {
    const auto q = p.at("quantity").get<std::int64_t>();
    reservations.erase(p.at("order_id").get<std::string>());
    on_hand -= q;
    sold += q;
  } else {
    return Status::corruption("stock stream holds unknown event " + e.type);
  }
  return {};
}

std::optional<nlohmann::json> Stock::snapshot() const {
  return nlohmann::json{{"on_hand", on_hand}, {"sold", sold}, {"reservations", reservations}};
}

Status Stock::restore(const nlohmann::json& state) {
  auto h = state.at("on_hand").get<std::int64_t>();
  auto s = state.at("sold").get<std::int64_t>();
  auto r = state.at("reservations").get<std::map<std::string, std::int64_t>>();
  on_hand = h;
  sold = s;
  reservations = std::move(r);
  return {};
}

// ---- Reservation ----

Status Reservation::request(const std::string& order_id, const std::vector<StockLine>& lines, std::string event_id) {
  if (state != ReservationState::none) return {};
  if (lines.empty()) return Status::invalid_argument("a reservation needs at least one line");
  return record(InventoryReservationRequested{order_id, lines}, std::move(event_id));
}
Status Reservation::mark_reserved(std::string event_id) {
  if (state != ReservationState::requested) return {};
  return record(InventoryReserved{id()}, std::move(event_id));
}
Status Reservation::mark_failed(const std::string& why, std::string event_id) {
  if (state != ReservationState::requested) return {};
  return record(InventoryReservationFailed{id(), why}, std::move(event_id));
}
Status Reservation::request_release(const std::string& why, std::string event_id) {
  if (state != ReservationState::reserved) return {};
  return record(InventoryReleaseRequested{id(), why}, std::move(event_id));
}
Status Reservation::mark_released(std::string event_id) {
  if (state != ReservationState::release_requested) return {};
  return record(InventoryReleased{id()}, std::move(event_id));
}
Status Reservation::request_commit(std::string event_id) {
  if (state != ReservationState::reserved) return {};
  return record(InventoryCommitRequested{id()}, std::move(event_id));
}
Status Reservation::mark_committed(std::string event_id) {
  if (state != ReservationState::commit_requested) return {};
  return record(InventoryCommitted{id()}, std::move(event_id));
}

Status Reservation::apply(const RecordedEvent& e, const nlohmann::json& p) {
  if (e.type == InventoryReservationRequested::kType) {
    state = ReservationState::requested;
    items = p.at("items").get<std::vector<StockLine>>();
  } else if (e.type == InventoryReserved::kType) {
    state = ReservationState::reserved;
  } else if (e.type == InventoryReservationFailed::kType) {
    state = ReservationState::failed;
    reason = p.at("reason").get<std::string>();
  } else if (e.type == InventoryReleaseRequested::kType) {
    state = ReservationState::release_requested;
    reason = p.at("reason").get<std::string>();
  } else if (e.type == InventoryReleased::kType) {
    state = ReservationState::released;
  } else if (e.type == InventoryCommitRequested::kType) {
    state = ReservationState::commit_requested;
  } else if (e.type == InventoryCommitted::kType) {
    state = ReservationState::committed;
  } else {
    return Status::corruption("reservation stream holds unknown event " + e.type);
  }
  return {};
}

herald::Repository<Stock> stock_repository(herald::EventStore& store) {
  return herald::Repository<Stock>(store, herald::RepositoryOptions("stock").with_snapshots(100).with_max_attempts(10));
}
herald::Repository<Reservation> reservation_repository(herald::EventStore& store) {
  return herald::Repository<Reservation>(store, herald::RepositoryOptions("reservation"));
}

Status initialize_stock(herald::EventStore& store, const std::string& product_id, std::int64_t quantity,
                        const herald::EventMetadata& metadata) {
  auto r = stock_repository(store).execute(
      product_id, [&](Stock& s) { return s.initialize(product_id, quantity); }, metadata);
  return r.status();
}

Status request_reservation(herald::EventStore& store, const std::string& order_id,
                           const std::vector<StockLine>& items, const herald::EventMetadata& metadata,
                           const std::string& event_id) {
  return reservation_repository(store)
      .execute(order_id, [&](Reservation& r) { return r.request(order_id, items, event_id); }, metadata)
      .status();
}

Status request_release(herald::EventStore& store, const std::string& order_id, const std::string& reason,
                       const herald::EventMetadata& metadata, const std::string& event_id) {
  return reservation_repository(store)
      .execute(order_id, [&](Reservation& r) { return r.request_release(reason, event_id); }, metadata)
      .status();
}

Status request_commit(herald::EventStore& store, const std::string& order_id,
                      const herald::EventMetadata& metadata, const std::string& event_id) {
  return reservation_repository(store)
      .execute(order_id, [&](Reservation& r) { return r.request_commit(event_id); }, metadata)
      .status();
}

namespace {

// The id of a stock event caused by `cause`: includes the stock version it was decided on, so a
// redelivery that finds the stock unchanged appends the very same event (an idempotent retry),
// while a decision on newer state gets a new id.
std::string stock_event_id(std::string_view handler, const RecordedEvent& cause, std::string_view op,
                           const Stock& stock) {
  return herald::derived_uuid(handler, cause.id + "/" + std::string(op) + "/" + stock.id() + "/" +
                                           std::to_string(stock.version()));
}

class ReservationsHandler final
    : public herald::BaseEventHandler<InventoryReservationRequested, InventoryReleaseRequested,
                                      InventoryCommitRequested> {
 public:
  std::string name() const override { return "inventory.reservations"; }

  Status on(const InventoryReservationRequested& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    auto& store = ctx.store();
    auto reservation = reservation_repository(store).load(e.order_id);
    if (!reservation) return reservation.status();
    if (reservation->state != ReservationState::requested) return {};  // decided before
    const auto meta = caused_by(raw, name());
    std::string failure;
    for (const StockLine& line : e.items) {
      auto r = stock_repository(store).execute(
          line.product_id,
          [&](Stock& s) { return s.reserve(e.order_id, line.quantity, stock_event_id(name(), raw, "reserve", s)); },
          meta);
      if (r) continue;
      const auto code = r.status().code();
      if (code == herald::StatusCode::failed_precondition || code == herald::StatusCode::not_found) {
        failure = "out_of_stock: " + r.status().message();
        break;
      }
      return r.status();  // transient: the bus retries, reservations made so far are kept
    }
    if (!failure.empty()) {
      // Compensate inside inventory: give back what this order got before the short line.
      for (const StockLine& line : e.items) {
        auto r = stock_repository(store).execute(
            line.product_id, [&](Stock& s) { return s.release(e.order_id, stock_event_id(name(), raw, "release", s)); },
            meta);
        if (!r && r.status().code() != herald::StatusCode::not_found) return r.status();
      }
    }
    return reservation_repository(store)
        .execute(e.order_id,
                 [&](Reservation& res) {
                   const std::string id = follow_up_id(name(), raw, "outcome");
                   return failure.empty() ? res.mark_reserved(id) : res.mark_failed(failure, id);
                 },
                 meta)
        .status();
  }

  Status on(const InventoryReleaseRequested& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return finish(e.order_id, raw, ctx, ReservationState::release_requested, "release");
  }

  Status on(const InventoryCommitRequested& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return finish(e.order_id, raw, ctx, ReservationState::commit_requested, "commit");
  }

 private:
  Status finish(const std::string& order_id, const RecordedEvent& raw, herald::HandlerContext& ctx,
                ReservationState expected, std::string_view op) {
    auto& store = ctx.store();
    auto reservation = reservation_repository(store).load(order_id);
    if (!reservation) return reservation.status();
    if (reservation->state != expected) return {};
    const auto meta = caused_by(raw, name());
    for (const StockLine& line : reservation->items) {
      auto r = stock_repository(store).execute(
          line.product_id,
          [&](Stock& s) {
            const std::string id = stock_event_id(name(), raw, op, s);
            return op == "commit" ? s.commit(order_id, id) : s.release(order_id, id);
          },
          meta);
      if (!r) return r.status();
    }
    return reservation_repository(store)
        .execute(order_id,
                 [&](Reservation& res) {
                   const std::string id = follow_up_id(name(), raw, "outcome");
                   return op == "commit" ? res.mark_committed(id) : res.mark_released(id);
                 },
                 meta)
        .status();
  }
};

// Read model: one document per product with its stock figures.
class StockViewHandler final
    : public herald::BaseEventHandler<StockInitialized, StockReserved, StockReleased, StockCommitted> {
 public:
  std::string name() const override { return "inventory.stock_view"; }

  Status on(const StockInitialized& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, e.product_id, [&](nlohmann::json& d) { d["on_hand"] = e.quantity; });
  }
  Status on(const StockReserved& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, e.product_id,
                  [&](nlohmann::json& d) { d["reserved"] = d["reserved"].get<std::int64_t>() + e.quantity; });
  }
  Status on(const StockReleased& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, e.product_id,
                  [&](nlohmann::json& d) { d["reserved"] = d["reserved"].get<std::int64_t>() - e.quantity; });
  }
  Status on(const StockCommitted& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, e.product_id, [&](nlohmann::json& d) {
      d["reserved"] = d["reserved"].get<std::int64_t>() - e.quantity;
      d["on_hand"] = d["on_hand"].get<std::int64_t>() - e.quantity;
      d["sold"] = d["sold"].get<std::int64_t>() + e.quantity;
    });
  }

 private:
  Status change(const RecordedEvent& raw, herald::HandlerContext& ctx, const std::string& product_id,
                const std::function<void(nlohmann::json&)>& fn) {
    return ctx.exactly_once(raw, [&](herald::StoreTransaction& tx) {
      const nlohmann::json initial = {{"product_id", product_id}, {"on_hand", 0}, {"reserved", 0}, {"sold", 0}};
      return update_document(tx, kStockViewCollection, product_id, initial, [&](nlohmann::json& d) {
        fn(d);
        d["available"] = d["on_hand"].get<std::int64_t>() - d["reserved"].get<std::int64_t>();
      });
    });
  }
};

class InventoryModule final : public herald::Module {
 public:
  std::string name() const override { return "inventory"; }
  Status register_handlers(herald::HandlerRegistrar& r, herald::ModuleContext&) override {
    HERALD_RETURN_IF_ERROR(r.add(make_reservations_handler()));
    return r.add(make_stock_view_handler());
  }
};

}  // namespace

std::shared_ptr<herald::EventHandler> make_reservations_handler() { return std::make_shared<ReservationsHandler>(); }
std::shared_ptr<herald::EventHandler> make_stock_view_handler() { return std::make_shared<StockViewHandler>(); }
std::unique_ptr<herald::Module> make_module() { return std::make_unique<InventoryModule>(); }

}  // namespace shop::inventory
