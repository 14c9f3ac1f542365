#include "store/sqlite/sqlite_sql.h"

#include <string>

namespace herald::detail::sqlite {

// kInsertEvent with kInsertChunk rows of parameters; built once, stable address for the cache.
const char* insert_chunk_sql() {
  static const std::string sql = [] {
    std::string q = "INSERT INTO events(" HERALD_EVENT_COLUMNS ", batch_last) VALUES ";
    for (std::size_t k = 0; k < kInsertChunk; ++k) {
      q += k == 0 ? "(" : ",(";
      for (int col = 0; col < kInsertColumns; ++col) q += col == 0 ? "?" : ",?";
      q += ")";
    }
    return q;
  }();
  return sql.c_str();
}

}  // namespace herald::detail::sqlite
