// aloftd: the Aloft server. Parses flags and the config file, then runs server::App until SIGTERM
// or SIGINT, which stop it gracefully. docs/server.md describes configuration and routes.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "server/app.h"
#include "server/config.h"

int main(int argc, char** argv) {
  using aloft::server::ServerConfig;
  CLI::App cli{"aloftd: the Aloft OTA update server (management API, device API, downloads)"};
  std::string config_file, data_dir, listen, database, artifacts, tls_cert, tls_key, public_url;
  std::vector<std::string> trust;
  int threads = -1;
  bool require_signed = false;
  cli.add_option("-c,--config", config_file, "TOML configuration file (docs/server.md)")
      ->check(CLI::ExistingFile);
  cli.add_option("-d,--data", data_dir,
                 "data directory: database, artifacts, admin.token (created if missing)");
  cli.add_option("-l,--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:8080)");
  cli.add_option("--database", database,
                 "postgresql://... URL, or an SQLite file (default DATA/aloft.db)");
  cli.add_option("--artifacts", artifacts,
                 "artifact directory (default DATA/artifacts); shared by servers on one database");
  cli.add_option("-t,--trust", trust,
                 "public key whose signatures make a package acceptable (repeatable)");
  cli.add_option("--threads", threads, "HTTP threads (default: number of CPUs)");
  cli.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve HTTPS");
  cli.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
  cli.add_option("--public-url", public_url,
                 "base URL devices reach this server at (default: from the Host header)");
  std::string web_dir;
  cli.add_option("--web", web_dir,
                 "directory of the built dashboard (web_dir; default: share/aloft/web beside "
                 "aloftd, or the source tree's web/dist)");
  cli.add_flag("--require-signed-releases", require_signed,
               "accept only signed .aloft packages as releases (require_signed_releases)");
  CLI11_PARSE(cli, argc, argv);

  ServerConfig config;
  if (!config_file.empty()) {
    aloft::Status s = aloft::server::LoadConfigFile(config_file, config);
    if (!s.ok()) {
      std::cerr << "aloftd: " << s.error().message() << "\n";
      return 2;
    }
  }
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (!listen.empty()) config.listen = listen;
  if (!database.empty()) config.database = database;
  if (!artifacts.empty()) config.artifacts_dir = artifacts;
  if (!trust.empty()) config.trust = trust;
  if (threads >= 0) config.threads = threads;
  if (!tls_cert.empty()) config.tls_cert = tls_cert;
  if (!tls_key.empty()) config.tls_key = tls_key;
  if (!public_url.empty()) config.public_url = public_url;
  if (require_signed) config.require_signed_releases = true;
  if (!web_dir.empty()) config.web_dir = web_dir;
  if (config.data_dir.empty()) {
    std::cerr << "aloftd: no data directory: pass --data DIR (or data_dir in --config)\n";
    return 2;
  }

  // Signals go to one thread that asks the server to stop; the others never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto app = aloft::server::App::Create(config, aloft::SystemClock::Instance(), std::cerr);
  if (!app.ok()) {
    std::cerr << "aloftd: " << app.error().message() << "\n";
    return 1;
  }
  aloft::Status bound = (*app)->Bind();
  if (!bound.ok()) {
    std::cerr << "aloftd: " << bound.error().message() << "\n";
    return 1;
  }
  // One write: the server's threads log too, and scripts read the port from this line.
  std::ostringstream line;
  line << "aloftd: listening on " << config.listen << " (port " << (*app)->port() << ", "
       << (config.tls_cert.empty() ? "http" : "https") << "), data in " << config.data_dir << ", "
       << (config.trust.empty() ? "no trust keys (signed packages refused)"
                                : std::to_string(config.trust.size()) + " trust key(s)")
       << (config.require_signed_releases ? ", signed releases only" : "") << "\n";
  std::cerr << line.str() << std::flush;
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::cerr << "aloftd: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
              << ": finishing running requests, then stopping" << std::endl;
    (*app)->Stop();
  });
  (*app)->Run();
  // Run returned (after Stop): wake the waiter if it is still waiting.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  app->reset();
  std::cerr << "aloftd: stopped" << std::endl;
  return 0;
}
