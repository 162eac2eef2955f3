#include "server/context.h"

#include "server/auth.h"
#include "server/events.h"
#include "server/housekeeping.h"
#include "server/tuf_director.h"
#include "server/tuf_image.h"
#include "server/web.h"

namespace aloft::server {

Context::Context(ServerConfig config_in, const Clock& clock_in, std::ostream& log_in)
    : config(std::move(config_in)),
      clock(clock_in),
      log(log_in),
      artifacts(config.artifacts_dir.empty() ? config.data_dir + "/artifacts"
                                             : config.artifacts_dir) {}

Context::~Context() = default;

std::string Context::BaseUrl(const Request& req) const {
  if (!config.public_url.empty()) return config.public_url;
  std::string host(req.headers.Get("Host"));
  if (host.empty()) host = config.listen;
  return std::string(req.tls ? "https://" : "http://") + host;
}

Result<Response> Context::ReadJson(const std::function<Result<json>(Tx&)>& build) {
  json out;
  ALOFT_RETURN_IF_ERROR(store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(out, build(tx));
    return OkStatus();
  }));
  return JsonResponse(200, out);
}

Result<RolloutEngine::InstallWindow> Context::WindowOf(std::optional<int64_t> rollout_id) {
  if (!rollout_id) return RolloutEngine::InstallWindow{};
  return rollouts->WindowFor(*rollout_id, clock.Wall());
}

std::optional<std::pair<std::string, int64_t>> Context::ExternalUrl(
    const std::string& sha256) const {
  if (config.external_base_url.empty()) return std::nullopt;
  std::string base = config.external_base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  auto scheme = base.find("://");
  auto path_start = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  std::string uri = (path_start == std::string::npos ? "" : base.substr(path_start)) + "/" +
                    ArtifactStore::RelativePath(sha256);
  int64_t expires = Now() / 1000 + config.link_ttl_s;
  return std::pair{base + "/" + ArtifactStore::RelativePath(sha256) +
                       "?md5=" + SecureLinkMd5(expires, uri, config.secure_link_secret) +
                       "&expires=" + std::to_string(expires),
                   expires};
}

}  // namespace aloft::server
