// Aloft's MQTT topics (docs/mqtt.md): every device has its own subtree, named by its device name,
// which is also its MQTT user name, so one ACL pattern confines every device to it.
//
//   aloft/v1/d/{device}/up/{property|event|report}   device -> server
//   aloft/v1/d/{device}/down/{command|error}         server -> device
//
// A gateway publishes and receives its sub-devices' messages on its own topics, wrapped as
// {"device": "<sub-device>", "event": {...}} (up) and {"device": ..., "command": {...}} (down);
// the server checks that the sub-device is registered behind that gateway.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aloft::mqtt {

inline constexpr std::string_view kTopicRoot = "aloft/v1/d/";

inline std::string UpTopic(std::string_view device, std::string_view kind) {
  return std::string(kTopicRoot) + std::string(device) + "/up/" + std::string(kind);
}
inline std::string DownTopic(std::string_view device, std::string_view kind) {
  return std::string(kTopicRoot) + std::string(device) + "/down/" + std::string(kind);
}
// What the server's bridge subscribes to: every device's up topics; with a `group`, shared by the
// aloftd instances of that group (each message goes to one of them). Mosquitto 2.0 keeps no
// messages for a shared subscription whose members are all offline (mqtt_test shows a plain
// persistent subscription does), so one instance subscribes plainly.
inline std::string BridgeSubscription(std::string_view group) {
  std::string topic = std::string(kTopicRoot) + "+/up/#";
  return group.empty() ? topic : "$share/" + std::string(group) + "/" + topic;
}

struct UpTopicParts {
  std::string device, kind;
};
// "aloft/v1/d/dev-1/up/event" -> {dev-1, event}; nullopt for anything else.
inline std::optional<UpTopicParts> ParseUpTopic(std::string_view topic) {
  if (!topic.starts_with(kTopicRoot)) return std::nullopt;
  topic.remove_prefix(kTopicRoot.size());
  size_t slash = topic.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  std::string_view device = topic.substr(0, slash), rest = topic.substr(slash);
  if (!rest.starts_with("/up/") || rest.size() == 4) return std::nullopt;
  std::string_view kind = rest.substr(4);
  if (kind.find('/') != std::string_view::npos) return std::nullopt;
  return UpTopicParts{std::string(device), std::string(kind)};
}

// The broker's ACL file (Mosquitto acl_file syntax): each bridge user (one per aloftd) reads
// every device's up topics and writes their down topics; every other user (a device: user name =
// device name) writes only its own up topics and reads only its own down topics.
inline std::string BrokerAcl(const std::vector<std::string>& bridge_users) {
  std::string root(kTopicRoot);
  std::string out = "# Written by aloftd; changes are overwritten.\n";
  for (const auto& user : bridge_users) {
    out += "user " + user + "\ntopic read " + root + "+/up/#\ntopic write " + root + "+/down/#\n\n";
  }
  return out + "# Each device (its MQTT user name is its device name) has its own topics only.\n" +
         "pattern write " + root + "%u/up/#\n" + "pattern read " + root + "%u/down/#\n";
}

}  // namespace aloft::mqtt
