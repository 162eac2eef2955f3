#include "server/config.h"

#include "core/toml_reader.h"

namespace aloft::server {

Status LoadConfigFile(const std::string& path, ServerConfig& c) {
  ALOFT_ASSIGN_OR_RETURN(toml::table t, ParseToml(path));
  TomlReader r(path, t);
  ALOFT_RETURN_IF_ERROR(r.Known({"data_dir",
                                 "listen",
                                 "database",
                                 "artifacts_dir",
                                 "db_pool",
                                 "threads",
                                 "trust",
                                 "trust_threshold",
                                 "tls_cert",
                                 "tls_key",
                                 "device_ca_file",
                                 "device_crl_file",
                                 "trusted_proxies",
                                 "client_cert_header",
                                 "public_url",
                                 "external_base_url",
                                 "secure_link_secret",
                                 "link_ttl_s",
                                 "poll_interval_s",
                                 "poll_interval_active_s",
                                 "max_upload_bytes",
                                 "max_json_bytes",
                                 "max_log_bytes",
                                 "max_logs_per_device",
                                 "max_log_bytes_per_device",
                                 "shutdown_grace_s",
                                 "max_connections",
                                 "max_connections_per_address",
                                 "auth_cache_s",
                                 "web_dir",
                                 "session_ttl_s",
                                 "rollout_tick_ms",
                                 "rollout_lease_s",
                                 "rollout_approval",
                                 "require_signed_releases",
                                 "delta_key",
                                 "tuf_snapshot_key",
                                 "tuf_timestamp_key",
                                 "tuf_public_targets",
                                 "tuf_snapshot_lifetime_s",
                                 "tuf_timestamp_lifetime_s",
                                 "tuf_director_key",
                                 "tuf_director_lifetime_s",
                                 "content_key_file",
                                 "ddi_tenant",
                                 "ddi_gateway_token",
                                 "mqtt_url",
                                 "mqtt_username",
                                 "mqtt_password",
                                 "mqtt_ca_file",
                                 "mqtt_client_id",
                                 "mqtt_group",
                                 "mqtt_broker_passwd",
                                 "mqtt_broker_acl",
                                 "mqtt_broker_pid"},
                                "docs/server.md"));
  ALOFT_RETURN_IF_ERROR(r.Str("data_dir", c.data_dir));
  ALOFT_RETURN_IF_ERROR(r.Str("listen", c.listen));
  ALOFT_RETURN_IF_ERROR(r.Str("database", c.database));
  ALOFT_RETURN_IF_ERROR(r.Str("artifacts_dir", c.artifacts_dir));
  ALOFT_RETURN_IF_ERROR(r.Int("db_pool", c.db_pool));
  ALOFT_RETURN_IF_ERROR(r.Int("threads", c.threads));
  ALOFT_RETURN_IF_ERROR(r.StrList("trust", c.trust));
  ALOFT_RETURN_IF_ERROR(r.Str("device_ca_file", c.device_ca_file));
  ALOFT_RETURN_IF_ERROR(r.Str("device_crl_file", c.device_crl_file));
  ALOFT_RETURN_IF_ERROR(r.StrList("trusted_proxies", c.trusted_proxies));
  ALOFT_RETURN_IF_ERROR(r.Str("client_cert_header", c.client_cert_header));
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
  ALOFT_RETURN_IF_ERROR(r.Int("max_logs_per_device", c.max_logs_per_device));
  ALOFT_RETURN_IF_ERROR(r.Int("max_log_bytes_per_device", c.max_log_bytes_per_device));
  ALOFT_RETURN_IF_ERROR(r.Int("shutdown_grace_s", c.shutdown_grace_s));
  ALOFT_RETURN_IF_ERROR(r.Int("max_connections", c.max_connections));
  ALOFT_RETURN_IF_ERROR(r.Int("max_connections_per_address", c.max_connections_per_address));
  ALOFT_RETURN_IF_ERROR(r.Int("auth_cache_s", c.auth_cache_s));
  ALOFT_RETURN_IF_ERROR(r.Str("web_dir", c.web_dir));
  ALOFT_RETURN_IF_ERROR(r.Int("session_ttl_s", c.session_ttl_s));
  if (c.session_ttl_s < 60 || c.session_ttl_s > 30 * 86400) {
    return Error(Code::kInvalidArgument,
                 path + ": session_ttl_s must be from 60 (a minute) to 2592000 (30 days)");
  }
  ALOFT_RETURN_IF_ERROR(r.Int("rollout_tick_ms", c.rollout_tick_ms));
  ALOFT_RETURN_IF_ERROR(r.Int("rollout_lease_s", c.rollout_lease_s));
  ALOFT_RETURN_IF_ERROR(r.Bool("rollout_approval", c.rollout_approval));
  ALOFT_RETURN_IF_ERROR(r.Bool("require_signed_releases", c.require_signed_releases));
  ALOFT_RETURN_IF_ERROR(r.Str("delta_key", c.delta_key));
  ALOFT_RETURN_IF_ERROR(r.Str("tuf_snapshot_key", c.tuf_snapshot_key));
  ALOFT_RETURN_IF_ERROR(r.Str("tuf_timestamp_key", c.tuf_timestamp_key));
  ALOFT_RETURN_IF_ERROR(r.Bool("tuf_public_targets", c.tuf_public_targets));
  ALOFT_RETURN_IF_ERROR(r.Int("tuf_snapshot_lifetime_s", c.tuf_snapshot_lifetime_s));
  ALOFT_RETURN_IF_ERROR(r.Int("tuf_timestamp_lifetime_s", c.tuf_timestamp_lifetime_s));
  ALOFT_RETURN_IF_ERROR(r.Str("tuf_director_key", c.tuf_director_key));
  ALOFT_RETURN_IF_ERROR(r.Int("tuf_director_lifetime_s", c.tuf_director_lifetime_s));
  ALOFT_RETURN_IF_ERROR(r.Str("content_key_file", c.content_key_file));
  if (c.tuf_director_lifetime_s < 600) {
    return Error(Code::kInvalidArgument, path + ": tuf_director_lifetime_s must be at least 600");
  }
  if (c.tuf_snapshot_key.empty() != c.tuf_timestamp_key.empty()) {
    return Error(Code::kInvalidArgument,
                 path + ": tuf_snapshot_key and tuf_timestamp_key are set together");
  }
  if (c.tuf_timestamp_lifetime_s < 600 || c.tuf_snapshot_lifetime_s < c.tuf_timestamp_lifetime_s) {
    return Error(Code::kInvalidArgument, path +
                                             ": tuf_timestamp_lifetime_s must be at least 600 and "
                                             "tuf_snapshot_lifetime_s at least as long");
  }
  ALOFT_RETURN_IF_ERROR(r.Str("ddi_tenant", c.ddi_tenant));
  ALOFT_RETURN_IF_ERROR(r.Str("ddi_gateway_token", c.ddi_gateway_token));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_url", c.mqtt_url));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_username", c.mqtt_username));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_password", c.mqtt_password));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_ca_file", c.mqtt_ca_file));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_client_id", c.mqtt_client_id));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_group", c.mqtt_group));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_broker_passwd", c.mqtt_broker_passwd));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_broker_acl", c.mqtt_broker_acl));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_broker_pid", c.mqtt_broker_pid));
  if (c.max_logs_per_device < 1) {
    return Error(Code::kInvalidArgument, path + ": max_logs_per_device must be at least 1");
  }
  if (c.max_log_bytes_per_device < c.max_log_bytes) {
    return Error(Code::kInvalidArgument, path + ": max_log_bytes_per_device (" +
                                             std::to_string(c.max_log_bytes_per_device) +
                                             ") must be at least max_log_bytes (" +
                                             std::to_string(c.max_log_bytes) +
                                             "): a device's newest log must fit");
  }
  return OkStatus();
}

}  // namespace aloft::server
