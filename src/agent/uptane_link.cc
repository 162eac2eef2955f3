#include "agent/uptane_link.h"

#include <filesystem>

#include "client/http_client.h"
#include "core/file.h"
#include "core/toml_reader.h"
#include "crypto/keys.h"

namespace aloft::agent {

Result<std::optional<UptaneSettings>> ReadUptaneTable(const toml::table& t, const std::string& path,
                                                      const std::string& state_dir) {
  if (!t.contains("uptane")) return std::optional<UptaneSettings>();
  const toml::table* u = t["uptane"].as_table();
  if (!u) {
    return Error(Code::kInvalidArgument,
                 path + ": key 'uptane' must be a table (director_root, image_root, key_file)");
  }
  TomlReader ur(path + " [uptane]", *u);
  ALOFT_RETURN_IF_ERROR(ur.Known({"director_root", "image_root", "key_file"}, "docs/trust.md"));
  UptaneSettings up;
  ALOFT_RETURN_IF_ERROR(ur.Str("director_root", up.director_root));
  ALOFT_RETURN_IF_ERROR(ur.Str("image_root", up.image_root));
  ALOFT_RETURN_IF_ERROR(ur.Str("key_file", up.key_file));
  for (const char* key : {"director_root", "image_root"}) {
    if (!(*u)[key]) return ur.Bad(key, "set: the root this device ships with");
  }
  if (up.key_file.empty()) up.key_file = state_dir + "/uptane.key";
  return std::optional<UptaneSettings>(std::move(up));
}

Result<std::unique_ptr<tuf::UptaneClient>> OpenUptaneClient(const UptaneSettings& u,
                                                            const std::string& state_dir,
                                                            const std::string& device,
                                                            nlohmann::json ecus) {
  tuf::UptaneClient::Options o;
  o.state_dir = state_dir + "/uptane";
  ALOFT_ASSIGN_OR_RETURN(o.director_root, ReadFile(u.director_root, 1 << 20));
  ALOFT_ASSIGN_OR_RETURN(o.image_root, ReadFile(u.image_root, 1 << 20));
  // The device's own key pair, made on the device the first time.
  auto key = crypto::PrivateKey::Load(u.key_file);
  if (!key.ok()) {
    if (std::filesystem::exists(u.key_file)) return key.error().WithContext("uptane key");
    ALOFT_ASSIGN_OR_RETURN(crypto::PrivateKey made,
                           crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
    std::string prefix = u.key_file;
    if (prefix.ends_with(".key")) prefix.resize(prefix.size() - 4);
    ALOFT_RETURN_IF_ERROR(crypto::SaveKeyPair(made, prefix));
    key = std::move(made);
  }
  o.key = std::make_shared<crypto::PrivateKey>(std::move(key).value());
  o.device = device;
  o.ecus = std::move(ecus);
  return tuf::UptaneClient::Open(std::move(o));
}

Result<std::unique_ptr<UptaneLink>> UptaneLink::Open(const UptaneSettings& u,
                                                     const std::string& state_dir,
                                                     const std::string& device, nlohmann::json ecus,
                                                     std::string server, client::TlsFiles tls) {
  ALOFT_ASSIGN_OR_RETURN(auto client, OpenUptaneClient(u, state_dir, device, std::move(ecus)));
  return std::unique_ptr<UptaneLink>(
      new UptaneLink(std::move(client), std::move(server), std::move(tls)));
}

void UptaneLink::Answer(const nlohmann::json& answer, int64_t now_ms) {
  director_error_.reset();
  server_note_.clear();
  if (answer.contains("director") && answer["director"].is_object()) {
    server_note_ = answer["director"].value("unlisted", "");
  }
  if (!answer.contains("director")) {
    director_error_ = Error(Code::kUntrusted,
                            "the server sent no Director metadata: this device installs only "
                            "what Uptane verification admits");
  } else if (Status s = client_->ApplyDirector(answer["director"], now_ms); !s.ok()) {
    director_error_ = std::move(s).error();
  }
}

Result<std::string> UptaneLink::VerifyOffer(int64_t action, const std::string& serial,
                                            const std::string& hardware, uint64_t size,
                                            const std::string& sha256, int64_t now_ms) {
  if (director_error_) return *director_error_;
  auto fetch = [this](const std::string& name, int64_t max) {
    return FetchImageFile(server_, tls_, name, max);
  };
  auto verified = client_->VerifyOffer(action, serial, hardware, fetch, now_ms);
  if (!verified.ok() && !server_note_.empty()) {
    return Error(verified.error().code(),
                 verified.error().message() + " (the server says: " + server_note_ + ")");
  }
  ALOFT_ASSIGN_OR_RETURN(tuf::TargetInfo t, std::move(verified));
  if (t.length != static_cast<int64_t>(size) || t.hashes.at("sha256") != sha256) {
    return Error(Code::kIntegrity, "the offered download (" + std::to_string(size) +
                                       " bytes) is not the verified target '" + t.name + "'");
  }
  const nlohmann::json enc =
      t.custom.is_object() ? t.custom.value("encryption", nlohmann::json()) : nlohmann::json();
  if (!enc.is_object() || !enc.contains("wrapped_key")) return std::string();
  if (!enc["wrapped_key"].is_string()) {
    return Error(Code::kUntrusted, "the Director's target '" + t.name +
                                       "': custom.encryption.wrapped_key is not a string");
  }
  return enc["wrapped_key"].get<std::string>();
}

Result<std::string> FetchImageFile(const std::string& server, const client::TlsFiles& tls,
                                   const std::string& name, int64_t max_bytes) {
  client::HttpRequest req;
  req.url = server + "/tuf/image/" + name;
  client::UseTls(req, tls);
  req.timeout_s = 60;
  req.max_body = static_cast<uint64_t>(max_bytes);  // endless data is cut off
  ALOFT_ASSIGN_OR_RETURN(client::HttpResponse res, client::Send(req));
  if (res.status == 404) return Error(Code::kNotFound, "no " + name);
  if (res.status != 200) {
    return Error(Code::kUnavailable, "GET /tuf/image/" + name + ": " + std::to_string(res.status));
  }
  return std::move(res.body);
}

}  // namespace aloft::agent
