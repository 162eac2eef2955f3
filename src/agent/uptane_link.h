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

// GET SERVER/tuf/image/NAME of at most `max_bytes` (a longer answer is cut off); kNotFound for 404.
Result<std::string> FetchImageFile(const std::string& server, const std::string& ca_file,
                                   const std::string& name, int64_t max_bytes);

}  // namespace aloft::agent
