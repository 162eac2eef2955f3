// `aloft server upload | release | deploy | push | action | actions | stats`: releases and what
// they are deployed as.
#include <cstdio>

#include "core/encoding.h"
#include "crypto/key_wrap.h"
#include "server_cmd_support.h"

namespace aloft::cli::server {

void AddReleaseCommands(CLI::App* s, Commands& cmds) {
  auto o = cmds.o;
  auto print = cmds.print;
  auto add = [&cmds](CLI::App* parent, const char* name, const char* help,
                     std::function<int(Api&, bool)> fn) {
    return cmds.Add(parent, name, help, std::move(fn));
  };
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
            std::optional<crypto::ContentKey> key;
            if (!o->content_key.empty()) {  // read before the upload: a bad file sends nothing
              auto k = crypto::LoadContentKey(o->content_key);
              if (!k.ok()) return Fail(k.error());
              key = *k;
            }
            auto r = api.Upload(path, file, quiet);
            if (!r.ok()) return Fail(r.error());
            if (key) {
              const std::string id = Str(*r, "id");
              const size_t at = id.rfind('@');
              const json body = {{"content_key", Base64Encode(*key)}};
              auto k = api.Call("PUT",
                                "/api/v1/releases/" + Enc(id.substr(0, at)) + "/" +
                                    Enc(id.substr(at + 1)) + "/content-key",
                                &body);
              if (!k.ok()) return Fail(k.error().WithContext("release " + id + " uploaded"));
              (*r)["content_key_id"] = (*k)["key_id"];
            }
            return print(*r, [](const json& j) {
              std::printf("release %s uploaded: %s, %s bytes, sha256 %s\n", Str(j, "id").c_str(),
                          Str(j, "kind").c_str(), Str(j, "size").c_str(), Str(j, "sha256").c_str());
              if (j.contains("content_key_id")) {
                std::printf("content key %s kept by the server, wrapped for each device\n",
                            Str(j, "content_key_id").c_str());
              }
            });
          });
  up->add_option("file", o->a1, "The .aloft package or artifact file")
      ->required()
      ->check(CLI::ExistingFile);
  up->add_option("--name", o->name, "Release name (plain artifacts)");
  up->add_option("--version", o->version, "Release version (plain artifacts)");
  up->add_option("--device-type", o->device_type, "Device type (plain artifacts)");
  up->add_option("--module", o->module, "Module (plain artifacts; default main)");
  up->add_option("--content-key", o->content_key,
                 "An encrypted package's content key file (aloft pack --encrypt): the server "
                 "keeps it sealed and wraps it for each device (docs/encryption.md)");

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
}

}  // namespace aloft::cli::server
