// The socketcand protocol (linux-can/socketcand), rawmode: ASCII elements "< ... >" over TCP.
// What the bus hub (socketcand_server.h) and its client (socketcand_bus.h) speak, and what
// python-can's "socketcand" interface speaks to them.
//
//   server: < hi >                     client: < open powertrain >
//   server: < ok >                     client: < rawmode >
//   server: < ok >
//   client: < send 7E0 8 2 10 3 0 0 0 0 0 >        (identifier, length, bytes, all hex)
//   server: < frame 7E8 1765000000.123456 065003003201F4AA >   (time, bytes run together)
//
// An 8-digit identifier (or one above 0x7FF) is an extended one, as socketcand reads it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "can/frame.h"
#include "core/error.h"

namespace aloft::can::socketcand {

// The longest element either side accepts ("< frame " + 8 + 18 + 128 + " >" fits with room).
constexpr size_t kMaxElement = 512;

// Takes the first complete element off the front of `buffer` and returns what is between its
// angle brackets, trimmed. nullopt when no element is complete yet; kMalformed when the text
// before it is not whitespace or an element grows past kMaxElement.
Result<std::optional<std::string>> TakeElement(std::string& buffer);

struct Command {
  std::string verb;               // "open", "send", "frame", "rawmode", ...
  std::vector<std::string> args;  // the words after it
};
Command Split(std::string_view element);

// "< send id len b0 b1 .. >" into a classic frame; kMalformed naming what is wrong.
Result<Frame> ParseSend(const Command& c);
// "< frame id secs.usecs bytes >" into a frame and its time.
Result<std::pair<Frame, std::chrono::system_clock::time_point>> ParseFrame(const Command& c);

std::string FormatSend(const Frame& f);
std::string FormatFrame(const Frame& f, std::chrono::system_clock::time_point at);

}  // namespace aloft::can::socketcand
