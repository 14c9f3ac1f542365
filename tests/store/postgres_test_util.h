// Helpers shared by the PostgreSQL-specific tests and the contract suite's postgres backend.
#pragma once

#include <string>

namespace herald::testing {

// `url` with its database name replaced by `database`.
std::string postgres_url_with_database(const std::string& url, const std::string& database);

// `url` selecting `schema` (search_path) through its options parameter.
std::string postgres_url_with_schema(const std::string& url, const std::string& schema);

// Creates a new, empty schema in the database of HERALD_TEST_POSTGRES_URL and returns a URL that
// uses it. Throws std::runtime_error when the server cannot be reached. Dropped at process exit.
std::string create_postgres_schema();

}  // namespace herald::testing
