// `aloft server rollout ...`: create, list, status and the operator's changes (docs/rollouts.md).
#include <cstdio>
#include <cstdlib>
#include <map>

#include "core/file.h"
#include "core/text.h"
#include "server_cmd_support.h"

namespace aloft::cli::server {

namespace {

// "10%", "250" or "rest", then ":success=90", ":error=5", ":confirm" in any order.
Result<json> ParseWave(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error(Code::kInvalidArgument,
                 "--wave '" + text + "': " + why +
                     " (expected SIZE[:success=PCT][:error=PCT][:confirm], SIZE being 10%, 250 or "
                     "rest)");
  };
  json w = json::object();
  size_t start = 0;
  for (int part = 0; start <= text.size(); ++part) {
    size_t end = text.find(':', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    start = end + 1;
    auto number = [&](const std::string& digits, double& out) {
      char* stop = nullptr;
      out = std::strtod(digits.c_str(), &stop);
      return !digits.empty() && *stop == '\0' && out > 0;
    };
    double v = 0;
    if (part == 0) {
      if (item == "rest") continue;
      if (!item.empty() && item.back() == '%') {
        if (!number(item.substr(0, item.size() - 1), v) || v > 100) return bad("bad percentage");
        w["percent"] = v;
      } else {
        if (!number(item, v) || v != static_cast<int64_t>(v)) return bad("bad device count");
        w["count"] = static_cast<int64_t>(v);
      }
    } else if (item == "confirm") {
      w["confirm"] = true;
    } else if (item.rfind("success=", 0) == 0 || item.rfind("error=", 0) == 0) {
      auto eq = item.find('=');
      std::string pct = item.substr(eq + 1);
      if (!pct.empty() && pct.back() == '%') pct.pop_back();
      if (!number(pct, v) && pct != "0") return bad("bad threshold");
      w[item.substr(0, eq) + "_threshold"] = v;
    } else {
      return bad("unknown part '" + item + "'");
    }
  }
  return w;
}

// A bar of `width` cells: '#' succeeded, '!' failed, '-' the rest.
std::string Bar(int64_t succeeded, int64_t failed, int64_t total, int width = 24) {
  if (total <= 0) return "[" + std::string(width, ' ') + "]";
  int ok = static_cast<int>(succeeded * width / total);
  int bad = static_cast<int>(failed * width / total);
  if (failed > 0 && bad == 0) bad = 1;
  if (ok + bad > width) ok = width - bad;
  return "[" + std::string(ok, '#') + std::string(bad, '!') + std::string(width - ok - bad, '-') +
         "]";
}

void PrintRolloutStatus(const json& j) {
  std::printf("rollout %s: %s to %s devices, %s, wave %s of %zu, mode %s\n", Str(j, "name").c_str(),
              Str(j, "release").c_str(), Str(j, "devices").c_str(), Str(j, "state").c_str(),
              Str(j, "wave").c_str(), j.value("waves", json::array()).size(),
              Str(j, "mode").c_str());
  if (!j.value("reason", "").empty()) std::printf("  %s\n", j["reason"].get<std::string>().c_str());
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : j.value("waves", json::array())) {
    const json& st = w["states"];
    auto n = [&](const char* k) { return st.value(k, int64_t{0}); };
    int64_t devices = w.value("devices", int64_t{0}) - n("skipped");
    int64_t open = devices - n("succeeded") - n("failed") - n("canceled");
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%%", w.value("success_rate", 0.0));
    char err[16];
    std::snprintf(err, sizeof err, "%.1f%%", w.value("error_rate", 0.0));
    std::string thresholds =
        w.contains("success_threshold")
            ? ">=" + Str(w, "success_threshold") + "% / >" + Str(w, "error_threshold") + "%"
            : "-";
    rows.push_back({Str(w, "wave"), std::to_string(devices),
                    Bar(n("succeeded"), n("failed"), devices) + " " + pct,
                    std::to_string(n("succeeded")), std::to_string(n("failed")),
                    std::to_string(open), std::to_string(n("canceled")),
                    std::to_string(n("skipped")), err, thresholds});
  }
  Table({"WAVE", "DEVICES", "PROGRESS (# succeeded, ! failed)", "OK", "FAILED", "OPEN", "CANCELED",
         "SKIPPED", "ERRORS", "THRESHOLDS"},
        rows);
  std::printf("downloads %s: %s, %s saved by deltas", Str(j, "downloads").c_str(),
              HumanSize(j.value("download_bytes", uint64_t{0})).c_str(),
              HumanSize(j.value("bytes_saved", uint64_t{0})).c_str());
  if (!j["duration_median_s"].is_null()) {
    std::printf("; update time median %.0f s, p95 %.0f s", j["duration_median_s"].get<double>(),
                j["duration_p95_s"].get<double>());
  }
  std::printf("\n");
}

}  // namespace

