// The server's database schema (docs/server.md).
#pragma once

#include <vector>

#include "db/database.h"

namespace aloft::server {

const std::vector<db::Migration>& SchemaMigrations();

}  // namespace aloft::server
