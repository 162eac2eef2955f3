// HTTP requests and responses as the server's handlers see them: plain structs, no Beast types, so
// that only server.cc includes the heavy Boost headers.
#pragma once

#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aloft::http {

// Header fields in arrival order; lookups ignore case.
class Headers {
 public:
  void Add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
  }
  // Replaces every field of that name.
  void Set(std::string_view name, std::string value);
  // The first value, or "" when absent.
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// The certificate a TLS client presented (docs/identity.md): the server asks for one when it has
// client CAs, and lets the handshake through either way, so that the application can answer a
// refused certificate with a clear error.
struct ClientCertificate {
  std::string der;           // the client's certificate (DER)
  int verify_result = 0;     // X509_V_OK (0) when its chain verified against the client CAs
  std::string verify_error;  // OpenSSL's text for verify_result
  bool verified() const { return verify_result == 0; }
};

struct Request {
  std::string method;                        // "GET", "POST", ...
  std::string target;                        // as sent: "/api/v1/devices?limit=5"
  std::string path;                          // percent-decoded path without the query
  std::map<std::string, std::string> query;  // decoded; the last value of a repeated key wins
  Headers headers;
  std::string remote_address;
  bool tls = false;
  std::shared_ptr<const ClientCertificate> client_cert;  // null: none presented
  // The body, unless the handler asked for it to go to a file (then `body_file` names the file;
  // the handler may rename it away, otherwise the server deletes it after the response).
  std::string body;
  std::string body_file;
  uint64_t body_size = 0;

  // Params from the route pattern ("{name}" segments) and the route's id, filled by the
  // handler's routing in OnHeaders so that Handle need not match again.
  std::map<std::string, std::string> params;
  int route = -1;
  // Whatever else the handler's OnHeaders found and Handle needs (aloftd: the authenticated
  // caller, so that credentials are checked once, before the body is read).
  std::any handler_state;
};

// A body made of parts sent in order: literal text or a range of an open file (sent with
// sendfile(2) on plain connections). Used for downloads, single and multipart ranges.
// An open file descriptor shared by every response that sends from it (sendfile and pread take
// explicit offsets, so one descriptor serves any number of concurrent downloads); closed with the
// last user.
class SharedFd {
 public:
  explicit SharedFd(int fd) : fd_(fd) {}
  ~SharedFd();
  SharedFd(const SharedFd&) = delete;
  SharedFd& operator=(const SharedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct FileBody {
  struct Part {
    std::string text;
    uint64_t offset = 0, length = 0;
    bool from_file = false;
  };
  std::shared_ptr<SharedFd> file;
  int fd() const { return file ? file->get() : -1; }
  std::vector<Part> parts;
  // Counts concurrent file responses and bytes (for /metrics); may be null.
  std::atomic<int64_t>* active = nullptr;
  std::atomic<uint64_t>* bytes_sent = nullptr;

  // Decrements `active` when set.
  ~FileBody();
  uint64_t Size() const;
};

// A response body sent while it is produced (server-sent events): the server sends the head
// with `Transfer-Encoding: chunked`, then what producers push, as it comes, until a producer
// ends it or the client goes away; the connection then closes. Producers push from any thread.
class Stream {
 public:
  // Queues `text` for the client; false when the client is gone (or the client reads so slowly
  // that more than max_queued bytes wait: it is then disconnected), so that the producer can
  // drop the stream.
  bool Push(std::string_view text);
  // Ends the response once what is queued was sent.
  void End();
  bool gone() const;

  // For the server: `wake` is called (on the pushing thread) when text is queued or the stream
  // ended; Take returns what is queued and whether it ended; Disconnected marks the client gone.
  void SetWaker(std::function<void()> wake);
  std::string Take(bool& ended);
  void Disconnected();

  static constexpr size_t kMaxQueued = 1 << 20;

 private:
  mutable std::mutex mu_;
  std::string queued_;
  bool ended_ = false, gone_ = false;
  std::function<void()> wake_;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  std::shared_ptr<FileBody> file;  // when set, replaces `body`
  std::shared_ptr<Stream> stream;  // when set, replaces `body` and `file`
  bool close = false;              // close the connection after this response

  static Response Json(int status, std::string json);
  static Response Text(int status, std::string text);
  // The one error shape every API of the server uses:
  // {"error": "<code>", "message": "<what went wrong, naming the input>"}
  static Response Error(int status, std::string_view code, std::string_view message);
};

// What the server refuses in a request's head before it routes it, as the answer to send: more
// than one Host field, or a Host that is not host[:port] (letters, digits and the characters RFC
// 3986 allows in a host; its bytes name this server in download links), a path or query that is
// not UTF-8 once percent-decoded (names in the database are text) -> 400; a Transfer-Encoding
// other than exactly "chunked" -> 501, and one beside a Content-Length -> 400 (a proxy in front
// could frame the body differently: request smuggling). nullopt when the head is acceptable.
std::optional<Response> RefuseRequestHead(const Request& head);

// `s` as a JSON string literal, quotes included; each byte that is not part of valid UTF-8
// becomes U+FFFD, so the answer is valid JSON whatever a client sent.
std::string JsonQuote(std::string_view s);

// "%2F" -> "/", "+" stays "+"; kMalformed-free: invalid escapes are kept as they are.
std::string PercentDecode(std::string_view s);
std::string PercentEncode(std::string_view s);
// "a=1&b=x%20y" -> {a:1, b:"x y"}
std::map<std::string, std::string> ParseQuery(std::string_view q);

}  // namespace aloft::http
