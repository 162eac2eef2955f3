#include "pkg/tar.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace aloft::pkg {
namespace {

// ustar header field offsets and lengths (POSIX.1-2017, pax: ustar Interchange Format).
constexpr size_t kNameOff = 0, kNameLen = 100;
constexpr size_t kModeOff = 100, kUidOff = 108, kGidOff = 116, kIdLen = 8;
constexpr size_t kSizeOff = 124, kSizeLen = 12;
constexpr size_t kMtimeOff = 136, kMtimeLen = 12;
constexpr size_t kChksumOff = 148, kChksumLen = 8;
constexpr size_t kTypeOff = 156;
constexpr size_t kMagicOff = 257, kVersionOff = 263;
constexpr size_t kDevMajorOff = 329, kDevMinorOff = 337;
constexpr size_t kPrefixOff = 345, kPrefixLen = 155;

using Block = std::array<uint8_t, kTarBlock>;

void PutOctal(Block& b, size_t off, size_t len, uint64_t value) {
  // len-1 zero-padded octal digits and a NUL.
  for (size_t i = len - 1; i-- > 0;) {
    b[off + i] = uint8_t('0' + (value & 7));
    value >>= 3;
  }
  b[off + len - 1] = 0;
}

void PutString(Block& b, size_t off, size_t len, std::string_view s) {
  std::memcpy(b.data() + off, s.data(), std::min(len, s.size()));
}

uint64_t Checksum(const Block& b) {
  uint64_t sum = 0;
  for (size_t i = 0; i < kTarBlock; ++i) {
    sum += (i >= kChksumOff && i < kChksumOff + kChksumLen) ? uint8_t(' ') : b[i];
  }
  return sum;
}

Block MakeHeader(std::string_view name, uint64_t size, char type, uint64_t mtime) {
  Block b{};
  PutString(b, kNameOff, kNameLen, name.substr(0, kNameLen));
  PutOctal(b, kModeOff, kIdLen, 0644);
  PutOctal(b, kUidOff, kIdLen, 0);
  PutOctal(b, kGidOff, kIdLen, 0);
  PutOctal(b, kSizeOff, kSizeLen, std::min(size, kUstarMaxSize));
  PutOctal(b, kMtimeOff, kMtimeLen, std::min<uint64_t>(mtime, 077777777777));
  b[kTypeOff] = uint8_t(type);
  PutString(b, kMagicOff, 6, std::string_view("ustar\0", 6));
  PutString(b, kVersionOff, 2, "00");
  PutOctal(b, kDevMajorOff, kIdLen, 0);
  PutOctal(b, kDevMinorOff, kIdLen, 0);
  // Checksum: six octal digits, NUL, space (the form every tar writes).
  uint64_t sum = Checksum(b);
  for (int i = 5; i >= 0; --i) {
    b[kChksumOff + i] = uint8_t('0' + (sum & 7));
    sum >>= 3;
  }
  b[kChksumOff + 6] = 0;
  b[kChksumOff + 7] = ' ';
  return b;
}

// "<len> key=value\n", where len counts the whole record including its own digits.
std::string PaxRecord(std::string_view key, std::string_view value) {
  size_t body = 1 + key.size() + 1 + value.size() + 1;
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

bool AllZero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c == 0; });
}

// Numeric field: octal digits, optionally led by spaces, ended by NUL or space; or GNU base-256
// (high bit of the first byte set). nullopt when malformed.
std::optional<uint64_t> ParseNumeric(const Block& b, size_t off, size_t len) {
  if (b[off] & 0x80) {
    if (b[off] != 0x80) return std::nullopt;  // negative or too large
    uint64_t v = 0;
    for (size_t i = 1; i < len; ++i) {
      if (v >> 56) return std::nullopt;
      v = v << 8 | b[off + i];
    }
    return v;
  }
  size_t i = off, end = off + len;
  while (i < end && b[i] == ' ') ++i;
  size_t digits_start = i;
  uint64_t v = 0;
  for (; i < end && b[i] >= '0' && b[i] <= '7'; ++i) {
    if (v >> 60) return std::nullopt;
    v = v << 3 | uint64_t(b[i] - '0');
  }
  if (i == digits_start) return std::nullopt;
  for (; i < end; ++i) {
    if (b[i] != 0 && b[i] != ' ') return std::nullopt;
  }
  return v;
}

