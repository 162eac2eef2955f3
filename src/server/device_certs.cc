#include "server/device_certs.h"

#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <algorithm>

#include "core/encoding.h"

namespace aloft::server {

namespace {

// "%2D%2D%2D%2D%2DBEGIN..." (nginx's $ssl_client_escaped_cert) back to PEM; '+' stays '+'.
std::string UrlDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

Error Refused(const std::string& why) {
  return Error(Code::kPermissionDenied, "client certificate refused: " + why);
}

}  // namespace

Result<std::unique_ptr<DeviceCertificates>> DeviceCertificates::Open(const ServerConfig& config,
                                                                     const Clock& clock) {
  if (config.device_ca_file.empty()) {
    if (!config.device_crl_file.empty()) {
      return Error(Code::kInvalidArgument, "device_crl_file needs device_ca_file");
    }
    return std::unique_ptr<DeviceCertificates>();
  }
  std::unique_ptr<DeviceCertificates> d(new DeviceCertificates(config, clock));
  auto anchors = crypto::Certificate::Load(config.device_ca_file);
  if (!anchors.ok()) return std::move(anchors).error().WithContext("device_ca_file");
  d->anchors_ = std::move(*anchors);
  if (!config.device_crl_file.empty()) {
    // Read now: a CRL that cannot be read or is not the CA's stops the start.
    auto revoked = d->Revoked();
    if (!revoked.ok()) return std::move(revoked).error().WithContext("device_crl_file");
  }
  return d;
}

Result<std::shared_ptr<const std::set<std::string>>> DeviceCertificates::Revoked() {
  std::lock_guard lock(mu_);
  if (config_.device_crl_file.empty()) return revoked_;
  const auto now = clock_.Monotonic();
  if (crl_mtime_ns_ >= 0 && now - crl_checked_ < std::chrono::seconds(1)) return revoked_;
  crl_checked_ = now;
  struct stat st {};
  if (::stat(config_.device_crl_file.c_str(), &st) != 0) {
    // A CRL that went away is no reason to accept what it revoked: the last one stays.
    if (crl_mtime_ns_ >= 0) return revoked_;
    return Error(Code::kIo, config_.device_crl_file + ": cannot be read");
  }
  const int64_t mtime = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (mtime == crl_mtime_ns_) return revoked_;
  auto crl = crypto::RevocationList::Load(config_.device_crl_file);
  Status good = crl.ok() ? Status(Error(Code::kUntrusted,
                                        config_.device_crl_file + ": not signed by the device CA"))
                         : Status(crl.error());
  if (crl.ok()) {
    for (const auto& a : anchors_) {
      if (crl->VerifiedBy(a).ok()) {
        good = OkStatus();
        break;
      }
    }
  }
  if (!good.ok()) {
    if (crl_mtime_ns_ >= 0) return revoked_;  // a bad new file: the last good list stays
    return std::move(good).error();
  }
  auto serials = crl->Serials();
  revoked_ = std::make_shared<const std::set<std::string>>(serials.begin(), serials.end());
  crl_mtime_ns_ = mtime;
  ++counters_.crl_reloads;
  return revoked_;
}

Result<DeviceCertificates::Parsed> DeviceCertificates::Parse(const std::string& key,
                                                             bool from_tls) {
  {
    std::lock_guard lock(mu_);
    auto it = parsed_.find(key);
    if (it != parsed_.end()) return it->second;
  }
  // OpenSSL 3 takes a few hundred microseconds to decode a certificate (its key decoders): each
  // is decoded once, and a header's chain checked once (its verdict holds until it expires).
  Parsed p;
  Result<crypto::Certificate> cert = Error(Code::kInternal, "");
  if (from_tls) {
    cert = crypto::Certificate::FromDer(AsBytes(key), "client certificate");
  } else {
    auto certs = crypto::Certificate::FromPem(UrlDecode(key), config_.client_cert_header);
    if (certs.ok()) {
      cert = std::move((*certs)[0]);
    } else {
      cert = std::move(certs).error();
    }
  }
  if (!cert.ok()) return Refused(cert.error().message());
  p.name = cert->CommonName();
  p.serial = cert->SerialHex();
  p.subject = cert->Subject();
  p.not_after = cert->NotAfter();
  if (!from_tls) {
    crypto::ChainCheck c =
        crypto::VerifyChain({*cert}, anchors_, clock_.Wall(), {}, /*p256_only=*/false);
    if (!c.ok()) p.problem = c.why;
  }
  std::lock_guard lock(mu_);
  if (parsed_.size() >= kMaxParsed) parsed_.clear();
  parsed_.emplace(key, p);
  return p;
}

Result<std::string> DeviceCertificates::Check(const Parsed& p, const std::string& problem) {
  auto refuse = [this](const std::string& why) {
    std::lock_guard lock(mu_);
    ++counters_.refused;
    return Refused(why);
  };
  if (!problem.empty()) return refuse(problem);
  if (clock_.Wall() > p.not_after) return refuse(p.subject + ": certificate has expired");
  ALOFT_ASSIGN_OR_RETURN(auto revoked, Revoked());
  if (revoked->count(p.serial)) {
    return refuse(p.subject + ": revoked (serial " + p.serial + ")");
  }
  if (p.name.empty()) return refuse(p.subject + ": no common name to name the device");
  std::lock_guard lock(mu_);
  ++counters_.accepted;
  return p.name;
}

Result<std::string> DeviceCertificates::DeviceOf(const http::Request& req) {
  if (req.client_cert) {
    const http::ClientCertificate& c = *req.client_cert;
    ALOFT_ASSIGN_OR_RETURN(Parsed p, Parse(c.der, true));
    if (c.verified()) return Check(p, "");
    std::string why = p.subject + ": " + c.verify_error;
    switch (c.verify_result) {  // no path to the device CA
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        why += " (not issued by the device CA)";
        break;
      default:
        break;
    }
    return Check(p, why);
  }
  std::string_view header = req.headers.Get(config_.client_cert_header);
  if (header.empty()) return Error(Code::kNotFound, "no client certificate");
  if (std::find(config_.trusted_proxies.begin(), config_.trusted_proxies.end(),
                req.remote_address) == config_.trusted_proxies.end()) {
    // Anyone can send the header: believed from the configured proxies only.
    std::lock_guard lock(mu_);
    ++counters_.untrusted_header;
    return Error(Code::kNotFound, "a client certificate header from an untrusted address");
  }
  ALOFT_ASSIGN_OR_RETURN(Parsed p, Parse(std::string(header), false));
  return Check(p, p.problem);
}

DeviceCertificates::Counters DeviceCertificates::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

}  // namespace aloft::server
