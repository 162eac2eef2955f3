// The server's schema, as versioned migrations (docs/server.md describes the tables). Append new
// migrations; never edit one that has shipped.
#include "server/schema.h"

namespace aloft::server {

const std::vector<db::Migration>& SchemaMigrations() {
  static const std::vector<db::Migration> kMigrations = {
      {1, "fleet, releases, actions, audit", R"sql(
CREATE TABLE api_tokens (
  id {{id}}, name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
  created_ms BIGINT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE device_types (
  id {{id}}, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL);
CREATE TABLE modules (
  id {{id}}, device_type_id BIGINT NOT NULL REFERENCES device_types(id) ON DELETE CASCADE,
  name TEXT NOT NULL, UNIQUE (device_type_id, name));
CREATE TABLE registration_tokens (
  id {{id}}, device_type_id BIGINT NOT NULL REFERENCES device_types(id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE artifacts (
  sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, sha1 TEXT NOT NULL, md5 TEXT NOT NULL,
  created_ms BIGINT NOT NULL);
CREATE TABLE releases (
  id {{id}}, name TEXT NOT NULL, version TEXT NOT NULL, kind TEXT NOT NULL,
  filename TEXT NOT NULL, artifact_sha256 TEXT NOT NULL REFERENCES artifacts(sha256),
  manifest TEXT, enabled BIGINT NOT NULL DEFAULT 1, allowed_devices TEXT, allowed_sources TEXT,
  created_ms BIGINT NOT NULL, created_by TEXT NOT NULL, UNIQUE (name, version));
CREATE TABLE release_targets (
  release_id BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
  device_type_id BIGINT NOT NULL REFERENCES device_types(id),
  module TEXT NOT NULL, PRIMARY KEY (release_id, device_type_id, module));
CREATE TABLE devices (
  id {{id}}, name TEXT NOT NULL UNIQUE, device_type_id BIGINT NOT NULL REFERENCES device_types(id),
  token_hash TEXT NOT NULL UNIQUE, grp TEXT, attributes TEXT NOT NULL DEFAULT '{}',
  created_ms BIGINT NOT NULL, last_seen_ms BIGINT, last_address TEXT);
CREATE INDEX devices_grp ON devices (grp);
CREATE INDEX devices_type ON devices (device_type_id);
CREATE TABLE device_tags (
  device_id BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, tag TEXT NOT NULL,
  PRIMARY KEY (device_id, tag));
CREATE INDEX device_tags_tag ON device_tags (tag);
CREATE TABLE device_versions (
  device_id BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, module TEXT NOT NULL,
  version TEXT NOT NULL, updated_ms BIGINT NOT NULL, PRIMARY KEY (device_id, module));
CREATE TABLE actions (
  id {{id}}, device_id BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  release_id BIGINT NOT NULL REFERENCES releases(id), state TEXT NOT NULL, mode TEXT NOT NULL,
  progress BIGINT NOT NULL DEFAULT 0, open BIGINT NOT NULL DEFAULT 1,
  created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, created_by TEXT NOT NULL,
  rollout_id BIGINT, wave BIGINT);
CREATE UNIQUE INDEX actions_one_open ON actions (device_id) WHERE open = 1;
CREATE INDEX actions_release ON actions (release_id);
CREATE INDEX actions_state ON actions (state);
CREATE TABLE action_events (
  id {{id}}, action_id BIGINT NOT NULL REFERENCES actions(id) ON DELETE CASCADE,
  at_ms BIGINT NOT NULL, status TEXT NOT NULL, progress BIGINT, code BIGINT,
  details TEXT NOT NULL DEFAULT '');
CREATE INDEX action_events_action ON action_events (action_id);
CREATE TABLE device_logs (
  id {{id}}, device_id BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  action_id BIGINT, at_ms BIGINT NOT NULL, content TEXT NOT NULL);
CREATE INDEX device_logs_device ON device_logs (device_id);
CREATE TABLE audit_log (
  id {{id}}, at_ms BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  object TEXT NOT NULL, details TEXT NOT NULL DEFAULT '{}');
)sql"},
      {2, "rollouts, their devices, leases, deltas", R"sql(
CREATE TABLE rollouts (
  id {{id}}, name TEXT NOT NULL UNIQUE, release_id BIGINT NOT NULL REFERENCES releases(id),
  filter TEXT NOT NULL, waves TEXT NOT NULL, mode TEXT NOT NULL, dynamic BIGINT NOT NULL,
  maintenance_window TEXT, start_ms BIGINT, expires_ms BIGINT, needs_approval BIGINT NOT NULL,
  state TEXT NOT NULL, wave BIGINT NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',
  errors_accepted_wave BIGINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL, created_by TEXT NOT NULL, approved_ms BIGINT, approved_by TEXT,
  updated_ms BIGINT NOT NULL);
CREATE INDEX rollouts_state ON rollouts (state);
CREATE TABLE rollout_devices (
  rollout_id BIGINT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
  device_id BIGINT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  wave BIGINT NOT NULL, action_id BIGINT, skipped TEXT,
  PRIMARY KEY (rollout_id, device_id));
CREATE INDEX rollout_devices_wave ON rollout_devices (rollout_id, wave);
CREATE INDEX actions_rollout ON actions (rollout_id, wave);
CREATE TABLE leases (
  name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE TABLE deltas (
  id {{id}}, release_id BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
  base_version TEXT NOT NULL, source TEXT NOT NULL, state TEXT NOT NULL,
  artifact_sha256 TEXT REFERENCES artifacts(sha256), size BIGINT, manifest TEXT,
  error TEXT NOT NULL DEFAULT '',
  created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, UNIQUE (release_id, base_version));
ALTER TABLE actions ADD COLUMN delta_id BIGINT;
)sql"},
      // A device's actions, newest first: its history, and the DDI poll's installedBase, without
      // reading the fleet's actions.
      {3, "actions by device", R"sql(
CREATE INDEX actions_device ON actions (device_id, id);
)sql"},
      // Push over MQTT (docs/mqtt.md): a device's broker password hash and its gateway, rollouts
      // that push, and the actions whose command is due to be pushed.
      {4, "push over MQTT", R"sql(
ALTER TABLE devices ADD COLUMN mqtt_secret TEXT;
ALTER TABLE devices ADD COLUMN gateway_id BIGINT REFERENCES devices(id) ON DELETE SET NULL;
ALTER TABLE rollouts ADD COLUMN push BIGINT NOT NULL DEFAULT 0;
ALTER TABLE actions ADD COLUMN push_due_ms BIGINT;
CREATE INDEX actions_push_due ON actions (push_due_ms) WHERE push_due_ms IS NOT NULL;
)sql"},
      // PostgreSQL: every committed change to a device's actions is notified on kActionsChannel
      // (duplicates within one transaction are sent once), so that several servers can cache
      // "no open action" per device (Store::ActionsEpoch). SQLite has one server: nothing to do.
      {5, "notify changes to actions", "", R"sql(
CREATE FUNCTION aloft_notify_action() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('aloft_actions', OLD.device_id::text);
  ELSE
    PERFORM pg_notify('aloft_actions', NEW.device_id::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER actions_notify AFTER INSERT OR UPDATE OR DELETE ON actions
  FOR EACH ROW EXECUTE FUNCTION aloft_notify_action();
)sql"},
      // Registration tokens that can be named, listed, expired, limited and revoked.
      {6, "registration token limits", R"sql(
ALTER TABLE registration_tokens ADD COLUMN name TEXT;
ALTER TABLE registration_tokens ADD COLUMN expires_ms BIGINT;
ALTER TABLE registration_tokens ADD COLUMN max_uses BIGINT;
ALTER TABLE registration_tokens ADD COLUMN uses BIGINT NOT NULL DEFAULT 0;
)sql"},
      // Per-device log quotas count bytes (logs from before: their length in characters).
      {7, "log sizes", R"sql(
ALTER TABLE device_logs ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
UPDATE device_logs SET bytes = length(content);
CREATE INDEX action_events_action_id ON action_events (action_id, id);
DROP INDEX action_events_action;
)sql"},
      // Each aloftd's own broker user (its password hash), for the broker files every one writes.
      {8, "MQTT bridge users", R"sql(
CREATE TABLE mqtt_bridges (
  username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, updated_ms BIGINT NOT NULL);
)sql"},
      // The dashboard (docs/dashboard.md): people who sign in with a password, the sessions of
      // people and tokens signed in through a browser, and what its live feed and device list
      // look up by time.
      {9, "users, sessions, dashboard indexes", R"sql(
CREATE TABLE users (
  id {{id}}, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, password_hash TEXT NOT NULL,
  created_ms BIGINT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY, actor TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL,
  user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
  token_id BIGINT REFERENCES api_tokens(id) ON DELETE CASCADE,
  created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE INDEX sessions_expires ON sessions (expires_ms);
CREATE INDEX actions_updated ON actions (updated_ms);
CREATE INDEX rollouts_updated ON rollouts (updated_ms);
CREATE INDEX devices_seen ON devices (last_seen_ms);
)sql"},
      // TUF / Uptane (docs/trust.md): every version of every metadata file a repository served
      // (kept: a client may ask for any root, and consistent snapshots for their own version),
      // and the targets the newest targets metadata lists, by name and SHA-256.
      {10, "TUF repositories", R"sql(
CREATE TABLE tuf_files (
  repo TEXT NOT NULL, role TEXT NOT NULL, version BIGINT NOT NULL, body TEXT NOT NULL,
  expires_ms BIGINT NOT NULL, created_ms BIGINT NOT NULL, PRIMARY KEY (repo, role, version));
CREATE TABLE tuf_targets (
  repo TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, length BIGINT NOT NULL,
  PRIMARY KEY (repo, name));
CREATE INDEX tuf_targets_sha256 ON tuf_targets (sha256);
)sql"},
      // Uptane's Director (docs/trust.md): each device's enrolled key, the counter of the last
      // version manifest it signed (a replayed manifest is refused) and that manifest.
      {11, "Uptane devices", R"sql(
CREATE TABLE uptane_devices (
  device_id BIGINT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE, key_object TEXT NOT NULL,
  counter BIGINT NOT NULL, manifest TEXT NOT NULL, updated_ms BIGINT NOT NULL);
)sql"},
      // Encrypted releases (docs/encryption.md): each device's X25519 public key (from its
      // check-in), and each encrypted release's content key, sealed with the server's own key.
      {12, "encryption keys", R"sql(
CREATE TABLE device_keys (
  device_id BIGINT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE, x25519 TEXT NOT NULL,
  updated_ms BIGINT NOT NULL);
CREATE TABLE release_keys (
  release_id BIGINT PRIMARY KEY REFERENCES releases(id) ON DELETE CASCADE, key_id TEXT NOT NULL,
  sealed TEXT NOT NULL, created_ms BIGINT NOT NULL);
)sql"},
  };
  return kMigrations;
}

}  // namespace aloft::server
