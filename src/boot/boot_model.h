// The boot model: a simulated bootloader. At every reset it reads the boot-control record, picks
// the image to start, verifies its SHA-256 against the record, counts the tries of an image on
// trial and falls back when they run out or the image is bad. Power-loss tests trust only what it
// boots, never the agent's opinion of itself. It writes the flash too (tries, reverts, restores),
// so a power cut can hit it as well; it is then simply run again, as a real device resets again.
//
//   ALOFT_ASSIGN_OR_RETURN(BootResult booted, Boot(flash, layout));
//   // booted.image.sha256 is the image the device now runs
#pragma once

#include <string>

#include "boot/layout.h"
#include "boot/record.h"

namespace aloft::boot {

struct BootResult {
  int slot = 0;        // ab: the slot started; backup: 0 (running)
  ImageSlot image;     // the image started, as the record describes it (hash verified)
  bool trial = false;  // an image on trial (not yet confirmed)
  std::string log;     // what the bootloader did, one line per decision
};

// Starts the device. Errors: kIntegrity "no bootable image: ..." (a brick), or the flash's own
// error (kUnavailable when power is cut while the bootloader writes).
Result<BootResult> Boot(flash::Flash& flash, const Layout& layout);

}  // namespace aloft::boot
