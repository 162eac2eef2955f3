// The end's checks (docs/fleet-sim.md): every device's record on the server against what the
// device did. Lost: a device finished an action the server holds otherwise (or holds none), or
// the server closed an action the device never finished. Duplicated: a device given more than
// one action of the rollout, an action offered again after it was finished, or two actions of
// the release for one device on the server. Wrong version: the server says a device runs a
// version it never reported. Mixed: the server shows a vehicle's ECUs on different versions (a
// car must be all-new or all-old).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "fleetsim/fleet.h"

namespace aloft::fleetsim {

struct CheckReport {
  uint64_t devices = 0;
  uint64_t lost = 0, duplicated = 0, wrong_version = 0, mixed = 0;
  uint64_t on_release = 0;     // devices the server has on the release's version
  uint64_t vanished_open = 0;  // vanished devices whose action stays open (as it should)
  std::map<std::string, uint64_t> server_states;  // the release's actions by state
  std::vector<std::string> examples;              // the first few problems, one line each
  bool ok() const { return lost == 0 && duplicated == 0 && wrong_version == 0 && mixed == 0; }
};

// The server's view, read through the management API at `base` with `admin_token`.
struct ServerView {
  struct Action {
    int64_t id = 0;
    std::string state;
  };
  std::map<std::string, std::vector<Action>> actions;  // by device, the releases' only
  // By device: the version its modules run, or "mixed: ecm 2.0.0, tcm 1.0.0" when they differ.
  std::map<std::string, std::string> versions;
};
// `releases`: "name@version" of each release the scenario rolled out.
Result<ServerView> ReadServerView(const std::string& base, const std::string& admin_token,
                                  const std::vector<std::string>& releases);

CheckReport Check(const Fleet& fleet, const ServerView& server, uint64_t duplicate_offers);

}  // namespace aloft::fleetsim
