// The only translation unit that includes Boost.Beast (it is heavy to compile).
#include "http/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

namespace aloft::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

constexpr size_t kTlsChunk = 64 * 1024;
constexpr uint64_t kSendBudget = 8u << 20;       // bytes sent before yielding to other connections
constexpr uint64_t kFirstUncorked = 256u << 10;  // see SendFilePlain

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void CloseIfIdle() = 0;
};

}  // namespace

// One io_context per thread, each run by its own thread: a connection lives on one thread from
// accept to close, so its handlers need no strand and no thread ever wakes another to hand work
// over (that hand-over, through one shared io_context, cost more than the requests themselves).
struct HttpServer::Impl {
  Impl(ServerOptions o, Handler& h)
      : options(std::move(o)), handler(h), iocs(MakeContexts(options.threads)) {
    for (auto& c : iocs) guards.emplace_back(net::make_work_guard(*c));
  }
  static std::vector<std::unique_ptr<net::io_context>> MakeContexts(int threads) {
    std::vector<std::unique_ptr<net::io_context>> out;
    for (int i = 0; i < std::max(1, threads); ++i) {
      out.push_back(std::make_unique<net::io_context>(1));  // 1: run by one thread only
    }
    return out;
  }

  ServerOptions options;
  Handler& handler;
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  net::io_context& ioc() { return *iocs[0]; }
  size_t next_ioc = 0;
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor{*iocs[0]};
  ServerCounters counters;
  std::atomic<bool> stopping{false};
  std::optional<net::steady_timer> grace_timer;

  std::mutex mu;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  std::mutex address_mu;
  std::unordered_map<std::string, int> per_address;  // open connections by client address

  // One more connection from `address`, unless it has max_connections_per_address already.
  bool TakeAddress(const std::string& address) {
    if (options.max_connections_per_address <= 0) return true;
    std::lock_guard lock(address_mu);
    int& n = per_address[address];
    if (n >= options.max_connections_per_address) return false;
    ++n;
    return true;
  }
  void ReleaseAddress(const std::string& address) {
    if (options.max_connections_per_address <= 0) return;
    std::lock_guard lock(address_mu);
    auto it = per_address.find(address);
    if (it != per_address.end() && --it->second <= 0) per_address.erase(it);
  }

  void Accept();
  void StopAll() {
    for (auto& g : guards) g.reset();
    for (auto& c : iocs) c->stop();
  }
  void OnAccept(beast::error_code ec, tcp::socket socket);
  void Register(const std::shared_ptr<SessionBase>& s) {
    std::lock_guard lock(mu);
    sessions[s.get()] = s;
  }
  void Unregister(SessionBase* s) {
    std::lock_guard lock(mu);
    sessions.erase(s);
    if (stopping && sessions.empty() && grace_timer) {
      net::post(ioc(), [this] { grace_timer->cancel(); });
    }
  }
};

namespace {

std::string UniqueUploadName(const std::string& dir, const std::string& upload_prefix) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  return dir + "/" + upload_prefix + std::to_string(::getpid()) + "-" + std::to_string(++counter) +
         "-" + std::to_string(rng() % 1000000000);
}

// Appends "name: value\r\n"; a CR or LF inside either would split the header, so it becomes a
// space.
void AppendField(std::string& out, std::string_view name, std::string_view value) {
  auto append = [&out](std::string_view text) {
    for (char ch : text) out += (ch == '\r' || ch == '\n') ? ' ' : ch;
  };
  append(name);
  out += ": ";
  append(value);
  out += "\r\n";
}

