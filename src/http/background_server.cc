#include "http/background_server.h"

namespace aloft::http {

Status BackgroundServer::Start(const ServerOptions& options, Handler& handler,
                               const std::string& what) {
  Stop();
  server_ = std::make_unique<HttpServer>(options, handler);
  if (Status s = server_->Bind(); !s.ok()) {
    server_.reset();
    return std::move(s).error().WithContext(what + " (" + options.listen + ")");
  }
  thread_ = std::thread([this] { server_->Run(); });
  return OkStatus();
}

void BackgroundServer::Stop() {
  if (!server_) return;
  server_->Stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace aloft::http
