#include "server_cmd.h"

#include <unistd.h>

#include <cstdio>

#include "server_cmd_support.h"

namespace aloft::cli {
namespace server {
namespace {

// `aloft server token | audit`.
void AddAdminCommands(CLI::App* s, Commands& cmds) {
  auto o = cmds.o;
  auto print = cmds.print;
  auto add = [&cmds](CLI::App* parent, const char* name, const char* help, Commands::Action fn) {
    return cmds.Add(parent, name, help, std::move(fn));
  };
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
}

}  // namespace
}  // namespace server

std::function<int(bool)> AddServerCommands(CLI::App& app, CLI::App** server_cmd) {
  server::Commands cmds;
  auto o = cmds.o;
  auto* s =
      app.add_subcommand("server", "Manage an aloftd server (devices, releases, deployments)");
  *server_cmd = s;
  s->require_subcommand(1);
  s->add_option("--url", o->url, "Server URL (or $ALOFT_URL), e.g. http://127.0.0.1:8080")
      ->envname("ALOFT_URL");
  s->add_option("--token", o->token, "API token (or $ALOFT_TOKEN)")->envname("ALOFT_TOKEN");
  s->add_flag("--json", o->json_out, "Print the server's JSON instead of tables");

  server::AddFleetCommands(s, cmds);
  server::AddReleaseCommands(s, cmds);
  server::AddRolloutCommands(s, cmds);
  server::AddAdminCommands(s, cmds);

  return [o, list = cmds.list](bool quiet) -> int {
    if (o->url.empty()) {
      std::fprintf(stderr, "aloft server: no server: pass --url URL (or set ALOFT_URL)\n");
      return server::kExitUsage;
    }
    while (!o->url.empty() && o->url.back() == '/') o->url.pop_back();
    if (o->token.empty()) {
      std::fprintf(stderr,
                   "aloft server: no token: pass --token TOKEN (or set ALOFT_TOKEN); the first "
                   "admin token is in the server's DATA/admin.token\n");
      return server::kExitUsage;
    }
    while (!o->token.empty() && (o->token.back() == '\n' || o->token.back() == ' ')) {
      o->token.pop_back();
    }
    server::Api api(*o);
    for (auto& [cmd, fn] : *list) {
      if (*cmd) return fn(api, quiet || !isatty(2));
    }
    return server::kExitUsage;
  };
}

}  // namespace aloft::cli
