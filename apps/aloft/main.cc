// aloft: the release engineer's tool. Parses options and calls the pkg and crypto libraries.
//
// Exit codes: 0 success, 1 the operation failed (verification, I/O, bad input file), 2 usage.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string_view>

#include "bundle_cmd.h"
#include "ca_cmd.h"
#include "cli_util.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/text.h"
#include "crypto/key_wrap.h"
#include "crypto/keys.h"
#include "crypto/trust.h"
#include "delta_cmd.h"
#include "pkg/package.h"
#include "repo_cmd.h"
#include "server_cmd.h"

namespace {

using aloft::Error;
using aloft::Status;

using aloft::cli::Fail;
using aloft::cli::kExitFailed;
using aloft::cli::kExitUsage;
using aloft::cli::LoadKeys;
using aloft::cli::LoadTrust;
using aloft::cli::Pointers;

// SOURCE_DATE_EPOCH (reproducible-builds.org) fixes the time recorded in packages (pack, sign).
const aloft::Clock& PackClock() {
  static std::unique_ptr<aloft::Clock> clock;
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH"); epoch != nullptr && *epoch != '\0') {
    clock = std::make_unique<aloft::ManualClock>(
        std::chrono::system_clock::time_point(std::chrono::seconds(std::atoll(epoch))));
    return *clock;
  }
  return aloft::SystemClock::Instance();
}

aloft::Progress::Mode ProgressMode(bool quiet) {
  return quiet ? aloft::Progress::Mode::kNever : aloft::Progress::Mode::kAuto;
}

void PrintInspect(const aloft::pkg::Envelope& e, const std::string& path) {
  const auto& m = e.manifest;
  std::printf("%s\n", path.c_str());
  std::printf("  package   %s %s (format %d.%d)\n", m.name.c_str(), m.version.ToString().c_str(),
              m.format_major, m.format_minor);
  std::string hw;
  for (const auto& h : m.hardware) hw += (hw.empty() ? "" : ", ") + h;
  std::printf("  hardware  %s\n", hw.c_str());
  if (!m.created.empty()) std::printf("  created   %s\n", m.created.c_str());
  std::printf("  components\n");
  std::printf("    %-12s %-5s %-5s %12s %12s  %-16s  %s\n", "NAME", "TYPE", "COMP", "PAYLOAD",
              "IMAGE", "IMAGE SHA-256", "COUNTER");
  for (const auto& c : m.components) {
    std::printf("    %-12s %-5s %-5s %12s %12s  %-16s  %llu\n", c.name.c_str(),
                c.type == aloft::pkg::ComponentType::kFull ? "full" : "delta",
                std::string(aloft::pkg::CompressionName(c.payload.compression)).c_str(),
                aloft::HumanSize(c.payload.size).c_str(), aloft::HumanSize(c.image.size).c_str(),
                c.image.sha256.substr(0, 16).c_str(),
                static_cast<unsigned long long>(c.security_counter));
    if (c.encryption) {
      std::printf("    %-12s encrypted: %s, content key %s\n", "", aloft::pkg::kEncryptionMethod,
                  c.encryption->key_id.c_str());
    }
  }
  std::printf("  signatures (%zu)\n", e.signatures.size());
  for (const auto& s : e.signatures) {
    std::printf("    %s  %s\n", s.keyid.c_str(), s.method.c_str());
  }
}

constexpr const char* kAbout =
    "aloft: build, sign and check Aloft update packages (.aloft).\n"
    "Exit status: 0 success, 1 failure, 2 usage error.";

void AddGlobalOptions(CLI::App& app, bool& quiet) {
  app.require_subcommand(1);
  app.set_version_flag("--version", "aloft 0.1.0");
  app.add_flag("-q,--quiet", quiet, "No progress bars");
}

int ParseError(CLI::App& app, const CLI::ParseError& e) {
  int rc = app.exit(e);
  return rc == 0 ? 0 : kExitUsage;
}

