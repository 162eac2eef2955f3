// What aloft-agent and aloft-vehicle share for Uptane (docs/trust.md): the [uptane] settings, the
// client opened from them (the device's own key made on the device when missing), and the Image
// repository's files fetched from the server, each answer capped at its limit.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "client/http_client.h"
#include "core/error.h"
#include "tuf/uptane_client.h"

namespace aloft::agent {

struct UptaneSettings {
  std::string director_root, image_root;  // the roots the device ships with (files)
  std::string key_file;                   // the device's key; made when missing
};

// The optional [uptane] table of configuration `t` (read from `path`; `doc` names the page that
// lists the keys): nullopt without one. key_file defaults to STATE_DIR/uptane.key.
Result<std::optional<UptaneSettings>> ReadUptaneTable(const toml::table& t, const std::string& path,
                                                      const std::string& state_dir);

// The client for `device` with `ecus` ({serial: {"hardware_id", ...}}), its metadata kept in
// STATE_DIR/uptane.
Result<std::unique_ptr<tuf::UptaneClient>> OpenUptaneClient(const UptaneSettings& u,
                                                            const std::string& state_dir,
                                                            const std::string& device,
                                                            nlohmann::json ecus);

// A device's Uptane between its check-ins (aloft-agent's, and aloft-vehicle's for the whole car):
// the client, the Image repository on the device's server, and what the last answer's Director
// metadata left: until a check-in brings metadata that verifies, every offer is refused.
class UptaneLink {
 public:
  // The client as OpenUptaneClient opens it; the Image repository at `server` (over TLS with
  // `tls`).
  static Result<std::unique_ptr<UptaneLink>> Open(const UptaneSettings& u,
                                                  const std::string& state_dir,
                                                  const std::string& device, nlohmann::json ecus,
                                                  std::string server, client::TlsFiles tls);

  tuf::UptaneClient& client() { return *client_; }
  // A check-in's answer: its "director" part applied (missing or refused: the reason every offer
  // is refused with until the next check-in).
  void Answer(const nlohmann::json& answer, int64_t now_ms);
  // The offer `action`, before any download: the Director lists it for `serial` and `hardware`
  // ("" for a gateway, whose bundle CheckEcus checks), the Image repository agrees, and the
  // offered download (`size` bytes, `sha256`) is that very target. The answer: the content key
  // wrapped for this device that the Director signed into the target (docs/encryption.md), ""
  // when it carries none; it takes precedence over the action's.
  Result<std::string> VerifyOffer(int64_t action, const std::string& serial,
                                  const std::string& hardware, uint64_t size,
                                  const std::string& sha256, int64_t now_ms);

 private:
  UptaneLink(std::unique_ptr<tuf::UptaneClient> client, std::string server, client::TlsFiles tls)
      : client_(std::move(client)), server_(std::move(server)), tls_(std::move(tls)) {}

  std::unique_ptr<tuf::UptaneClient> client_;
  std::string server_;
  client::TlsFiles tls_;
  std::optional<Error> director_error_;
  std::string server_note_;  // why the Director lists nothing for the open action, if it said
};

// GET SERVER/tuf/image/NAME of at most `max_bytes` (a longer answer is cut off); kNotFound for 404.
Result<std::string> FetchImageFile(const std::string& server, const client::TlsFiles& tls,
                                   const std::string& name, int64_t max_bytes);

}  // namespace aloft::agent
