// herald/sqlite_store.h: opening the SQLite store by path, and its online backup.
//
// The backup reads through a connection of its own, not the store's writer or readers, so it
// neither waits for nor delays the writer's queue. It opens ONE read transaction on that
// connection and keeps it open across every sqlite3_backup_step: SQLite then copies every page from
// that transaction's snapshot (a step only begins and ends a read transaction when none is open).
// Without it, each step would take a fresh snapshot and SQLite restarts a backup from the first
// page whenever another connection changed the database in between — under a steady append load it
// would never finish. In WAL mode a reader never blocks the writer, so appends continue at full
// speed; the price is that checkpoints cannot move past the snapshot until the backup ends, so the
// WAL grows by what is appended meanwhile.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "herald/sqlite_store.h"
#include "store/sqlite/sqlite_connection.h"
#include "store/sqlite/sqlite_event_store.h"

namespace herald {

namespace {

using detail::sqlite::Connection;

Status errno_status(const std::string& what) { return Status::unavailable(what + ": " + std::strerror(errno)); }

// Flushes `path` (a file or a directory) to stable storage.
Status sync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return errno_status("opening " + path + " to sync it");
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    errno = err;
    return errno_status("syncing " + path);
  }
  return {};
}

// Removes the partial copy on every failure path.
class PartialFile {
 public:
  explicit PartialFile(std::string path) : path_(std::move(path)) {}
  ~PartialFile() {
    if (!armed_) return;
    std::error_code ec;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix, ec);
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  void keep() { armed_ = false; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool armed_ = true;
};

// Copies the database behind `src` (inside an open read transaction) into the file `dest_path`.
Status copy_pages(Connection& src, const std::string& dest_path, const BackupOptions& options, BackupResult& out) {
  sqlite3* dest = nullptr;
  int rc = sqlite3_open_v2(dest_path.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = detail::sqlite::to_status(rc, dest, "opening backup file " + dest_path);
    sqlite3_close_v2(dest);
    return s;
  }
  sqlite3_backup* b = sqlite3_backup_init(dest, "main", src.db(), "main");
  if (b == nullptr) {
    Status s = detail::sqlite::to_status(sqlite3_errcode(dest), dest, "starting the backup");
    sqlite3_close_v2(dest);
    return s;
  }
  const int per_step = options.pages_per_step > 0 ? options.pages_per_step : 1024;
  Status callback_error;
  do {
    rc = sqlite3_backup_step(b, per_step);
    ++out.steps;
    if (options.on_step && (rc == SQLITE_OK || rc == SQLITE_DONE)) {
      try {
        options.on_step(BackupProgress{sqlite3_backup_pagecount(b), sqlite3_backup_remaining(b), out.steps});
      } catch (const std::exception& ex) {
        callback_error = Status::internal(std::string("backup progress callback threw: ") + ex.what());
        break;
      }
    }
  } while (rc == SQLITE_OK);
  out.pages = sqlite3_backup_pagecount(b);
  // finish() reports the first error of the whole backup; it also commits the destination.
  int finish_rc = sqlite3_backup_finish(b);
  Status s;
  if (!callback_error.is_ok()) {
    s = callback_error;
  } else if (rc != SQLITE_DONE) {
    s = detail::sqlite::to_status(rc, dest, "copying pages");
  } else if (finish_rc != SQLITE_OK) {
    s = detail::sqlite::to_status(finish_rc, dest, "finishing the backup");
  } else if (options.verify) {
    sqlite3_stmt* check = nullptr;
    rc = sqlite3_prepare_v2(dest, "PRAGMA quick_check", -1, &check, nullptr);
    if (rc != SQLITE_OK) {
      s = detail::sqlite::to_status(rc, dest, "checking the backup");
    } else {
      rc = sqlite3_step(check);
      if (rc != SQLITE_ROW) {
        s = detail::sqlite::to_status(rc, dest, "checking the backup");
      } else if (const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(check, 0));
                 t == nullptr || std::strcmp(t, "ok") != 0) {
        s = Status::corruption(std::string("backup failed quick_check: ") + (t != nullptr ? t : "no result"));
      }
    }
    sqlite3_finalize(check);
  }
  // Closing the last connection folds the (empty) WAL the check may have opened back into the file.
  if (int close_rc = sqlite3_close(dest); close_rc != SQLITE_OK && s.is_ok()) {
    s = Status::internal("closing the backup file: " + std::string(sqlite3_errstr(close_rc)));
  }
  return s;
}

}  // namespace

Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string_view path, const StoreOptions& options) {
  if (path.empty()) return Status::invalid_argument("SQLite store path is empty");
  std::string p(path);
  return detail::open_sqlite_store("sqlite://" + p, p, options);
}

