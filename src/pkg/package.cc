#include "pkg/package.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "core/file.h"
#include "core/hash.h"

namespace aloft::pkg {
namespace {

constexpr size_t kChunk = 64 * 1024;

std::string PayloadLabel(const Component& c) {
  return "payload " + QuoteName(c.payload.file) + " (component " + QuoteName(c.name) + ")";
}

// Hashes and counts the decoded stream on its way to the caller's sink, and stops a payload that
// decompresses to more than the manifest declares (a decompression bomb) at the first excess byte.
class DecodedStream final : public ByteSink {
 public:
  // `hash`: hash the output too (not for raw reads, whose bytes the payload hash already covers).
  DecodedStream(PayloadSink& sink, uint64_t limit, bool hash) : sink_(sink), limit_(limit) {
    if (hash) hash_.emplace(HashAlgorithm::kSha256);
  }
  Status Write(ByteSpan data) override {
    if (data.size() > limit_ - count_) {
      return Error(Code::kIntegrity, "decompresses to more than the " + std::to_string(limit_) +
                                         " bytes the manifest declares");
    }
    count_ += data.size();
    if (hash_) hash_->Update(data);
    Status s = sink_.Write(data);
    if (!s.ok()) sink_failed_ = true;
    return s;
  }
  uint64_t count() const { return count_; }
  bool sink_failed() const { return sink_failed_; }
  std::string FinishHex() { return hash_ ? hash_->FinishHex() : ""; }

