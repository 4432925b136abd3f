#include "tensor/file_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "tensor/testing/save_faults.hpp"

namespace tapeflow {

namespace testing {

namespace {
struct InjectedFault {
    SaveStage stage;
    int error;
};
thread_local std::optional<InjectedFault> injected_fault;
}  // namespace

SaveFaultInjection::SaveFaultInjection(SaveStage stage, int error) { injected_fault = InjectedFault{stage, error}; }
SaveFaultInjection::~SaveFaultInjection() { injected_fault.reset(); }

int injected_save_error(SaveStage stage) {
    return injected_fault && injected_fault->stage == stage ? injected_fault->error : 0;
}

}  // namespace testing

namespace {

using testing::injected_save_error;
using testing::SaveStage;

std::string error_text(int error) { return std::system_category().message(error); }

std::string directory_of(const std::string& path) {
    const auto parent = std::filesystem::path(path).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

std::string file_name_of(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// Unique within this process; with the pid, unique on the machine while the process lives.
std::atomic<std::uint64_t> write_counter{0};

constexpr std::size_t buffer_bytes = 1 << 16;

// "<digits>" or "<digits>-<digits>" exactly; the pid is the first number.
std::optional<long> writer_pid(std::string_view suffix) {
    long pid = 0;
    const char* end = suffix.data() + suffix.size();
    auto [p, ec] = std::from_chars(suffix.data(), end, pid);
    if (ec != std::errc{} || p == suffix.data() || pid <= 0) return std::nullopt;
    if (p == end) return pid;
    if (*p != '-') return std::nullopt;
    std::uint64_t n = 0;
    const char* q = p + 1;
    auto [r, ec2] = std::from_chars(q, end, n);
    if (ec2 != std::errc{} || r == q || r != end) return std::nullopt;
    return pid;
}

// The writer is gone: no process has its pid, and nobody holds the lock a writer keeps.
bool abandoned(const std::string& file, long pid) {
    if (pid == ::getpid()) return false;  // perhaps another thread's write in progress
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) return false;  // alive (or not ours to ask)
    const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    // A writer in another pid namespace (a container sharing the folder) is invisible to kill() but
    // still holds its flock; the lock is released by the kernel when the writer dies, however it dies.
    const bool unlocked = regular && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);
    return unlocked;
}

}  // namespace

std::size_t remove_stale_temporaries(const std::string& path) {
    const std::string dir = directory_of(path);
    const std::string prefix = file_name_of(path) + ".tmp-";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return 0;  // the write itself reports an unusable directory
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (!name.starts_with(prefix)) continue;
        const auto pid = writer_pid(name.substr(prefix.size()));
        const std::string file = dir + "/" + std::string(name);
        if (pid && abandoned(file, *pid)) stale.push_back(file);
    }
    ::closedir(d);
    std::size_t removed = 0;
    for (const std::string& file : stale) removed += ::unlink(file.c_str()) == 0;
    return removed;
}

// ---------------------------------------------------------------------------------------------
// Writing.

AtomicFileWriter::AtomicFileWriter(std::string path, std::string kind) : path_(std::move(path)), kind_(std::move(kind)) {
    remove_stale_temporaries(path_);
    // Same directory as the destination, so the rename stays within one file system (atomic).
    for (int attempt = 0;; ++attempt) {
        tmp_ = fmt::format("{}.tmp-{}-{}", path_, ::getpid(), write_counter.fetch_add(1));
        if (const int e = injected_save_error(SaveStage::open)) fail(fmt::format("creating the temporary file {}", tmp_), e);
        fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ >= 0) break;
        // EEXIST: debris of an earlier process that had this pid; take the next number.
        if (errno != EEXIST || attempt == 100) {
            const int e = errno;
            const std::string step = fmt::format("creating the temporary file {}", tmp_);
            tmp_.clear();
            fail(step, e);
        }
    }
    // Held until close: tells remove_stale_temporaries that this writer is alive.
    if (::flock(fd_, LOCK_EX) != 0) fail(fmt::format("locking the temporary file {}", tmp_), errno);
    buffer_.reserve(buffer_bytes);
}

AtomicFileWriter::~AtomicFileWriter() {
    if (!committed_) abandon();
}

void AtomicFileWriter::abandon() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
}

void AtomicFileWriter::fail(std::string_view step, int error) {
    abandon();
    throw std::runtime_error(fmt::format("{} {}: could not save ({} failed: {}); any previous {} at this path is unchanged",
                                         kind_, path_, step, error_text(error), kind_));
}

void AtomicFileWriter::write_all(std::span<const unsigned char> bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        // write() returning 0 for a non-empty request would loop forever; treat it as an I/O error.
        if (n <= 0) fail(fmt::format("writing the temporary file {}", tmp_), n < 0 ? errno : EIO);
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
}

