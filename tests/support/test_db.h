// Databases for tests: a fresh SQLite file, or a fresh schema on the PostgreSQL server named by
// ALOFT_TEST_PG_URL (scripts/test.sh starts one). Without that variable PostgreSQL cases skip,
// unless ALOFT_REQUIRE_PG=1 (CI), where they fail.
#pragma once

#include <string>

#include "db/database.h"

namespace aloft::testing {

enum class Backend { kSqlite, kPostgres };
std::string BackendName(Backend b);

// A location for db::Database::Open, or "" when the PostgreSQL case should skip (a gtest failure
// has been recorded when ALOFT_REQUIRE_PG=1). `dir` holds the SQLite file.
std::string FreshDatabase(Backend backend, const std::string& dir);

// The base URL from ALOFT_TEST_PG_URL, or "".
std::string PostgresBaseUrl();

}  // namespace aloft::testing