// The status line and header of `r` for a body of `length` bytes. Content-Length and Connection
// are the transport's: the handler's own are ignored.
void SerializeHead(const Response& r, uint64_t length, bool keep_alive, std::string& out) {
  out.clear();
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  for (const auto& [name, value] : r.headers.fields()) {
    if (strcasecmp(name.c_str(), "Content-Length") == 0 ||
        strcasecmp(name.c_str(), "Connection") == 0 ||
        strcasecmp(name.c_str(), "Transfer-Encoding") == 0) {
      continue;
    }
    AppendField(out, name, value);
  }
  // RFC 9110 8.6: none on 1xx and 204; a 304 carries the selected representation's header, where
  // a length of 0 would mislead.
  const bool no_length = r.status < 200 || r.status == 204 || r.status == 304;
  if (r.stream && !no_length) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (!no_length) {
    out += "Content-Length: ";
    out += std::to_string(length);
    out += "\r\n";
  }
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
}

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... Args>
  Session(HttpServer::Impl& server, Args&&... args)
      : server_(server), stream_(std::forward<Args>(args)...), wait_timer_(stream_.get_executor()) {
    server_.counters.connections.fetch_add(1);
  }
  ~Session() override {
    server_.counters.connections.fetch_sub(1);
    if (!remote_.empty()) server_.ReleaseAddress(remote_);
    server_.Unregister(this);
    RemoveUpload();
  }

  // `address`: the client's, counted against max_connections_per_address until the session ends.
  void Start(std::string address) {
    remote_ = std::move(address);
    server_.Register(this->shared_from_this());
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        self->Lowest().expires_after(self->server_.options.header_timeout);
        self->Lowest().async_read_some(self->buffer_.prepare(4096),
                                       [self](beast::error_code ec, size_t n) {
                                         if (ec) return self->Close();
                                         self->buffer_.commit(n);
                                         self->Handshake();
                                       });
      } else {
        self->ReadHeader();
      }
    });
  }

  // TLS: the first bytes are in buffer_. A TLS client starts with a handshake record (0x16); a
  // plain HTTP one is told, in plain HTTP, that this port speaks HTTPS.
  void Handshake() {
    if constexpr (kTls) {
      const auto* first = static_cast<const unsigned char*>(buffer_.data().data());
      if (buffer_.size() > 0 && first[0] != 0x16) {
        static const std::string kBody =
            R"({"error":"bad-request","message":"this port speaks HTTPS: use https:// in the URL"})";
        static const std::string kPlain =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: "
            "close\r\nContent-Length: " +
            std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
        net::async_write(Lowest(), net::buffer(kPlain),
                         [self = this->shared_from_this()](beast::error_code, size_t) {
                           beast::error_code ignored;
                           self->Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
                           self->Close();
                         });
        return;
      }
      stream_.async_handshake(ssl::stream_base::server, buffer_.data(),
                              [self = this->shared_from_this()](beast::error_code ec, size_t used) {
                                if (ec) return self->Close();
                                self->buffer_.consume(used);
                                self->TakeClientCertificate();
                                self->ReadHeader();
                              });
    }
  }

  // After the handshake: the client's certificate, if it sent one, and its verification.
  void TakeClientCertificate() {
    if constexpr (kTls) {
      SSL* ssl = stream_.native_handle();
      X509* peer = SSL_get0_peer_certificate(ssl);
      if (!peer) return;
      auto c = std::make_shared<ClientCertificate>();
      unsigned char* der = nullptr;
      const int n = i2d_X509(peer, &der);
      if (n > 0) c->der.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(n));
      OPENSSL_free(der);
      c->verify_result = static_cast<int>(SSL_get_verify_result(ssl));
      if (c->verify_result != X509_V_OK) {
        c->verify_error = X509_verify_cert_error_string(c->verify_result);
      }
      client_cert_ = std::move(c);
    }
  }

  void CloseIfIdle() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->idle_) self->Close();
    });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void ReadHeader() {
    if (server_.stopping) return Close();
    idle_ = true;
    req_ = Request{};
    head_parser_.emplace();
    head_parser_->header_limit(server_.options.max_header_bytes);
    // Not boost::none: Boost 1.74 compares `len > none` as true and refuses every body.
    head_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    Lowest().expires_after(first_ ? server_.options.header_timeout : server_.options.idle_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *head_parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    first_ = false;
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::eof) {
      return Close();
    }
    if (ec == bhttp::error::header_limit) {
      return SendError(
          431, "header-too-large",
          "request header exceeds " + std::to_string(server_.options.max_header_bytes) + " bytes");
    }
    if (ec) return SendError(400, "bad-request", "malformed HTTP request: " + ec.message());

    const auto& h = head_parser_->get();
    req_.method = std::string(h.method_string());
    req_.target = std::string(h.target());
    auto q = req_.target.find('?');
    req_.path = PercentDecode(req_.target.substr(0, q));
    if (q != std::string::npos) req_.query = ParseQuery(req_.target.substr(q + 1));
    for (const auto& f : h) req_.headers.Add(std::string(f.name_string()), std::string(f.value()));
    req_.remote_address = remote_;
    req_.tls = kTls;
    req_.client_cert = client_cert_;
    keep_alive_ = h.keep_alive();

    if (auto refused = RefuseRequestHead(req_)) {
      res_ = std::move(*refused);
      res_.close = true;
      return WriteResponse();
    }
    std::variant<BodyPlan, Response> decision;
    try {
      decision = server_.handler.OnHeaders(req_);
    } catch (const std::exception& e) {  // a handler's bug must not end the process
      return SendError(500, "internal", std::string("internal error: ") + e.what());
    }
    if (auto* early = std::get_if<Response>(&decision)) {
      // Answer without reading the body; a connection with an unread body cannot be reused.
      if (!head_parser_->is_done()) early->close = true;
      res_ = std::move(*early);
      return WriteResponse();
    }
    plan_ = std::get<BodyPlan>(decision);
    if (auto len = head_parser_->content_length(); len && *len > plan_.max_size) {
      return SendError(413, "payload-too-large",
                       "request body of " + std::to_string(*len) + " bytes exceeds the limit of " +
                           std::to_string(plan_.max_size) + " bytes for " + req_.path);
    }
    if (head_parser_->is_done()) return Dispatch();

    if (!plan_.to_file_dir.empty()) {
      file_parser_.emplace(std::move(*head_parser_));
      file_parser_->body_limit(plan_.max_size);
      upload_path_ = UniqueUploadName(plan_.to_file_dir, plan_.file_prefix);
      beast::error_code fec;
      file_parser_->get().body().open(upload_path_.c_str(), beast::file_mode::write_new, fec);
      if (fec) {
        upload_path_.clear();
        // Out of descriptors or space is the server's passing state: 503, the client may retry.
        const bool busy = fec.value() == EMFILE || fec.value() == ENFILE || fec.value() == ENOSPC;
        return SendError(busy ? 503 : 500, busy ? "unavailable" : "internal",
                         "cannot create the upload file: " + fec.message());
      }
    } else {
      string_parser_.emplace(std::move(*head_parser_));
      string_parser_->body_limit(plan_.max_size);
    }
    if (strcasecmp(std::string(req_.headers.Get("Expect")).c_str(), "100-continue") == 0) {
      Lowest().expires_after(server_.options.io_timeout);
      net::async_write(stream_, net::buffer(kContinue, sizeof(kContinue) - 1),
                       [self = this->shared_from_this()](beast::error_code wec, size_t) {
                         if (wec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    Lowest().expires_after(server_.options.io_timeout);
    auto on_read = [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->OnBody(ec);
    };
    if (file_parser_) {
      bhttp::async_read_some(stream_, buffer_, *file_parser_, std::move(on_read));
    } else {
      bhttp::async_read_some(stream_, buffer_, *string_parser_, std::move(on_read));
    }
  }

  void OnBody(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return SendError(413, "payload-too-large",
                       "request body exceeds the limit of " + std::to_string(plan_.max_size) +
                           " bytes for " + req_.path);
    }
    if (ec == beast::error::timeout || ec == net::error::operation_aborted) return Close();
    if (ec) return SendError(400, "bad-request", "reading the request body: " + ec.message());
    bool done = file_parser_ ? file_parser_->is_done() : string_parser_->is_done();
    if (!done) return ReadBody();
    if (file_parser_) {
      beast::error_code cec;
      file_parser_->get().body().file().close(cec);
      req_.body_file = upload_path_;
      req_.body_size = file_parser_->content_length().value_or(0);
      if (!file_parser_->content_length()) {
        struct stat st {};
        if (::stat(upload_path_.c_str(), &st) == 0) req_.body_size = st.st_size;
      }
    } else {
      req_.body = std::move(string_parser_->get().body());
      req_.body_size = req_.body.size();
    }
    Dispatch();
  }

  void Dispatch() {
    try {
      res_ = server_.handler.Handle(req_);
    } catch (const std::exception& e) {  // a handler's bug must not end the process
      return SendError(500, "internal", std::string("internal error: ") + e.what());
    }
    WriteResponse();
  }

  // Errors of the transport itself; the connection closes after them (its state is unknown).
  void SendError(int status, std::string_view code, const std::string& message) {
    res_ = Response::Error(status, code, message);
    res_.close = true;
    WriteResponse();
  }

  void WriteResponse() {
    RemoveUpload();
    file_parser_.reset();
    string_parser_.reset();
    head_parser_.reset();
    const bool keep = keep_alive_ && !res_.close && !server_.stopping && !res_.stream;
    const bool head_only = req_.method == "HEAD";
    Lowest().expires_after(server_.options.io_timeout);
    keep_ = keep;
    SerializeHead(res_, res_.file ? res_.file->Size() : res_.body.size(), keep, head_);
    if (res_.stream) {
      if (head_only) res_.stream->Disconnected();
      // The header; then the stream's text as it comes, each piece one chunk.
      // While it waits, no operation holds the session: the stream's waker does (the cycle
      // ends when the session closes: Disconnected drops the waker).
      res_.stream->SetWaker([self = this->shared_from_this()] {
        net::post(self->stream_.get_executor(), [self] {
          if (!self->stream_waiting_ || self->closed_) return;
          self->stream_waiting_ = false;
          self->idle_ = false;
          self->StreamNext();
        });
      });
      net::async_write(stream_, net::buffer(head_),
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         if (ec || self->req_.method == "HEAD") return self->OnWritten(ec);
                         self->StreamNext();
                       });
      return;
    }
    if (res_.file || head_only) {
      // The header alone; then, unless this is HEAD, the file's parts.
      net::async_write(stream_, net::buffer(head_),
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         if (ec || !self->res_.file || self->req_.method == "HEAD") {
                           return self->OnWritten(ec);
                         }
                         self->part_index_ = 0;
                         self->part_sent_ = 0;
                         self->uncorked_left_ = kFirstUncorked;
                         self->WritePart();
                       });
      return;
    }
    // Header and body in one gathered write: one sendmsg(2) for a usual answer.
    const std::array<net::const_buffer, 2> out = {net::buffer(head_), net::buffer(res_.body)};
    net::async_write(stream_, out, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->OnWritten(ec);
    });
  }

  // Sends what the stream has queued as one chunk, or waits for it (an idle connection then:
  // Stop closes it); the end of the stream is the last chunk, and the connection closes.
  void StreamNext() {
    bool ended = false;
    std::string text = res_.stream->Take(ended);
    if (text.empty() && !ended) {
      stream_waiting_ = true;
      idle_ = true;
      if (server_.stopping) Close();
      return;
    }
    chunk_text_.clear();
    if (!text.empty()) {
      char size[20];
      std::snprintf(size, sizeof size, "%zx\r\n", text.size());
      chunk_text_.append(size).append(text).append("\r\n");
    }
    if (ended) chunk_text_.append("0\r\n\r\n");
    Lowest().expires_after(server_.options.io_timeout);
    net::async_write(stream_, net::buffer(chunk_text_),
                     [self = this->shared_from_this(), ended](beast::error_code ec, size_t) {
                       if (ec || ended) return self->OnWritten(ec);
                       self->StreamNext();
                     });
  }

  void WritePart() {
    auto& parts = res_.file->parts;
    if (part_index_ >= parts.size()) return OnWritten({});
    auto& part = parts[part_index_];
    if (!part.from_file) {
      Lowest().expires_after(server_.options.io_timeout);
      net::async_write(stream_, net::buffer(part.text),
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         ++self->part_index_;
                         self->part_sent_ = 0;
                         self->WritePart();
                       });
      return;
    }
    if constexpr (kTls) {
      SendFileTls();
    } else {
      SendFilePlain();
    }
  }

  void PartDone() {
    ++part_index_;
    part_sent_ = 0;
    WritePart();
  }

  void CountSent(uint64_t n) {
    if (res_.file->bytes_sent) res_.file->bytes_sent->fetch_add(n);
  }

  void SendFilePlain() {
    auto& part = res_.file->parts[part_index_];
    auto& sock = Lowest().socket();
    beast::error_code nbec;
    sock.native_non_blocking(true, nbec);
    uint64_t budget = kSendBudget;
    while (part_sent_ < part.length && budget > 0) {
      off_t off = static_cast<off_t>(part.offset + part_sent_);
      size_t want = static_cast<size_t>(std::min<uint64_t>(part.length - part_sent_, budget));
      // The first bytes leave uncorked and fill a new connection's window, which may be smaller
      // than one full segment (64 KiB on loopback) and would hold a corked one back for as long
      // as a slow reader takes to free that much. After them, corked (nginx's tcp_nopush): data
      // then leaves when the reader acknowledges, in full segments, and on loopback that work
      // moves to the reader's CPU.
      if (uncorked_left_ > 0) {
        want = static_cast<size_t>(std::min<uint64_t>(want, uncorked_left_));
      } else {
        Cork(true);
      }
      ssize_t n = ::sendfile(sock.native_handle(), res_.file->fd(), &off, want);
      if (n > 0) {
        part_sent_ += n;
        budget -= std::min<uint64_t>(budget, n);
        uncorked_left_ -= std::min<uint64_t>(uncorked_left_, n);
        CountSent(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        Cork(false);  // while waiting, what is queued goes out as the reader's window allows
        wait_timer_.expires_after(server_.options.io_timeout);
        wait_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
          if (!ec) {
            beast::error_code cec;
            self->Lowest().socket().cancel(cec);
          }
        });
        sock.async_wait(tcp::socket::wait_write,
                        [self = this->shared_from_this()](beast::error_code ec) {
                          self->wait_timer_.cancel();
                          if (ec) return self->Close();
                          self->SendFilePlain();
                        });
        return;
      }
      return Close();  // peer gone, or the file shrank under us
    }
    if (part_sent_ == part.length) return PartDone();
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->SendFilePlain(); });
  }

  void SendFileTls() {
    auto& part = res_.file->parts[part_index_];
    if (part_sent_ == part.length) return PartDone();
    if (chunk_.empty()) chunk_.resize(kTlsChunk);
    size_t want = static_cast<size_t>(std::min<uint64_t>(part.length - part_sent_, kTlsChunk));
    ssize_t n =
        ::pread(res_.file->fd(), chunk_.data(), want, static_cast<off_t>(part.offset + part_sent_));
    if (n <= 0) return Close();
    Lowest().expires_after(server_.options.io_timeout);
    net::async_write(stream_, net::buffer(chunk_.data(), static_cast<size_t>(n)),
                     [self = this->shared_from_this()](beast::error_code ec, size_t written) {
                       if (ec) return self->Close();
                       self->part_sent_ += written;
                       self->CountSent(written);
                       self->SendFileTls();
                     });
  }

  void Cork(bool on) {
    if (corked_ == on) return;
    int v = on ? 1 : 0;
    ::setsockopt(Lowest().socket().native_handle(), IPPROTO_TCP, TCP_CORK, &v, sizeof v);
    corked_ = on;
  }

  void OnWritten(beast::error_code ec) {
    if constexpr (!kTls) {
      Cork(false);  // sends the last partial segment now
    }
    if (res_.stream) res_.stream->Disconnected();
    res_ = Response{};
    chunk_.clear();
    chunk_.shrink_to_fit();
    if (ec || !keep_) return Close();
    ReadHeader();
  }

  void RemoveUpload() {
    if (upload_path_.empty()) return;
    ::unlink(upload_path_.c_str());  // gone already when the handler took the file
    upload_path_.clear();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    if (res_.stream) res_.stream->Disconnected();
    beast::error_code ec;
    wait_timer_.cancel();
    if constexpr (kTls) {
      Lowest().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::error_code cec;
        self->Lowest().socket().close(cec);
      });
    } else {
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      Lowest().socket().close(ec);
    }
  }

  static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

  HttpServer::Impl& server_;
  Stream stream_;
  net::steady_timer wait_timer_;
  beast::flat_buffer buffer_{64 * 1024};
  std::optional<bhttp::request_parser<bhttp::empty_body>> head_parser_;
  std::optional<bhttp::request_parser<bhttp::string_body>> string_parser_;
  std::optional<bhttp::request_parser<bhttp::file_body>> file_parser_;
  std::string head_;  // the response's status line and header, kept for its capacity
  Request req_;
  Response res_;
  BodyPlan plan_;
  std::string upload_path_;
  std::string remote_;
  std::shared_ptr<const ClientCertificate> client_cert_;  // TLS: what the handshake brought
  std::vector<uint8_t> chunk_;
  std::string chunk_text_;       // a stream's chunk being written
  bool stream_waiting_ = false;  // a stream's response waits for text
  size_t part_index_ = 0;
  uint64_t part_sent_ = 0;
  bool keep_alive_ = false, keep_ = false, idle_ = false, first_ = true, closed_ = false;
  bool corked_ = false;
  uint64_t uncorked_left_ = 0;  // of a file response, to send before corking
};

