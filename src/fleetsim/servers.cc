#include "fleetsim/servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/file.h"

namespace aloft::fleetsim {

namespace {

// Runs `command` through the shell; its standard output (trimmed), or why it failed. Not
// popen: the child must not inherit the simulator's descriptors (thousands of device sockets),
// or a broker it starts keeps them, and their limit, for its whole life.
Result<std::string> Shell(const std::string& command) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return ErrnoError("fork", errno);
  }
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close_range(3, ~0U, 0);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error(Code::kUnavailable, command + " failed: " + text);
  }
  return text;
}

}  // namespace

uint16_t FreePort() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ std::random_device{}());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const uint16_t port = static_cast<uint16_t>(20000 + rng() % 30000);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (free) return port;
  }
  return 0;
}

ProcessSample SampleProcess(pid_t pid) {
  ProcessSample s;
  if (pid <= 0) return s;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream stat(dir + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
  const size_t close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(text.substr(close + 2));
    std::string field;
    int64_t utime = 0, stime = 0;
    for (int k = 3; k <= 15 && (in >> field); ++k) {
      if (k == 14) utime = std::atoll(field.c_str());
      if (k == 15) stime = std::atoll(field.c_str());
    }
    s.cpu_ms = (utime + stime) * 1000 / ::sysconf(_SC_CLK_TCK);
  }
  std::ifstream status(dir + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atoll(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) s.peak_rss_kib = std::atoll(line.c_str() + 6);
    if (line.rfind("RssAnon:", 0) == 0) s.anon_kib = std::atoll(line.c_str() + 8);
  }
  return s;
}

ProcessSample Servers::SamplePostgres() const {
  ProcessSample total;
  if (pg_dir_.empty()) return total;
  std::ifstream pid_file(pg_dir_ + "/data/postmaster.pid");
  pid_t postmaster = 0;
  if (!(pid_file >> postmaster) || postmaster <= 0) return total;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::atoll(name.c_str()));
    bool ours = pid == postmaster;
    if (!ours) {
      std::ifstream stat(entry.path() / "stat");
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const size_t close = text.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream in(text.substr(close + 2));
      std::string state;
      pid_t ppid = 0;
      in >> state >> ppid;
      ours = ppid == postmaster;
    }
    if (!ours) continue;
    const ProcessSample p = SampleProcess(pid);
    total.cpu_ms += p.cpu_ms;
    total.rss_kib += p.anon_kib;
  }
  return total;
}

Servers::Servers(const Scenario& scenario, Options options)
    : scenario_(scenario), o_(std::move(options)) {}

Servers::~Servers() { StopAll(); }

std::vector<std::string> Servers::bases() const {
  std::vector<std::string> out;
  for (const Proc& p : procs_) out.push_back(p.base);
  return out;
}

Status Servers::StartPostgres() {
  pg_dir_ = o_.work_dir + "/pg";
  if (pg_port_ == 0) pg_port_ = FreePort();
  ALOFT_ASSIGN_OR_RETURN(database_, Shell("'" + o_.scripts_dir + "/pg.sh' start '" + pg_dir_ +
                                          "' " + std::to_string(pg_port_) + " 2>&1"));
  return OkStatus();
}

Status Servers::StartBroker() {
  broker_dir_ = o_.work_dir + "/broker";
  if (broker_port_ == 0) broker_port_ = FreePort();
  ALOFT_ASSIGN_OR_RETURN(broker_url_,
                         Shell("'" + o_.scripts_dir + "/mqtt.sh' start '" + broker_dir_ + "' " +
                               std::to_string(broker_port_) + " 2>&1"));
  return OkStatus();
}

Status Servers::RestartBroker() {
  if (broker_dir_.empty()) return Error(Code::kInvalidArgument, "no MQTT broker to restart");
  ALOFT_ASSIGN_OR_RETURN(
      broker_url_, Shell("'" + o_.scripts_dir + "/mqtt.sh' restart '" + broker_dir_ + "' 2>&1"));
  return OkStatus();
}

pid_t Servers::broker_pid() const {
  if (broker_dir_.empty()) return 0;
  std::ifstream in(broker_dir_ + "/mosquitto.pid");
  pid_t pid = 0;
  return (in >> pid) ? pid : 0;
}

