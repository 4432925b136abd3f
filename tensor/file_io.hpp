// Checked file I/O, the one place the project touches files: every write is atomic and checked
// end to end, every read checks what the path is and how big it is before reading a byte.
//
// Writing. "Nothing the user saved is lost": a write goes to a temporary file in the destination's
// directory (unique per write, so two writers of one path never share it), which is flushed, checked,
// fsync'ed and renamed over the destination; then the directory is fsync'ed so the rename survives a
// power loss. Any failure up to the rename leaves the previous file untouched and removes the
// temporary. The temporary is named `<path>.tmp-<pid>-<n>` and is flock'ed while it is written, so a
// later write of the same path can tell a dead writer's debris (a kill -9 mid-write) from a live
// writer's work in progress, and removes only the former (see remove_stale_temporaries).
//
// Reading. An untrusted path may be a directory, a FIFO that blocks forever, a device that never ends
// or a sparse file of a terabyte. InputFile opens it without blocking, checks it is a regular file of
// at most a given size, and only then reads; every error names the file and the system's reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tapeflow {

// Writes one file atomically. Bytes go to the temporary through a buffer; commit() publishes them.
// Destroyed without commit() (an exception midway), it removes the temporary and leaves `path` as it was.
// Errors are std::runtime_error: "<kind> <path>: could not save (<step> failed: <strerror>); any
// previous <kind> at this path is unchanged", where kind says what is saved ("checkpoint", "figure").
class AtomicFileWriter {
public:
    explicit AtomicFileWriter(std::string path, std::string kind = "file");
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(std::span<const unsigned char> bytes);
    void write(std::string_view text);
    // Flush, fsync, close, rename over the destination, fsync the directory. A failure of the last
    // step alone says the new file is in place (the rename happened) but may not survive a power loss.
    void commit();

    const std::string& path() const { return path_; }
    const std::string& temporary_path() const { return tmp_; }

private:
    [[noreturn]] void fail(std::string_view step, int error);
    void write_all(std::span<const unsigned char> bytes);
    void abandon() noexcept;

    std::string path_, kind_, tmp_;
    int fd_ = -1;
    bool committed_ = false;
    std::vector<unsigned char> buffer_;
};

// The whole of `contents` written to `path` through an AtomicFileWriter; the parent directory is
// created when missing (for output folders such as out/NN_name/).
void write_file_atomically(const std::string& path, std::string_view contents, std::string kind = "file");
void write_file_atomically(const std::string& path, std::span<const unsigned char> contents, std::string kind = "file");

// Removes the temporaries `<path>.tmp-<pid>[-<n>]` that earlier writes of `path` left behind when
// their process died. One is removed only when its writer is provably gone: its pid is not this
// process's (another thread's write here may be in progress), no process with that pid exists, and
// no one holds the flock a writer keeps on it. Anything it cannot decide is left alone. Returns how
// many it removed. AtomicFileWriter calls it before each write.
std::size_t remove_stale_temporaries(const std::string& path);

// The physical memory of this machine in bytes: the default bound for files read into memory whole.
std::uint64_t physical_memory_bytes();

// A regular file opened for reading, checked before the first byte is read. Errors are
// std::runtime_error "<kind> <path>: ..." naming the system's reason (strerror) or the kind of
// file found (a directory, a FIFO, a character device...) or the size against the bound.
class InputFile {
public:
    InputFile(std::string path, std::uint64_t max_bytes, std::string kind = "file");
    ~InputFile();
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    std::uint64_t size() const { return size_; }  // as fstat saw it when opened
    const std::string& path() const { return path_; }
    // Up to into.size() bytes; 0 at the end of the file. Never reads past max_bytes in total.
    std::size_t read_some(std::span<unsigned char> into);

private:
    std::string path_, kind_;
    int fd_ = -1;
    std::uint64_t size_ = 0, max_bytes_ = 0, consumed_ = 0;
};

// The whole file, after InputFile's checks; max_bytes defaults to the machine's memory.
std::vector<unsigned char> read_file_bytes(const std::string& path, std::string kind = "file",
                                           std::uint64_t max_bytes = physical_memory_bytes());

}  // namespace tapeflow
