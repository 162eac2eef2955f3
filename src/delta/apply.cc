#include "delta/apply.h"

#include <algorithm>
#include <cstring>

namespace aloft::delta {
namespace {

constexpr size_t kChunk = 16 << 10;
constexpr size_t kMaxSegmentHead = 4 * 10;

}  // namespace

Patcher::Patcher(Base& base, ByteSink& out, const ApplyOptions& options)
    : base_(base), out_(out), options_(options), buf_a_(kChunk), buf_b_(kChunk) {}

Patcher::~Patcher() = default;

Status Patcher::Fail(Error e) {
  failed_ = e;
  return e;
}

Status Patcher::Write(ByteSpan data) {
  if (failed_) return *failed_;
  if (Status s = Consume(data); !s.ok()) return Fail(s.error());
  return OkStatus();
}

Status Patcher::Consume(ByteSpan& data) {
  while (!data.empty()) {
    switch (state_) {
      case State::kHeader: {
        size_t n = std::min(kHeaderSize - pending_.size(), data.size());
        pending_.insert(pending_.end(), data.begin(), data.begin() + n);
        data = data.subspan(n);
        if (pending_.size() < kHeaderSize) break;
        ALOFT_ASSIGN_OR_RETURN(header_, ParseHeader(pending_));
        pending_.clear();
        ALOFT_RETURN_IF_ERROR(StartPatch());
        state_ = header_->segments ? State::kSegmentHead : State::kDone;
        break;
      }
      case State::kSegmentHead: {
        pending_.push_back(data[0]);
        data = data.subspan(1);
        size_t pos = 0;
        uint64_t v[1 + kStreams];
        bool complete = true;
        for (uint64_t& x : v) {
          ALOFT_ASSIGN_OR_RETURN(std::optional<uint64_t> got, GetVarint(pending_, &pos));
          if (!got) {
            complete = false;
            break;
          }
          x = *got;
        }
        if (!complete) {
          if (pending_.size() > kMaxSegmentHead) {
            return Error(Code::kMalformed, "segment head is malformed");
          }
          break;
        }
        std::string where = "segment " + std::to_string(segment_ + 1);
        uint64_t left = header_->target_size - out_pos_;
        if (v[0] == 0 || v[0] > left) {
          return Error(Code::kMalformed, where + ": " + std::to_string(v[0]) +
                                             " target bytes, but " + std::to_string(left) +
                                             " remain");
        }
        uint64_t sum = 0;
        for (int s = 0; s < kStreams; ++s) {
          piece_len_[s] = v[1 + s];
          sum += std::min<uint64_t>(v[1 + s], uint64_t{1} << 40);
        }
        if (sum > header_->max_segment) {
          return Error(Code::kMalformed, where + ": " + std::to_string(sum) +
                                             " bytes of pieces, over the header's maximum of " +
                                             std::to_string(header_->max_segment));
        }
        segment_len_ = v[0];
        pending_.clear();
        state_ = State::kPieces;
        if (sum == 0) ALOFT_RETURN_IF_ERROR(RunSegment());
        break;
      }
      case State::kPieces: {
        uint64_t need = piece_len_[0] + piece_len_[1] + piece_len_[2] - pending_.size();
        size_t n = static_cast<size_t>(std::min<uint64_t>(need, data.size()));
        pending_.insert(pending_.end(), data.begin(), data.begin() + n);
        data = data.subspan(n);
        if (n == need) ALOFT_RETURN_IF_ERROR(RunSegment());
        break;
      }
      case State::kDone:
        return Error(Code::kMalformed,
                     std::to_string(data.size()) + " bytes after the end of the patch");
    }
  }
  return OkStatus();
}

Status Patcher::StartPatch() {
  const Header& h = *header_;
  if (h.max_segment > options_.max_segment) {
    return Error(Code::kOutOfRange, "the patch needs " + std::to_string(h.max_segment) +
                                        "-byte segments; the limit is " +
                                        std::to_string(options_.max_segment));
  }
  for (int s = 0; s < kStreams; ++s) {
    ALOFT_ASSIGN_OR_RETURN(dec_[s], StreamDecoder::Make(h.streams[s], options_.max_window,
                                                        std::string(StreamName(s)) + " stream"));
  }
  // One allocation for the largest segment, instead of a vector that doubles past it.
  pending_.reserve(h.max_segment);
  if (base_.size() != h.base_size) {
    return Error(Code::kIntegrity, "wrong base: the patch applies to a " +
                                       std::to_string(h.base_size) + "-byte image, this one has " +
                                       std::to_string(base_.size()) + " bytes");
  }
  if (options_.check_base) {
    Hasher hasher(HashAlgorithm::kSha256);
    for (uint64_t off = 0; off < h.base_size; off += kChunk) {
      std::span<uint8_t> chunk(buf_a_.data(), std::min<uint64_t>(kChunk, h.base_size - off));
      ALOFT_RETURN_IF_ERROR(base_.ReadAt(off, chunk));
      hasher.Update(chunk);
    }
    Bytes got = hasher.Finish();
    if (!std::equal(got.begin(), got.end(), h.base_sha256.begin())) {
      return Error(Code::kIntegrity, "wrong base: the patch applies to an image with SHA-256 " +
                                         HexEncode(h.base_sha256) + ", this one has " +
                                         HexEncode(got));
    }
  }
  return OkStatus();
}

Status Patcher::ReadExact(int stream, std::span<uint8_t> out) {
  while (!out.empty()) {
    ALOFT_ASSIGN_OR_RETURN(size_t n, dec_[stream]->Read(out));
    if (n == 0) {
      return Error(Code::kMalformed, "the " + std::string(StreamName(stream)) +
                                         " stream ends before the segment does");
    }
    out = out.subspan(n);
  }
  return OkStatus();
}

Result<uint64_t> Patcher::ReadVarint() {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (ctrl_pos_ == ctrl_len_) {
      ALOFT_ASSIGN_OR_RETURN(ctrl_len_, dec_[kControl]->Read(ctrl_buf_));
      ctrl_pos_ = 0;
      if (ctrl_len_ == 0) {
        return Error(Code::kMalformed, "the control stream ends before the segment does");
      }
    }
    uint8_t byte = ctrl_buf_[ctrl_pos_++];
    if (i == 9 && byte > 1) break;
    v |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if (!(byte & 0x80)) return v;
  }
  return Error(Code::kMalformed, "control stream: malformed number");
}