Result<tcp::endpoint> ParseListen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Error(Code::kInvalidArgument,
                 "listen address '" + listen + "' must be HOST:PORT, e.g. 127.0.0.1:8080");
  }
  std::string host = listen.substr(0, colon);
  std::string port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "*") host = "0.0.0.0";
  char* end = nullptr;
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end || port < 0 || port > 65535) {
    return Error(Code::kInvalidArgument, "listen address '" + listen + "': bad port");
  }
  beast::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) {
    return Error(Code::kInvalidArgument,
                 "listen address '" + listen + "': '" + host + "' is not an IP address");
  }
  return tcp::endpoint(addr, static_cast<uint16_t>(port));
}

}  // namespace

void HttpServer::Impl::Accept() {
  auto& target = *iocs[next_ioc++ % iocs.size()];
  acceptor.async_accept(
      target, [this](beast::error_code ec, tcp::socket s) { OnAccept(ec, std::move(s)); });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || stopping) return;
  if (!ec) {
    counters.accepted.fetch_add(1);
    beast::error_code rec;
    auto peer = socket.remote_endpoint(rec);
    std::string address = rec ? std::string("?") : peer.address().to_string();
    if (counters.connections.load() >= counters.max_connections.load() || !TakeAddress(address)) {
      counters.rejected_connections.fetch_add(1);
      beast::error_code cec;
      socket.close(cec);
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      if (tls) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(*this, std::move(socket),
                                                                        *tls)
            ->Start(std::move(address));
      } else {
        std::make_shared<Session<beast::tcp_stream>>(*this, std::move(socket))
            ->Start(std::move(address));
      }
    }
  } else if (ec == net::error::no_descriptors) {
    // Out of file descriptors: back off briefly instead of spinning.
    auto t = std::make_shared<net::steady_timer>(ioc(), std::chrono::milliseconds(50));
    t->async_wait([this, t](beast::error_code) { Accept(); });
    return;
  }
  Accept();
}

