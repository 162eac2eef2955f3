#include "client/curl_api.h"

#include <dlfcn.h>

#include <string>

namespace aloft::client {
namespace {

constexpr const char* kLibrary = "libcurl.so.4";

struct Loaded {
  CurlApi api{};
  std::string error;  // empty when api is usable
};

template <typename Fn>
bool Resolve(void* lib, const char* name, Fn& out, std::string& error) {
  void* sym = dlsym(lib, name);
  if (!sym) {
    error = std::string(kLibrary) + " has no " + name;
    return false;
  }
  out = reinterpret_cast<Fn>(sym);
  return true;
}

Loaded Load() {
  Loaded l;
  // RTLD_NOLOAD first: a program that links libcurl already has it.
  void* lib = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (!lib) lib = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    l.error = std::string("cannot load ") + kLibrary +
              " (needed to talk to a server): " + (why ? why : "unknown error") +
              "; install libcurl4";
    return l;
  }
  CurlApi& a = l.api;
  bool ok = Resolve(lib, "curl_global_init", a.global_init, l.error) &&
            Resolve(lib, "curl_easy_init", a.easy_init, l.error) &&
            Resolve(lib, "curl_easy_setopt", a.easy_setopt, l.error) &&
            Resolve(lib, "curl_easy_perform", a.easy_perform, l.error) &&
            Resolve(lib, "curl_easy_getinfo", a.easy_getinfo, l.error) &&
            Resolve(lib, "curl_easy_cleanup", a.easy_cleanup, l.error) &&
            Resolve(lib, "curl_easy_strerror", a.easy_strerror, l.error) &&
            Resolve(lib, "curl_slist_append", a.slist_append, l.error) &&
            Resolve(lib, "curl_slist_free_all", a.slist_free_all, l.error);
  if (!ok) return l;
  if (CURLcode rc = a.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    l.error = std::string("curl_global_init failed: ") + a.easy_strerror(rc);
  }
  return l;
}

}  // namespace

Result<const CurlApi*> LoadCurl() {
  // The handle is never closed: libcurl stays loaded for the life of the process.
  static const Loaded loaded = Load();
  if (!loaded.error.empty()) return Error(Code::kUnavailable, loaded.error);
  return &loaded.api;
}

}  // namespace aloft::client
