#include "server_cmd.h"

#include <unistd.h>

#include <cstdio>

#include "core/file.h"
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
  // People who sign in to the dashboard (docs/dashboard.md).
  auto* user = s->add_subcommand("user", "Users: people who sign in to the dashboard");
  user->require_subcommand(1);
  auto read_password = [o]() -> Result<std::string> {
    std::string text;
    if (o->password_file.empty() || o->password_file == "-") {
      if (::isatty(0)) std::fprintf(stderr, "password (at least 10 characters): ");
      char buf[1100];
      if (!std::fgets(buf, sizeof buf, stdin)) {
        return Error(Code::kInvalidArgument, "no password on standard input");
      }
      text = buf;
    } else {
      auto r = ReadFile(o->password_file, 4096);
      if (!r.ok()) return r.error().WithContext("--password-file");
      text = *r;
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
  };
  auto* user_add =
      add(user, "add", "Create a user; the password from --password-file or stdin",
          [o, print, read_password](Api& api, bool) {
            auto pw = read_password();
            if (!pw.ok()) return Fail(pw.error());
            json body = {{"name", o->a1}, {"role", o->role}, {"password", *pw}};
            auto r = api.Call("POST", "/api/v1/users", &body);
            if (!r.ok()) return Fail(r.error());
            return print(*r, [](const json& j) {
              std::printf("user %s (role %s)\n", Str(j, "name").c_str(), Str(j, "role").c_str());
            });
          });
  user_add->add_option("name", o->a1, "User name (letters, digits, '.', '_', '-')")->required();
  user_add->add_option("--role", o->role, "admin, approver, release or viewer")->required();
  user_add->add_option("--password-file", o->password_file,
                       "File whose first line is the password (default: standard input)");
  add(user, "list", "Users and their roles", [print](Api& api, bool) {
    auto r = api.Call("GET", "/api/v1/users");
    if (!r.ok()) return Fail(r.error());
    return print(*r, [](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& u : j) {
        rows.push_back({Str(u, "name"), Str(u, "role"), Str(u, "created"), Str(u, "created_by")});
      }
      Table({"NAME", "ROLE", "CREATED", "BY"}, rows);
    });
  });
  auto* user_set =
      add(user, "set", "Change a user's role or password (ends their sign-ins)",
          [o, print, read_password](Api& api, bool) {
            json body = json::object();
            if (!o->role.empty()) body["role"] = o->role;
            if (!o->password_file.empty()) {
              auto pw = read_password();
              if (!pw.ok()) return Fail(pw.error());
              body["password"] = *pw;
            }
            auto r = api.Call("PATCH", "/api/v1/users/" + Enc(o->a1), &body);
            if (!r.ok()) return Fail(r.error());
            return print(*r, [](const json& j) {
              std::printf("user %s (role %s)\n", Str(j, "name").c_str(), Str(j, "role").c_str());
            });
          });
  user_set->add_option("name", o->a1, "User name")->required();
  user_set->add_option("--role", o->role, "admin, approver, release or viewer");
  user_set->add_option("--password-file", o->password_file,
                       "File whose first line is the new password ('-': standard input)");
  auto* user_rm = add(user, "remove", "Delete a user (ends their sign-ins)", [o](Api& api, bool) {
    auto r = api.Call("DELETE", "/api/v1/users/" + Enc(o->a1));
    if (!r.ok()) return Fail(r.error());
    std::printf("user %s removed\n", o->a1.c_str());
    return 0;
  });
  user_rm->add_option("name", o->a1, "User name")->required();
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