std::string FieldString(const Block& b, size_t off, size_t len) {
  const char* p = reinterpret_cast<const char*>(b.data() + off);
  return std::string(p, strnlen(p, len));
}

}  // namespace

std::string QuoteName(std::string_view name) {
  std::string out = "'";
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += "?";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

bool IsSafeEntryName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    std::string_view part = name.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == ".." || part == "." || part.empty()) return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

Status TarWriter::WriteRaw(ByteSpan data) {
  ALOFT_RETURN_IF_ERROR(sink_.Write(data));
  offset_ += data.size();
  return OkStatus();
}

Status TarWriter::BeginEntry(std::string_view name, uint64_t size) {
  if (open_name_) return Error(Code::kInternal, "tar entry '" + *open_name_ + "' still open");
  if (!IsSafeEntryName(name)) {
    return Error(Code::kInvalidArgument, "unsafe tar entry name " + QuoteName(name));
  }
  if (name.size() > kUstarMaxName || size > kUstarMaxSize) {
    std::string records;
    if (name.size() > kUstarMaxName) records += PaxRecord("path", name);
    if (size > kUstarMaxSize) records += PaxRecord("size", std::to_string(size));
    Block pax =
        MakeHeader("PaxHeaders/" + std::string(name.substr(0, 80)), records.size(), 'x', mtime_);
    ALOFT_RETURN_IF_ERROR(WriteRaw(pax));
    ALOFT_RETURN_IF_ERROR(WriteRaw(AsBytes(records)));
    Block zeros{};
    size_t pad = (kTarBlock - records.size() % kTarBlock) % kTarBlock;
    ALOFT_RETURN_IF_ERROR(WriteRaw(ByteSpan(zeros.data(), pad)));
  }
  Block header = MakeHeader(name, size, '0', mtime_);
  ALOFT_RETURN_IF_ERROR(WriteRaw(header));
  open_name_ = std::string(name);
  left_ = entry_size_ = size;
  return OkStatus();
}

Status TarWriter::Write(ByteSpan data) {
  if (!open_name_) return Error(Code::kInternal, "tar write with no open entry");
  if (data.size() > left_) {
    return Error(Code::kInternal, "tar entry '" + *open_name_ + "' is longer than announced");
  }
  left_ -= data.size();
  return WriteRaw(data);
}

Status TarWriter::EndEntry() {
  if (!open_name_) return Error(Code::kInternal, "tar EndEntry with no open entry");
  if (left_ != 0) {
    return Error(Code::kInternal, "tar entry '" + *open_name_ + "' is " + std::to_string(left_) +
                                      " bytes shorter than announced");
  }
  Block zeros{};
  size_t pad = (kTarBlock - entry_size_ % kTarBlock) % kTarBlock;
  ALOFT_RETURN_IF_ERROR(WriteRaw(ByteSpan(zeros.data(), pad)));
  open_name_.reset();
  return OkStatus();
}

Status TarWriter::Finish() {
  if (open_name_) return Error(Code::kInternal, "tar entry '" + *open_name_ + "' still open");
  Block zeros{};
  ALOFT_RETURN_IF_ERROR(WriteRaw(zeros));
  return WriteRaw(zeros);
}

Status TarReader::ReadExact(std::span<uint8_t> buf, std::string_view what) {
  size_t done = 0;
  while (done < buf.size()) {
    ALOFT_ASSIGN_OR_RETURN(size_t n, source_.Read(buf.subspan(done)));
    if (n == 0) {
      return Error(Code::kMalformed, "archive truncated: it ends at offset " +
                                         std::to_string(offset_ + done) + " inside " +
                                         std::string(what));
    }
    done += n;
  }
  offset_ += buf.size();
  return OkStatus();
}

