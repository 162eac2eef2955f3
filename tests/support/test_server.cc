#include "support/test_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <utility>

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

RawConnection::RawConnection(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(const std::string& bytes) {
  return fd_ >= 0 && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                         static_cast<ssize_t>(bytes.size());
}

std::string RawConnection::ReadResponse(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (fd_ >= 0 && std::chrono::steady_clock::now() < deadline) {
    auto end = buffered_.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t length = 0;
      std::string head = buffered_.substr(0, end);
      for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (auto cl = head.find("content-length:"); cl != std::string::npos) {
        length = std::strtoull(head.c_str() + cl + 15, nullptr, 10);
      }
      if (buffered_.size() >= end + 4 + length) {
        std::string out = buffered_.substr(0, end + 4 + length);
        buffered_.erase(0, out.size());
        return out;
      }
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return "";
    buffered_.append(buf, static_cast<size_t>(n));
  }
  return "";
}

std::string RawConnection::ReadUntilClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::exchange(buffered_, {});
  char buf[65536];
  while (fd_ >= 0 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool RawConnection::ClosedByServer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[256];
  while (fd_ >= 0 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    return ::recv(fd_, buf, sizeof buf, 0) <= 0;
  }
  return false;
}

std::string TestServer::Raw(const std::string& request) {
  RawConnection conn(app_->port());
  return conn.Send(request) ? conn.ReadUntilClosed(std::chrono::seconds(5)) : "";
}

int TestServer::RawStatus(const std::string& response) {
  if (!response.starts_with("HTTP/1.1 ") || response.size() < 12) return 0;
  return std::atoi(response.substr(9, 3).c_str());
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
