#include "server/config.h"

#include <toml++/toml.h>

namespace aloft::server {
namespace {

class Reader {
 public:
  Reader(const std::string& path, const toml::table& t) : path_(path), t_(t) {}

  Status Str(const char* key, std::string& out) {
    auto node = t_[key];
    if (!node) return OkStatus();
    if (!node.is_string()) return Bad(key, "a string");
    out = *node.value<std::string>();
    return OkStatus();
  }
  template <typename T>
  Status Int(const char* key, T& out) {
    auto node = t_[key];
    if (!node) return OkStatus();
    if (!node.is_integer()) return Bad(key, "an integer");
    int64_t v = *node.value<int64_t>();
    if (v < 0) return Bad(key, "a non-negative integer");
    out = static_cast<T>(v);
    return OkStatus();
  }
  Status StrList(const char* key, std::vector<std::string>& out) {
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

 private:
  Error Bad(const char* key, const char* what) {
    return Error(Code::kInvalidArgument, path_ + ": key '" + key + "' must be " + what);
  }
  const std::string& path_;
  const toml::table& t_;
};

}  // namespace

Status LoadConfigFile(const std::string& path, ServerConfig& c) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Error(Code::kInvalidArgument, path + ":" + std::to_string(where.line) + ":" +
                                             std::to_string(where.column) + ": " +
                                             std::string(e.description()));
  }
  static const char* kKnown[] = {"data_dir",
                                 "listen",
                                 "database",
                                 "artifacts_dir",
                                 "db_pool",
                                 "threads",
                                 "trust",
                                 "trust_threshold",
                                 "tls_cert",
                                 "tls_key",
                                 "public_url",
                                 "external_base_url",
                                 "secure_link_secret",
                                 "link_ttl_s",
                                 "poll_interval_s",
                                 "poll_interval_active_s",
                                 "max_upload_bytes",
                                 "max_json_bytes",
                                 "max_log_bytes",
                                 "shutdown_grace_s",
                                 "auth_cache_s"};
  for (const auto& [k, v] : t) {
    bool known = false;
    for (const char* name : kKnown) known = known || k.str() == name;
    if (!known) {
      return Error(Code::kInvalidArgument,
                   path + ": unknown key '" + std::string(k.str()) + "' (see docs/server.md)");
    }
  }
  Reader r(path, t);
  ALOFT_RETURN_IF_ERROR(r.Str("data_dir", c.data_dir));
  ALOFT_RETURN_IF_ERROR(r.Str("listen", c.listen));
  ALOFT_RETURN_IF_ERROR(r.Str("database", c.database));
  ALOFT_RETURN_IF_ERROR(r.Str("artifacts_dir", c.artifacts_dir));
  ALOFT_RETURN_IF_ERROR(r.Int("db_pool", c.db_pool));
  ALOFT_RETURN_IF_ERROR(r.Int("threads", c.threads));
  ALOFT_RETURN_IF_ERROR(r.StrList("trust", c.trust));
  ALOFT_RETURN_IF_ERROR(r.Int("trust_threshold", c.trust_threshold));
  ALOFT_RETURN_IF_ERROR(r.Str("tls_cert", c.tls_cert));
  ALOFT_RETURN_IF_ERROR(r.Str("tls_key", c.tls_key));
  ALOFT_RETURN_IF_ERROR(r.Str("public_url", c.public_url));
  ALOFT_RETURN_IF_ERROR(r.Str("external_base_url", c.external_base_url));
  ALOFT_RETURN_IF_ERROR(r.Str("secure_link_secret", c.secure_link_secret));
  ALOFT_RETURN_IF_ERROR(r.Int("link_ttl_s", c.link_ttl_s));
  ALOFT_RETURN_IF_ERROR(r.Int("poll_interval_s", c.poll_interval_s));
  ALOFT_RETURN_IF_ERROR(r.Int("poll_interval_active_s", c.poll_interval_active_s));
  ALOFT_RETURN_IF_ERROR(r.Int("max_upload_bytes", c.max_upload_bytes));
  ALOFT_RETURN_IF_ERROR(r.Int("max_json_bytes", c.max_json_bytes));
  ALOFT_RETURN_IF_ERROR(r.Int("max_log_bytes", c.max_log_bytes));
  ALOFT_RETURN_IF_ERROR(r.Int("shutdown_grace_s", c.shutdown_grace_s));
  ALOFT_RETURN_IF_ERROR(r.Int("auth_cache_s", c.auth_cache_s));
  return OkStatus();
}

}  // namespace aloft::server
