#include "test_db.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <random>

namespace aloft::testing {

std::string BackendName(Backend b) { return b == Backend::kSqlite ? "sqlite" : "postgres"; }

std::string PostgresBaseUrl() {
  const char* url = std::getenv("ALOFT_TEST_PG_URL");
  return url ? url : "";
}

std::string FreshDatabase(Backend backend, const std::string& dir) {
  if (backend == Backend::kSqlite) return dir + "/aloft.db";
  std::string base = PostgresBaseUrl();
  if (base.empty()) {
    const char* req = std::getenv("ALOFT_REQUIRE_PG");
    if (req && std::string(req) == "1") {
      ADD_FAILURE() << "ALOFT_REQUIRE_PG=1 but ALOFT_TEST_PG_URL is not set";
    }
    return "";
  }
  static std::atomic<int> counter{0};
  std::random_device rd;
  std::string schema = "t" + std::to_string(rd() % 1000000000) + "_" + std::to_string(++counter);
  auto admin = db::Database::Open(base, 1);
  if (!admin.ok()) {
    ADD_FAILURE() << admin.error().ToString();
    return "";
  }
  auto s = (*admin)->Query("CREATE SCHEMA " + schema);
  if (!s.ok()) {
    ADD_FAILURE() << s.error().ToString();
    return "";
  }
  std::string sep = base.find('?') == std::string::npos ? "?" : "&";
  return base + sep + "options=-c%20search_path%3D" + schema;
}

}  // namespace aloft::testing