Status Patcher::Emit(std::span<const uint8_t> bytes) {
  ALOFT_RETURN_IF_ERROR(out_.Write(ByteSpan(bytes.data(), bytes.size())));
  target_hash_.Update(ByteSpan(bytes.data(), bytes.size()));
  out_pos_ += bytes.size();
  return OkStatus();
}

Status Patcher::RunSegment() {
  const Header& h = *header_;
  std::string where = "segment " + std::to_string(segment_ + 1);
  size_t at = 0;
  for (int s = 0; s < kStreams; ++s) {
    dec_[s]->Feed(ByteSpan(pending_.data() + at, piece_len_[s]));
    at += piece_len_[s];
  }
  const uint64_t end = out_pos_ + segment_len_;
  while (out_pos_ < end) {
    if (!in_op_) {
      uint64_t v[3];
      for (uint64_t& x : v) {
        Result<uint64_t> got = ReadVarint();
        if (!got.ok()) return got.error().WithContext(where);
        x = *got;
      }
      uint64_t left = h.target_size - out_pos_;
      if (v[0] > left || v[1] > left - v[0]) {
        return Error(Code::kMalformed, where + ": an operation runs past the end of the target");
      }
      add_left_ = v[0];
      extra_left_ = v[1];
      seek_ = UnZigZag(v[2]);
      carry_ = 0;
      in_op_ = true;
    }
    if (add_left_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>({add_left_, end - out_pos_, kChunk}));
      if (base_pos_ < 0 || static_cast<uint64_t>(base_pos_) + n > h.base_size) {
        return Error(Code::kMalformed, where + ": an operation reads outside the base");
      }
      std::span<uint8_t> old(buf_a_.data(), n), diff(buf_b_.data(), n);
      ALOFT_RETURN_IF_ERROR(base_.ReadAt(static_cast<uint64_t>(base_pos_), old));
      if (Status s = ReadExact(kDiff, diff); !s.ok()) return s.error().WithContext(where);
      for (size_t i = 0; i < n; ++i) old[i] = AddWithCarry(old[i], diff[i], &carry_);
      ALOFT_RETURN_IF_ERROR(Emit(old));
      base_pos_ += static_cast<int64_t>(n);
      add_left_ -= n;
    } else if (extra_left_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>({extra_left_, end - out_pos_, kChunk}));
      std::span<uint8_t> fresh(buf_a_.data(), n);
      if (Status s = ReadExact(kExtra, fresh); !s.ok()) return s.error().WithContext(where);
      ALOFT_RETURN_IF_ERROR(Emit(fresh));
      extra_left_ -= n;
    }
    if (add_left_ == 0 && extra_left_ == 0) {
      int64_t next;
      if (__builtin_add_overflow(base_pos_, seek_, &next) || next < 0 ||
          static_cast<uint64_t>(next) > h.base_size) {
        return Error(Code::kMalformed, where + ": an operation seeks outside the base");
      }
      base_pos_ = next;
      in_op_ = false;
    }
  }
  // Each piece must hold exactly what the segment used.
  for (int s = 0; s < kStreams; ++s) {
    uint8_t probe;
    ALOFT_ASSIGN_OR_RETURN(size_t extra, dec_[s]->Read(std::span<uint8_t>(&probe, 1)));
    if (extra != 0 || !dec_[s]->input_consumed() || (s == kControl && ctrl_pos_ != ctrl_len_)) {
      return Error(Code::kMalformed, where + ": the " + std::string(StreamName(s)) +
                                         " stream holds more than the segment uses");
    }
  }
  pending_.clear();
  ++segment_;
  if (segment_ < h.segments) {
    state_ = State::kSegmentHead;
    return OkStatus();
  }
  state_ = State::kDone;
  if (out_pos_ != h.target_size) {
    return Error(Code::kMalformed, "the segments make " + std::to_string(out_pos_) +
                                       " bytes; the target has " + std::to_string(h.target_size));
  }
  for (int s = 0; s < kStreams; ++s) {
    if (Status st = dec_[s]->CheckEnd(); !st.ok()) return st.error().WithContext(where);
  }
  return OkStatus();
}