Status TarReader::FinishEntry() {
  if (!current_) return OkStatus();
  std::array<uint8_t, 8192> buf;
  const std::string what = "entry " + QuoteName(current_->name) + " (declared " +
                           std::to_string(current_->size) + " bytes)";
  while (left_ > 0) {
    size_t n = size_t(std::min<uint64_t>(left_, buf.size()));
    ALOFT_RETURN_IF_ERROR(ReadExact(std::span<uint8_t>(buf.data(), n), what));
    left_ -= n;
  }
  size_t pad = (kTarBlock - current_->size % kTarBlock) % kTarBlock;
  ALOFT_RETURN_IF_ERROR(ReadExact(std::span<uint8_t>(buf.data(), pad), "padding of " + what));
  if (!AllZero(ByteSpan(buf.data(), pad))) {
    return Error(Code::kMalformed, "non-zero padding after entry " + QuoteName(current_->name) +
                                       " at offset " + std::to_string(offset_ - pad));
  }
  current_.reset();
  return OkStatus();
}

Status TarReader::CheckEnd() {
  // After the first zero block: the second must follow, then nothing but zeros (GNU tar pads
  // archives to 10 KiB records).
  Block b;
  uint64_t at = offset_;
  ALOFT_RETURN_IF_ERROR(ReadExact(b, "the end-of-archive marker"));
  if (!AllZero(b)) {
    return Error(Code::kMalformed, "a lone zero block at offset " + std::to_string(at - kTarBlock) +
                                       " (the end-of-archive marker is two zero blocks)");
  }
  while (true) {
    ALOFT_ASSIGN_OR_RETURN(size_t n, source_.Read(b));
    if (n == 0) break;
    if (!AllZero(ByteSpan(b.data(), n))) {
      return Error(Code::kMalformed,
                   "data after the end-of-archive marker at offset " + std::to_string(offset_));
    }
    offset_ += n;
  }
  ended_ = true;
  return OkStatus();
}

