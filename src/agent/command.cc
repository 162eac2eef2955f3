#include "agent/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace aloft::agent {
namespace {

std::string LastLine(std::string_view out) {
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.remove_suffix(1);
  size_t nl = out.rfind('\n');
  return std::string(nl == std::string_view::npos ? out : out.substr(nl + 1));
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace

Result<std::string> RunCommand(const std::string& command, std::chrono::seconds timeout,
                               const std::vector<std::string>& env) {
  const std::string quoted = "'" + command + "'";
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoError(quoted + ": pipe", errno);
  Fd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawnattr_t attr;  // its own process group: a timeout kills what it started too
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError(quoted, rc);
  write_end.Reset();

  // Read while the command runs; once it has exited, what is left in the pipe (a background
  // child of the command may keep it open: not waited for).
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  bool exited = false, eof = false;
  auto read_some = [&] {  // after poll said readable; false at EOF
    char buf[1024];
    ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got > 0 && out.size() < kMaxCommandOutput) {
      out.append(buf, std::min<size_t>(got, kMaxCommandOutput - out.size()));
    }
    eof = got <= 0;
    return !eof;
  };
  while (!exited) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return Error(Code::kUnavailable,
                   quoted + " timed out after " + std::to_string(timeout.count()) + " s");
    }
    pollfd p{read_end.get(), POLLIN, 0};
    if (!eof && ::poll(&p, 1, 20) > 0) {
      if (read_some()) continue;  // more may be waiting
    } else if (eof) {
      ::usleep(10'000);
    }
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r < 0 && errno != EINTR) return ErrnoError(quoted + ": waitpid", errno);
    exited = r == pid;
  }
  // What it wrote just before exiting (a background child's later output is not waited for).
  for (pollfd p{read_end.get(), POLLIN, 0}; !eof && ::poll(&p, 1, 0) > 0 && read_some();) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return out;
  std::string why = WIFEXITED(status)
                        ? quoted + " exited with status " + std::to_string(WEXITSTATUS(status))
                        : quoted + " was killed by signal " + std::to_string(WTERMSIG(status));
  if (std::string last = LastLine(out); !last.empty()) why += " (" + last + ")";
  return Error(Code::kUnavailable, why);
}

}  // namespace aloft::agent
