#include "boot/boot_model.h"

namespace aloft::boot {
namespace {

Result<BootResult> BootAb(flash::Flash& flash, const Layout& layout, RecordStore& store,
                          BootRecord& r) {
  BootResult out;
  if (r.pending != kNoSlot) {
    const int p = r.pending;
    ALOFT_ASSIGN_OR_RETURN(bool good, ImageMatches(flash, layout.slots[p], r.slots[p]));
    if (good && r.tries_left > 0) {
      --r.tries_left;
      ALOFT_RETURN_IF_ERROR(store.Save(r));
      out.slot = p;
      out.image = r.slots[p];
      out.trial = true;
      out.log = "trial of slot " + std::to_string(p) + " (" + r.slots[p].version + "), " +
                std::to_string(r.tries_left) + " tries left\n";
      return out;
    }
    out.log = std::string("slot ") + std::to_string(p) +
              (good ? ": no tries left" : ": image does not match its hash") +
              ", reverting to slot " + std::to_string(r.active) + "\n";
    r.pending = kNoSlot;
    r.tries_left = 0;
    ALOFT_RETURN_IF_ERROR(store.Save(r));
  }
  for (int s : {int{r.active}, 1 - int{r.active}}) {
    ALOFT_ASSIGN_OR_RETURN(bool good, ImageMatches(flash, layout.slots[s], r.slots[s]));
    if (!good) {
      out.log += "slot " + std::to_string(s) + ": no valid image\n";
      continue;
    }
    if (s != r.active) {
      out.log += "falling back to slot " + std::to_string(s) + "\n";
      r.active = static_cast<uint8_t>(s);
      r.confirmed = true;
      ALOFT_RETURN_IF_ERROR(store.Save(r));
    }
    out.slot = s;
    out.image = r.slots[s];
    out.log += "booting slot " + std::to_string(s) + " (" + r.slots[s].version + ")\n";
    return out;
  }
  return Error(Code::kIntegrity, "no bootable image: " + out.log);
}

Result<BootResult> BootBackup(flash::Flash& flash, const Layout& layout, RecordStore& store,
                              BootRecord& r) {
  BootResult out;
  bool restore = false;
  switch (r.state) {
    case UpdateState::kIdle:
    case UpdateState::kBackingUp: {
      // Running is untouched in both; the agent resumes a backup that was interrupted.
      ALOFT_ASSIGN_OR_RETURN(bool good, ImageMatches(flash, layout.slots[0], r.slots[0]));
      restore = !good;
      if (!good) out.log = "running image does not match its hash\n";
      break;
    }
    case UpdateState::kWriting:
      out.log = "update interrupted while writing the running region\n";
      restore = true;
      break;
    case UpdateState::kTrial: {
      ALOFT_ASSIGN_OR_RETURN(bool good, ImageMatches(flash, layout.slots[0], r.slots[0]));
      if (good && r.tries_left > 0) {
        --r.tries_left;
        ALOFT_RETURN_IF_ERROR(store.Save(r));
        out.image = r.slots[0];
        out.trial = true;
        out.log = "trial of " + r.slots[0].version + ", " + std::to_string(r.tries_left) +
                  " tries left\n";
        return out;
      }
      out.log = good ? "no tries left for the image on trial\n"
                     : "image on trial does not match its hash\n";
      restore = true;
      break;
    }
    case UpdateState::kRestoring:
      out.log = "restore interrupted\n";
      restore = true;
      break;
  }
  if (restore) {
    if (!r.slots[1].valid())
      return Error(Code::kIntegrity, "no bootable image: " + out.log + "and no backup to restore");
    out.log += "restoring " + r.slots[1].version + " from backup\n";
    ALOFT_RETURN_IF_ERROR(RestoreFromBackup(flash, layout, store, r));
  }
  out.image = r.slots[0];
  out.log += "booting running (" + r.slots[0].version + ")\n";
  return out;
}

}  // namespace

Result<BootResult> Boot(flash::Flash& flash, const Layout& layout) {
  RecordStore store(flash, layout.control);
  auto loaded = store.Load();
  if (!loaded.ok()) {
    if (loaded.error().code() == Code::kNotFound) {
      return Error(Code::kIntegrity, "no bootable image: " + loaded.error().message());
    }
    return loaded.error();
  }
  BootRecord r = *loaded;
  if (r.layout != layout.kind) {
    return Error(Code::kIntegrity, "no bootable image: the record is for the " +
                                       std::string(LayoutName(r.layout)) + " layout");
  }
  return layout.kind == LayoutKind::kAb ? BootAb(flash, layout, store, r)
                                        : BootBackup(flash, layout, store, r);
}

}  // namespace aloft::boot
