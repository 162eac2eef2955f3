// The two Database implementations (private to aloft::db).
#pragma once

#include "db/database.h"

namespace aloft::db {

Result<std::unique_ptr<Database>> OpenSqlite(const std::string& path, int pool_size);
Result<std::unique_ptr<Database>> OpenPostgres(const std::string& url, int pool_size);

}  // namespace aloft::db
