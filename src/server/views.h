// The JSON views of the management API (private to src/server): how device types, releases,
// devices and actions look in answers. docs/server.md shows them.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "server/store.h"

namespace aloft::server {

nlohmann::json ToJson(const DeviceType& t);
nlohmann::json ToJson(const Release& r);
nlohmann::json ToJson(const Device& d);
// With its feedback history ("events") when the action was read with it.
nlohmann::json ToJson(const Action& a);

// [ToJson(item), ...]
template <class T>
nlohmann::json JsonList(const std::vector<T>& items) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& item : items) out.push_back(ToJson(item));
  return out;
}

}  // namespace aloft::server
