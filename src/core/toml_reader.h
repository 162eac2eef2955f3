// Typed reading of TOML configuration files (toml++), with errors that name the file and key:
// "agent.toml: key 'tries' must be an integer". Shared by aloftd's and aloft-agent's configs.
//
//   ALOFT_ASSIGN_OR_RETURN(toml::table t, ParseToml(path));
//   TomlReader r(path, t);
//   ALOFT_RETURN_IF_ERROR(r.Known({"server", "device"}, "docs/agent.md"));
//   ALOFT_RETURN_IF_ERROR(r.Str("server", config.server));
#pragma once

#include <toml++/toml.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"

namespace aloft {

inline Result<toml::table> ParseToml(const std::string& path) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Error(Code::kInvalidArgument, path + ":" + std::to_string(where.line) + ":" +
                                             std::to_string(where.column) + ": " +
                                             std::string(e.description()));
  }
}

class TomlReader {
 public:
  // `where` names the table in errors: the file, or "agent.toml [download]".
  TomlReader(std::string where, const toml::table& t) : where_(std::move(where)), t_(t) {}

  // kInvalidArgument for the first key not in `known`, pointing at `doc`.
  Status Known(std::initializer_list<std::string_view> known, std::string_view doc) const {
    for (const auto& [k, v] : t_) {
      bool ok = false;
      for (std::string_view name : known) ok = ok || k.str() == name;
      if (!ok) {
        return Error(Code::kInvalidArgument, where_ + ": unknown key '" + std::string(k.str()) +
                                                 "' (see " + std::string(doc) + ")");
      }
    }
    return OkStatus();
  }
  Status Str(const char* key, std::string& out) const {
    auto node = t_[key];
    if (!node) return OkStatus();
    if (!node.is_string()) return Bad(key, "a string");
    out = *node.value<std::string>();
    return OkStatus();
  }
  // Two strings that come together or not at all (a certificate and its key).
  Status StrPair(const char* key, const char* other, std::string& out,
                 std::string& other_out) const {
    ALOFT_RETURN_IF_ERROR(Str(key, out));
    ALOFT_RETURN_IF_ERROR(Str(other, other_out));
    if (out.empty() != other_out.empty()) {
      return Error(Code::kInvalidArgument,
                   where_ + ": key '" + key + "' goes with '" + other + "': set both, or neither");
    }
    return OkStatus();
  }
  Status Bool(const char* key, bool& out) const {
    auto node = t_[key];
    if (!node) return OkStatus();
    if (!node.is_boolean()) return Bad(key, "true or false");
    out = *node.value<bool>();
    return OkStatus();
  }
  template <typename T>
  Status Int(const char* key, T& out) const {
    auto node = t_[key];
    if (!node) return OkStatus();
    if (!node.is_integer()) return Bad(key, "an integer");
    int64_t v = *node.value<int64_t>();
    if (v < 0) return Bad(key, "a non-negative integer");
    out = static_cast<T>(v);
    return OkStatus();
  }
  Status StrList(const char* key, std::vector<std::string>& out) const {
    auto node = t_[key];
    if (!node) return OkStatus();
    const toml::array* arr = node.as_array();
    if (!arr) return Bad(key, "an array of strings");
    out.clear();
    for (const auto& e : *arr) {
      if (!e.is_string()) return Bad(key, "an array of strings");
      out.push_back(*e.value<std::string>());
    }
    return OkStatus();
  }
  Error Bad(const char* key, const char* what) const {
    return Error(Code::kInvalidArgument, where_ + ": key '" + key + "' must be " + what);
  }

 private:
  std::string where_;
  const toml::table& t_;
};

}  // namespace aloft
