// TUF 1.0 metadata (https://theupdateframework.github.io/specification/latest/): the signed
// envelope {"signed": {...}, "signatures": [{"keyid", "sig"}]}, TUF's key objects and key ids,
// and the check that a role's threshold of its keys signed (issue 24; docs/trust.md).
//
// Keys are TUF key objects: Ed25519 {"keytype": "ed25519", "scheme": "ed25519", "keyval":
// {"public": <64 hex digits>}} and ECDSA P-256 {"keytype": "ecdsa", "scheme":
// "ecdsa-sha2-nistp256", "keyval": {"public": <SubjectPublicKeyInfo PEM>}}. A key's id is the
// SHA-256 (hex) of the canonical JSON of its key object, as the specification defines it; it is
// not the package manifest's key id (the SHA-256 of the DER public key) for the same key.
//
// Signatures are over the canonical JSON of "signed" and hex-encoded. Canonical JSON is the OLPC
// form that securesystemslib (python-tuf) and tuf-js use, not RFC 8785: no whitespace, members
// sorted by name, and in strings only '"' and '\\' escaped. Metadata with a non-ASCII string or a
// fractional number is refused rather than signed: for it, those clients' encoders differ (UTF-16
// against code-point order; number forms).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "crypto/keys.h"

namespace aloft::tuf {

using json = nlohmann::json;

// A key as TUF metadata lists it.
struct Key {
  crypto::PublicKey key;
  json object;  // {"keytype", "scheme", "keyval": {"public"}}
  std::string id;
};

// The key object and id of `key`.
Result<Key> KeyFromPublic(const crypto::PublicKey& key);
// A key object read from metadata; `id` is what the metadata calls it, and must be its id.
Result<Key> KeyFromObject(const std::string& id, const json& object);
// A key object whose id is not given: the id is computed.
Result<Key> KeyFromObject(const json& object);

// A role's keys and threshold ("roles" of root, "delegations" of targets).
struct RoleKeys {
  std::vector<std::string> keyids;
  int threshold = 1;
};

// The canonical bytes that are signed: the canonical JSON of `signed`. kInvalidArgument for
// non-ASCII strings and fractional numbers (see above).
Result<std::string> SignedBytes(const json& signed_part);

// Adds a signature of `key` to `envelope` (replacing an earlier one of the same key).
Status Sign(json& envelope, const crypto::PrivateKey& key);

// Whether at least `role.threshold` distinct keys of `role.keyids`, each found in `keys`, signed
// `envelope`'s "signed". Signatures by keys outside the role, unknown keys, repeated keys and bad
// signatures count for nothing. kUntrusted names the role (`what`) and how many signed.
Status VerifyRole(const json& envelope, const std::map<std::string, Key>& keys,
                  const RoleKeys& role, const std::string& what);

// The common fields of every role's "signed".
struct Common {
  std::string type;  // "root", "targets", "snapshot", "timestamp"
  int64_t version = 0;
  int64_t expires_ms = 0;
  std::string spec_version;
};

// Parses `text` as an envelope of role `type`: JSON (the project's parser: no duplicate names,
// depth-limited), "signed" and "signatures" present, "_type" as expected, "spec_version" 1.x,
// "version" at least 1, "expires" an RFC 3339 time. `what` names the input in errors.
Result<json> ParseEnvelope(std::string_view text, std::string_view type, const std::string& what);
Result<Common> CommonOf(const json& envelope, const std::string& what);

// root.json's keys and roles.
struct Root {
  Common common;
  bool consistent_snapshot = false;
  std::map<std::string, Key> keys;
  std::map<std::string, RoleKeys> roles;  // root, targets, snapshot, timestamp
};
Result<Root> ParseRoot(const json& envelope, const std::string& what);

}  // namespace aloft::tuf
