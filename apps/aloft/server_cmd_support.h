// What the `aloft server ...` command groups share (private to apps/aloft): the options, the
// management API client, tables, and the registry each group adds its commands to.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/http_client.h"
#include "core/error.h"

namespace aloft::cli::server {

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
  std::string expires_in;              // registration tokens
  int64_t max_uses = 0;
  std::string remark;                 // rollout approve / deny / pause / ...
  std::string password_file;          // user add / set ("-": standard input)
  std::string content_key;            // upload: an encrypted release's content key file
  std::string csr, ca_dir, cert_out;  // device add --csr: enrolment by certificate
};

// The management API as the options name it (--url, --token).
class Api {
 public:
  explicit Api(const Options& o) : o_(o) {}
  // The JSON answer (null for an empty one), or an error carrying the server's message for any
  // status from 400 up.
  Result<json> Call(const std::string& method, const std::string& path, const json* body = nullptr);
  // Streams `file` as the request body, with a progress bar on a terminal unless `quiet`.
  Result<json> Upload(const std::string& path, const std::string& file, bool quiet);

 private:
  client::HttpRequest NewRequest(const std::string& method, const std::string& path) const;
  Result<json> Finish(Result<client::HttpResponse> res);
  const Options& o_;
};

// Every command's (subcommand, action), and the shared options they fill.
struct Commands {
  using Action = std::function<int(Api&, bool quiet)>;
  Commands();
  CLI::App* Add(CLI::App* parent, const char* name, const char* help, Action fn);

  std::shared_ptr<Options> o;
  std::shared_ptr<std::vector<std::pair<CLI::App*, Action>>> list;
  // Prints `j` as JSON with --json, else through `human`; returns 0 (the exit status).
  std::function<int(const json& j, const std::function<void(const json&)>& human)> print;
};

std::string Enc(const std::string& s);
// The member `key` as text: strings as they are, other values as JSON, "-" when absent or null.
std::string Str(const json& j, const char* key);
// Prints rows as aligned columns.
void Table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows);
// Prints the error and returns kExitFailed.
int Fail(const Error& e);
// "main=1.2.0,bms=2.0.1" from a versions object; "-" for none.
std::string Version(const json& versions);
// --attribute KEY=VALUE options as a JSON object.
Result<json> ParseAttributes(const std::vector<std::string>& attrs);

// The command groups.
void AddFleetCommands(CLI::App* s, Commands& cmds);  // device-type, module, device, devices
void AddReleaseCommands(CLI::App* s,
                        Commands& cmds);  // upload, release, deploy, push, action(s), stats
void AddRolloutCommands(CLI::App* s, Commands& cmds);  // rollout

}  // namespace aloft::cli::server