Result<BackupResult> backup_sqlite_store(EventStore& store, std::string_view destination, const BackupOptions& options) {
  // sqlite_counters accepts only a store opened by the SQLite backend: the type check.
  if (auto counters = detail::sqlite_counters(store); !counters) {
    return Status::invalid_argument("backup_sqlite_store needs a SQLite store; " + store.url() +
                                    " is another backend (docs/operations.md says how to back it up)");
  }
  constexpr std::string_view kScheme = "sqlite://";
  const std::string url = store.url();
  const std::string source = url.starts_with(kScheme) ? url.substr(kScheme.size()) : std::string();
  if (source.empty() || source == ":memory:" || source.starts_with("file:")) {
    return Status::invalid_argument("cannot back up " + url + ": not a store in a file");
  }
  if (destination.empty()) return Status::invalid_argument("backup destination is empty");
  const std::string dest(destination);
  std::error_code ec;
  if (std::filesystem::exists(dest, ec)) return Status::already_exists("backup destination " + dest + " exists");
  const std::filesystem::path dir = std::filesystem::path(dest).parent_path();
  if (!dir.empty()) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::unavailable("cannot create directory " + dir.string() + ": " + ec.message());
  }

  // Claim the partial file exclusively, so two backups to one destination cannot interleave.
  const std::string partial_path = dest + ".partial";
  int fd = ::open(partial_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::already_exists(partial_path + " exists: another backup to " + dest +
                                    " is running, or one was interrupted (then remove it)");
    }
    return errno_status("creating " + partial_path);
  }
  ::close(fd);
  PartialFile partial(partial_path);

  auto src = Connection::open(source, /*create=*/false);
  if (!src) return src.status();
  HERALD_RETURN_IF_ERROR(src->exec("PRAGMA query_only=1"));
  // The snapshot: BEGIN is deferred, the SELECT starts the read transaction that every step uses.
  HERALD_RETURN_IF_ERROR(src->exec("BEGIN"));
  BackupResult result;
  result.path = dest;
  Status copied = [&]() -> Status {
    sqlite3_stmt* head = nullptr;
    int rc = sqlite3_prepare_v2(src->db(), "SELECT max(position) FROM events", -1, &head, nullptr);
    if (rc != SQLITE_OK) return src->error(rc, "reading the head");
    rc = sqlite3_step(head);
    if (rc == SQLITE_ROW) {
      result.head_position = sqlite3_column_type(head, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(head, 0);
    }
    sqlite3_finalize(head);
    if (rc != SQLITE_ROW) return src->error(rc, "reading the head");
    return copy_pages(*src, partial_path, options, result);
  }();
  (void)src->exec("COMMIT");  // ends the read transaction; nothing was written
  HERALD_RETURN_IF_ERROR(copied);

  HERALD_RETURN_IF_ERROR(sync_path(partial_path, false));
  std::filesystem::rename(partial_path, dest, ec);
  if (ec) return Status::unavailable("renaming " + partial_path + " to " + dest + ": " + ec.message());
  partial.keep();
  HERALD_RETURN_IF_ERROR(sync_path(dir.empty() ? std::string(".") : dir.string(), true));
  result.bytes = static_cast<std::int64_t>(std::filesystem::file_size(dest, ec));
  return result;
}

}  // namespace herald
