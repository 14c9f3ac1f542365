// shop/notifications — e-mails: a welcome e-mail per registered user and a confirmation per
// confirmed order.
//
// Each e-mail's Message-ID derives from (handler, causing event id), so one event yields one
// e-mail however often it is delivered:
//   * outbox (no SMTP URL): the message is written to <outbox>/<message-id>.eml through a temporary
//     file and rename(), and an existing file means "already sent";
//   * SMTP (libcurl): after a successful send the handler records the message id in the
//     "emails_sent" documents exactly once (HandlerContext::exactly_once) and skips ids recorded
//     there. A crash between the SMTP server's acceptance and that record can resend once; SMTP
//     offers no way to close that window.
// A failed send is unavailable (retryable): the bus retries, then dead-letters the event, and a
// redrive sends it. A message render_rfc5322 (notifications/mime.h) refuses — a header value with
// a control character, which only an event older than the input checks can carry — is
// invalid_argument: permanent, dead-lettered at once, nothing sent.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "herald/system.h"
#include "notifications/mime.h"

namespace shop::notifications {

// Sends e-mails. Implementations are thread-safe.
class Mailer {
 public:
  virtual ~Mailer() = default;
  // ok once the message is delivered (or was delivered before, for mailers that can tell);
  // unavailable when the transport failed and a retry may succeed; invalid_argument (nothing
  // sent) when render_rfc5322 refuses the message.
  virtual herald::Status send(const Email& email) = 0;
  // True when send() itself remembers what it delivered and answers ok without sending again (the
  // outbox: the file is the record). The handlers then keep no "emails_sent" document for it,
  // which saves two store transactions per message.
  virtual bool remembers_sent() const { return false; }
};

// Writes each e-mail as <dir>/<message_id>.eml (temp file + rename); a file already there means
// sent. Thread-safe (distinct messages use distinct files; rename is atomic).
class OutboxMailer final : public Mailer {
 public:
  explicit OutboxMailer(std::filesystem::path dir) : dir_(std::move(dir)) {}
  herald::Status send(const Email& email) override;
  bool remembers_sent() const override { return true; }

 private:
  const std::filesystem::path dir_;
};

// Sends through an SMTP server with libcurl (url e.g. "smtp://127.0.0.1:2525"). Thread-safe: one
// curl easy handle per call. libcurl does the SMTP dot-stuffing (see send()).
class SmtpMailer final : public Mailer {
 public:
  explicit SmtpMailer(std::string url) : url_(std::move(url)) {}
  herald::Status send(const Email& email) override;

 private:
  const std::string url_;
};

inline constexpr std::string_view kSentCollection = "emails_sent";
inline constexpr std::string_view kFromAddress = "shop@herald.local";
inline constexpr std::string_view kFromName = "Herald Shop";

// "notifications.send_welcome_email" (UserRegistered) and
// "notifications.send_order_confirmation" (OrderConfirmed).
std::shared_ptr<herald::EventHandler> make_welcome_handler(std::shared_ptr<Mailer> mailer);
std::shared_ptr<herald::EventHandler> make_order_confirmation_handler(std::shared_ptr<Mailer> mailer);

// The mailer the config selects: SMTP when it has smtp_url, else an outbox in <data_dir>/outbox.
std::shared_ptr<Mailer> default_mailer(const herald::SystemConfig& config);

// Uses `mailer` when given; otherwise default_mailer(config).
std::unique_ptr<herald::Module> make_module(std::shared_ptr<Mailer> mailer = nullptr);

}  // namespace shop::notifications
