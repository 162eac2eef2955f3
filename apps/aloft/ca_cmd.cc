#include "ca_cmd.h"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

#include "cli_util.h"
#include "core/file.h"
#include "crypto/ca_directory.h"

namespace aloft::cli {
namespace {

struct CaArgs {
  std::string dir, name, common_name, out, csr, serial;
  std::vector<std::string> roles, dns;
  int64_t days = 0;
  bool client = false, server = false, tester = false;
};

std::string Date(int64_t ms) {
  const time_t t = static_cast<time_t>(ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

crypto::IssueOptions OptionsOf(const CaArgs& a) {
  crypto::IssueOptions o{.common_name = a.common_name,
                         .days = a.days > 0 ? a.days : 365,
                         .roles = a.roles,
                         .dns_names = a.dns,
                         .tls_client = a.client,
                         .tls_server = a.server};
  // A device's certificate by default; a tester's (roles) is used by UDS, not TLS.
  if (!a.server && a.roles.empty()) o.tls_client = true;
  return o;
}

// The serial of SERIAL-or-CERTIFICATE-FILE.
Result<std::string> SerialOf(const std::string& text) {
  if (std::filesystem::exists(text)) {
    ALOFT_ASSIGN_OR_RETURN(std::vector<crypto::Certificate> certs, crypto::Certificate::Load(text));
    return certs[0].SerialHex();
  }
  std::string s;
  for (char c : text) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return Error(Code::kInvalidArgument,
                   "'" + text + "': neither a certificate file nor a serial number in hex");
    }
    s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

int Saved(const crypto::Certificate& cert, const std::string& path, const char* what) {
  if (Status s = WriteFileAtomic(path, cert.Pem()); !s.ok()) return Fail(s.error());
  std::printf(
      "wrote %s: %s for %s, serial %s, valid until %s\n", path.c_str(), what,
      cert.CommonName().c_str(), cert.SerialHex().c_str(),
      Date(std::chrono::duration_cast<std::chrono::milliseconds>(cert.NotAfter().time_since_epoch())
               .count())
          .c_str());
  return 0;
}

}  // namespace

std::function<int(bool quiet)> AddCaCommands(CLI::App& app) {
  auto a = std::make_shared<CaArgs>();
  auto* ca = app.add_subcommand(
      "ca",
      "A certificate authority in a directory: devices' certificates (TLS client "
      "authentication), testers' (UDS 0x29 roles), revocation (docs/identity.md)");
  ca->require_subcommand(1);
  auto dir = [a](CLI::App* c) {
    c->add_option("dir", a->dir, "The CA's directory (ca.key, ca.crt, issued.json, crl.pem)")
        ->required();
  };
  auto issuing = [a](CLI::App* c) {
    c->add_option("--days", a->days, "Validity in days (default 365; never past the CA's)");
    c->add_option("--role", a->roles,
                  "A UDS 0x29 role the certificate grants (repeatable): a tester's certificate");
    c->add_option("--dns", a->dns, "A subjectAltName DNS name (repeatable)");
    c->add_flag("--server", a->server, "For a TLS server (extendedKeyUsage serverAuth)");
    c->add_flag("--client", a->client,
                "For TLS client authentication (the default without --role or --server)");
  };
  auto* init = ca->add_subcommand("init", "Make a new CA: an ECDSA P-256 key and certificate");
  dir(init);
  init->add_option("--name", a->name, "The CA's name (its certificate's CN)")->required();
  init->add_option("--days", a->days, "Validity in days (default 3650)");

  auto* issue = ca->add_subcommand(
      "issue", "Make a key pair here and a certificate for it: PREFIX.key, PREFIX.crt");
  dir(issue);
  issue->add_option("--cn", a->common_name, "The certificate's CN: a device's id, a tester's name")
      ->required();
  issue->add_option("-o,--out", a->out, "PREFIX of the files written")->required();
  issuing(issue);

  auto* sign = ca->add_subcommand(
      "sign", "A certificate for a certificate signing request (the device keeps its key)");
  dir(sign);
  sign->add_option("csr", a->csr, "The request (PEM)")->required()->check(CLI::ExistingFile);
  sign->add_option("--cn", a->common_name, "The CN (default: the request's)");
  sign->add_option("-o,--out", a->out, "The certificate file written")->required();
  issuing(sign);

  auto* revoke = ca->add_subcommand("revoke", "Revoke a certificate; crl.pem is rewritten");
  dir(revoke);
  revoke->add_option("certificate", a->serial, "Its serial number (hex) or its file")->required();

  auto* crl = ca->add_subcommand("crl", "Write crl.pem again (a new next-update date)");
  dir(crl);
  crl->add_option("--days", a->days, "Until its next update (default 30)");

  auto* list = ca->add_subcommand("list", "What the CA issued, and what it revoked");
  dir(list);

  return [=](bool) -> int {
    if (!*ca) return -1;
    const Clock& clock = SystemClock::Instance();
    if (*init) {
      auto made = crypto::CaDirectory::Init(a->dir, a->name, a->days > 0 ? a->days : 3650, clock);
      if (!made.ok()) return Fail(made.error());
      std::printf(
          "made CA \"%s\" in %s: give %s to aloftd (device_ca_file) and Mosquitto "
          "(cafile), %s as their CRL\n",
          a->name.c_str(), a->dir.c_str(), made->cert_path().c_str(), made->crl_path().c_str());
      return 0;
    }
    auto opened = crypto::CaDirectory::Open(a->dir, clock);
    if (!opened.ok()) return Fail(opened.error());
    crypto::CaDirectory& c = *opened;
    if (*issue) {
      auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256);
      if (!key.ok()) return Fail(key.error());
      const std::string key_path = a->out + ".key";
      if (std::filesystem::exists(key_path)) {
        return Fail(Error(Code::kAlreadyExists, key_path + ": exists; refusing to overwrite"));
      }
      auto cert = c.Issue(OptionsOf(*a), key->public_key());
      if (!cert.ok()) return Fail(cert.error());
      if (Status s = WriteFileAtomic(key_path, key->ToPem(), 0600); !s.ok()) return Fail(s.error());
      return Saved(*cert, a->out + ".crt", a->roles.empty() ? "certificate" : "tester certificate");
    }
    if (*sign) {
      auto request = crypto::CertificateRequest::Load(a->csr);
      if (!request.ok()) return Fail(request.error());
      auto cert = c.Sign(*request, OptionsOf(*a));
      if (!cert.ok()) return Fail(cert.error());
      return Saved(*cert, a->out, "certificate");
    }
    if (*revoke) {
      auto serial = SerialOf(a->serial);
      if (!serial.ok()) return Fail(serial.error());
      if (Status s = c.Revoke(*serial); !s.ok()) return Fail(s.error());
      std::printf("revoked serial %s; wrote %s (reload it where it is used)\n", serial->c_str(),
                  c.crl_path().c_str());
      return 0;
    }
    if (*crl) {
      if (Status s = c.WriteCrl(a->days > 0 ? a->days : 30); !s.ok()) return Fail(s.error());
      std::printf("wrote %s\n", c.crl_path().c_str());
      return 0;
    }
    if (*list) {
      std::printf("%-20s %-32s %-10s %s\n", "SERIAL", "CN", "UNTIL", "STATE");
      for (const auto& e : c.issued()) {
        std::printf("%-20s %-32s %-10s %s\n", e.serial.c_str(), e.common_name.c_str(),
                    Date(e.not_after_ms).c_str(),
                    e.revoked ? ("revoked " + Date(e.revoked_ms)).c_str() : "valid");
      }
      return 0;
    }
    return kExitUsage;
  };
}

}  // namespace aloft::cli
