// `aloft server device-type | module | device | devices`: the device registry.
#include <cstdio>

#include "core/file.h"
#include "crypto/ca_directory.h"
#include "server_cmd_support.h"

namespace aloft::cli::server {

namespace {

// `device add --csr`: the device's request signed with the CA directory, for TLS client
// authentication; the request must name the device.
Result<crypto::Certificate> SignDeviceCsr(const Options& o) {
  if (o.ca_dir.empty() || o.cert_out.empty()) {
    return Error(Code::kInvalidArgument, "--csr needs --ca (the CA directory) and --cert-out");
  }
  ALOFT_ASSIGN_OR_RETURN(crypto::CertificateRequest csr, crypto::CertificateRequest::Load(o.csr));
  if (csr.CommonName() != o.a1) {
    return Error(Code::kInvalidArgument,
                 o.csr + ": names '" + csr.CommonName() + "', not the device '" + o.a1 + "'");
  }
  ALOFT_ASSIGN_OR_RETURN(crypto::CaDirectory ca,
                         crypto::CaDirectory::Open(o.ca_dir, SystemClock::Instance()));
  return ca.Sign(csr, {.tls_client = true});
}

}  // namespace

void AddFleetCommands(CLI::App* s, Commands& cmds) {
  auto o = cmds.o;
  auto print = cmds.print;
  auto add = [&cmds](CLI::App* parent, const char* name, const char* help,
                     std::function<int(Api&, bool)> fn) {
    return cmds.Add(parent, name, help, std::move(fn));
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
        for (const auto& m : t["modules"])
          mods.append(mods.empty() ? "" : ",").append(m.get<std::string>());
        rows.push_back({Str(t, "name"), mods, Str(t, "description")});
      }
      Table({"NAME", "MODULES", "DESCRIPTION"}, rows);
    });
  });
  auto create_token = [o, print](Api& api, bool) {
    json body = json::object();
    if (!o->name.empty()) body["name"] = o->name;
    if (!o->expires_in.empty()) body["expires_in"] = o->expires_in;
    if (o->max_uses > 0) body["max_uses"] = o->max_uses;
    auto r = api.Call("POST", "/api/v1/device-types/" + Enc(o->a1) + "/registration-tokens", &body);
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::fprintf(stderr, "registration token %s for %s: expires %s, %s registrations\n",
                   Str(j, "id").c_str(), Str(j, "device_type").c_str(),
                   j["expires"].is_null() ? "never" : Str(j, "expires").c_str(),
                   j["max_uses"].is_null() ? "unlimited" : Str(j, "max_uses").c_str());
      std::printf("%s\n", Str(j, "token").c_str());
    });
  };
  auto token_options = [o](CLI::App* cmd) {
    cmd->add_option("type", o->a1, "Device type")->required();
    cmd->add_option("--name", o->name, "A name for operators (shown by list)");
    cmd->add_option("--expires-in", o->expires_in,
                    "Lifetime: 30d, 12h, 90m, or never (default 30d)");
    cmd->add_option("--max-uses", o->max_uses, "Devices it may register (default: unlimited)")
        ->check(CLI::PositiveNumber);
  };
  token_options(add(dt, "registration-token",
                    "Create a token devices of this type use to register themselves (the same "
                    "as registration-token create)",
                    create_token));
  auto* rt = s->add_subcommand("registration-token",
                               "Tokens devices use to register themselves at their first check-in");
  rt->require_subcommand(1);
  token_options(add(rt, "create", "Create one for a device type", create_token));
  add(rt, "list", "List them: uses, expiry, state (the tokens themselves are never shown again)",
      [o, print](Api& api, bool) {
        std::string path = "/api/v1/registration-tokens";
        if (!o->device_type.empty()) path += "?device_type=" + Enc(o->device_type);
        auto r = api.Call("GET", path);
        if (!r.ok()) return Fail(r.error());
        return print(*r, [](const json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& t : j) {
            rows.push_back(
                {Str(t, "id"), Str(t, "name"), Str(t, "device_type"),
                 Str(t, "uses") + "/" + (t["max_uses"].is_null() ? "-" : Str(t, "max_uses")),
                 t["expires"].is_null() ? "never" : Str(t, "expires"), Str(t, "state")});
          }
          Table({"ID", "NAME", "DEVICE TYPE", "USES", "EXPIRES", "STATE"}, rows);
        });
      })
      ->add_option("--type", o->device_type, "Only this device type's");
  add(rt, "revoke", "Revoke one: it registers nothing more (devices it registered stay)",
      [o](Api& api, bool) {
        auto r = api.Call("DELETE", "/api/v1/registration-tokens/" + Enc(o->a1));
        if (!r.ok()) return Fail(r.error());
        std::printf("registration token %s revoked\n", o->a1.c_str());
        return 0;
      })
      ->add_option("id", o->a1, "Its id (registration-token list)")
      ->required();

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

  // devices
  auto* dev = s->add_subcommand("device", "One device: add, show, set, remove");
  dev->require_subcommand(1);
  auto* dev_add =
      add(dev, "add", "Pre-provision a device; prints its token last", [o, print](Api& api, bool) {
        std::optional<crypto::Certificate> cert;
        if (!o->csr.empty()) {
          auto signed_cert = SignDeviceCsr(*o);
          if (!signed_cert.ok()) return Fail(signed_cert.error());
          cert = std::move(*signed_cert);
        }
        json body = {{"name", o->a1}, {"device_type", o->device_type}};
        if (!o->group.empty()) body["group"] = o->group;
        if (o->gateway && !o->gateway->empty()) body["gateway"] = *o->gateway;
        if (!o->tags.empty()) body["tags"] = o->tags;
        auto attrs = ParseAttributes(o->attributes);
        if (!attrs.ok()) return Fail(attrs.error());
        if (!attrs->empty()) body["attributes"] = *attrs;
        auto r = api.Call("POST", "/api/v1/devices", &body);
        if (!r.ok()) return Fail(r.error());
        if (cert) {
          if (Status w = WriteFileAtomic(o->cert_out, cert->Pem()); !w.ok()) return Fail(w.error());
          return print(*r, [&](const json& j) {
            std::printf(
                "device %s (%s) created; it authenticates with its certificate: wrote %s "
                "(serial %s)\n",
                Str(j, "name").c_str(), Str(j, "device_type").c_str(), o->cert_out.c_str(),
                cert->SerialHex().c_str());
          });
        }
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
  dev_add
      ->add_option("--csr", o->csr,
                   "Enrol by certificate: the device's signing request (PEM; its CN must be the "
                   "device's name), signed here with --ca (docs/identity.md)")
      ->check(CLI::ExistingFile);
  dev_add->add_option("--ca", o->ca_dir, "With --csr: the CA directory (aloft ca init)");
  dev_add->add_option("--cert-out", o->cert_out, "With --csr: where the certificate is written");
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
}

}  // namespace aloft::cli::server