// The command named on the command line: the first argument that is not a global flag.
std::string_view CommandName(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.empty() || a.front() != '-') return a;
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  bool quiet = false;
  // `aloft diff` and `aloft apply` build only their own options: apply runs on devices, where the
  // whole command tree (about 100 KiB of heap, and the code that builds it) is memory a patch
  // could use (docs/cli-memory.md).
  if (std::string_view cmd = CommandName(argc, argv); cmd == "diff" || cmd == "apply") {
    CLI::App app{kAbout};
    AddGlobalOptions(app, quiet);
    auto run_delta = aloft::cli::AddDeltaCommands(app);
    auto run_bundle = aloft::cli::AddBundleCommands(app, PackClock);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return ParseError(app, e);
    }
    return run_delta(quiet);
  }

  CLI::App app{kAbout};
  AddGlobalOptions(app, quiet);

  // keygen
  auto* keygen =
      app.add_subcommand("keygen", "Create a signing key pair: PREFIX.key (0600) and PREFIX.pub");
  std::string key_out, key_type = "ed25519";
  keygen->add_option("--out", key_out, "Path prefix, e.g. keys/release")->required();
  keygen
      ->add_option("--type", key_type,
                   "ed25519 (default) or ecdsa-p256: signing keys; x25519: a device's "
                   "encryption key (docs/encryption.md)")
      ->capture_default_str();

  // pack
  auto* pack = app.add_subcommand("pack", "Build a signed full package from image files");
  aloft::pkg::PackOptions po;
  std::vector<std::string> components, pack_keys;
  std::string compression = "zstd";
  int level = 0;
  pack->add_option("--name", po.name, "Package name, e.g. fw")->required();
  pack->add_option("--version", po.version, "Semantic version, e.g. 1.2.0")->required();
  pack->add_option("--hardware", po.hardware, "Compatible device type (repeatable)")->required();
  pack->add_option("--component", components, "NAME=FILE: a module and its image (repeatable)")
      ->required();
  pack->add_option("--compress", compression, "zstd (default), lzma or none")
      ->capture_default_str();
  pack->add_option("--level", level,
                   "Compression level (zstd 1-19, default 9; lzma 0-9, default 6)");
  std::string window;
  pack->add_option(
      "--window", window,
      "Compression window, a power of two such as 1M or 256K: what a device needs "
      "in RAM to decode (default: what the level implies, 4M for zstd 9; at most 4M for "
      "lzma, whose encoder needs about 11 times it)");
  pack->add_option("--security-counter", po.security_counter,
                   "Anti-rollback counter for every component (default 0)");
  pack->add_option("--key", pack_keys, "Private key to sign with (repeatable)")->required();
  pack->add_option("-o,--output", po.output, "The package file to write")->required();
  std::string encrypt_key;
  pack->add_option("--encrypt", encrypt_key,
                   "Encrypt every payload (AES-256-GCM, docs/encryption.md) with the content key "
                   "in this file; made (random, 0600) when missing. Give it to the server with "
                   "the release: it wraps it for each device");

  // sign
  auto* sign = app.add_subcommand("sign", "Add signatures to a package, in place");
  std::string sign_path;
  std::vector<std::string> sign_keys;
  sign->add_option("package", sign_path, "The .aloft file")->required();
  sign->add_option("--key", sign_keys, "Private key to sign with (repeatable)")->required();

  // verify
  auto* verify = app.add_subcommand(
      "verify", "Check signatures against trusted keys and every payload's hashes");
  std::string verify_path;
  std::vector<std::string> verify_trust;
  size_t verify_threshold = 1;
  verify->add_option("package", verify_path, "The .aloft file")->required();
  verify->add_option("--trust", verify_trust, "Trusted public key (repeatable)")->required();
  verify->add_option("--threshold", verify_threshold, "Signatures required (default 1)");
  std::string verify_content_key, extract_content_key;
  verify->add_option("--content-key", verify_content_key,
                     "Decrypt encrypted payloads with this content key and check their images "
                     "too (without it they are checked as stored)");

  // inspect
  auto* inspect = app.add_subcommand("inspect", "Show a package's manifest (does not verify it)");
  std::string inspect_path;
  bool inspect_json = false;
  inspect->add_option("package", inspect_path, "The .aloft file")->required();
  inspect->add_flag("--json", inspect_json, "Print manifest.json, pretty-printed");

  // extract
  auto* extract = app.add_subcommand(
      "extract", "Verify a package, then write its images to a directory as COMPONENT.bin");
  std::string extract_path, extract_dir;
  std::vector<std::string> extract_trust;
  size_t extract_threshold = 1;
  extract->add_option("package", extract_path, "The .aloft file")->required();
  extract->add_option("--trust", extract_trust, "Trusted public key (repeatable)")->required();
  extract->add_option("--threshold", extract_threshold, "Signatures required (default 1)");
  extract->add_option("-C,--directory", extract_dir, "Where to write the images")->required();
  extract->add_option("--content-key", extract_content_key,
                      "The content key of an encrypted package");

  auto run_delta = aloft::cli::AddDeltaCommands(app);
  auto run_bundle = aloft::cli::AddBundleCommands(app, PackClock);
  auto run_repo = aloft::cli::AddRepoCommands(app, PackClock);
  auto run_ca = aloft::cli::AddCaCommands(app);
  CLI::App* server_cmd = nullptr;
  auto run_server = aloft::cli::AddServerCommands(app, &server_cmd);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ParseError(app, e);
  }

  if (*server_cmd) return run_server(quiet);
  if (int rc = run_delta(quiet); rc >= 0) return rc;
  if (int rc = run_bundle(quiet); rc >= 0) return rc;
  if (int rc = run_repo(quiet); rc >= 0) return rc;
  if (int rc = run_ca(quiet); rc >= 0) return rc;

  if (*keygen && key_type == "x25519") {
    auto key = aloft::crypto::RecipientKey::Generate();
    if (!key.ok()) return Fail(key.error());
    if (Status s = key->Save(key_out); !s.ok()) return Fail(s.error());
    std::printf("wrote %s.key (private, keep it on the device) and %s.pub\npublic %s\n",
                key_out.c_str(), key_out.c_str(), aloft::Base64Encode(key->PublicRaw()).c_str());
    return 0;
  }
  if (*keygen) {
    auto type = aloft::crypto::ParseKeyType(key_type);
    if (!type.ok()) return Fail(type.error());
    auto key = aloft::crypto::PrivateKey::Generate(*type);
    if (!key.ok()) return Fail(key.error());
    if (Status s = aloft::crypto::SaveKeyPair(*key, key_out); !s.ok()) return Fail(s.error());
    std::printf("wrote %s.key (private, keep it secret) and %s.pub\nkeyid %s\n", key_out.c_str(),
                key_out.c_str(), key->keyid().c_str());
    return 0;
  }

  if (*pack) {
    for (const auto& spec : components) {
      size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
        return Fail(
            Error(aloft::Code::kInvalidArgument,
                  "--component '" + spec + "': expected NAME=FILE, e.g. main=build/app.bin"));
      }
      po.components.push_back({spec.substr(0, eq), spec.substr(eq + 1)});
    }
    auto c = aloft::pkg::ParseCompression(compression);
    if (!c.ok()) return Fail(c.error());
    po.compression = *c;
    if (pack->count("--level") > 0) po.level = level;
    if (!window.empty()) {
      auto w = aloft::pkg::ParseWindow(window);
      if (!w.ok()) return Fail(w.error().WithContext("--window"));
      po.window = *w;
    }
    auto keys = LoadKeys(pack_keys);
    if (!keys.ok()) return Fail(keys.error());
    po.keys = Pointers(*keys);
    po.progress = ProgressMode(quiet);
    if (!encrypt_key.empty()) {
      auto ck = aloft::cli::LoadOrMakeContentKey(encrypt_key);
      if (!ck.ok()) return Fail(ck.error());
      po.content_key = *ck;
    }
    if (Status s = aloft::pkg::Pack(po, PackClock()); !s.ok()) return Fail(s.error());
    std::error_code size_error;
    uint64_t size = std::filesystem::file_size(po.output, size_error);
    std::printf("wrote %s: %s %s, %zu component(s), %s, signed by %zu key(s)\n", po.output.c_str(),
                po.name.c_str(), po.version.c_str(), po.components.size(),
                aloft::HumanSize(size_error ? 0 : size).c_str(), po.keys.size());
    if (po.content_key) {
      std::printf("encrypted with content key %s (%s)\n",
                  aloft::crypto::ContentKeyId(*po.content_key).c_str(), encrypt_key.c_str());
    }
    return 0;
  }

  if (*sign) {
    auto keys = LoadKeys(sign_keys);
    if (!keys.ok()) return Fail(keys.error());
    if (Status s = aloft::pkg::AddSignatures(sign_path, Pointers(*keys), PackClock()); !s.ok()) {
      return Fail(s.error());
    }
    for (const auto& k : *keys)
      std::printf("signed %s with %s\n", sign_path.c_str(), k.keyid().c_str());
    return 0;
  }

  if (*verify || *extract) {
    bool is_verify = bool(*verify);
    const std::string& path = is_verify ? verify_path : extract_path;
    auto trust = LoadTrust(is_verify ? verify_trust : extract_trust,
                           is_verify ? verify_threshold : extract_threshold);
    if (!trust.ok()) return Fail(trust.error());
    const std::string& key_path = is_verify ? verify_content_key : extract_content_key;
    std::optional<aloft::crypto::ContentKey> ck;
    if (!key_path.empty()) {
      auto loaded = aloft::crypto::LoadContentKey(key_path);
      if (!loaded.ok()) return Fail(loaded.error());
      ck = *loaded;
    }
    const aloft::crypto::ContentKey* key = ck ? &*ck : nullptr;
    if (is_verify) {
      auto r = aloft::pkg::VerifyPackage(path, *trust, aloft::SystemClock::Instance(),
                                         ProgressMode(quiet), key);
      if (!r.ok()) {
        std::fprintf(stderr, "FAILED %s\n", r.error().message().c_str());
        return kExitFailed;
      }
      std::printf("OK %s: %s %s, %zu component(s), %zu valid signature(s), %zu required\n",
                  path.c_str(), r->manifest.name.c_str(), r->manifest.version.ToString().c_str(),
                  r->manifest.components.size(), r->signatures.valid.size(),
                  r->signatures.threshold);
      if (r->encrypted_as_stored > 0) {
        std::printf(
            "  %zu encrypted payload(s) checked as stored (their images need "
            "--content-key)\n",
            r->encrypted_as_stored);
      }
      return 0;
    }
    auto written = aloft::pkg::ExtractPackage(
        path, *trust, extract_dir, aloft::SystemClock::Instance(), ProgressMode(quiet), key);
    if (!written.ok()) {
      std::fprintf(stderr, "FAILED %s\n", written.error().message().c_str());
      return kExitFailed;
    }
    for (const auto& w : *written) std::printf("wrote %s\n", w.c_str());
    return 0;
  }

  if (*inspect) {
    auto file = aloft::File::OpenRead(inspect_path);
    if (!file.ok()) return Fail(file.error());
    auto reader = aloft::pkg::PackageReader::Open(*file, inspect_path, nullptr);
    if (!reader.ok()) return Fail(reader.error());
    if (inspect_json) {
      auto text = aloft::pkg::SerializeEnvelope((*reader)->envelope());
      if (!text.ok()) return Fail(text.error());
      std::printf("%s\n", nlohmann::json::parse(*text).dump(2).c_str());
    } else {
      PrintInspect((*reader)->envelope(), inspect_path);
    }
    return 0;
  }
  return kExitUsage;
}
