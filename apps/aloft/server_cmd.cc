#include "server_cmd.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "client/http_client.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/progress.h"
#include "core/text.h"
#include "http/message.h"

namespace aloft::cli {
namespace {

using json = nlohmann::json;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct Options {
  std::string url, token;
  bool json_out = false;
  // Arguments shared by many subcommands.
  std::string a1, a2, description, device_type, group, tag, mode = "forced", role, name, version,
                                                            module, state, device;
  std::vector<std::string> modules, tags, devices, attributes;
  int64_t limit = 100;
  // rollout create
  std::string release, start_at, expires_at, window, window_zone = "UTC", spec_file, rollout_mode;
  std::vector<std::string> groups, versions, waves;
  bool dynamic = false, approval = false, push = false;
  std::optional<std::string> gateway;  // device add / set; "" clears
  std::string at;                      // push
};

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// Prints rows as aligned columns.
void Table(const std::vector<std::string>& head,
           const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(w[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  line(head);
  for (const auto& r : rows) line(r);
}

class Api {
 public:
  explicit Api(const Options& o) : o_(o) {}

  Result<json> Call(const std::string& method, const std::string& path,
                    const json* body = nullptr) {
    client::HttpRequest req = NewRequest(method, path);
    if (body) req.body = body->dump();
    return Finish(client::Send(req));
  }

  Result<json> Upload(const std::string& path, const std::string& file, bool quiet) {
    client::HttpRequest req = NewRequest("POST", path);
    req.upload_file = file;
    ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(file));
    ALOFT_ASSIGN_OR_RETURN(uint64_t size, f.Size());
    Progress progress("upload " + file, size, SystemClock::Instance(), stderr,
                      quiet ? Progress::Mode::kNever : Progress::Mode::kAuto);
    req.progress = &progress;
    auto res = client::Send(req);
    progress.Finish();
    return Finish(std::move(res));
  }

 private:
  client::HttpRequest NewRequest(const std::string& method, const std::string& path) const {
    client::HttpRequest req;
    req.method = method;
    req.url = o_.url + path;
    req.headers.push_back("Authorization: Bearer " + o_.token);
    return req;
  }

  // The JSON answer, or an error carrying the server's message for any status from 400 up.
  Result<json> Finish(Result<client::HttpResponse> res) {
    if (!res.ok()) return std::move(res).error();
    if (res->status >= 400) {
      Code code = res->status == 404                         ? Code::kNotFound
                  : res->status == 409                       ? Code::kAlreadyExists
                  : res->status == 401 || res->status == 403 ? Code::kPermissionDenied
                                                             : Code::kInvalidArgument;
      return Error(code, "server answered " + std::to_string(res->status) + ": " +
                             client::ErrorMessage(*res));
    }
    if (res->body.empty()) return json(nullptr);
    json j = json::parse(res->body, nullptr, false);
    if (j.is_discarded()) return Error(Code::kMalformed, "server sent a body that is not JSON");
    return j;
  }
  const Options& o_;
};

int Fail(const Error& e) {
  std::fprintf(stderr, "aloft server: %s\n", e.message().c_str());
  return kExitFailed;
}

std::string Version(const json& versions) {
  std::string out;
  if (!versions.is_object()) return "-";
  for (const auto& [m, v] : versions.items()) {
    out += (out.empty() ? "" : ",") + m + "=" + v.get<std::string>();
  }
  return out.empty() ? "-" : out;
}

Result<json> ParseAttributes(const std::vector<std::string>& attrs) {
  json out = json::object();
  for (const auto& a : attrs) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(Code::kInvalidArgument, "--attribute '" + a + "': expected KEY=VALUE");
    }
    out[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return out;
}

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

std::function<int(bool)> AddServerCommands(CLI::App& app, CLI::App** server_cmd) {
  auto o = std::make_shared<Options>();
  auto* s =
      app.add_subcommand("server", "Manage an aloftd server (devices, releases, deployments)");
  *server_cmd = s;
  s->require_subcommand(1);
  s->add_option("--url", o->url, "Server URL (or $ALOFT_URL), e.g. http://127.0.0.1:8080")
      ->envname("ALOFT_URL");
  s->add_option("--token", o->token, "API token (or $ALOFT_TOKEN)")->envname("ALOFT_TOKEN");
  s->add_flag("--json", o->json_out, "Print the server's JSON instead of tables");

  // A registry of (subcommand, action).
  auto cmds = std::make_shared<std::vector<std::pair<CLI::App*, std::function<int(Api&, bool)>>>>();
  auto add = [&](CLI::App* parent, const char* name, const char* help,
                 std::function<int(Api&, bool)> fn) {
    auto* c = parent->add_subcommand(name, help);
    cmds->emplace_back(c, std::move(fn));
    return c;
  };
  auto print = [o](const json& j, const std::function<void(const json&)>& human) {
    if (o->json_out) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      human(j);
    }
    return 0;
  };

  // device-type
  auto* dt = s->add_subcommand("device-type", "Device types (hardware ids) and their modules");
  dt->require_subcommand(1);
  auto* dt_add =
      add(dt, "add", "Create a device type (it gets module 'main')", [o, print](Api& api, bool) {
        json body = {{"name", o->a1}, {"description", o->description}};
        if (!o->modules.empty()) body["modules"] = o->modules;
        auto r = api.Call("POST", "/api/v1/device-types", &body);
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) {
          std::printf("device type %s created, modules: %s\n", Str(j, "name").c_str(),
                      j["modules"].dump().c_str());
        });
      });
  dt_add->add_option("name", o->a1, "Device type name, e.g. board-a")->required();
  dt_add->add_option("--description", o->description, "Free text");
  dt_add->add_option("--module", o->modules, "Extra module (repeatable)");
  add(dt, "list", "List device types", [print](Api& api, bool) {
    auto r = api.Call("GET", "/api/v1/device-types");
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& t : j) {
        std::string mods;
        for (const auto& m : t["modules"]) mods += (mods.empty() ? "" : ",") + m.get<std::string>();
        rows.push_back({Str(t, "name"), mods, Str(t, "description")});
      }
      Table({"NAME", "MODULES", "DESCRIPTION"}, rows);
    });
  });
  auto* dt_token = add(
      dt, "registration-token", "Create a token devices of this type use to register themselves",
      [o, print](Api& api, bool) {
        auto r = api.Call("POST", "/api/v1/device-types/" + Enc(o->a1) + "/registration-tokens");
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) { std::printf("%s\n", Str(j, "token").c_str()); });
      });
  dt_token->add_option("type", o->a1, "Device type")->required();

  // module
  auto* mod = s->add_subcommand("module", "Modules: separately updated parts of a device type");
  mod->require_subcommand(1);
  auto* mod_add = add(mod, "add", "Add a module to a device type", [o, print](Api& api, bool) {
    json body = {{"name", o->a2}};
    auto r = api.Call("POST", "/api/v1/device-types/" + Enc(o->a1) + "/modules", &body);
    if (!r.ok()) return Fail(r.error());
    return print(*r, [&](const json& j) {
      std::printf("device type %s now has modules %s\n", Str(j, "name").c_str(),
                  j["modules"].dump().c_str());
    });
  });
  mod_add->add_option("type", o->a1, "Device type")->required();
  mod_add->add_option("module", o->a2, "Module name, e.g. bms")->required();
  auto* mod_rm = add(mod, "remove", "Remove a module no release uses", [o](Api& api, bool) {
    auto r = api.Call("DELETE", "/api/v1/device-types/" + Enc(o->a1) + "/modules/" + Enc(o->a2));
    if (!r.ok()) return Fail(r.error());
    std::printf("removed module %s of %s\n", o->a2.c_str(), o->a1.c_str());
    return 0;
  });
  mod_rm->add_option("type", o->a1, "Device type")->required();
  mod_rm->add_option("module", o->a2, "Module name")->required();

  // upload and releases
  auto* up =
      add(s, "upload",
          "Upload a signed .aloft package, or a plain artifact with --name/--version/"
          "--device-type",
          [o, print](Api& api, bool quiet) {
            std::string path = "/api/v1/releases";
            std::string file = o->a1;
            std::string base = file.substr(file.find_last_of('/') + 1);
            if (!o->name.empty() || !o->version.empty() || !o->device_type.empty()) {
              if (o->name.empty() || o->version.empty() || o->device_type.empty()) {
                return Fail(Error(Code::kInvalidArgument,
                                  "a plain artifact needs --name, --version and "
                                  "--device-type"));
              }
              path += "?name=" + Enc(o->name) + "&version=" + Enc(o->version) +
                      "&device_type=" + Enc(o->device_type) +
                      "&module=" + Enc(o->module.empty() ? "main" : o->module) +
                      "&filename=" + Enc(base);
            } else {
              path += "?filename=" + Enc(base);
            }
            auto r = api.Upload(path, file, quiet);
            if (!r.ok()) return Fail(r.error());
            return print(*r, [](const json& j) {
              std::printf("release %s uploaded: %s, %s bytes, sha256 %s\n", Str(j, "id").c_str(),
                          Str(j, "kind").c_str(), Str(j, "size").c_str(), Str(j, "sha256").c_str());
            });
          });
  up->add_option("file", o->a1, "The .aloft package or artifact file")
      ->required()
      ->check(CLI::ExistingFile);
  up->add_option("--name", o->name, "Release name (plain artifacts)");
  up->add_option("--version", o->version, "Release version (plain artifacts)");
  up->add_option("--device-type", o->device_type, "Device type (plain artifacts)");
  up->add_option("--module", o->module, "Module (plain artifacts; default main)");

  auto* rel = s->add_subcommand("release", "Releases: list, show, enable, disable, delete");
  rel->require_subcommand(1);
  add(rel, "list", "List releases", [print](Api& api, bool) {
    auto r = api.Call("GET", "/api/v1/releases");
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& x : j) {
        rows.push_back({Str(x, "id"), Str(x, "kind"), x["device_types"].dump(), x["modules"].dump(),
                        Str(x, "size"), x["enabled"].get<bool>() ? "yes" : "no",
                        Str(x, "sha256").substr(0, 16)});
      }
      Table({"RELEASE", "KIND", "DEVICE TYPES", "MODULES", "SIZE", "ENABLED", "SHA-256"}, rows);
    });
  });
  auto release_path = [o]() -> Result<std::string> {
    auto at = o->a1.find('@');
    if (at == std::string::npos) {
      return Error(Code::kInvalidArgument, "'" + o->a1 + "': expected NAME@VERSION");
    }
    return "/api/v1/releases/" + Enc(o->a1.substr(0, at)) + "/" + Enc(o->a1.substr(at + 1));
  };
  auto* rel_show = add(rel, "show", "Show a release", [print, release_path](Api& api, bool) {
    auto p = release_path();
    if (!p.ok()) return Fail(p.error());
    auto r = api.Call("GET", *p);
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) { std::printf("%s\n", j.dump(2).c_str()); });
  });
  rel_show->add_option("release", o->a1, "NAME@VERSION")->required();
  for (const char* verb : {"enable", "disable"}) {
    bool on = std::string(verb) == "enable";
    auto* c = add(rel, verb, on ? "Offer the release again" : "Stop offering the release",
                  [on, release_path, o](Api& api, bool) {
                    auto p = release_path();
                    if (!p.ok()) return Fail(p.error());
                    json body = {{"enabled", on}};
                    auto r = api.Call("PATCH", *p, &body);
                    if (!r.ok()) return Fail(r.error());
                    std::printf("%s %s\n", o->a1.c_str(), on ? "enabled" : "disabled");
                    return 0;
                  });
    c->add_option("release", o->a1, "NAME@VERSION")->required();
  }
  auto* rel_rm =
      add(rel, "delete", "Delete a release no action refers to", [o, release_path](Api& api, bool) {
        auto p = release_path();
        if (!p.ok()) return Fail(p.error());
        auto r = api.Call("DELETE", *p);
        if (!r.ok()) return Fail(r.error());
        std::printf("deleted %s\n", o->a1.c_str());
        return 0;
      });
  rel_rm->add_option("release", o->a1, "NAME@VERSION")->required();

  // devices
  auto* dev = s->add_subcommand("device", "One device: add, show, set, remove");
  dev->require_subcommand(1);
  auto* dev_add =
      add(dev, "add", "Pre-provision a device; prints its token last", [o, print](Api& api, bool) {
        json body = {{"name", o->a1}, {"device_type", o->device_type}};
        if (!o->group.empty()) body["group"] = o->group;
        if (o->gateway && !o->gateway->empty()) body["gateway"] = *o->gateway;
        if (!o->tags.empty()) body["tags"] = o->tags;
        auto attrs = ParseAttributes(o->attributes);
        if (!attrs.ok()) return Fail(attrs.error());
        if (!attrs->empty()) body["attributes"] = *attrs;
        auto r = api.Call("POST", "/api/v1/devices", &body);
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) {
          std::printf("device %s (%s) created; its token:\n%s\n", Str(j, "name").c_str(),
                      Str(j, "device_type").c_str(), Str(j, "token").c_str());
        });
      });
  dev_add->add_option("name", o->a1, "Device name (unique), e.g. its serial number")->required();
  dev_add->add_option("--type", o->device_type, "Device type")->required();
  dev_add->add_option("--group", o->group, "Group");
  dev_add->add_option("--tag", o->tags, "Tag (repeatable)");
  dev_add->add_option("--attribute", o->attributes, "KEY=VALUE (repeatable)");
  dev_add->add_option("--gateway", o->gateway,
                      "The gateway this device is reached through (docs/mqtt.md)");
  auto* dev_show = add(dev, "show", "Show a device", [o, print](Api& api, bool) {
    auto r = api.Call("GET", "/api/v1/devices/" + Enc(o->a1));
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) { std::printf("%s\n", j.dump(2).c_str()); });
  });
  dev_show->add_option("name", o->a1, "Device")->required();
  auto* dev_set =
      add(dev, "set", "Change a device's group, tags or attributes", [o, print](Api& api, bool) {
        json body = json::object();
        if (!o->group.empty()) body["group"] = o->group;
        if (!o->tags.empty()) body["tags"] = o->tags;
        auto attrs = ParseAttributes(o->attributes);
        if (!attrs.ok()) return Fail(attrs.error());
        if (!attrs->empty()) body["attributes"] = *attrs;
        if (o->gateway) body["gateway"] = o->gateway->empty() ? json(nullptr) : json(*o->gateway);
        auto r = api.Call("PATCH", "/api/v1/devices/" + Enc(o->a1), &body);
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) { std::printf("%s\n", j.dump(2).c_str()); });
      });
  dev_set->add_option("name", o->a1, "Device")->required();
  dev_set->add_option("--group", o->group, "Group");
  dev_set->add_option("--tag", o->tags, "Tags (replace the current ones; repeatable)");
  dev_set->add_option("--attribute", o->attributes, "KEY=VALUE (replaces all; repeatable)");
  dev_set->add_option("--gateway", o->gateway, "The device's gateway; \"\" for none");
  auto* dev_rm = add(dev, "remove", "Delete a device", [o](Api& api, bool) {
    auto r = api.Call("DELETE", "/api/v1/devices/" + Enc(o->a1));
    if (!r.ok()) return Fail(r.error());
    std::printf("removed device %s\n", o->a1.c_str());
    return 0;
  });
  dev_rm->add_option("name", o->a1, "Device")->required();

  auto* devs = s->add_subcommand("devices", "Many devices");
  devs->require_subcommand(1);
  auto* devs_list = add(devs, "list", "List devices", [o, print](Api& api, bool) {
    std::string q = "?limit=" + std::to_string(o->limit);
    if (!o->device_type.empty()) q += "&type=" + Enc(o->device_type);
    if (!o->group.empty()) q += "&group=" + Enc(o->group);
    if (!o->tag.empty()) q += "&tag=" + Enc(o->tag);
    auto r = api.Call("GET", "/api/v1/devices" + q);
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& d : j["items"]) {
        rows.push_back({Str(d, "name"), Str(d, "device_type"), Str(d, "group"),
                        Version(d["versions"]), Str(d, "last_seen")});
      }
      Table({"DEVICE", "TYPE", "GROUP", "VERSIONS", "LAST SEEN"}, rows);
      std::printf("%zu of %s device(s)\n", rows.size(), Str(j, "total").c_str());
    });
  });
  devs_list->add_option("--type", o->device_type, "Only this device type");
  devs_list->add_option("--group", o->group, "Only this group");
  devs_list->add_option("--tag", o->tag, "Only devices with this tag");
  devs_list->add_option("--limit", o->limit, "At most this many (default 100, max 1000)");

  // deploy and actions
  auto* deploy =
      add(s, "deploy", "Assign a release to devices, a group or a tag", [o, print](Api& api, bool) {
        json body = {{"release", o->a1}, {"mode", o->mode}};
        if (!o->devices.empty()) body["devices"] = o->devices;
        if (!o->group.empty()) body["group"] = o->group;
        if (!o->tag.empty()) body["tag"] = o->tag;
        if (o->push) body["push"] = true;
        auto r = api.Call("POST", "/api/v1/deployments", &body);
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) {
          for (const auto& a : j["actions"]) {
            std::printf("action %s for %s\n", Str(a, "id").c_str(), Str(a, "device").c_str());
          }
          for (const auto& k : j["skipped"]) {
            std::printf("skipped %s: %s\n", Str(k, "device").c_str(), Str(k, "reason").c_str());
          }
        });
      });
  deploy->add_option("release", o->a1, "NAME@VERSION")->required();
  deploy->add_option("--device", o->devices, "Device (repeatable)");
  deploy->add_option("--group", o->group, "Every device of a group");
  deploy->add_option("--tag", o->tag, "Every device with a tag");
  deploy->add_option("--mode", o->mode, "forced (default), soft or download-only");
  deploy->add_flag("--push", o->push, "Push the command over MQTT at once (docs/mqtt.md)");
  auto* push = add(s, "push", "Push the open actions of devices or a rollout over MQTT again",
                   [o, print](Api& api, bool) {
                     json body = json::object();
                     if (!o->devices.empty()) body["devices"] = o->devices;
                     if (!o->release.empty()) body["rollout"] = o->release;
                     if (!o->at.empty()) body["at"] = o->at;
                     auto r = api.Call("POST", "/api/v1/push", &body);
                     if (!r.ok()) return Fail(r.error());
                     return print(*r, [](const json& j) {
                       std::printf("%s actions to push at %s\n", Str(j, "actions").c_str(),
                                   Str(j, "at").c_str());
                     });
                   });
  push->add_option("--device", o->devices, "Device (repeatable)");
  push->add_option("--rollout", o->release, "Every open action of a rollout");
  push->add_option("--at", o->at, "RFC 3339 time (default: now)");

  auto* act = s->add_subcommand("action", "One action: show, cancel");
  act->require_subcommand(1);
  auto* act_show =
      add(act, "show", "State, progress and feedback history", [o, print](Api& api, bool) {
        auto r = api.Call("GET", "/api/v1/actions/" + Enc(o->a1));
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) {
          std::printf("action %s: %s on %s, %s, %s%%, mode %s\n", Str(j, "id").c_str(),
                      Str(j, "release").c_str(), Str(j, "device").c_str(), Str(j, "state").c_str(),
                      Str(j, "progress").c_str(), Str(j, "mode").c_str());
          std::vector<std::vector<std::string>> rows;
          for (const auto& e : j.value("events", json::array())) {
            rows.push_back({Str(e, "at"), Str(e, "status"), Str(e, "progress"), Str(e, "code"),
                            Str(e, "details")});
          }
          Table({"AT", "STATUS", "PROGRESS", "CODE", "DETAILS"}, rows);
        });
      });
  act_show->add_option("id", o->a1, "Action id")->required();
  auto* act_cancel = add(act, "cancel", "Cancel an open action", [o, print](Api& api, bool) {
    auto r = api.Call("POST", "/api/v1/actions/" + Enc(o->a1) + "/cancel");
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::printf("action %s: %s\n", Str(j, "id").c_str(), Str(j, "state").c_str());
    });
  });
  act_cancel->add_option("id", o->a1, "Action id")->required();
  auto* acts = s->add_subcommand("actions", "Many actions");
  acts->require_subcommand(1);
  auto* acts_list = add(acts, "list", "List actions, newest first", [o, print](Api& api, bool) {
    std::string q = "?limit=" + std::to_string(o->limit);
    if (!o->device.empty()) q += "&device=" + Enc(o->device);
    if (!o->state.empty()) q += "&state=" + Enc(o->state);
    auto r = api.Call("GET", "/api/v1/actions" + q);
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& a : j) {
        rows.push_back({Str(a, "id"), Str(a, "device"), Str(a, "release"), Str(a, "state"),
                        Str(a, "progress"), Str(a, "updated")});
      }
      Table({"ID", "DEVICE", "RELEASE", "STATE", "PROGRESS", "UPDATED"}, rows);
    });
  });
  acts_list->add_option("--device", o->device, "Only this device");
  acts_list->add_option("--state", o->state, "Only this state");
  acts_list->add_option("--limit", o->limit, "At most this many");

  add(s, "stats", "Devices per type, version and state; actions per state",
      [print](Api& api, bool) {
        auto r = api.Call("GET", "/api/v1/stats");
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) {
          std::printf("devices %s, releases %s\n", Str(j, "devices").c_str(),
                      Str(j, "releases").c_str());
          std::vector<std::vector<std::string>> rows;
          for (const auto& [type, mods] : j["devices_by_version"].items())
            for (const auto& [m, vers] : mods.items())
              for (const auto& [v, n] : vers.items()) rows.push_back({type, m, v, n.dump()});
          Table({"TYPE", "MODULE", "VERSION", "DEVICES"}, rows);
          rows.clear();
          for (const auto& [st, n] : j["devices_by_state"].items()) rows.push_back({st, n.dump()});
          Table({"DEVICE STATE", "DEVICES"}, rows);
          rows.clear();
          for (const auto& [st, n] : j["actions_by_state"].items()) rows.push_back({st, n.dump()});
          Table({"ACTION STATE", "ACTIONS"}, rows);
        });
      });

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
  for (const char* verb : {"approve", "pause", "resume", "confirm", "cancel"}) {
    static const std::map<std::string, std::string> kHelp = {
        {"approve", "Approve a rollout (role approver; not its creator)"},
        {"pause", "Stop starting new actions"},
        {"resume", "Go on after a pause (accepting the errors seen)"},
        {"confirm", "Start the next wave of a rollout awaiting confirmation"},
        {"cancel", "Cancel the rollout and every action not yet installing"}};
    auto* c =
        add(ro, verb, kHelp.at(verb).c_str(), [o, print, v = std::string(verb)](Api& api, bool) {
          auto r = api.Call("POST", "/api/v1/rollouts/" + Enc(o->a1) + "/" + v);
          if (!r.ok()) return Fail(r.error());
          return print(*r, [](const json& j) {
            std::printf("rollout %s: %s", Str(j, "name").c_str(), Str(j, "state").c_str());
            if (!j.value("reason", "").empty())
              std::printf(" (%s)", j["reason"].get<std::string>().c_str());
            std::printf("\n");
          });
        });
    c->add_option("name", o->a1, "Rollout name")->required();
  }

  auto* tok = s->add_subcommand("token", "API tokens");
  tok->require_subcommand(1);
  auto* tok_add =
      add(tok, "add", "Create an API token; prints it last", [o, print](Api& api, bool) {
        json body = {{"name", o->a1}, {"role", o->role}};
        auto r = api.Call("POST", "/api/v1/tokens", &body);
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) {
          std::printf("token %s (role %s):\n%s\n", Str(j, "name").c_str(), Str(j, "role").c_str(),
                      Str(j, "token").c_str());
        });
      });
  tok_add->add_option("name", o->a1, "Token name (who uses it)")->required();
  tok_add->add_option("--role", o->role, "admin, approver, release or viewer")->required();
  add(s, "audit", "The audit log, newest first", [print](Api& api, bool) {
    auto r = api.Call("GET", "/api/v1/audit");
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& e : j) {
        rows.push_back({Str(e, "at"), Str(e, "actor"), Str(e, "action"), Str(e, "object")});
      }
      Table({"AT", "ACTOR", "ACTION", "OBJECT"}, rows);
    });
  });

  return [o, cmds](bool quiet) -> int {
    if (o->url.empty()) {
      std::fprintf(stderr, "aloft server: no server: pass --url URL (or set ALOFT_URL)\n");
      return kExitUsage;
    }
    while (!o->url.empty() && o->url.back() == '/') o->url.pop_back();
    if (o->token.empty()) {
      std::fprintf(stderr,
                   "aloft server: no token: pass --token TOKEN (or set ALOFT_TOKEN); the first "
                   "admin token is in the server's DATA/admin.token\n");
      return kExitUsage;
    }
    while (!o->token.empty() && (o->token.back() == '\n' || o->token.back() == ' ')) {
      o->token.pop_back();
    }
    Api api(*o);
    for (auto& [cmd, fn] : *cmds) {
      if (*cmd) return fn(api, quiet || !isatty(2));
    }
    return kExitUsage;
  };
}

}  // namespace aloft::cli
