#include "auth/accounts.h"

#include <spdlog/spdlog.h>

#include "auth/secrets.h"
#include "common/common.h"
#include "herald/id.h"
#include "users/users.h"

namespace shop::auth {

using herald::Status;
using herald::StatusCode;

namespace {

constexpr std::size_t kMaxPasswordBytes = 1024;

// The token of "Authorization: Bearer <token>", or empty.
std::string_view bearer_token(const herald::http::Request& request) {
  static constexpr std::string_view kBearer = "Bearer ";
  auto it = request.headers.find("authorization");
  if (it == request.headers.end()) return {};
  std::string_view value = it->second;
  if (!value.starts_with(kBearer)) return {};
  return value.substr(kBearer.size());
}

herald::Result<nlohmann::json> parse_doc(const std::string& text, std::string_view what) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::corruption(std::string(what) + " document is not a JSON object");
  return j;
}

// A live token document (session or reset) for `hash`: its user id, or nullopt when absent,
// malformed, not this hash or expired at `now`.
std::optional<std::string> live_owner(const nlohmann::json& doc, const TokenHash& hash, herald::Timestamp now) {
  const auto stored = from_hex(doc.value("token_hash", ""));
  if (!stored || !same_hash(*stored, hash)) return std::nullopt;
  const auto expires = doc.find("expires_at_us");
  if (expires == doc.end() || !expires->is_number_integer()) return std::nullopt;
  if (herald::to_micros(now) >= expires->get<std::int64_t>()) return std::nullopt;
  auto user = doc.value("user_id", "");
  if (user.empty()) return std::nullopt;
  return user;
}

// Deletes every session of `user_id` and its index, inside `tx`.
Status revoke_all(herald::StoreTransaction& tx, const std::string& user_id) {
  auto index = tx.get_document(kUserSessionsCollection, user_id);
  if (!index) return index.status().code() == StatusCode::not_found ? Status{} : index.status();
  auto doc = parse_doc(*index, "user_sessions");
  if (!doc) return doc.status();
  if (auto s = doc->find("sessions"); s != doc->end() && s->is_object()) {
    for (const auto& [hash, _] : s->items()) HERALD_RETURN_IF_ERROR(tx.delete_document(kSessionsCollection, hash));
  }
  return tx.delete_document(kUserSessionsCollection, user_id);
}

}  // namespace

Accounts::Accounts(herald::EventStore& store, std::shared_ptr<notifications::Mailer> mailer, AuthOptions options)
    : store_(store),
      mailer_(std::move(mailer)),
      options_([&] {
        if (!options.clock) options.clock = herald::system_clock();
        return options;
      }()),
      per_account_(options_.clock, options_.per_account),
      per_address_(options_.clock, options_.per_address) {}

herald::Result<std::optional<std::string>> Accounts::user_of(const std::string& normalized_email) const {
  auto events = store_.read_stream("email-" + normalized_email, 0, 1, herald::ReadDirection::forwards);
  if (!events) {
    if (events.status().code() == StatusCode::not_found) return std::optional<std::string>{};
    return events.status();
  }
  if (events->empty() || events->front().type != users::EmailClaimed::kType) return std::optional<std::string>{};
  auto payload = nlohmann::json::parse(events->front().payload, nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) return Status::corruption("e-mail claim is not a JSON object");
  return std::optional<std::string>(payload.value("user_id", ""));
}

herald::Result<std::string> Accounts::register_account(std::string_view email, std::string_view name,
                                                       std::string_view password,
                                                       const herald::EventMetadata& metadata) {
  auto normalized = users::check_registration(email, name);
  if (!normalized) return normalized.status();
  HERALD_RETURN_IF_ERROR(check_password_rules(password, *normalized));
  // Taken already: answer before paying for a hash or writing anything. The claim below still
  // decides a race.
  auto existing = user_of(*normalized);
  if (!existing) return existing.status();
  if (existing->has_value()) return Status::already_exists("e-mail address " + *normalized + " is already registered");

  auto hash = hash_password(password);
  if (!hash) return hash.status();
  const std::string user_id = herald::new_uuid_v7();
  const nlohmann::json credentials = {{"user_id", user_id}, {"email", *normalized}, {"password_hash", *hash}};
  HERALD_RETURN_IF_ERROR(store_.transact([&](herald::StoreTransaction& tx) {
    return tx.put_document(kCredentialsCollection, user_id, credentials.dump());
  }));
  auto registered = users::register_user_with_id(store_, user_id, *normalized, name, metadata);
  if (!registered && registered.status().code() == StatusCode::already_exists) {
    // The claim was refused, so nothing names these credentials: take them back.
    Status s = store_.transact(
        [&](herald::StoreTransaction& tx) { return tx.delete_document(kCredentialsCollection, user_id); });
    if (!s) spdlog::warn("auth: unreachable credentials of {} left behind: {}", user_id, s.to_string());
  }
  return registered;
}

