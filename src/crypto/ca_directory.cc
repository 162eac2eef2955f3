#include "crypto/ca_directory.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/file.h"

namespace aloft::crypto {

namespace {

using json = nlohmann::json;
using std::chrono::hours;

int64_t Ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Result<std::vector<IssuedCertificate>> ReadIssued(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 256 << 20));
  json j = json::parse(text, nullptr, false);
  if (!j.is_array()) return Error(Code::kMalformed, path + ": not a JSON array");
  std::vector<IssuedCertificate> out;
  for (const json& e : j) {
    if (!e.is_object() || !e.contains("serial") || !e["serial"].is_string()) {
      return Error(Code::kMalformed, path + ": an entry without a serial");
    }
    out.push_back({.serial = e["serial"].get<std::string>(),
                   .common_name = e.value("common_name", ""),
                   .not_after_ms = e.value("not_after_ms", int64_t{0}),
                   .revoked = e.value("revoked", false),
                   .revoked_ms = e.value("revoked_ms", int64_t{0})});
  }
  return out;
}

}  // namespace

Result<CaDirectory> CaDirectory::Init(const std::string& dir, const std::string& name, int64_t days,
                                      const Clock& clock) {
  if (name.empty()) return Error(Code::kInvalidArgument, "the CA needs a name (--name)");
  if (days < 1) return Error(Code::kInvalidArgument, "--days: at least 1");
  std::error_code ec;
  if (std::filesystem::exists(dir + "/ca.key", ec) || std::filesystem::exists(dir + "/ca.crt")) {
    return Error(Code::kAlreadyExists, dir + ": holds a CA already; refusing to replace it");
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error(Code::kIo, dir + ": cannot create the directory: " + ec.message());
  ALOFT_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Generate(KeyType::kEcdsaP256));
  const auto now = clock.Wall();
  ALOFT_ASSIGN_OR_RETURN(Certificate cert, Certificate::Issue({.common_name = name,
                                                               .not_before = now - hours(1),
                                                               .not_after = now + hours(24 * days),
                                                               .ca = true},
                                                              key.public_key(), nullptr, key));
  // The key first and exclusively: a second init racing this one fails here.
  ALOFT_ASSIGN_OR_RETURN(File key_file, File::CreateExclusive(dir + "/ca.key", 0600));
  std::string pem = key.ToPem();
  Status s = key_file.Write(AsBytes(pem));
  if (s.ok()) s = key_file.Sync();
  if (s.ok()) s = WriteFileAtomic(dir + "/ca.crt", cert.Pem());
  CaDirectory ca(dir, clock, std::move(key), std::move(cert));
  if (s.ok()) s = ca.SaveIssued();
  if (s.ok()) s = ca.WriteCrl();
  if (!s.ok()) {
    for (const char* f : {"/ca.key", "/ca.crt", "/issued.json", "/crl.pem"}) {
      std::filesystem::remove(dir + f, ec);
    }
    return std::move(s).error();
  }
  return ca;
}

Result<CaDirectory> CaDirectory::Open(const std::string& dir, const Clock& clock) {
  ALOFT_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::Load(dir + "/ca.key"));
  ALOFT_ASSIGN_OR_RETURN(std::vector<Certificate> certs, Certificate::Load(dir + "/ca.crt"));
  ALOFT_ASSIGN_OR_RETURN(PublicKey in_cert, certs[0].Key());
  if (in_cert.keyid() != key.keyid()) {
    return Error(Code::kInvalidArgument, dir + "/ca.key is not the key of " + dir + "/ca.crt");
  }
  CaDirectory ca(dir, clock, std::move(key), std::move(certs[0]));
  ALOFT_ASSIGN_OR_RETURN(ca.issued_, ReadIssued(dir + "/issued.json"));
  return ca;
}

Result<Certificate> CaDirectory::Issue(const IssueOptions& o, const PublicKey& subject) {
  if (o.common_name.empty()) return Error(Code::kInvalidArgument, "a certificate needs a name");
  if (o.days < 1) return Error(Code::kInvalidArgument, "--days: at least 1");
  const auto now = clock_->Wall();
  const auto not_after = std::min(now + hours(24 * o.days), cert_.NotAfter());
  ALOFT_ASSIGN_OR_RETURN(Certificate cert, Certificate::Issue({.common_name = o.common_name,
                                                               .not_before = now - hours(1),
                                                               .not_after = not_after,
                                                               .roles = o.roles,
                                                               .dns_names = o.dns_names,
                                                               .tls_client = o.tls_client,
                                                               .tls_server = o.tls_server},
                                                              subject, &cert_, key_));
  issued_.push_back(
      {.serial = cert.SerialHex(), .common_name = o.common_name, .not_after_ms = Ms(not_after)});
  if (Status s = SaveIssued(); !s.ok()) {
    issued_.pop_back();
    return std::move(s).error();
  }
  return cert;
}

Result<Certificate> CaDirectory::Sign(const CertificateRequest& csr, IssueOptions options) {
  if (options.common_name.empty()) options.common_name = csr.CommonName();
  ALOFT_ASSIGN_OR_RETURN(PublicKey key, csr.Key());
  return Issue(options, key);
}

Status CaDirectory::Revoke(const std::string& serial) {
  auto it = std::find_if(issued_.begin(), issued_.end(),
                         [&](const IssuedCertificate& c) { return c.serial == serial; });
  if (it == issued_.end()) {
    return Error(Code::kNotFound, "serial " + serial + ": not a certificate this CA issued");
  }
  if (it->revoked) return OkStatus();
  it->revoked = true;
  it->revoked_ms = Ms(clock_->Wall());
  Status s = SaveIssued();
  if (s.ok()) s = WriteCrl();
  if (!s.ok()) it->revoked = false;
  return s;
}

Status CaDirectory::WriteCrl(int64_t days) {
  std::vector<std::string> serials;
  for (const auto& c : issued_) {
    if (c.revoked) serials.push_back(c.serial);
  }
  const auto now = clock_->Wall();
  ALOFT_ASSIGN_OR_RETURN(RevocationList crl,
                         RevocationList::Issue(cert_, key_, serials, now, now + hours(24 * days)));
  return WriteFileAtomic(crl_path(), crl.Pem());
}

Status CaDirectory::SaveIssued() const {
  json j = json::array();
  for (const auto& c : issued_) {
    j.push_back({{"serial", c.serial},
                 {"common_name", c.common_name},
                 {"not_after_ms", c.not_after_ms},
                 {"revoked", c.revoked},
                 {"revoked_ms", c.revoked_ms}});
  }
  return WriteFileAtomic(dir_ + "/issued.json", j.dump(1) + "\n");
}

}  // namespace aloft::crypto