void AtomicFileWriter::write(std::span<const unsigned char> bytes) {
    if (fd_ < 0) throw std::logic_error(fmt::format("AtomicFileWriter {}: write after commit or failure", path_));
    if (const int e = injected_save_error(SaveStage::write)) fail(fmt::format("writing the temporary file {}", tmp_), e);
    if (buffer_.size() + bytes.size() > buffer_bytes) {
        write_all(buffer_);
        buffer_.clear();
    }
    if (bytes.size() >= buffer_bytes) write_all(bytes);  // large blocks bypass the buffer
    else buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

void AtomicFileWriter::write(std::string_view text) {
    write({reinterpret_cast<const unsigned char*>(text.data()), text.size()});
}

void AtomicFileWriter::commit() {
    if (fd_ < 0) throw std::logic_error(fmt::format("AtomicFileWriter {}: commit twice or after a failure", path_));
    if (const int e = injected_save_error(SaveStage::flush)) fail(fmt::format("flushing the temporary file {}", tmp_), e);
    write_all(buffer_);
    buffer_.clear();

    int e = injected_save_error(SaveStage::fsync);
    if (!e && ::fsync(fd_) != 0) e = errno;
    if (e) fail(fmt::format("fsync of the temporary file {}", tmp_), e);

    // close() can report a deferred write error (e.g. on NFS); the descriptor is gone either way.
    e = injected_save_error(SaveStage::close);
    if (::close(fd_) != 0 && !e) e = errno;
    fd_ = -1;
    if (e) fail(fmt::format("closing the temporary file {}", tmp_), e);

    e = injected_save_error(SaveStage::rename);
    if (!e && std::rename(tmp_.c_str(), path_.c_str()) != 0) e = errno;
    if (e) fail(fmt::format("renaming {} over it", tmp_), e);
    committed_ = true;
    tmp_.clear();

    // Makes the rename durable: a rename lives in the directory, which has its own cache entry.
    const std::string dir = directory_of(path_);
    const auto sync_failed = [&](int error) {
        throw std::runtime_error(fmt::format(
            "{} {}: saved, but syncing the directory {} failed: {}; the new {} is in place but the rename may not "
            "survive a power loss",
            kind_, path_, dir, error_text(error), kind_));
    };
    e = injected_save_error(SaveStage::fsync_directory);
    if (e) sync_failed(e);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) sync_failed(errno);
    if (::fsync(dfd) != 0) e = errno;
    ::close(dfd);
    // Some file systems cannot sync a directory at all (EINVAL); there is nothing more to do there.
    if (e != 0 && e != EINVAL) sync_failed(e);
}

void write_file_atomically(const std::string& path, std::span<const unsigned char> contents, std::string kind) {
    const std::filesystem::path file(path);
    if (file.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(file.parent_path(), ec);
        if (ec)
            throw std::runtime_error(fmt::format("{} {}: could not save (creating the directory {} failed: {})", kind,
                                                 path, file.parent_path().string(), ec.message()));
    }
    AtomicFileWriter out(path, std::move(kind));
    out.write(contents);
    out.commit();
}

void write_file_atomically(const std::string& path, std::string_view contents, std::string kind) {
    write_file_atomically(path, {reinterpret_cast<const unsigned char*>(contents.data()), contents.size()},
                          std::move(kind));
}

// ---------------------------------------------------------------------------------------------
// Reading.

std::uint64_t physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return UINT64_MAX;  // unknown: no bound beyond the allocator's
    return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
}

namespace {

const char* kind_of_file(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

}  // namespace

InputFile::InputFile(std::string path, std::uint64_t max_bytes, std::string kind)
    : path_(std::move(path)), kind_(std::move(kind)), max_bytes_(max_bytes) {
    const auto fail = [&](const std::string& what) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        throw std::runtime_error(fmt::format("{} {}: {}", kind_, path_, what));
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, possibly forever.
    fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) fail(fmt::format("cannot open the file: {}", error_text(errno)));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail(fmt::format("cannot read the file: {}", error_text(errno)));
    if (S_ISDIR(st.st_mode)) fail(fmt::format("cannot read the file: {}", error_text(EISDIR)));
    if (!S_ISREG(st.st_mode)) fail(fmt::format("cannot read the file: it is {}, not a regular file", kind_of_file(st.st_mode)));
    size_ = static_cast<std::uint64_t>(st.st_size);
    if (size_ > max_bytes_)
        fail(fmt::format("the file is {} bytes, more than the {} bytes allowed (this machine's memory, or the "
                         "caller's bound)",
                         size_, max_bytes_));
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0)
        fail(fmt::format("cannot read the file: {}", error_text(errno)));
}

InputFile::~InputFile() {
    if (fd_ >= 0) ::close(fd_);
}

std::size_t InputFile::read_some(std::span<unsigned char> into) {
    // A file that grows while it is read is still bounded: never more than max_bytes in total.
    const std::uint64_t room = max_bytes_ - consumed_;
    if (room == 0) {
        unsigned char probe;
        for (;;) {
            const ssize_t n = ::read(fd_, &probe, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n > 0)
                throw std::runtime_error(fmt::format("{} {}: the file grew past the {} bytes allowed while being read",
                                                     kind_, path_, max_bytes_));
            break;
        }
        return 0;
    }
    if (into.size() > room) into = into.first(static_cast<std::size_t>(room));
    for (;;) {
        const ssize_t n = ::read(fd_, into.data(), into.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            throw std::runtime_error(fmt::format("{} {}: cannot read the file: {}", kind_, path_, error_text(errno)));
        consumed_ += static_cast<std::uint64_t>(n);
        return static_cast<std::size_t>(n);
    }
}

std::vector<unsigned char> read_file_bytes(const std::string& path, std::string kind, std::uint64_t max_bytes) {
    InputFile in(path, max_bytes, std::move(kind));
    std::vector<unsigned char> bytes(static_cast<std::size_t>(in.size()));
    std::size_t got = 0;
    for (;;) {
        if (got == bytes.size()) bytes.resize(got + std::max<std::size_t>(got / 2, buffer_bytes));  // it grew
        const std::size_t n = in.read_some(std::span(bytes).subspan(got));
        if (n == 0) break;
        got += n;
    }
    bytes.resize(got);
    return bytes;
}

}  // namespace tapeflow