 private:
  PayloadSink& sink_;
  uint64_t limit_;
  uint64_t count_ = 0;
  std::optional<Hasher> hash_;
  bool sink_failed_ = false;
};

class NullPayloadSink final : public PayloadSink {
 public:
  Status Begin(const Component&) override { return OkStatus(); }
  Status Write(ByteSpan) override { return OkStatus(); }
  Status End(const Component&) override { return OkStatus(); }
};

// An unnamed temporary file in `dir` (gone when closed, even after a crash).
Result<File> AnonymousTempFile(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return File(fd, dir + "/(temporary payload)");
  // File systems without O_TMPFILE: a named file, unlinked at once.
  std::string name = dir + "/.aloft-payload-XXXXXX";
  fd = ::mkstemp(name.data());
  if (fd < 0) return ErrnoError("creating a temporary file in " + dir, errno);
  ::unlink(name.c_str());
  return File(fd, name);
}

uint64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return uint64_t(std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

Status WriteManifestEntry(TarWriter& tar, const std::string& manifest_text) {
  ALOFT_RETURN_IF_ERROR(tar.BeginEntry(kManifestEntry, manifest_text.size()));
  ALOFT_RETURN_IF_ERROR(tar.Write(AsBytes(manifest_text)));
  return tar.EndEntry();
}

// Writes compressed payload bytes to a file while hashing and counting them.
class PayloadFileSink final : public ByteSink {
 public:
  explicit PayloadFileSink(File& file) : file_(file) {}
  Status Write(ByteSpan data) override {
    hash_.Update(data);
    size_ += data.size();
    return file_.Write(data);
  }
  uint64_t size() const { return size_; }
  std::string FinishHex() { return hash_.FinishHex(); }

 private:
  File& file_;
  Hasher hash_{HashAlgorithm::kSha256};
  uint64_t size_ = 0;
};

// Seals what it is given (crypto::ChunkSealer) into `out`, counting the bytes before sealing.
class SealingSink final : public ByteSink {
 public:
  SealingSink(const crypto::ContentKey& key, const crypto::PayloadSalt& salt, ByteSink& out)
      : sealer_(key, salt, [&out](ByteSpan b) { return out.Write(b); }) {}
  Status Write(ByteSpan data) override {
    size_ += data.size();
    return sealer_.Write(data);
  }
  Status Finish() { return sealer_.Finish(); }
  uint64_t size() const { return size_; }

 private:
  crypto::ChunkSealer sealer_;
  uint64_t size_ = 0;
};

Status ValidatePackOptions(const PackOptions& o) {
  if (!IsValidName(o.name)) {
    return Error(
        Code::kInvalidArgument,
        "--name '" + o.name + "' is not a valid name ([A-Za-z0-9][A-Za-z0-9._-], at most 64)");
  }
  if (auto v = SemVer::Parse(o.version); !v.ok()) {
    return Error(Code::kInvalidArgument,
                 "--version: " + v.error().message() + " (semantic versioning, e.g. 1.2.0)");
  }
  if (o.hardware.empty()) {
    return Error(Code::kInvalidArgument,
                 "at least one --hardware is needed (a compatible device type)");
  }
  for (size_t i = 0; i < o.hardware.size(); ++i) {
    if (o.hardware[i].empty()) return Error(Code::kInvalidArgument, "--hardware is empty");
    for (size_t j = 0; j < i; ++j) {
      if (o.hardware[i] == o.hardware[j]) {
        return Error(Code::kInvalidArgument, "--hardware '" + o.hardware[i] + "' is given twice");
      }
    }
  }
  if (o.components.empty()) {
    return Error(Code::kInvalidArgument, "at least one --component NAME=FILE is needed");
  }
  for (size_t i = 0; i < o.components.size(); ++i) {
    const auto& c = o.components[i];
    if (!IsValidName(c.name)) {
      return Error(
          Code::kInvalidArgument,
          "--component '" + c.name + "': not a valid name ([A-Za-z0-9][A-Za-z0-9._-], at most 64)");
    }
    for (size_t j = 0; j < i; ++j) {
      if (o.components[j].name == c.name) {
        return Error(Code::kInvalidArgument, "--component '" + c.name + "' is given twice");
      }
    }
  }
  if (o.keys.empty()) {
    return Error(Code::kInvalidArgument,
                 "at least one --key is needed: packages are always signed");
  }
  if (o.output.empty()) return Error(Code::kInvalidArgument, "-o OUTPUT is needed");
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<PackageReader>> PackageReader::Open(ByteSource& source, std::string origin,
                                                           const crypto::TrustSet* trust) {
  std::unique_ptr<PackageReader> r(new PackageReader(source, std::move(origin)));
  auto entry = r->tar_.Next();
  if (!entry.ok()) return std::move(entry).error().WithContext(r->origin_);
  if (!entry->has_value()) {
    return Error(Code::kMalformed, r->origin_ + ": empty archive (no manifest.json)");
  }
  const TarEntry& e = **entry;
  if (e.name != kManifestEntry) {
    return Error(Code::kMalformed,
                 r->origin_ + ": first entry is " + QuoteName(e.name) + ", expected manifest.json");
  }
  if (e.size > kMaxManifestSize) {
    return Error(Code::kOutOfRange, r->origin_ + ": manifest.json is " + std::to_string(e.size) +
                                        " bytes, more than the " +
                                        std::to_string(kMaxManifestSize) + " allowed");
  }
  std::string text(e.size, '\0');
  for (size_t done = 0; done < text.size();) {
    auto n = r->tar_.Read(
        std::span<uint8_t>(reinterpret_cast<uint8_t*>(text.data()) + done, text.size() - done));
    if (!n.ok()) return std::move(n).error().WithContext(r->origin_);
    done += *n;
  }
  auto envelope = ParseEnvelope(text);
  if (!envelope.ok())
    return std::move(envelope).error().WithContext(r->origin_ + ": manifest.json");
  r->envelope_ = std::move(envelope).value();
  if (trust != nullptr) {
    Status verified = VerifySignatures(r->envelope_, *trust, &r->report_);
    if (!verified.ok()) return std::move(verified).error().WithContext(r->origin_);
  }
  return r;
}

uint64_t PackageReader::PayloadBytes() const {
  uint64_t total = 0;
  for (const auto& c : manifest().components) total += c.payload.size;
  return total;
}

Status PackageReader::ReadOne(const Component& c, PayloadSink& sink, bool raw, Progress* progress) {
  ALOFT_ASSIGN_OR_RETURN(std::optional<TarEntry> entry, tar_.Next());
  if (!entry) {
    return Error(Code::kMalformed, "archive ends before " + PayloadLabel(c));
  }
  if (entry->name != c.payload.file) {
    bool duplicate = entry->name == kManifestEntry;
    for (const auto& other : manifest().components) {
      if (&other == &c) break;
      duplicate |= other.payload.file == entry->name;
    }
    return Error(Code::kMalformed,
                 (duplicate ? "duplicate entry " : "unexpected entry ") + QuoteName(entry->name) +
                     " at offset " + std::to_string(entry->header_offset) + " where " +
                     PayloadLabel(c) + " should be (entries follow the manifest's order)");
  }
  if (entry->size != c.payload.size) {
    return Error(Code::kIntegrity, PayloadLabel(c) + " is " + std::to_string(entry->size) +
                                       " bytes in the archive; the manifest says " +
                                       std::to_string(c.payload.size));
  }
  NullPayloadSink none;
  PayloadSink* out = &sink;
  if (c.encryption && !raw && !content_key_ && encrypted_as_stored_) {
    raw = true;  // its size and hash only
    out = &none;
  }
  if (c.encryption && !raw) {
    if (!content_key_) {
      return Error(Code::kUntrusted, PayloadLabel(c) + " is encrypted (content key " +
                                         c.encryption->key_id + "); no key to decrypt it");
    }
    if (crypto::ContentKeyId(*content_key_) != c.encryption->key_id) {
      return Error(Code::kUntrusted, PayloadLabel(c) + " is encrypted with content key " +
                                         c.encryption->key_id + ", not with the key given (" +
                                         crypto::ContentKeyId(*content_key_) + ")");
    }
  }
  ALOFT_RETURN_IF_ERROR(out->Begin(c));

  DecodedStream decoded(*out, raw ? c.payload.size : c.payload.uncompressed_size, !raw);
  std::unique_ptr<StreamCodec> decoder;
  std::unique_ptr<crypto::ChunkOpener> opener;  // decrypts before the decoder
  if (!raw) {
    ALOFT_ASSIGN_OR_RETURN(decoder, MakeDecompressor(c.payload.compression, decoded, max_window_));
    if (c.encryption) {
      opener = std::make_unique<crypto::ChunkOpener>(*content_key_, c.encryption->salt,
                                                     [&](ByteSpan b) { return decoder->Write(b); });
    }
  }
  Hasher payload_hash(HashAlgorithm::kSha256);
  std::optional<Error> decode_error;
  std::vector<uint8_t> buf(kChunk);
  while (true) {
    ALOFT_ASSIGN_OR_RETURN(size_t n, tar_.Read(buf));
    if (n == 0) break;
    ByteSpan chunk(buf.data(), n);
    payload_hash.Update(chunk);
    if (progress != nullptr) progress->Add(n);
    if (decode_error) continue;  // keep hashing: a hash mismatch is the better explanation
    Status s = raw ? decoded.Write(chunk) : opener ? opener->Write(chunk) : decoder->Write(chunk);
    if (!s.ok()) {
      if (decoded.sink_failed()) return s;
      decode_error = std::move(s).error();
    }
  }
  std::string got = payload_hash.FinishHex();
  if (got != c.payload.sha256) {
    return Error(Code::kIntegrity, PayloadLabel(c) + ": sha256 mismatch (manifest " +
                                       c.payload.sha256.substr(0, 16) + "\u2026, content " +
                                       got.substr(0, 16) + "\u2026)");
  }
  if (!decode_error && decoder) {
    Status s = opener ? opener->Finish() : OkStatus();
    if (s.ok()) s = decoder->Finish();
    if (!s.ok()) {
      if (decoded.sink_failed()) return s;
      decode_error = std::move(s).error();
    }
  }
  if (decode_error) return std::move(*decode_error).WithContext(PayloadLabel(c));
  if (!raw) {
    if (decoded.count() != c.payload.uncompressed_size) {
      return Error(Code::kIntegrity,
                   PayloadLabel(c) + " decompresses to " + std::to_string(decoded.count()) +
                       " bytes; the manifest says " + std::to_string(c.payload.uncompressed_size));
    }
    std::string image = decoded.FinishHex();
    if (c.type == ComponentType::kFull && image != c.image.sha256) {
      return Error(Code::kIntegrity, "image of component " + QuoteName(c.name) +
                                         ": sha256 mismatch (manifest " +
                                         c.image.sha256.substr(0, 16) + "\u2026, content " +
                                         image.substr(0, 16) + "\u2026)");
    }
  }
  return out->End(c);
}

Status PackageReader::ReadPayloads(PayloadSink& sink, bool raw, Progress* progress) {
  if (payloads_read_) return Error(Code::kInternal, origin_ + ": payloads already read");
  payloads_read_ = true;
  for (const Component& c : manifest().components) {
    Status s = ReadOne(c, sink, raw, progress);
    if (!s.ok()) return std::move(s).error().WithContext(origin_);
  }
  auto extra = tar_.Next();
  if (!extra.ok()) return std::move(extra).error().WithContext(origin_);
  if (extra->has_value()) {
    const TarEntry& e = **extra;
    bool duplicate = e.name == kManifestEntry;
    for (const auto& c : manifest().components) duplicate |= c.payload.file == e.name;
    return Error(Code::kMalformed, origin_ + ": " + (duplicate ? "duplicate" : "unexpected") +
                                       " entry " + QuoteName(e.name) + " at offset " +
                                       std::to_string(e.header_offset) + " after the last payload");
  }
  return OkStatus();
}

Status Pack(const PackOptions& o, const Clock& clock) {
  ALOFT_RETURN_IF_ERROR(ValidatePackOptions(o));
  const int level = o.level.value_or(DefaultLevel(o.compression));
  const std::string dir = DirName(o.output);

  Manifest m;
  m.name = o.name;
  m.version = SemVer::Parse(o.version).value();
  m.hardware = o.hardware;
  m.created = FormatRfc3339(clock.Wall());
  if (o.extra.is_object()) m.signed_json = o.extra;

  std::vector<File> payload_files;
  for (const ComponentSource& src : o.components) {
    ALOFT_ASSIGN_OR_RETURN(File in, File::OpenRead(src.path));
    ALOFT_ASSIGN_OR_RETURN(uint64_t size, in.Size());
    ALOFT_ASSIGN_OR_RETURN(File tmp, AnonymousTempFile(dir));
    PayloadFileSink payload(tmp);
    const crypto::PayloadSalt salt = crypto::NewPayloadSalt();
    std::optional<SealingSink> sealing;
    if (o.content_key) sealing.emplace(*o.content_key, salt, payload);
    ALOFT_ASSIGN_OR_RETURN(
        auto encoder,
        MakeCompressor(o.compression, {.level = level, .window = o.window, .input_size = size},
                       sealing ? static_cast<ByteSink&>(*sealing) : payload));
    Hasher image_hash(HashAlgorithm::kSha256);
    Progress progress("packing " + src.name, size, clock, stderr, o.progress);
    std::vector<uint8_t> buf(kChunk);
    uint64_t read = 0;
    while (true) {
      ALOFT_ASSIGN_OR_RETURN(size_t n, in.Read(buf));
      if (n == 0) break;
      ByteSpan chunk(buf.data(), n);
      read += n;
      if (read > size) break;  // the encoder was promised `size` bytes
      image_hash.Update(chunk);
      ALOFT_RETURN_IF_ERROR(encoder->Write(chunk));
      progress.Add(n);
    }
    if (read != size) {
      return Error(Code::kIo, src.path + ": changed size while being read (" +
                                  std::to_string(size) + " then " + std::to_string(read) + ")");
    }
    ALOFT_RETURN_IF_ERROR(encoder->Finish());
    if (sealing) ALOFT_RETURN_IF_ERROR(sealing->Finish());
    progress.Finish();
    Component c;
    if (sealing) {
      c.encryption = EncryptionInfo{
          .salt = salt, .key_id = crypto::ContentKeyId(*o.content_key), .size = sealing->size()};
    }
    c.name = src.name;
    c.type = ComponentType::kFull;
    c.security_counter = src.security_counter.value_or(o.security_counter);
    c.install = src.install;
    c.payload.file = src.name + std::string(FileExtension(o.compression));
    c.payload.compression = o.compression;
    c.payload.size = payload.size();
    c.payload.sha256 = payload.FinishHex();
    c.payload.uncompressed_size = read;
    c.image.size = read;
    c.image.sha256 = image_hash.FinishHex();
    c.image.filename = std::filesystem::path(src.path).filename().string();
    m.components.push_back(std::move(c));
    payload_files.push_back(std::move(tmp));
  }

  std::vector<uint64_t> sizes;
  for (const Component& c : m.components) sizes.push_back(c.payload.size);
  return WriteArchive(std::move(m), o.keys, o.output, clock,
                      [&](size_t i, TarWriter& tar) -> Status {
                        ALOFT_RETURN_IF_ERROR(payload_files[i].SeekTo(0));
                        return CopyBytes(payload_files[i], tar, sizes[i]);
                      });
}

Status WriteArchive(Manifest m, const std::vector<const crypto::PrivateKey*>& keys,
                    const std::string& output, const Clock& clock,
                    const std::function<Status(size_t, TarWriter&)>& write_payload) {
  Envelope e;
  m.signed_json = ToSignedJson(m);
  // What we wrote must read back: the same checks a device makes.
  ALOFT_ASSIGN_OR_RETURN(e.manifest, ParseSigned(m.signed_json));
  for (const crypto::PrivateKey* key : keys) ALOFT_RETURN_IF_ERROR(Sign(e, *key));
  ALOFT_ASSIGN_OR_RETURN(std::string manifest_text, SerializeEnvelope(e));

  ALOFT_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(output, 0644));
  TarWriter tar(out, UnixSeconds(clock.Wall()));
  ALOFT_RETURN_IF_ERROR(WriteManifestEntry(tar, manifest_text));
  for (size_t i = 0; i < e.manifest.components.size(); ++i) {
    const Component& c = e.manifest.components[i];
    ALOFT_RETURN_IF_ERROR(tar.BeginEntry(c.payload.file, c.payload.size));
    ALOFT_RETURN_IF_ERROR(write_payload(i, tar));
    ALOFT_RETURN_IF_ERROR(tar.EndEntry());
  }
  ALOFT_RETURN_IF_ERROR(tar.Finish());
  return out.Commit();
}

namespace {

// Copies verified raw payload entries into a new archive.
class RewriteSink final : public PayloadSink {
 public:
  explicit RewriteSink(TarWriter& tar) : tar_(tar) {}
  Status Begin(const Component& c) override {
    return tar_.BeginEntry(c.payload.file, c.payload.size);
  }
  Status Write(ByteSpan data) override { return tar_.Write(data); }
  Status End(const Component&) override { return tar_.EndEntry(); }

 private:
  TarWriter& tar_;
};

}  // namespace

Status AddSignatures(const std::string& path, const std::vector<const crypto::PrivateKey*>& keys,
                     const Clock& clock) {
  if (keys.empty()) return Error(Code::kInvalidArgument, "at least one --key is needed");
  ALOFT_ASSIGN_OR_RETURN(File in, File::OpenRead(path));
  ALOFT_ASSIGN_OR_RETURN(auto reader, PackageReader::Open(in, path, nullptr));
  Envelope e = reader->envelope();
  for (const crypto::PrivateKey* key : keys) ALOFT_RETURN_IF_ERROR(Sign(e, *key));
  ALOFT_ASSIGN_OR_RETURN(std::string manifest_text, SerializeEnvelope(e));

  ALOFT_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(path, 0644));
  TarWriter tar(out, UnixSeconds(clock.Wall()));
  ALOFT_RETURN_IF_ERROR(WriteManifestEntry(tar, manifest_text));
  RewriteSink rewrite(tar);
  ALOFT_RETURN_IF_ERROR(reader->ReadPayloads(rewrite, /*raw=*/true));
  ALOFT_RETURN_IF_ERROR(tar.Finish());
  return out.Commit();
}

Result<VerifyResult> VerifyPackage(const std::string& path, const crypto::TrustSet& trust,
                                   const Clock& clock, Progress::Mode progress_mode,
                                   const crypto::ContentKey* content_key) {
  ALOFT_ASSIGN_OR_RETURN(File in, File::OpenRead(path));
  ALOFT_ASSIGN_OR_RETURN(auto reader, PackageReader::Open(in, path, &trust));
  if (content_key) reader->set_content_key(*content_key);
  reader->set_encrypted_as_stored(true);
  Progress progress("verifying", reader->PayloadBytes(), clock, stderr, progress_mode);
  NullPayloadSink sink;
  ALOFT_RETURN_IF_ERROR(reader->ReadPayloads(sink, false, &progress));
  VerifyResult r{reader->manifest(), reader->signature_report()};
  for (const auto& c : r.manifest.components) {
    if (c.encryption && !content_key) ++r.encrypted_as_stored;
  }
  return r;
}

namespace {

class ExtractSink final : public PayloadSink {
 public:
  explicit ExtractSink(std::string outdir) : outdir_(std::move(outdir)) {}
  Status Begin(const Component& c) override {
    std::string path =
        outdir_ + "/" + c.name + (c.type == ComponentType::kFull ? ".bin" : ".delta");
    ALOFT_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path, 0644));
    files_.push_back(std::move(f));
    return OkStatus();
  }
  Status Write(ByteSpan data) override { return files_.back().Write(data); }
  Status End(const Component&) override { return OkStatus(); }

