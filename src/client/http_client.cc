#include "client/http_client.h"

#include <nlohmann/json.hpp>

#include "client/curl_api.h"
#include "core/file.h"

namespace aloft::client {
namespace {

struct BodySink {
  std::string* body;
  uint64_t max;  // 0: no limit
  bool over = false;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  if (sink->max && sink->body->size() + size * n > sink->max) {
    sink->over = true;
    return 0;  // libcurl stops the transfer
  }
  sink->body->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string name, value;
  if (ParseHeaderLine(std::string_view(data, size * n), name, value)) {
    (*static_cast<std::map<std::string, std::string>*>(user))[name] = value;
  }
  return size * n;
}

struct Upload {
  File file;
  Progress* progress = nullptr;
};

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  auto got = up->file.Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf), size * n));
  if (!got.ok()) return CURL_READFUNC_ABORT;
  if (up->progress) up->progress->Add(*got);
  return *got;
}

}  // namespace

bool ParseHeaderLine(std::string_view line, std::string& name, std::string& value) {
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  name.assign(line.substr(0, colon));
  for (auto& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  std::string_view v = line.substr(colon + 1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.remove_suffix(1);
  value.assign(v);
  return true;
}

Result<HttpResponse> Send(const HttpRequest& req) {
  ALOFT_ASSIGN_OR_RETURN(const CurlApi* api, LoadCurl());
  // The upload is opened before libcurl allocates anything, so its errors need no clean-up.
  Upload up;
  uint64_t upload_size = 0;
  if (!req.upload_file.empty()) {
    ALOFT_ASSIGN_OR_RETURN(up.file, File::OpenRead(req.upload_file));
    ALOFT_ASSIGN_OR_RETURN(upload_size, up.file.Size());
    up.progress = req.progress;
  }
  CURL* curl = api->easy_init();
  if (!curl) return Error(Code::kInternal, "curl_easy_init failed");
  HttpResponse res;
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = api->slist_append(headers, h.c_str());
  char errbuf[CURL_ERROR_SIZE] = {};
  api->easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  api->easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  api->easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  BodySink sink{&res.body, req.max_body};
  api->easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  api->easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  api->easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  api->easy_setopt(curl, CURLOPT_HEADERDATA, &res.headers);
  api->easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (req.timeout_s > 0) api->easy_setopt(curl, CURLOPT_TIMEOUT, req.timeout_s);
  if (!req.ca_file.empty()) api->easy_setopt(curl, CURLOPT_CAINFO, req.ca_file.c_str());
  if (!req.cert_file.empty()) {
    api->easy_setopt(curl, CURLOPT_SSLCERT, req.cert_file.c_str());
    api->easy_setopt(curl, CURLOPT_SSLKEY,
                     req.key_file.empty() ? req.cert_file.c_str() : req.key_file.c_str());
  }
  if (req.method == "HEAD") api->easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!req.upload_file.empty()) {
    headers = api->slist_append(headers, "Content-Type: application/octet-stream");
    api->easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    api->easy_setopt(curl, CURLOPT_READFUNCTION, OnRead);
    api->easy_setopt(curl, CURLOPT_READDATA, &up);
    api->easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload_size));
  } else if (!req.body.empty() || req.method == "POST" || req.method == "PATCH" ||
             req.method == "PUT") {
    if (!req.body.empty() && req.body.front() == '{') {
      headers = api->slist_append(headers, "Content-Type: application/json");
    }
    api->easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
    api->easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }
  api->easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = api->easy_perform(curl);
  api->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res.status);
  api->slist_free_all(headers);
  api->easy_cleanup(curl);
  if (sink.over) {
    return Error(Code::kOutOfRange, req.method + " " + req.url + ": the answer is longer than " +
                                        std::to_string(req.max_body) +
                                        " bytes: cut off (endless data?)");
  }
  if (rc != CURLE_OK) {
    return Error(Code::kUnavailable,
                 req.method + " " + req.url + ": " + (errbuf[0] ? errbuf : api->easy_strerror(rc)));
  }
  return res;
}

std::string ErrorMessage(const HttpResponse& res) {
  auto j = nlohmann::json::parse(res.body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  return res.body.empty() ? "HTTP " + std::to_string(res.status) : res.body;
}

}  // namespace aloft::client
