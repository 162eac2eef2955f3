// The store's encryption keys (docs/encryption.md): devices' public keys, releases' sealed
// content keys.
#include "server/store.h"

namespace aloft::server {

using db::Rows;

Result<std::optional<std::string>> Tx::GetDeviceKey(int64_t device_id) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT x25519 FROM device_keys WHERE device_id = ?", {device_id}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows[0].Text(0));
}

Status Tx::PutDeviceKey(int64_t device_id, const std::string& x25519, int64_t now) {
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "INSERT INTO device_keys (device_id, x25519, updated_ms) VALUES (?, ?, ?) ON CONFLICT "
      "(device_id) DO UPDATE SET x25519 = excluded.x25519, updated_ms = excluded.updated_ms",
      {device_id, x25519, now}));
  return OkStatus();
}

Result<std::optional<ReleaseKey>> Tx::GetReleaseKey(int64_t release_id) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT key_id, sealed FROM release_keys WHERE release_id = ?", {release_id}));
  if (rows.empty()) return std::optional<ReleaseKey>();
  return std::optional<ReleaseKey>(ReleaseKey{rows[0].Text(0), rows[0].Text(1)});
}

Status Tx::PutReleaseKey(int64_t release_id, const ReleaseKey& k, int64_t now) {
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "INSERT INTO release_keys (release_id, key_id, sealed, created_ms) VALUES (?, ?, ?, ?) ON "
      "CONFLICT (release_id) DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed",
      {release_id, k.key_id, k.sealed, now}));
  return OkStatus();
}

}  // namespace aloft::server