Result<std::optional<TarEntry>> TarReader::Next() {
  if (ended_) return std::optional<TarEntry>();
  ALOFT_RETURN_IF_ERROR(FinishEntry());

  std::optional<std::string> pax_path;
  std::optional<uint64_t> pax_size;
  uint64_t first_header = offset_;
  bool had_pax = false;
  while (true) {
    Block b;
    uint64_t at = offset_;
    ALOFT_RETURN_IF_ERROR(ReadExact(b, "a header (the end-of-archive marker is missing)"));
    if (AllZero(b)) {
      if (had_pax) {
        return Error(Code::kMalformed, "pax header at offset " + std::to_string(first_header) +
                                           " describes no entry");
      }
      ALOFT_RETURN_IF_ERROR(CheckEnd());
      return std::optional<TarEntry>();
    }
    const std::string where = " at offset " + std::to_string(at);
    auto stored = ParseNumeric(b, kChksumOff, kChksumLen);
    if (!stored || *stored != Checksum(b)) {
      return Error(Code::kMalformed, "tar header checksum mismatch" + where);
    }
    // POSIX "ustar\0"; GNU tar's "ustar " is accepted too.
    if (std::memcmp(b.data() + kMagicOff, "ustar", 5) != 0 ||
        (b[kMagicOff + 5] != 0 && b[kMagicOff + 5] != ' ')) {
      return Error(Code::kMalformed, "not a ustar header (bad magic)" + where);
    }
    auto size = ParseNumeric(b, kSizeOff, kSizeLen);
    if (!size) return Error(Code::kMalformed, "bad size field in tar header" + where);
    std::string name = FieldString(b, kNameOff, kNameLen);
    std::string prefix = FieldString(b, kPrefixOff, kPrefixLen);
    if (!prefix.empty()) name = prefix + "/" + name;
    char type = char(b[kTypeOff]);

    if (type == 'x') {
      if (had_pax) return Error(Code::kMalformed, "two pax headers in a row" + where);
      if (*size > kMaxPaxHeader) {
        return Error(Code::kOutOfRange,
                     "pax header of " + std::to_string(*size) + " bytes" + where);
      }
      had_pax = true;
      std::string records(*size, '\0');
      ALOFT_RETURN_IF_ERROR(
          ReadExact(std::span<uint8_t>(reinterpret_cast<uint8_t*>(records.data()), records.size()),
                    "a pax header"));
      Block pad{};
      size_t pad_len = (kTarBlock - *size % kTarBlock) % kTarBlock;
      ALOFT_RETURN_IF_ERROR(ReadExact(std::span<uint8_t>(pad.data(), pad_len), "a pax header"));
      if (!AllZero(ByteSpan(pad.data(), pad_len))) {
        return Error(Code::kMalformed, "non-zero padding after the pax header" + where);
      }
      // Records: "<len> <key>=<value>\n".
      std::string_view rest = records;
      while (!rest.empty()) {
        size_t space = rest.find(' ');
        size_t len = 0;
        if (space == std::string_view::npos || space == 0 || space > 20) {
          return Error(Code::kMalformed, "malformed pax record" + where);
        }
        for (char c : rest.substr(0, space)) {
          if (c < '0' || c > '9') return Error(Code::kMalformed, "malformed pax record" + where);
          len = len * 10 + size_t(c - '0');
        }
        if (len <= space + 2 || len > rest.size() || rest[len - 1] != '\n') {
          return Error(Code::kMalformed, "malformed pax record" + where);
        }
        std::string_view kv = rest.substr(space + 1, len - space - 2);
        size_t eq = kv.find('=');
        if (eq == std::string_view::npos) {
          return Error(Code::kMalformed, "malformed pax record" + where);
        }
        std::string_view key = kv.substr(0, eq), value = kv.substr(eq + 1);
        if (key == "path") {
          pax_path = std::string(value);
        } else if (key == "size") {
          uint64_t v = 0;
          if (value.empty() || value.size() > 19 ||
              !std::all_of(value.begin(), value.end(),
                           [](char c) { return c >= '0' && c <= '9'; })) {
            return Error(Code::kMalformed, "bad pax size '" + std::string(value) + "'" + where);
          }
          for (char c : value) v = v * 10 + uint64_t(c - '0');
          pax_size = v;
        }
        // Other keys (mtime, uid, ...) say nothing a package reader needs.
        rest.remove_prefix(len);
      }
      continue;
    }
    if (type != '0' && type != '\0') {
      return Error(Code::kMalformed, "entry " + QuoteName(name) + " has tar type '" +
                                         std::string(1, type) +
                                         "'; a package holds only regular files" + where);
    }
    TarEntry entry;
    entry.name = pax_path.value_or(name);
    entry.size = pax_size.value_or(*size);
    entry.header_offset = first_header;
    entry.data_offset = offset_;
    if (!IsSafeEntryName(entry.name)) {
      return Error(Code::kMalformed, "unsafe entry name " + QuoteName(entry.name) + where);
    }
    current_ = entry;
    left_ = entry.size;
    return std::optional<TarEntry>(entry);
  }
}

Result<size_t> TarReader::Read(std::span<uint8_t> buf) {
  if (!current_ || left_ == 0) return size_t{0};
  size_t want = size_t(std::min<uint64_t>(left_, buf.size()));
  ALOFT_ASSIGN_OR_RETURN(size_t n, source_.Read(buf.subspan(0, want)));
  if (n == 0) {
    return Error(Code::kMalformed, "archive truncated: entry " + QuoteName(current_->name) +
                                       " declares " + std::to_string(current_->size) +
                                       " bytes but the file ends after " +
                                       std::to_string(current_->size - left_));
  }
  left_ -= n;
  offset_ += n;
  return n;
}

}  // namespace aloft::pkg