void AddRolloutCommands(CLI::App* s, Commands& cmds) {
  auto o = cmds.o;
  auto print = cmds.print;
  auto add = [&cmds](CLI::App* parent, const char* name, const char* help,
                     std::function<int(Api&, bool)> fn) {
    return cmds.Add(parent, name, help, std::move(fn));
  };
  auto* ro = s->add_subcommand("rollout", "Rollouts: a release to a fleet, wave by wave");
  ro->require_subcommand(1);
  auto* ro_create =
      add(ro, "create", "Create a rollout (docs/rollouts.md)", [o, print](Api& api, bool) {
        json body = json::object();
        if (!o->spec_file.empty()) {
          auto text = ReadFile(o->spec_file, 1 << 20);
          if (!text.ok()) return Fail(text.error());
          body = json::parse(*text, nullptr, false);
          if (!body.is_object()) {
            return Fail(Error(Code::kInvalidArgument, o->spec_file + ": not a JSON object"));
          }
        }
        body["name"] = o->a1;
        if (!o->release.empty()) body["release"] = o->release;
        json filter = body.value("filter", json::object());
        if (!o->device_type.empty()) filter["device_type"] = o->device_type;
        if (!o->module.empty()) filter["module"] = o->module;
        if (!o->groups.empty()) filter["groups"] = o->groups;
        if (!o->tags.empty()) filter["tags"] = o->tags;
        if (!o->devices.empty()) filter["devices"] = o->devices;
        if (!o->versions.empty()) filter["versions"] = o->versions;
        if (!o->attributes.empty()) {
          auto attrs = ParseAttributes(o->attributes);
          if (!attrs.ok()) return Fail(attrs.error());
          filter["attributes"] = *attrs;
        }
        body["filter"] = filter;
        if (!o->waves.empty()) {
          body["waves"] = json::array();
          for (const auto& w : o->waves) {
            auto wave = ParseWave(w);
            if (!wave.ok()) return Fail(wave.error());
            body["waves"].push_back(*wave);
          }
        }
        if (!o->rollout_mode.empty()) body["mode"] = o->rollout_mode;
        if (o->dynamic) body["dynamic"] = true;
        if (o->approval) body["approval"] = true;
        if (o->push) body["push"] = true;
        if (!o->start_at.empty()) body["start_at"] = o->start_at;
        if (!o->expires_at.empty()) body["expires_at"] = o->expires_at;
        if (!o->window.empty()) {
          auto comma = o->window.rfind(',');
          if (comma == std::string::npos) {
            return Fail(Error(Code::kInvalidArgument,
                              "--window '" + o->window + "': expected 'CRON,DURATION'"));
          }
          body["maintenance_window"] = {{"schedule", o->window.substr(0, comma)},
                                        {"duration", o->window.substr(comma + 1)},
                                        {"time_zone", o->window_zone}};
        }
        auto r = api.Call("POST", "/api/v1/rollouts", &body);
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) {
          std::printf("rollout %s: %s\n", Str(j, "name").c_str(), Str(j, "state").c_str());
        });
      });
  ro_create->add_option("name", o->a1, "Rollout name")->required();
  ro_create->add_option("--release", o->release, "NAME@VERSION to roll out");
  ro_create->add_option("--file", o->spec_file,
                        "A JSON rollout (docs/rollouts.md); options given override it");
  ro_create->add_option("--device-type", o->device_type, "Only devices of this type");
  ro_create->add_option("--group", o->groups, "Devices of this group (repeatable: any of)");
  ro_create->add_option("--tag", o->tags, "Devices with this tag (repeatable: any of)");
  ro_create->add_option("--device", o->devices, "This device (repeatable)");
  ro_create->add_option("--module", o->module, "The module --version looks at");
  ro_create->add_option("--version", o->versions,
                        "Devices running this version now (repeatable: any of)");
  ro_create->add_option("--attribute", o->attributes, "KEY=VALUE the device must have");
  ro_create->add_option("--wave", o->waves,
                        "A wave: 10%, 250 or rest, then :success=PCT :error=PCT :confirm "
                        "(repeatable, in order; default one wave of all)");
  ro_create->add_option("--mode", o->rollout_mode, "forced (default), soft or download-only");
  ro_create->add_flag("--dynamic", o->dynamic, "Devices that match later join");
  ro_create->add_flag("--approval", o->approval, "An approver other than you must approve it");
  ro_create->add_flag("--push", o->push, "Push each wave's commands over MQTT as it starts");
  ro_create->add_option("--start-at", o->start_at, "RFC 3339 time to start (default: now)");
  ro_create->add_option("--expires-at", o->expires_at, "RFC 3339 time to give up");
  ro_create->add_option("--window", o->window,
                        "Maintenance window 'CRON,DURATION', e.g. '0 2 * * *,2h': installs only "
                        "inside it");
  ro_create->add_option("--time-zone", o->window_zone,
                        "Time zone of --window: IANA name or +HH:MM (default UTC)");
  add(ro, "list", "Every rollout", [print](Api& api, bool) {
    auto r = api.Call("GET", "/api/v1/rollouts");
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& x : j) {
        rows.push_back({Str(x, "name"), Str(x, "release"), Str(x, "state"), Str(x, "wave"),
                        std::to_string(x.value("waves", json::array()).size()), Str(x, "mode"),
                        Str(x, "created_by")});
      }
      Table({"NAME", "RELEASE", "STATE", "WAVE", "WAVES", "MODE", "CREATED BY"}, rows);
    });
  });
  auto* ro_status = add(ro, "status", "Devices per state and wave, rates, bytes, durations",
                        [o, print](Api& api, bool) {
                          auto r = api.Call("GET", "/api/v1/rollouts/" + Enc(o->a1));
                          if (!r.ok()) return Fail(r.error());
                          return print(*r, PrintRolloutStatus);
                        });
  ro_status->add_option("name", o->a1, "Rollout name")->required();
  for (const char* verb : {"approve", "deny", "pause", "resume", "confirm", "cancel"}) {
    static const std::map<std::string, std::string> kHelp = {
        {"approve", "Approve a rollout (role approver; not its creator)"},
        {"deny", "Refuse a rollout awaiting approval (role approver): it ends canceled"},
        {"pause", "Stop starting new actions"},
        {"resume", "Go on after a pause (accepting the errors seen)"},
        {"confirm", "Start the next wave of a rollout awaiting confirmation"},
        {"cancel", "Cancel the rollout and every action not yet installing"}};
    auto* c =
        add(ro, verb, kHelp.at(verb).c_str(), [o, print, v = std::string(verb)](Api& api, bool) {
          json body = json::object();
          if (!o->remark.empty()) body["remark"] = o->remark;
          auto r = api.Call("POST", "/api/v1/rollouts/" + Enc(o->a1) + "/" + v, &body);
          if (!r.ok()) return Fail(r.error());
          return print(*r, [](const json& j) {
            std::printf("rollout %s: %s", Str(j, "name").c_str(), Str(j, "state").c_str());
            if (!j.value("reason", "").empty())
              std::printf(" (%s)", j["reason"].get<std::string>().c_str());
            std::printf("\n");
          });
        });
    c->add_option("name", o->a1, "Rollout name")->required();
    c->add_option("--remark", o->remark, "Why (kept in the rollout's reason and the audit log)");
  }
}

}  // namespace aloft::cli::server
