// SocketCAN on a virtual CAN interface: two sockets on vcan0, a frame from one heard by the
// other and confirmed to the sender. Skips, saying why, where the kernel has no CAN (these
// machines) or no vcan0 (`ip link add dev vcan0 type vcan && ip link set up vcan0`).
#include "can/socketcan.h"

#include <gtest/gtest.h>

#include <future>

#include "support/matchers.h"

namespace aloft::can {
namespace {

TEST(SocketCan, TwoSocketsOnVcan_FrameHeardAndConfirmed) {
  RealLoop loop;
  auto a = SocketCanBus::Open(loop, "vcan0");
  if (!a.ok()) GTEST_SKIP() << a.error().message();
  auto b = SocketCanBus::Open(loop, "vcan0");
  ASSERT_THAT(b, IsOk());
  std::promise<Frame> heard, confirmed;
  loop.Run([&] {
    (*b)->AddListener([&](const CanEvent& e) {
      if (e.kind == CanEvent::Kind::kFrame) heard.set_value(e.frame);
    });
    (*a)->AddListener([&](const CanEvent& e) {
      if (e.kind == CanEvent::Kind::kSent) confirmed.set_value(e.frame);
    });
  });
  const Frame f = Frame::Classic(0x18DA10F1, true, {0x02, 0x10, 0x03});
  ASSERT_THAT((*a)->Send(f), IsOk());
  auto h = heard.get_future();
  auto c = confirmed.get_future();
  ASSERT_EQ(h.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_EQ(h.get(), f);
  ASSERT_EQ(c.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_EQ(c.get(), f);
  loop.Run([&] {
    a->reset();
    b->reset();
  });
}

TEST(SocketCan, NoSuchInterface_NamedInTheError) {
  RealLoop loop;
  auto bus = SocketCanBus::Open(loop, "nosuchcan9");
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.error().code(), Code::kUnavailable);
  EXPECT_TRUE(bus.error().message().find("no CAN") != std::string::npos ||
              bus.error().message().find("nosuchcan9") != std::string::npos)
      << bus.error().message();
}

}  // namespace
}  // namespace aloft::can
