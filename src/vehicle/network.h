// The gateway's view of the vehicle network: for each ECU of the vehicle description a UDS
// client, over ISO-TP on its CAN bus when the gateway has that bus, else through the DoIP edge
// node; and a functional link per CAN bus (0x7DF and the like) for the requests a campaign sends
// to every ECU at once. Works the same on simulated buses and on real ones (the bus hub).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "can/bus.h"
#include "doip/client.h"
#include "ecusim/vehicle_spec.h"
#include "isotp/channel.h"
#include "uds/client.h"

namespace aloft::vehicle {

struct NetworkConfig {
  uds::ClientConfig client{};
  // A DoIP entity closes a connection idle for 5 minutes (T_TCP_General_Inactivity): the gateway
  // sends its ECUs on Ethernet 3E 80 this often.
  std::chrono::seconds doip_keepalive{60};
};

class Network {
 public:
  // `buses` maps bus names of `spec` to the gateway's connection to them (some may be absent);
  // `doip` (may be null) an activated DoIP client. Each ECU of `spec` must be reachable one way.
  static Result<std::unique_ptr<Network>> Create(const ecusim::VehicleSpec& spec,
                                                 std::map<std::string, can::CanBus*> buses,
                                                 doip::Client* doip, NetworkConfig config = {});
  ~Network();

  const ecusim::VehicleSpec& spec() const { return spec_; }
  std::vector<std::string> ecus() const;
  const ecusim::EcuSpec* ecu(const std::string& name) const;
  uds::Client* client(const std::string& ecu);
  // How the ECU is reached: "powertrain 0x7E0/0x7E8" or "DoIP 0x1010".
  std::string route(const std::string& ecu) const;
  // What the ECU's transfers occupy, one at a time: its CAN bus (directly or behind the DoIP edge
  // node), or "ethernet:NAME" for an ECU on Ethernet (whose own flash is the limit).
  std::string medium(const std::string& ecu) const;
  // The functional link of a CAN bus the gateway has (null otherwise), and the physical links of
  // its ECUs that answer functional requests.
  uds::Link* functional(const std::string& bus);
  std::vector<uds::Link*> answers(const std::string& bus);
  // The CAN buses the gateway has, and one of them by name (null when it has not).
  std::vector<std::string> buses() const;
  can::CanBus* bus(const std::string& name);
  // The bus carrying the vehicle state frames ([signals] bus, or the bus of the ECU that
  // publishes them); null when the gateway does not have it.
  can::CanBus* signal_bus();

 private:
  struct Node {
    std::string name, medium, route;
    bool via_doip = false;
    std::unique_ptr<isotp::Channel> channel{};
    std::unique_ptr<uds::Link> link{};
    std::unique_ptr<uds::Client> client{};
  };
  struct Bus {
    can::CanBus* bus = nullptr;
    std::unique_ptr<isotp::Channel> functional_channel{};
    std::unique_ptr<uds::Link> functional{};
  };
  explicit Network(ecusim::VehicleSpec spec) : spec_(std::move(spec)) {}
  void KeepAlive();
  ecusim::VehicleSpec spec_;
  EventLoop* doip_loop_ = nullptr;
  TimerId keepalive_ = 0;
  std::chrono::seconds keepalive_interval_{60};
  std::map<std::string, Bus> buses_;
  std::vector<Node> nodes_;
};

}  // namespace aloft::vehicle
