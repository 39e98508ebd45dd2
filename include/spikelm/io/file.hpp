// spikelm: file helpers for io/ (POSIX): reading whole files, positional reads with exact-size checks, and
// atomic replacement of a file (temporary file in the same directory, fsync, rename, fsync of the directory).
#ifndef SPIKELM_IO_FILE_HPP
#define SPIKELM_IO_FILE_HPP

#include "../config.hpp"
#include "../core/error.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

SPIKELM_NAMESPACE_BEGIN

namespace detail {
inline std::string errno_text(int err) {
  return std::string(std::strerror(err));
}
} // namespace detail

/// A file opened read-only (RAII over a POSIX descriptor). Reads are positional (pread), so a const File may
/// be read from several threads at once.
class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::filesystem::path& path) : path_(path) {
    do {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) fail("cannot open '", path.string(), "' for reading: ", detail::errno_text(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      fail("cannot stat '", path.string(), "': ", detail::errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      fail("'", path.string(), "' is not a regular file");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;
  ReadOnlyFile(ReadOnlyFile&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), size_(o.size_), path_(std::move(o.path_)) {}
  ReadOnlyFile& operator=(ReadOnlyFile&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
      size_ = o.size_;
      path_ = std::move(o.path_);
    }
    return *this;
  }
  ~ReadOnlyFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// Size in bytes when the file was opened.
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  /// Reads exactly `n` bytes at `offset` into `dst`; throws spikelm::Error if the file ends earlier (for
  /// example because it was truncated after it was opened) or on an I/O error.
  void read_exact(std::uint64_t offset, void* dst, std::size_t n) const {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < n) {
      const std::size_t chunk = std::min<std::size_t>(n - done, std::size_t(1) << 30);
      const ::ssize_t got = ::pread(fd_, out + done, chunk, static_cast<::off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail("error reading '", path_.string(), "': ", detail::errno_text(errno));
      if (got == 0)
        fail("unexpected end of '", path_.string(), "': wanted ", n, " bytes at offset ", offset, ", got ",
             done);
      done += static_cast<std::size_t>(got);
    }
  }

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::filesystem::path path_;
};

/// The whole content of a file (binary). Throws spikelm::Error if it cannot be read or is larger than
/// `max_bytes`.
[[nodiscard]] inline std::string
read_file(const std::filesystem::path& path,
          std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max()) {
  ReadOnlyFile f(path);
  check(f.size() <= max_bytes, "'", path.string(), "' has ", f.size(), " bytes, more than the limit of ",
        max_bytes);
  check(f.size() <= std::numeric_limits<std::size_t>::max() / 2, "'", path.string(), "' is too large");
  std::string s(static_cast<std::size_t>(f.size()), '\0');
  f.read_exact(0, s.data(), s.size());
  return s;
}

/// Where write_file_atomic's producer writes: a buffered sink over the temporary file.
class FileSink {
 public:
  FileSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) { buf_.reserve(capacity); }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  void write(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    if (buf_.size() + n > capacity) flush();
    if (n >= capacity) {
      write_all(p, n);
      return;
    }
    buf_.insert(buf_.end(), p, p + n);
    written_ += n;
  }
  void write(std::string_view s) { write(s.data(), s.size()); }
  /// Bytes written so far.
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
  void flush() {
    if (buf_.empty()) return;
    write_raw(buf_.data(), buf_.size());
    buf_.clear();
  }

 private:
  static constexpr std::size_t capacity = std::size_t(1) << 20;
  void write_all(const unsigned char* p, std::size_t n) {
    write_raw(p, n);
    written_ += n;
  }
  void write_raw(const unsigned char* p, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      const ::ssize_t w = ::write(fd_, p + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail("error writing '", name_, "': ", detail::errno_text(errno));
      done += static_cast<std::size_t>(w);
    }
  }
  int fd_;
  std::string name_;
  std::vector<unsigned char> buf_;
  std::uint64_t written_ = 0;
};

/// Replaces (or creates) `path` atomically: `produce(FileSink&)` writes the content into a new temporary file
/// in the same directory (".<name>.tmp.<pid>.<n>"), which is fsync'ed, closed and renamed over `path`; the
/// directory is then fsync'ed so that the rename survives a crash. Readers see the old file or the new one,
/// never a partial one. If anything fails (including an exception from `produce`), the temporary file is
/// removed, `path` is left as it was, and the error propagates (spikelm::Error for I/O errors).
template <class Produce>
void write_file_atomic(const std::filesystem::path& path, Produce&& produce) {
  static std::atomic<std::uint64_t> counter{0};
  check(!path.filename().empty(), "write_file_atomic: '", path.string(), "' does not name a file");
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  int fd = -1;
  std::filesystem::path tmp;
  for (int attempt = 0; fd < 0; ++attempt) {
    std::string name(1, '.');
    name.append(path.filename().string()).append(".tmp.").append(std::to_string(::getpid()));
    name.append(1, '.').append(std::to_string(counter.fetch_add(1)));
    tmp = dir / name;
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    const int err = errno;
    if (fd < 0 && ((err != EEXIST && err != EINTR) || attempt >= 100))
      fail("cannot create a temporary file next to '", path.string(), "' (", tmp.string(),
           "): ", detail::errno_text(err));
  }
  try {
    FileSink sink(fd, tmp.string());
    produce(sink);
    sink.flush();
    int rc;
    do {
      rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) fail("fsync of '", tmp.string(), "' failed: ", detail::errno_text(errno));
    const int fd_closed = std::exchange(fd, -1);
    if (::close(fd_closed) != 0) fail("closing '", tmp.string(), "' failed: ", detail::errno_text(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      fail("cannot rename '", tmp.string(), "' to '", path.string(), "': ", detail::errno_text(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename durable. Failing to open or sync the directory does not undo the (complete) write.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

SPIKELM_NAMESPACE_END

#endif // SPIKELM_IO_FILE_HPP
