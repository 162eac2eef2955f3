#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <future>

namespace aloft::net {

namespace {

std::string OpenSslError(const std::string& what) {
  const unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return what + ": " + buf;
}

bool WriteFd(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Moves bytes both ways until either side ends or `stop` is set.
void Pump(SSL* ssl, int tcp, int plain, const std::atomic<bool>& stop) {
  char buf[16384];
  while (!stop) {
    pollfd fds[2] = {{tcp, POLLIN, 0}, {plain, POLLIN, 0}};
    if (SSL_pending(ssl) == 0 && ::poll(fds, 2, 200) <= 0) continue;
    if (SSL_pending(ssl) > 0 || (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) {
        const int err = SSL_get_error(ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) continue;
        return;
      }
      if (!WriteFd(plain, buf, static_cast<size_t>(n))) return;
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(plain, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        SSL_shutdown(ssl);
        return;
      }
      if (SSL_write(ssl, buf, static_cast<int>(n)) <= 0) return;
    }
  }
}

}  // namespace

Result<std::unique_ptr<TlsEndpoint>> TlsEndpoint::Server(const std::string& cert_pem,
                                                         const std::string& key_pem) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return Error(Code::kInternal, OpenSslError("SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_pem.c_str()) != 1) {
    SSL_CTX_free(ctx);
    return Error(Code::kInvalidArgument, OpenSslError("TLS certificate " + cert_pem));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_pem.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    SSL_CTX_free(ctx);
    return Error(Code::kInvalidArgument, OpenSslError("TLS key " + key_pem));
  }
  return std::unique_ptr<TlsEndpoint>(new TlsEndpoint(ctx, true, ""));
}

Result<std::unique_ptr<TlsEndpoint>> TlsEndpoint::Client(const std::string& ca_pem,
                                                         const std::string& host) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return Error(Code::kInternal, OpenSslError("SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, ca_pem.c_str(), nullptr) != 1) {
    SSL_CTX_free(ctx);
    return Error(Code::kInvalidArgument, OpenSslError("TLS CA " + ca_pem));
  }
  return std::unique_ptr<TlsEndpoint>(new TlsEndpoint(ctx, false, host));
}

TlsEndpoint::~TlsEndpoint() {
  stop_ = true;
  for (auto& p : pumps_) p.thread.join();
  SSL_CTX_free(ctx_);
}

Result<Fd> TlsEndpoint::Wrap(Fd tcp) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoError("socketpair", errno);
  }
  Fd mine(pair[0]), theirs(pair[1]);
  std::promise<Status> handshake;
  auto done = handshake.get_future();
  std::unique_lock<std::mutex> lock(mu_);
  std::erase_if(pumps_, [](PumpThread& p) {
    if (!*p.finished) return false;
    p.thread.join();
    return true;
  });
  auto finished = std::make_shared<std::atomic<bool>>(false);
  std::thread pump([this, tcp = std::move(tcp), mine = std::move(mine), h = std::move(handshake),
                    finished]() mutable {
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, tcp.get());
    if (!server_) {
      // An address is checked against the certificate's IP SANs, a name against its DNS ones.
      in6_addr any;
      if (::inet_pton(AF_INET, host_.c_str(), &any) == 1 ||
          ::inet_pton(AF_INET6, host_.c_str(), &any) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host_.c_str());
      } else {
        SSL_set_tlsext_host_name(ssl, host_.c_str());
        SSL_set1_host(ssl, host_.c_str());
      }
    }
    timeval tv{5, 0};  // the handshake's time limit
    ::setsockopt(tcp.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const int rc = server_ ? SSL_accept(ssl) : SSL_connect(ssl);
    if (rc != 1) {
      h.set_value(Error(Code::kUnavailable, OpenSslError("TLS handshake")));
      SSL_free(ssl);
      *finished = true;
      return;
    }
    // A TLS 1.3 session ticket after the handshake must not hold the pump in SSL_read (waiting
    // for application data while the other direction has bytes to send): it returns instead.
    SSL_clear_mode(ssl, SSL_MODE_AUTO_RETRY);
    timeval none{0, 0};
    ::setsockopt(tcp.get(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    h.set_value(OkStatus());
    Pump(ssl, tcp.get(), mine.get(), stop_);
    SSL_free(ssl);
    *finished = true;
  });
  pumps_.push_back({std::move(pump), finished});
  lock.unlock();
  Status s = done.get();
  if (!s.ok()) return std::move(s).error();
  return theirs;
}

}  // namespace aloft::net
