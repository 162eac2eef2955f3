// The server's database schema (docs/server.md).
#pragma once

#include <vector>

#include "db/database.h"

namespace aloft::server {

const std::vector<db::Migration>& SchemaMigrations();

// PostgreSQL: the channel on which every change to a device's actions is notified (payload: the
// device's id), by a trigger on the actions table (migration 5). Servers sharing the database
// listen to keep their "no open action" caches true (Store::ActionsEpoch).
inline constexpr const char* kActionsChannel = "aloft_actions";

}  // namespace aloft::server