herald::Result<Session> Accounts::start_session(const std::string& user_id) {
  Session session{new_token(), user_id, options_.clock->now() + options_.session_ttl};
  const auto hash = hash_token(session.token);
  if (!hash) return Status::internal("a fresh token does not parse");
  const std::string key = to_hex(*hash);
  const std::int64_t expires_us = herald::to_micros(session.expires_at);
  const std::int64_t now_us = herald::to_micros(options_.clock->now());
  const nlohmann::json doc = {{"user_id", user_id}, {"token_hash", key}, {"expires_at_us", expires_us}};
  HERALD_RETURN_IF_ERROR(store_.transact([&](herald::StoreTransaction& tx) -> Status {
    HERALD_RETURN_IF_ERROR(tx.put_document(kSessionsCollection, key, doc.dump()));
    nlohmann::json index = {{"sessions", nlohmann::json::object()}};
    auto existing = tx.get_document(kUserSessionsCollection, user_id);
    if (existing) {
      auto parsed = parse_doc(*existing, "user_sessions");
      if (!parsed) return parsed.status();
      index = std::move(*parsed);
      if (!index["sessions"].is_object()) index["sessions"] = nlohmann::json::object();
    } else if (existing.status().code() != StatusCode::not_found) {
      return existing.status();
    }
    // Expired sessions go when their user signs in again: the index stays as long as the live ones.
    auto& sessions = index["sessions"];
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (!it->is_number_integer() || it->get<std::int64_t>() <= now_us) {
        HERALD_RETURN_IF_ERROR(tx.delete_document(kSessionsCollection, it.key()));
        it = sessions.erase(it);
      } else {
        ++it;
      }
    }
    sessions[key] = expires_us;
    return tx.put_document(kUserSessionsCollection, user_id, index.dump());
  }));
  return session;
}

herald::Result<SignInOutcome> Accounts::sign_in(std::string_view email, std::string_view password,
                                                const std::string& client_address) {
  auto normalized = normalize_email(email);
  if (!normalized) return normalized.status();
  if (password.size() > kMaxPasswordBytes) {
    return Status::invalid_argument("field 'password' must be at most 1024 bytes");
  }
  const std::string account_key = *normalized;
  const std::string address_key = client_address;
  auto account_wait = per_account_.blocked_for(account_key);
  auto address_wait = per_address_.blocked_for(address_key);
  if (account_wait || address_wait) {
    SignInOutcome out;
    out.kind = SignInOutcome::Kind::rate_limited;
    out.retry_after = std::max(account_wait.value_or(std::chrono::seconds{0}), address_wait.value_or(std::chrono::seconds{0}));
    return out;
  }
  auto user = user_of(*normalized);
  if (!user) return user.status();
  std::string stored = dummy_password_hash();
  bool known = false;
  if (user->has_value()) {
    auto credentials = store_.read_document(kCredentialsCollection, **user);
    if (credentials) {
      auto doc = parse_doc(*credentials, "credentials");
      if (!doc) return doc.status();
      stored = doc->value("password_hash", stored);
      known = true;
    } else if (credentials.status().code() != StatusCode::not_found) {
      return credentials.status();
    }
  }
  // Verified whether or not the address is known, so both answers take the same time.
  const bool match = verify_password(password, stored) && known;
  if (!match) {
    per_account_.record_failure(account_key);
    per_address_.record_failure(address_key);
    return SignInOutcome{};
  }
  per_account_.reset(account_key);
  auto session = start_session(**user);
  if (!session) return session.status();
  SignInOutcome out;
  out.kind = SignInOutcome::Kind::signed_in;
  out.session = std::move(*session);
  return out;
}

herald::Result<std::optional<std::string>> Accounts::authenticate(const herald::http::Request& request) const {
  const auto hash = hash_token(bearer_token(request));
  if (!hash) return std::optional<std::string>{};
  auto text = store_.read_document(kSessionsCollection, to_hex(*hash));
  if (!text) {
    if (text.status().code() == StatusCode::not_found) return std::optional<std::string>{};
    return text.status();
  }
  auto doc = parse_doc(*text, "session");
  if (!doc) return doc.status();
  return live_owner(*doc, *hash, options_.clock->now());
}