Status Patcher::Finish() {
  if (failed_) return *failed_;
  if (state_ != State::kDone) {
    std::string what = !header_ ? "in the header"
                                : "in segment " + std::to_string(segment_ + 1) + " of " +
                                      std::to_string(header_->segments);
    return Fail(Error(Code::kMalformed, "the patch is truncated (it ends " + what + ")"));
  }
  Bytes got = target_hash_.Finish();
  if (!std::equal(got.begin(), got.end(), header_->target_sha256.begin())) {
    return Fail(Error(Code::kIntegrity, "the result's SHA-256 " + HexEncode(got) +
                                            " is not the target's " +
                                            HexEncode(header_->target_sha256)));
  }
  return OkStatus();
}

Result<uint64_t> ApplyPatch(Base& base, ByteSource& patch, ByteSink& out,
                            const ApplyOptions& options, Progress* progress) {
  Patcher p(base, out, options);
  Bytes buf(kChunk);
  for (;;) {
    ALOFT_ASSIGN_OR_RETURN(size_t n, patch.Read(buf));
    if (n == 0) break;
    ALOFT_RETURN_IF_ERROR(p.Write(ByteSpan(buf.data(), n)));
    if (progress != nullptr) progress->Add(n);
  }
  ALOFT_RETURN_IF_ERROR(p.Finish());
  return p.written();
}

}  // namespace aloft::delta
