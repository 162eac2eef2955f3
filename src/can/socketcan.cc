#include "can/socketcan.h"

#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aloft::can {

Result<std::unique_ptr<SocketCanBus>> SocketCanBus::Open(EventLoop& loop, const std::string& ifname,
                                                         BitRates rates) {
  net::Fd s(::socket(PF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW));
  if (!s.valid()) {
    return Error(Code::kUnavailable,
                 std::string("SocketCAN: this kernel has no CAN (socket(PF_CAN): ") +
                     std::strerror(errno) + ")");
  }
  if (ifname.size() >= IFNAMSIZ) {
    return Error(Code::kInvalidArgument, "SocketCAN: interface name '" + ifname + "' too long");
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFINDEX, &ifr) != 0) {
    return Error(Code::kUnavailable,
                 "SocketCAN: no interface '" + ifname + "' (" + std::strerror(errno) + ")");
  }
  const int index = ifr.ifr_ifindex;
  bool fd = false;
  if (::ioctl(s.get(), SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu == CANFD_MTU) {
    int on = 1;
    fd = ::setsockopt(s.get(), SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &on, sizeof on) == 0;
  }
  int on = 1;
  // Our own frames come back (flagged MSG_CONFIRM): the transmit confirmation ISO-TP times.
  ::setsockopt(s.get(), SOL_CAN_RAW, CAN_RAW_RECV_OWN_MSGS, &on, sizeof on);
  can_err_mask_t errors = CAN_ERR_MASK;
  ::setsockopt(s.get(), SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &errors, sizeof errors);
  sockaddr_can addr{};
  addr.can_family = AF_CAN;
  addr.can_ifindex = index;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Error(Code::kUnavailable,
                 "SocketCAN: bind to '" + ifname + "': " + std::strerror(errno));
  }
  return std::unique_ptr<SocketCanBus>(new SocketCanBus(loop, std::move(s), ifname, rates, fd));
}

SocketCanBus::SocketCanBus(EventLoop& loop, net::Fd socket, std::string ifname, BitRates rates,
                           bool fd)
    : loop_(loop),
      socket_(std::move(socket)),
      ifname_(std::move(ifname)),
      rates_(rates),
      fd_frames_(fd) {
  reader_ = std::thread([this] { ReadLoop(); });
}

SocketCanBus::~SocketCanBus() {
  *alive_ = false;
  ::shutdown(socket_.get(), SHUT_RDWR);
  socket_.Reset();  // a raw CAN socket's recv returns once it is closed
  reader_.join();
}

Status SocketCanBus::Send(const Frame& f) {
  ALOFT_RETURN_IF_ERROR(Validate(f));
  if (f.fd && !fd_frames_) {
    return Error(Code::kInvalidArgument, ifname_ + " does not carry CAN FD frames (MTU)");
  }
  canfd_frame out{};
  out.can_id = f.id | (f.extended ? CAN_EFF_FLAG : 0) | (f.remote ? CAN_RTR_FLAG : 0);
  const int len = f.length();
  out.len = static_cast<uint8_t>(len);
  if (f.remote) out.len = static_cast<uint8_t>(std::min<int>(f.dlc, 8));
  out.flags = static_cast<uint8_t>((f.brs ? CANFD_BRS : 0) | (f.esi ? CANFD_ESI : 0));
  std::memcpy(out.data, f.data.data(), static_cast<size_t>(len));
  const size_t size = f.fd ? CANFD_MTU : CAN_MTU;
  if (::write(socket_.get(), &out, size) != static_cast<ssize_t>(size)) {
    if (errno == ENOBUFS || errno == EAGAIN) {
      return Error(Code::kUnavailable, ifname_ + ": transmit queue full");
    }
    return ErrnoError(ifname_ + ": write", errno);
  }
  return OkStatus();
}

void SocketCanBus::ReadLoop() {
  while (true) {
    canfd_frame in{};
    iovec iov{&in, sizeof in};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(socket_.get(), &msg, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || !*alive_) return;
    CanEvent e;
    e.frame.extended = in.can_id & CAN_EFF_FLAG;
    e.frame.remote = in.can_id & CAN_RTR_FLAG;
    e.frame.id = in.can_id & (e.frame.extended ? CAN_EFF_MASK : CAN_SFF_MASK);
    e.frame.fd = n == static_cast<ssize_t>(CANFD_MTU);
    e.frame.brs = e.frame.fd && (in.flags & CANFD_BRS);
    e.frame.esi = e.frame.fd && (in.flags & CANFD_ESI);
    e.frame.dlc = e.frame.fd ? LengthToDlc(in.len) : std::min<uint8_t>(in.len, 8);
    std::memcpy(e.frame.data.data(), in.data, std::min<size_t>(in.len, 64));
    if (in.can_id & CAN_ERR_FLAG) {
      e.kind = CanEvent::Kind::kError;
      e.detail = "error frame, class 0x" + std::to_string(in.can_id & CAN_ERR_MASK);
      if (in.can_id & CAN_ERR_BUSOFF) {
        e.kind = CanEvent::Kind::kState;
        e.state = NodeState::kBusOff;
      } else if ((in.can_id & CAN_ERR_CRTL) &&
                 (in.data[1] & (CAN_ERR_CRTL_TX_PASSIVE | CAN_ERR_CRTL_RX_PASSIVE))) {
        e.kind = CanEvent::Kind::kState;
        e.state = NodeState::kErrorPassive;
      } else if (in.can_id & CAN_ERR_RESTARTED) {
        e.kind = CanEvent::Kind::kState;
        e.state = NodeState::kErrorActive;
      }
      if (e.kind == CanEvent::Kind::kState) state_ = e.state;
    } else {
      e.kind = (msg.msg_flags & MSG_CONFIRM) ? CanEvent::Kind::kSent : CanEvent::Kind::kFrame;
    }
    loop_.Post([this, alive = alive_, e]() mutable {
      if (!*alive) return;
      e.at = loop_.Now();
      listeners_.Notify(e);
    });
  }
}

}  // namespace aloft::can