Status Accounts::revoke(const herald::http::Request& request) {
  const auto hash = hash_token(bearer_token(request));
  if (!hash) return {};
  const std::string key = to_hex(*hash);
  return store_.transact([&](herald::StoreTransaction& tx) -> Status {
    auto text = tx.get_document(kSessionsCollection, key);
    if (!text) return text.status().code() == StatusCode::not_found ? Status{} : text.status();
    auto doc = parse_doc(*text, "session");
    if (!doc) return doc.status();
    const std::string user_id = doc->value("user_id", "");
    HERALD_RETURN_IF_ERROR(tx.delete_document(kSessionsCollection, key));
    if (user_id.empty()) return {};
    return update_document(tx, kUserSessionsCollection, user_id, {{"sessions", nlohmann::json::object()}},
                           [&](nlohmann::json& index) {
                             if (index["sessions"].is_object()) index["sessions"].erase(key);
                           });
  });
}

Status Accounts::request_reset(std::string_view email) {
  auto normalized = normalize_email(email);
  if (!normalized) return normalized.status();
  auto user = user_of(*normalized);
  if (!user) {
    spdlog::warn("auth: password reset not sent: {}", user.status().to_string());
    return {};
  }
  if (!user->has_value()) return {};
  const std::string token = new_token();
  const auto hash = hash_token(token);
  if (!hash) return Status::internal("a fresh token does not parse");
  const std::string key = to_hex(*hash);
  const auto now = options_.clock->now();
  const nlohmann::json doc = {{"user_id", **user},
                              {"token_hash", key},
                              {"expires_at_us", herald::to_micros(now + options_.reset_ttl)}};
  Status saved = store_.transact(
      [&](herald::StoreTransaction& tx) { return tx.put_document(kResetsCollection, key, doc.dump()); });
  if (!saved) {
    spdlog::warn("auth: password reset not sent: {}", saved.to_string());
    return {};
  }
  notifications::Email mail;
  mail.message_id = herald::derived_uuid("auth.password_reset", key);
  mail.date = now;
  mail.from = std::string(notifications::kFromAddress);
  mail.from_name = std::string(notifications::kFromName);
  mail.to = *normalized;
  mail.subject = "Reset your Herald shop password";
  mail.body = "Someone asked to reset the password of this address at the Herald shop.\n\n"
              "To choose a new password within " +
              std::to_string(options_.reset_ttl.count() / 60) +
              " minutes, send\n\n  POST /api/password-resets/confirm\n  {\"token\": \"" + token +
              "\", \"password\": \"<new password>\"}\n\n"
              "The token works once. If you did not ask for this, ignore this e-mail.\n";
  if (Status sent = mailer_->send(mail); !sent) {
    spdlog::warn("auth: password reset e-mail {} not sent: {}", mail.message_id, sent.to_string());
  }
  return {};
}

Status Accounts::complete_reset(std::string_view token, std::string_view new_password) {
  const Status refused = Status::invalid_argument("field 'token' is not a live password-reset token (unknown, used or expired)");
  const auto hash = hash_token(token);
  if (!hash) return refused;
  const std::string key = to_hex(*hash);
  // Check the token and the password rules before paying for a hash, outside the transaction (a
  // 0.1 s hash must not run on the store's writer thread).
  auto text = store_.read_document(kResetsCollection, key);
  if (!text) return text.status().code() == StatusCode::not_found ? refused : text.status();
  auto doc = parse_doc(*text, "password reset");
  if (!doc) return doc.status();
  const auto user_id = live_owner(*doc, *hash, options_.clock->now());
  if (!user_id) return refused;
  auto credentials_text = store_.read_document(kCredentialsCollection, *user_id);
  if (!credentials_text) return credentials_text.status();
  auto credentials = parse_doc(*credentials_text, "credentials");
  if (!credentials) return credentials.status();
  HERALD_RETURN_IF_ERROR(check_password_rules(new_password, credentials->value("email", "")));
  auto new_hash = hash_password(new_password);
  if (!new_hash) return new_hash.status();
  (*credentials)["password_hash"] = *new_hash;
  const auto now = options_.clock->now();
  return store_.transact([&](herald::StoreTransaction& tx) -> Status {
    // Again inside the transaction: of two uses racing, only the one that deletes it sets the password.
    auto current = tx.get_document(kResetsCollection, key);
    if (!current) return current.status().code() == StatusCode::not_found ? refused : current.status();
    auto current_doc = parse_doc(*current, "password reset");
    if (!current_doc) return current_doc.status();
    if (live_owner(*current_doc, *hash, now) != user_id) return refused;
    HERALD_RETURN_IF_ERROR(tx.delete_document(kResetsCollection, key));
    HERALD_RETURN_IF_ERROR(tx.put_document(kCredentialsCollection, *user_id, credentials->dump()));
    return revoke_all(tx, *user_id);
  });
}

}  // namespace shop::auth