Status Servers::Start() {
  // PostgreSQL runs as `postgres` when we are root: it must reach the work directory.
  ::chmod(o_.work_dir.c_str(), 0755);
  if (scenario_.database == "postgres") {
    ALOFT_RETURN_IF_ERROR(StartPostgres());
  } else {
    database_ = o_.work_dir + "/aloft.db";
  }
  std::string toml = "rollout_tick_ms = " + std::to_string(o_.rollout_tick_ms) +
                     "\nrollout_lease_s = 3\nartifacts_dir = \"" + o_.work_dir +
                     "/artifacts\"\npoll_interval_active_s = 5\n" + o_.extra_config;
  if (scenario_.Uses(Protocol::kMqtt)) {
    ALOFT_RETURN_IF_ERROR(StartBroker());
    // Every aloftd keeps the broker's files; with several, they share the devices' messages.
    toml += "mqtt_url = \"" + broker_url_ + "\"\nmqtt_broker_passwd = \"" + broker_dir_ +
            "/passwd\"\nmqtt_broker_acl = \"" + broker_dir_ + "/acl\"\nmqtt_broker_pid = \"" +
            broker_dir_ + "/mosquitto.pid\"\n";
    if (scenario_.servers > 1) toml += "mqtt_group = \"aloftd\"\n";
  }
  const std::string config = o_.work_dir + "/aloftd.toml";
  ALOFT_RETURN_IF_ERROR(WriteFileAtomic(config, toml));
  procs_.resize(static_cast<size_t>(scenario_.servers));
  for (int k = 0; k < scenario_.servers; ++k) {
    Proc& p = procs_[k];
    p.dir = o_.work_dir + "/server-" + std::to_string(k);
    p.log = o_.work_dir + "/server-" + std::to_string(k) + ".log";
    p.port = FreePort();
    p.base = "http://127.0.0.1:" + std::to_string(p.port);
    ALOFT_RETURN_IF_ERROR(StartServer(k));
    if (k == 0) {
      ALOFT_ASSIGN_OR_RETURN(admin_token_, ReadFile(p.dir + "/admin.token", 4096));
      while (!admin_token_.empty() && admin_token_.back() == '\n') admin_token_.pop_back();
    }
  }
  return OkStatus();
}

Status Servers::StartServer(int k) {
  Proc& p = procs_[k];
  if (p.pid > 0) return OkStatus();
  std::filesystem::create_directories(p.dir);
  const size_t log_before = std::filesystem::exists(p.log) ? std::filesystem::file_size(p.log) : 0;
  const std::string config = o_.work_dir + "/aloftd.toml";
  const std::string listen = "127.0.0.1:" + std::to_string(p.port);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    // It dies with the simulator, even one killed with SIGKILL.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    // None of the simulator's descriptors (device sockets by the thousand) go with it.
    ::close_range(3, ~0U, 0);
    const int fd = ::open(p.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 2);
      ::dup2(fd, 1);
    }
    ::execl(o_.aloftd.c_str(), o_.aloftd.c_str(), "--config", config.c_str(), "--data",
            p.dir.c_str(), "--database", database_.c_str(), "--listen", listen.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  p.pid = pid;
  // Up once its log says it listens (after what the log held before).
  for (int i = 0; i < 1200; ++i) {
    std::ifstream in(p.log);
    in.seekg(static_cast<std::streamoff>(log_before));
    std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (rest.find("listening on") != std::string::npos) return OkStatus();
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      p.pid = 0;
      return Error(Code::kUnavailable, "aloftd " + std::to_string(k) + " exited: " + rest);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Error(Code::kUnavailable,
               "aloftd " + std::to_string(k) + " did not listen within 60 s (see " + p.log + ")");
}

Status Servers::Kill(int k) {
  Proc& p = procs_[k];
  if (p.pid <= 0) return OkStatus();
  ::kill(p.pid, SIGKILL);
  int status = 0;
  ::waitpid(p.pid, &status, 0);
  p.pid = 0;
  return OkStatus();
}

Status Servers::RestartPostgres() {
  if (pg_dir_.empty()) return Error(Code::kInvalidArgument, "no PostgreSQL to restart");
  ALOFT_RETURN_IF_ERROR(Shell("'" + o_.scripts_dir + "/pg.sh' stop '" + pg_dir_ + "' 2>&1"));
  return StartPostgres();
}

void Servers::StopAll() {
  for (Proc& p : procs_) {
    if (p.pid <= 0) continue;
    ::kill(p.pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100 && ::waitpid(p.pid, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(p.pid, SIGKILL);
    ::waitpid(p.pid, &status, 0);
    p.pid = 0;
  }
  if (!pg_dir_.empty()) {
    (void)Shell("'" + o_.scripts_dir + "/pg.sh' stop '" + pg_dir_ + "' >/dev/null 2>&1");
    pg_dir_.clear();
  }
  if (!broker_dir_.empty()) {
    (void)Shell("'" + o_.scripts_dir + "/mqtt.sh' stop '" + broker_dir_ + "' >/dev/null 2>&1");
    broker_dir_.clear();
  }
}

}  // namespace aloft::fleetsim
