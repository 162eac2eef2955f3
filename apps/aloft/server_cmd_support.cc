#include "server_cmd_support.h"

#include <cstdio>

#include "core/clock.h"
#include "core/file.h"
#include "core/progress.h"
#include "http/message.h"

namespace aloft::cli::server {

Result<json> Api::Call(const std::string& method, const std::string& path, const json* body) {
  client::HttpRequest req = NewRequest(method, path);
  if (body) req.body = body->dump();
  return Finish(client::Send(req));
}

Result<json> Api::Upload(const std::string& path, const std::string& file, bool quiet) {
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

client::HttpRequest Api::NewRequest(const std::string& method, const std::string& path) const {
  client::HttpRequest req;
  req.method = method;
  req.url = o_.url + path;
  req.headers.push_back("Authorization: Bearer " + o_.token);
  return req;
}

Result<json> Api::Finish(Result<client::HttpResponse> res) {
  if (!res.ok()) return std::move(res).error();
  if (res->status >= 400) {
    Code code = res->status == 404                         ? Code::kNotFound
                : res->status == 409                       ? Code::kAlreadyExists
                : res->status == 401 || res->status == 403 ? Code::kPermissionDenied
                                                           : Code::kInvalidArgument;
    return Error(
        code, "server answered " + std::to_string(res->status) + ": " + client::ErrorMessage(*res));
  }
  if (res->body.empty()) return json(nullptr);
  json j = json::parse(res->body, nullptr, false);
  if (j.is_discarded()) return Error(Code::kMalformed, "server sent a body that is not JSON");
  return j;
}

Commands::Commands()
    : o(std::make_shared<Options>()),
      list(std::make_shared<std::vector<std::pair<CLI::App*, Action>>>()) {
  print = [o = o](const json& j, const std::function<void(const json&)>& human) {
    if (o->json_out) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      human(j);
    }
    return 0;
  };
}

CLI::App* Commands::Add(CLI::App* parent, const char* name, const char* help, Action fn) {
  auto* c = parent->add_subcommand(name, help);
  list->emplace_back(c, std::move(fn));
  return c;
}

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

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

}  // namespace aloft::cli::server
