#include "support/test_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "support/matchers.h"

namespace aloft::testing {

Status TestServer::Start(server::ServerConfig config, const Clock& clock, std::ostream& log) {
  config.listen = "127.0.0.1:0";
  ALOFT_ASSIGN_OR_RETURN(app_, server::App::Create(config, clock, log));
  ALOFT_RETURN_IF_ERROR(app_->Bind());
  base_ = "http://127.0.0.1:" + std::to_string(app_->port());
  thread_ = std::thread([this] { app_->Run(); });
  ALOFT_ASSIGN_OR_RETURN(admin_, ReadFile(config.data_dir + "/admin.token", 4096));
  while (!admin_.empty() && admin_.back() == '\n') admin_.pop_back();
  return OkStatus();
}

void TestServer::Stop() {
  if (!app_) return;
  app_->Stop();
  if (thread_.joinable()) thread_.join();
  app_.reset();
}

client::HttpResponse TestServer::Call(const std::string& method, const std::string& path,
                                      const std::string& token, const std::string& body,
                                      std::vector<std::string> headers) {
  client::HttpRequest req;
  req.method = method;
  req.url = base_ + path;
  req.body = body;
  req.headers = std::move(headers);
  if (!token.empty()) req.headers.push_back("Authorization: Bearer " + token);
  req.timeout_s = 30;
  auto res = client::Send(req);
  EXPECT_THAT(res, IsOk());
  return res.ok() ? *res : client::HttpResponse{};
}

nlohmann::json TestServer::CallJson(const std::string& method, const std::string& path,
                                    const std::string& token, const nlohmann::json& body,
                                    int expect) {
  auto res = Call(method, path, token, body.is_null() ? "" : body.dump());
  EXPECT_EQ(res.status, expect) << method << " " << path << ": " << res.body;
  return nlohmann::json::parse(res.body, nullptr, false);
}

client::HttpResponse TestServer::Upload(const std::string& path, const std::string& file,
                                        const std::string& token) {
  client::HttpRequest req;
  req.method = "POST";
  req.url = base_ + path;
  req.upload_file = file;
  req.headers.push_back("Authorization: Bearer " + token);
  auto res = client::Send(req);
  EXPECT_THAT(res, IsOk());
  return res.ok() ? *res : client::HttpResponse{};
}

}  // namespace aloft::testing
