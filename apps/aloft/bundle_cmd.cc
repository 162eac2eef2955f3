#include "bundle_cmd.h"

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_util.h"
#include "core/file.h"
#include "core/text.h"
#include "vehicle/bundle.h"

namespace aloft::cli {
namespace {

struct BundleArgs {
  std::string description, output;
  std::vector<std::string> keys;
  std::string encrypt;  // the content key file (docs/encryption.md)
};

int RunBundle(const BundleArgs& a, bool quiet, const Clock& clock) {
  auto o = vehicle::LoadBundleDescription(a.description);
  if (!o.ok()) return Fail(o.error());
  auto keys = LoadKeys(a.keys);
  if (!keys.ok()) return Fail(keys.error());
  o->keys = Pointers(*keys);
  if (!a.encrypt.empty()) {
    auto ck = LoadOrMakeContentKey(a.encrypt);
    if (!ck.ok()) return Fail(ck.error());
    o->content_key = *ck;
  }
  o->output = a.output;
  o->progress = quiet ? Progress::Mode::kNever : Progress::Mode::kAuto;
  if (Status s = pkg::Pack(*o, clock); !s.ok()) return Fail(s.error());
  // Read back what was written, as the vehicle will.
  auto file = File::OpenRead(a.output);
  if (!file.ok()) return Fail(file.error());
  auto reader = pkg::PackageReader::Open(*file, a.output, nullptr);
  if (!reader.ok()) return Fail(reader.error());
  auto b = vehicle::ReadBundle((*reader)->manifest(), a.output);
  if (!b.ok()) return Fail(b.error());
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(a.output, ec);
  std::printf("wrote %s: vehicle bundle %s %s for %s, %zu ECU(s), %s, signed by %zu key(s)\n",
              a.output.c_str(), b->name.c_str(), b->version.c_str(), b->model.c_str(),
              b->ecus.size(), HumanSize(ec ? 0 : size).c_str(), o->keys.size());
  std::printf("  policy: mode %s, at most %lld s, %d deferral(s)\n",
              vehicle::ToString(b->policy.mode),
              static_cast<long long>(b->policy.max_duration.count()), b->policy.max_deferrals);
  std::printf("  %-10s %-10s %-8s %-7s %-17s %10s  %s\n", "ECU", "VERSION", "HARDWARE", "METHOD",
              "ADDRESS", "IMAGE", "AFTER");
  for (const auto& e : b->ecus) {
    char where[48];
    if (e.method == vehicle::InstallMethod::kAgent) {
      std::snprintf(where, sizeof where, "its own agent");
    } else if (e.bus == "doip") {
      std::snprintf(where, sizeof where, "doip/0x%04X", unsigned{*e.doip_address});
    } else {
      std::snprintf(where, sizeof where, "%s/0x%X", e.bus.c_str(), e.request_id);
    }
    std::string after;
    for (const auto& x : e.after) after += (after.empty() ? "" : ",") + x;
    std::printf("  %-10s %-10s %-8s %-7s %-17s %10s  %s\n", e.name.c_str(), e.version.c_str(),
                e.hardware.c_str(), vehicle::ToString(e.method), where, HumanSize(e.size).c_str(),
                after.empty() ? "-" : after.c_str());
  }
  return 0;
}

}  // namespace

std::function<int(bool quiet)> AddBundleCommands(CLI::App& app,
                                                 std::function<const Clock&()> pack_clock) {
  auto args = std::make_shared<BundleArgs>();
  auto* cmd = app.add_subcommand(
      "bundle",
      "Build a signed vehicle bundle (one component per ECU, and the campaign policy) from a "
      "bundle description (TOML, docs/vehicle-bundle.md)");
  cmd->add_option("description", args->description, "The bundle description (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--key", args->keys, "Private key to sign with (repeatable)")->required();
  cmd->add_option("-o,--output", args->output, "The bundle file to write (.aloft)")->required();
  cmd->add_option("--encrypt", args->encrypt,
                  "Encrypt every ECU's image with the content key in this file (made when "
                  "missing); the gateway decrypts before it flashes (docs/encryption.md)");
  return [cmd, args, pack_clock](bool quiet) {
    if (!*cmd) return -1;
    return RunBundle(*args, quiet, pack_clock());
  };
}

}  // namespace aloft::cli
