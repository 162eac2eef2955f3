// aloftd's configuration: a TOML file (docs/server.md lists every key) overridden by flags. The
// defaults run a complete server from a data directory alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace aloft::server {

struct ServerConfig {
  std::string data_dir;  // required: database, artifacts, admin.token, tmp/
  std::string listen = "127.0.0.1:8080";
  std::string database;  // "" = <data_dir>/aloft.db; or postgresql://...
  // Content-addressed artifact files; "" = <data_dir>/artifacts. Servers sharing one PostgreSQL
  // share this directory (NFS, a shared volume) or serve downloads through external_base_url.
  std::string artifacts_dir;
  int db_pool = 8;
  int threads = 0;                 // 0 = number of CPUs (at least 2)
  std::vector<std::string> trust;  // public key files accepted on packages
  int trust_threshold = 1;
  std::string tls_cert, tls_key;
  // Devices by certificate (docs/identity.md): the CA(s) that issue devices' certificates (PEM;
  // "" = none: tokens only), its CRL (PEM, read again when it changes), and the proxies (exact
  // client addresses) whose client_cert_header, the certificate as nginx's
  // $ssl_client_escaped_cert, is believed.
  std::string device_ca_file, device_crl_file;
  std::vector<std::string> trusted_proxies;
  std::string client_cert_header = "X-SSL-Client-Cert";
  std::string public_url;  // base of download URLs; "" = from the Host header
  // Downloads through nginx or a CDN with secure_link-signed URLs (docs/server.md).
  std::string external_base_url;
  std::string secure_link_secret;
  int64_t link_ttl_s = 3600;
  int64_t poll_interval_s = 300;
  int64_t poll_interval_active_s = 30;  // while an action is open
  uint64_t max_upload_bytes = 4ull << 30;
  uint64_t max_json_bytes = 1 << 20;
  uint64_t max_log_bytes = 1 << 20;
  // Per device: the newest logs kept; older ones are dropped beyond either bound.
  int64_t max_logs_per_device = 100;
  uint64_t max_log_bytes_per_device = 16 << 20;
  int64_t shutdown_grace_s = 10;
  // Open connections at once (the descriptor limit also caps it, keeping a fifth for files), and
  // from one client address (0: no limit; raise it behind a proxy, where all come from one).
  int max_connections = 20000;
  int max_connections_per_address = 512;
  // How long a token's owner (device or operator) is remembered without asking the database. A
  // token revoked or a device deleted through another server stops working within this time.
  int64_t auth_cache_s = 10;
  // The dashboard (docs/dashboard.md): the directory of its built files ("" = the one installed
  // beside aloftd, share/aloft/web, or the source tree's web/dist in a build tree), and how long a
  // browser's sign-in lasts.
  std::string web_dir;
  int64_t session_ttl_s = 12 * 3600;
  // The rollout engine (docs/rollouts.md): how often it runs, how long its leader lease lasts (a
  // server that dies is replaced after this), whether every rollout needs an approver.
  // rollout_tick_ms = 0 stops the engine (tests drive App::TickRollouts themselves).
  int64_t rollout_tick_ms = 1000;
  int64_t rollout_lease_s = 10;
  bool rollout_approval = false;
  // Releases are signed .aloft packages only: plain artifacts are refused on upload and not
  // deployed (docs/server.md).
  bool require_signed_releases = false;
  // PEM private key that signs the deltas this server makes (docs/rollouts.md); "" = it makes
  // none (uploaded deltas are still offered). Devices must trust its public key.
  std::string delta_key;
  // TUF Image repository (docs/trust.md): the online keys' files; none = no repository.
  std::string tuf_snapshot_key, tuf_timestamp_key;
  bool tuf_public_targets = false;  // targets for anyone, not only devices
  int64_t tuf_snapshot_lifetime_s = 7 * 86400;
  int64_t tuf_timestamp_lifetime_s = 86400;
  // Uptane Director: the online key of its targets, snapshot and timestamp roles; none = none.
  std::string tuf_director_key;
  int64_t tuf_director_lifetime_s = 86400;
  // Encrypted releases (docs/encryption.md): the X25519 key content keys are sealed with at rest;
  // "" = DATA_DIR/content.key, made when missing. Servers sharing a database share this file.
  std::string content_key_file;
  // The hawkBit DDI API (docs/ddi.md): served under /<ddi_tenant>/controller/v1/. A gateway token
  // lets one client speak for every device (`Authorization: GatewayToken ...`); "" = refused.
  std::string ddi_tenant = "default";
  std::string ddi_gateway_token;
  // Push over MQTT (docs/mqtt.md): the broker, the bridge's credentials, and the broker's files
  // that aloftd keeps in step with the device registry. "" mqtt_url: no push.
  std::string mqtt_url;
  // This aloftd's own broker user; "" = "aloftd-<host>-<8 hex of the data directory's path>".
  std::string mqtt_username;
  std::string mqtt_password;  // "" = a random one, written to mqtt_broker_passwd
  std::string mqtt_ca_file;
  std::string mqtt_client_id;  // "" = the user name
  std::string mqtt_group;      // "" = a plain subscription (one instance); else a shared one
  std::string mqtt_broker_passwd, mqtt_broker_acl, mqtt_broker_pid;
};

// Reads `path` into `config` (keys not in the file keep their values). kInvalidArgument names the
// file, key and problem: "aloftd.toml: key 'listen' must be a string".
Status LoadConfigFile(const std::string& path, ServerConfig& config);

}  // namespace aloft::server
