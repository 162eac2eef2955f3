#include "agent/uplink.h"

#include "client/http_client.h"

namespace aloft::agent {
namespace {

using json = nlohmann::json;

class HttpUplink final : public Uplink {
 public:
  HttpUplink(std::string server, std::string device, std::string token, client::TlsFiles tls)
      : server_(std::move(server)),
        device_(std::move(device)),
        token_(std::move(token)),
        tls_(std::move(tls)) {}

  Result<json> CheckIn(const json& body) override {
    ALOFT_ASSIGN_OR_RETURN(client::HttpResponse res, Post("/check-in", body));
    if (res.status != 200) {
      return Error(
          res.status >= 500 ? Code::kUnavailable : Code::kPermissionDenied,
          "check-in: HTTP " + std::to_string(res.status) + ": " + client::ErrorMessage(res));
    }
    json j = json::parse(res.body, nullptr, false);
    if (!j.is_object()) return Error(Code::kUnavailable, "check-in: the answer is not JSON");
    return j;
  }

  Status Feedback(int64_t action, const json& body) override {
    ALOFT_ASSIGN_OR_RETURN(client::HttpResponse res,
                           Post("/actions/" + std::to_string(action) + "/feedback", body));
    if (res.status == 200 || res.status == 201) return OkStatus();
    if (res.status == 409 && FinalStatus(body.value("status", ""))) {
      return OkStatus();  // closed already (a repeated final report)
    }
    if (res.status == 409) {
      return Error(Code::kAlreadyExists, "the server refused '" + body.value("status", "") +
                                             "' on action " + std::to_string(action) + ": " +
                                             client::ErrorMessage(res));
    }
    if (res.status >= 500) {
      return Error(Code::kUnavailable, "feedback: HTTP " + std::to_string(res.status));
    }
    return Error(Code::kInvalidArgument, "feedback refused: HTTP " + std::to_string(res.status) +
                                             ": " + client::ErrorMessage(res));
  }

  Status StartInstall(int64_t action) override {
    return Feedback(action, {{"status", "installing"}, {"progress", 0}});
  }

 private:
  Result<client::HttpResponse> Post(const std::string& path, const json& body) {
    client::HttpRequest req;
    req.method = "POST";
    req.url = server_ + "/device/v1/" + device_ + path;
    req.headers = client::BearerHeaders(token_);
    req.body = body.dump();
    client::UseTls(req, tls_);
    req.timeout_s = 30;
    return client::Send(req);
  }

  std::string server_, device_, token_;
  client::TlsFiles tls_;
};

}  // namespace

std::unique_ptr<Uplink> MakeHttpUplink(std::string server, std::string device, std::string token,
                                       client::TlsFiles tls) {
  return std::make_unique<HttpUplink>(std::move(server), std::move(device), std::move(token),
                                      std::move(tls));
}

}  // namespace aloft::agent
