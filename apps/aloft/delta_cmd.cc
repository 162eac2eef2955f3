#include "delta_cmd.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <tuple>

#include "cli_util.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/progress.h"
#include "core/text.h"
#include "crypto/key_wrap.h"
#include "crypto/keys.h"
#include "delta/apply.h"
#include "delta/diff.h"
#include "pkg/compress.h"
#include "pkg/delta_package.h"

namespace aloft::cli {
namespace {

constexpr uint64_t kMaxImage = (uint64_t{1} << 31) - 1;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string Percent(uint64_t part, uint64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", whole ? 100.0 * part / whole : 0.0);
  return buf;
}

struct DiffArgs {
  std::string from, to, output, window, segment;
  std::vector<std::string> keys, trust;
  size_t threshold = 1;
  std::string from_key, to_key;  // content keys of encrypted packages
};

struct ApplyArgs {
  std::string from, patch, output, max_window = "128M";
};

int RunRawDiff(const DiffArgs& a, const delta::DiffOptions& options) {
  auto base = ReadFile(a.from, kMaxImage);
  if (!base.ok()) return Fail(base.error());
  auto target = ReadFile(a.to, kMaxImage);
  if (!target.ok()) return Fail(target.error());
  auto start = std::chrono::steady_clock::now();
  delta::DiffStats stats;
  auto patch = delta::Diff(AsBytes(*base), AsBytes(*target), options, &stats);
  if (!patch.ok()) return Fail(patch.error());
  if (Status s = WriteFileAtomic(a.output, AsChars(*patch)); !s.ok()) {
    return Fail(s.error());
  }
  std::printf("wrote %s: %s, %s of %s, in %.2f s\n", a.output.c_str(),
              HumanSize(patch->size()).c_str(), Percent(patch->size(), target->size()).c_str(),
              HumanSize(target->size()).c_str(), SecondsSince(start));
  std::printf("  %llu operations, %s of the target matched; %u segment(s), at most %s each\n",
              static_cast<unsigned long long>(stats.ops),
              Percent(stats.matched, target->size()).c_str(), stats.segments,
              HumanSize(stats.max_segment).c_str());
  for (int s = 0; s < delta::kStreams; ++s) {
    std::printf("  %-8s %10s -> %10s (%s)\n", std::string(delta::StreamName(s)).c_str(),
                HumanSize(stats.stream_raw[s]).c_str(), HumanSize(stats.stream_packed[s]).c_str(),
                std::string(delta::CodecName(stats.codec[s])).c_str());
  }
  return 0;
}

int RunPackageDiff(const DiffArgs& a, const delta::DiffOptions& options) {
  auto keys = LoadKeys(a.keys);
  if (!keys.ok()) return Fail(keys.error());
  std::optional<crypto::TrustSet> trust;
  if (!a.trust.empty()) {
    auto loaded = LoadTrust(a.trust, a.threshold);
    if (!loaded.ok()) return Fail(loaded.error());
    trust = std::move(*loaded);
  }
  pkg::DeltaPackageOptions o;
  for (auto [path, key, option] : {std::tuple{&a.from_key, &o.from_key, "--from-key"},
                                   std::tuple{&a.to_key, &o.to_key, "--to-key"}}) {
    if (path->empty()) continue;
    auto loaded = crypto::LoadContentKey(*path);
    if (!loaded.ok()) return Fail(loaded.error().WithContext(option));
    *key = *loaded;
  }
  o.from = a.from;
  o.to = a.to;
  o.trust = trust ? &*trust : nullptr;
  o.keys = Pointers(*keys);
  o.diff = options;
  o.output = a.output;
  auto start = std::chrono::steady_clock::now();
  auto report = pkg::MakeDeltaPackage(o, SystemClock::Instance());
  if (!report.ok()) return Fail(report.error());
  std::printf("wrote %s: delta package, %zu component(s), signed by %zu key(s), in %.2f s\n",
              a.output.c_str(), report->size(), keys->size(), SecondsSince(start));
  for (const auto& c : *report) {
    std::printf("  %-12s %10s patch for a %s image (%s)%s\n", c.name.c_str(),
                HumanSize(c.patch_size).c_str(), HumanSize(c.image_size).c_str(),
                Percent(c.patch_size, c.image_size).c_str(),
                c.encrypted ? ", encrypted with the target's content key" : "");
  }
  return 0;
}

int RunDiff(const DiffArgs& a) {
  delta::DiffOptions options;
  if (!a.window.empty()) {
    auto w = pkg::ParseWindow(a.window);
    if (!w.ok()) return Fail(w.error().WithContext("--window"));
    options.window = *w;
  }
  if (!a.segment.empty()) {
    auto seg = pkg::ParseWindow(a.segment);
    if (!seg.ok()) return Fail(seg.error().WithContext("--segment"));
    options.segment = *seg;
  }
  auto from_pkg = pkg::LooksLikePackage(a.from);
  if (!from_pkg.ok()) return Fail(from_pkg.error());
  auto to_pkg = pkg::LooksLikePackage(a.to);
  if (!to_pkg.ok()) return Fail(to_pkg.error());
  if (*from_pkg != *to_pkg) {
    return Fail(Error(Code::kInvalidArgument, (*from_pkg ? a.from : a.to) +
                                                  " is an .aloft package but " +
                                                  (*from_pkg ? a.to : a.from) +
                                                  " is not: give two packages or two raw images"));
  }
  if (*from_pkg) {
    if (a.keys.empty()) {
      return Fail(Error(Code::kInvalidArgument, "a delta package must be signed: give --key"));
    }
    return RunPackageDiff(a, options);
  }
  if (!a.keys.empty() || !a.trust.empty() || !a.from_key.empty() || !a.to_key.empty()) {
    return Fail(Error(Code::kInvalidArgument,
                      "--key, --trust, --from-key and --to-key are for "
                      "packages; " +
                          a.from + " is a raw image"));
  }
  return RunRawDiff(a, options);
}

int RunApply(const ApplyArgs& a, bool quiet) {
  auto max_window = pkg::ParseWindow(a.max_window);
  if (!max_window.ok()) return Fail(max_window.error().WithContext("--max-window"));
  auto is_pkg = pkg::LooksLikePackage(a.patch);
  if (!is_pkg.ok()) return Fail(is_pkg.error());
  if (*is_pkg) {
    return Fail(Error(Code::kInvalidArgument,
                      a.patch + " is a delta package: devices apply it (aloft-agent); "
                                "`aloft apply` takes a raw patch from `aloft diff` on images"));
  }
  auto base_file = File::OpenRead(a.from);
  if (!base_file.ok()) return Fail(base_file.error());
  auto base_size = base_file->Size();
  if (!base_size.ok()) return Fail(base_size.error());
  auto patch_file = File::OpenRead(a.patch);
  if (!patch_file.ok()) return Fail(patch_file.error());
  auto patch_size = patch_file->Size();
  if (!patch_size.ok()) return Fail(patch_size.error());
  auto out = AtomicFile::Create(a.output, 0644);
  if (!out.ok()) return Fail(out.error());

  auto start = std::chrono::steady_clock::now();
  delta::FileBase base(*base_file, *base_size);
  delta::ApplyOptions options;
  options.max_window = *max_window;
  Progress progress("applying " + a.patch, *patch_size, SystemClock::Instance(), stderr,
                    quiet ? Progress::Mode::kNever : Progress::Mode::kAuto);
  auto written = delta::ApplyPatch(base, *patch_file, *out, options, &progress);
  progress.Finish();
  if (!written.ok()) {
    out->Abandon();
    return Fail(written.error().WithContext(a.patch));
  }
  if (Status c = out->Commit(); !c.ok()) return Fail(c.error());
  std::printf("wrote %s: %s, SHA-256 verified, in %.2f s\n", a.output.c_str(),
              HumanSize(*written).c_str(), SecondsSince(start));
  return 0;
}

}  // namespace

std::function<int(bool quiet)> AddDeltaCommands(CLI::App& app) {
  auto diff_args = std::make_shared<DiffArgs>();
  auto apply_args = std::make_shared<ApplyArgs>();

  auto* diff = app.add_subcommand(
      "diff",
      "Make a delta: between two raw images (a patch file for `aloft apply`) or between two full "
      "packages of the same software (a signed delta package for devices)");
  diff->add_option("--from", diff_args->from, "The base: what devices have")->required();
  diff->add_option("--to", diff_args->to, "The target: what they should get")->required();
  diff->add_option("-o,--output", diff_args->output, "The patch or delta package to write")
      ->required();
  diff->add_option("--window", diff_args->window,
                   "Largest decoder window a stream may need, a power of two such as 64K or 1M "
                   "(default 256K): what a device needs in RAM per stream to apply");
  diff->add_option("--segment", diff_args->segment,
                   "About how many compressed bytes a device buffers at once, a power of two "
                   "(default the smaller of 128K and 4 x the window)");
  diff->add_option("--key", diff_args->keys, "Packages: private key to sign with (repeatable)");
  diff->add_option("--trust", diff_args->trust,
                   "Packages: require the inputs to be signed by these keys (repeatable)");
  diff->add_option("--from-key", diff_args->from_key,
                   "Packages: the content key of an encrypted base (aloft pack --encrypt)");
  diff->add_option("--to-key", diff_args->to_key,
                   "Packages: the content key of an encrypted target; the delta is encrypted "
                   "with it too");
  diff->add_option("--threshold", diff_args->threshold,
                   "Packages: signatures required with "
                   "--trust (default 1)");

  auto* apply = app.add_subcommand(
      "apply",
      "Apply a patch from `aloft diff` to a raw image; the result's SHA-256 is checked "
      "before it is written");
  apply->add_option("--from", apply_args->from, "The base image")->required();
  apply->add_option("--patch", apply_args->patch, "The patch")->required();
  apply->add_option("-o,--output", apply_args->output, "The image to write")->required();
  apply
      ->add_option("--max-window", apply_args->max_window,
                   "Refuse patches needing a larger decoder window (default 128M)")
      ->capture_default_str();

  return [diff, apply, diff_args, apply_args](bool quiet) -> int {
    if (*diff) return RunDiff(*diff_args);
    if (*apply) return RunApply(*apply_args, quiet);
    return -1;
  };
}

}  // namespace aloft::cli