  // Makes every image appear; called after the whole package verified.
  Result<std::vector<std::string>> CommitAll() {
    std::vector<std::string> paths;
    for (auto& f : files_) {
      ALOFT_RETURN_IF_ERROR(f.Commit());
      paths.push_back(f.target());
    }
    return paths;
  }

 private:
  std::string outdir_;
  std::vector<AtomicFile> files_;
};

}  // namespace

Result<std::vector<std::string>> ExtractPackage(const std::string& path,
                                                const crypto::TrustSet& trust,
                                                const std::string& outdir, const Clock& clock,
                                                Progress::Mode progress_mode,
                                                const crypto::ContentKey* content_key) {
  ALOFT_ASSIGN_OR_RETURN(File in, File::OpenRead(path));
  ALOFT_ASSIGN_OR_RETURN(auto reader, PackageReader::Open(in, path, &trust));
  if (content_key) reader->set_content_key(*content_key);
  // The directories this call creates (deepest first) go again when it fails: a package that
  // does not verify leaves nothing behind.
  std::vector<std::filesystem::path> created;
  std::error_code ec;
  for (std::filesystem::path p = std::filesystem::absolute(outdir, ec);
       !ec && !p.empty() && !std::filesystem::exists(p, ec) && p != p.parent_path();
       p = p.parent_path()) {
    created.push_back(p);
  }
  std::filesystem::create_directories(outdir, ec);
  if (ec) return Error(Code::kIo, outdir + ": cannot create the directory: " + ec.message());
  auto extracted = [&]() -> Result<std::vector<std::string>> {
    Progress progress("extracting", reader->PayloadBytes(), clock, stderr, progress_mode);
    ExtractSink sink(outdir);  // its unfinished files go with it
    ALOFT_RETURN_IF_ERROR(reader->ReadPayloads(sink, false, &progress));
    progress.Finish();
    return sink.CommitAll();
  }();
  if (!extracted.ok()) {
    for (const auto& dir : created) std::filesystem::remove(dir, ec);  // only if empty
  }
  return extracted;
}

}  // namespace aloft::pkg