HttpServer::HttpServer(ServerOptions options, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Bind() {
  auto& o = impl_->options;
  ALOFT_ASSIGN_OR_RETURN(tcp::endpoint ep, ParseListen(o.listen));
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty()) {
      return Error(Code::kInvalidArgument, "TLS needs both a certificate and a key file");
    }
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                            ssl::context::no_tlsv1_1);
    // TLS 1.2: forward secrecy and AEAD only (no CBC, no SHA-1 MACs); TLS 1.3 keeps its suites.
    SSL_CTX_set_cipher_list(impl_->tls->native_handle(),
                            "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL");
    beast::error_code ec;
    impl_->tls->use_certificate_chain_file(o.tls_cert, ec);
    if (ec) return Error(Code::kInvalidArgument, o.tls_cert + ": " + ec.message());
    impl_->tls->use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (ec) return Error(Code::kInvalidArgument, o.tls_key + ": " + ec.message());
    if (!o.tls_client_ca.empty()) {
      SSL_CTX* ctx = impl_->tls->native_handle();
      if (SSL_CTX_load_verify_locations(ctx, o.tls_client_ca.c_str(), nullptr) != 1) {
        ERR_clear_error();
        return Error(Code::kInvalidArgument,
                     o.tls_client_ca + ": not a PEM file of CA certificates");
      }
      SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(o.tls_client_ca.c_str()));
      // Asked for, verified, never a reason to break the handshake: the result goes with the
      // request (a 401 that says why beats a handshake alert).
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
      SSL_CTX_set_verify_depth(ctx, 4);
    }
  } else if (!o.tls_client_ca.empty()) {
    return Error(Code::kInvalidArgument, "client certificates need TLS (tls_cert, tls_key)");
  }
  // Many slow clients need many descriptors: raise the soft limit to the hard one, and keep a
  // fifth of it (at least 128) for what connections open: artifact files, uploads, the database.
  int64_t max_connections = o.max_connections;
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY) {
      const auto fds = static_cast<int64_t>(std::min<rlim_t>(rl.rlim_cur, 1 << 30));
      max_connections = std::min(max_connections, fds - std::max<int64_t>(128, fds / 5));
    }
  }
  impl_->counters.max_connections = std::max<int64_t>(1, max_connections);
  beast::error_code ec;
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Error(Code::kIo, "listening on " + o.listen + ": " + ec.message());
  return OkStatus();
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void HttpServer::Run() {
  impl_->Accept();
  int n = std::max(1, impl_->options.threads);
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back([this, i] { impl_->iocs[i]->run(); });
  impl_->iocs[0]->run();
  for (auto& t : threads) t.join();
}

void HttpServer::Stop() {
  net::post(impl_->ioc(), [impl = impl_.get()] {
    if (impl->stopping.exchange(true)) return;
    beast::error_code ec;
    impl->acceptor.close(ec);
    std::vector<std::shared_ptr<SessionBase>> live;
    {
      std::lock_guard lock(impl->mu);
      for (auto& [p, w] : impl->sessions)
        if (auto s = w.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) s->CloseIfIdle();
    if (live.empty()) {
      impl->StopAll();
      return;
    }
    std::lock_guard lock(impl->mu);  // Unregister looks at grace_timer from other threads
    impl->grace_timer.emplace(impl->ioc(), impl->options.shutdown_grace);
    // Fires at the end of the grace period, or when canceled because the last session ended.
    impl->grace_timer->async_wait([impl](beast::error_code) { impl->StopAll(); });
  });
}

const ServerCounters& HttpServer::counters() const { return impl_->counters; }

}  // namespace aloft::http
