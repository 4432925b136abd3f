#include "flows/idx.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <span>
#include <stdexcept>

#include <fmt/format.h>
#include <zlib.h>

#include "tensor/file_io.hpp"

namespace tapeflow::flows {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error(fmt::format("{}: {}", path, what));
}

// Deflate expands at most 1032-fold (a 258-byte match in about 2 bits; Adler, zlib's FAQ §36): a
// header that declares more than that from the file's size is lying, whatever the data says.
constexpr std::uint64_t max_deflate_ratio = 1032;

// The decompressed bytes of a gzip file, produced on demand into the caller's buffers, so that a
// caller reading a header first can bound what it asks for by what the header declares. A gzip
// file is a series of members whose contents concatenate (RFC 1952 §2.2; `cat a.gz b.gz`); anything
// else after a member is reported, never silently dropped.
class GzipReader {
public:
    explicit GzipReader(const std::string& path) : path_(path), file_(path, physical_memory_bytes(), "") {
        refill_input(2);
        if (avail_ < 2 || buffer_[0] != 0x1f || buffer_[1] != 0x8b)
            fail(path_, "not a gzip file (it does not start with the gzip magic bytes 1f 8b at offset 0)");
        // 16 + MAX_WBITS: expect a gzip wrapper, not a raw zlib stream.
        if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) fail(path_, "zlib could not be initialized");
        initialized_ = true;
    }
    ~GzipReader() {
        if (initialized_) inflateEnd(&z_);
    }
    GzipReader(const GzipReader&) = delete;
    GzipReader& operator=(const GzipReader&) = delete;

    std::uint64_t compressed_size() const { return file_.size(); }

    // Up to n bytes into out; fewer only where the data ends.
    std::size_t read(std::uint8_t* out, std::size_t n) {
        std::size_t produced = 0;
        while (produced < n) {
            if (z_.avail_in == 0 && !refill_input()) {
                if (member_ended_) return produced;  // the end of the last member: the end of the data
                fail(path_, fmt::format("corrupt gzip stream at compressed byte {}: the compressed data ends early",
                                        offset()));
            }
            if (member_ended_) start_next_member();
            z_.next_out = out + produced;
            const std::size_t room = std::min<std::size_t>(n - produced, 1u << 30);
            z_.avail_out = static_cast<uInt>(room);
            const int status = inflate(&z_, Z_NO_FLUSH);
            produced += room - z_.avail_out;
            if (status == Z_STREAM_END) member_ended_ = true;
            else if (status == Z_BUF_ERROR && z_.avail_in == 0) continue;  // needs more input
            else if (status != Z_OK)
                fail(path_, fmt::format("corrupt gzip stream at compressed byte {}: {}", offset(),
                                        z_.msg ? z_.msg : "corrupt data"));
        }
        return produced;
    }

private:
    // Keeps the unread input (fewer than `want` bytes) at the buffer's start and reads more after it;
    // false when the file ends before any byte is unread.
    bool refill_input(std::size_t want = 1) {
        const std::size_t unread = z_.avail_in;
        const std::size_t read_at = avail_ - unread;  // index of the first unread byte
        std::memmove(buffer_.data(), buffer_.data() + read_at, unread);
        consumed_ += read_at;
        avail_ = unread;
        while (avail_ < want) {
            const std::size_t n = file_.read_some(std::span(buffer_).subspan(avail_));
            if (n == 0) break;
            avail_ += n;
        }
        z_.next_in = buffer_.data();
        z_.avail_in = static_cast<uInt>(avail_);
        return avail_ > 0;
    }
    // Compressed bytes consumed so far: the offset of the next byte inflate reads.
    std::uint64_t offset() const { return consumed_ + (avail_ - z_.avail_in); }

    void start_next_member() {
        if (z_.avail_in < 2) refill_input(2);
        if (z_.avail_in < 2 || z_.next_in[0] != 0x1f || z_.next_in[1] != 0x8b)
            fail(path_, fmt::format("trailing data after the end of the gzip stream at compressed byte {} ({} bytes)",
                                    offset(), file_.size() - offset()));
        inflateReset(&z_);
        member_ended_ = false;
    }

    const std::string& path_;
    InputFile file_;
    z_stream z_{};
    std::array<std::uint8_t, 1 << 16> buffer_{};
    std::size_t avail_ = 0;       // bytes in buffer_ from the last refill
    std::uint64_t consumed_ = 0;  // compressed bytes before buffer_[0]
    bool member_ended_ = false;
    bool initialized_ = false;
};

// Big-endian uint32 at `offset`, checking that four bytes remain.
std::uint32_t read_u32(const std::vector<std::uint8_t>& b, std::size_t offset, const std::string& path,
                       const char* field) {
    if (offset + 4 > b.size())
        fail(path, fmt::format("truncated IDX header: the {} field at byte {} needs 4 bytes, {} remain", field,
                               offset, b.size() > offset ? b.size() - offset : 0));
    return std::uint32_t{b[offset]} << 24 | std::uint32_t{b[offset + 1]} << 16 | std::uint32_t{b[offset + 2]} << 8 |
           std::uint32_t{b[offset + 3]};
}

// The first `header` decompressed bytes (fewer if the data ends sooner).
std::vector<std::uint8_t> read_header(GzipReader& in, std::size_t header) {
    std::vector<std::uint8_t> b(header);
    b.resize(in.read(b.data(), header));
    return b;
}

// Exactly the `expected` bytes the header declares, then the end of the data: inflation never runs
// past the declared size (plus one byte, to tell trailing data), whatever the file holds.
std::vector<std::uint8_t> read_payload(GzipReader& in, std::size_t header, std::size_t expected,
                                       const std::string& path, const std::string& described) {
    if (expected > max_deflate_ratio * in.compressed_size() + 4096)
        fail(path, fmt::format("the header says {} ({} bytes), more than a gzip file of {} bytes can hold (deflate "
                               "expands at most {}-fold)",
                               described, expected, in.compressed_size(), max_deflate_ratio));
    if (expected > physical_memory_bytes())
        fail(path, fmt::format("the header says {} ({} bytes), more than this machine's memory", described, expected));
    // Grown as the data arrives, so memory follows what the file really holds, not what it claims.
    std::vector<std::uint8_t> payload;
    constexpr std::size_t step = std::size_t{16} << 20;
    while (payload.size() < expected) {
        const std::size_t at = payload.size(), want = std::min(step, expected - at);
        payload.resize(at + want);
        const std::size_t got = in.read(payload.data() + at, want);
        if (got < want) {
            payload.resize(at + got);
            fail(path, fmt::format("the header says {} ({} bytes from offset {}), but {} bytes follow it (truncated)",
                                   described, expected, header, payload.size()));
        }
    }
    std::uint8_t probe;
    if (in.read(&probe, 1) != 0)
        fail(path, fmt::format("the header says {} ({} bytes from offset {}), but more bytes follow it (trailing "
                               "data)",
                               described, expected, header));
    return payload;
}

}  // namespace

std::vector<std::uint8_t> read_gzip_file(const std::string& path, std::size_t max_bytes) {
    GzipReader in(path);
    std::vector<std::uint8_t> out;
    for (;;) {
        // One byte past the bound tells "more than allowed" without inflating further.
        const std::size_t at = out.size(), left = max_bytes - at;  // at ≤ max_bytes here
        const std::size_t want = left >= (1 << 20) ? std::size_t{1} << 20 : left + 1;
        out.resize(at + want);
        const std::size_t got = in.read(out.data() + at, want);
        out.resize(at + got);
        if (out.size() > max_bytes) fail(path, fmt::format("decompresses to more than the {} bytes allowed", max_bytes));
        if (got < want) return out;
    }
}

IdxImages read_idx_images(const std::string& path) {
    GzipReader in(path);
    const std::vector<std::uint8_t> b = read_header(in, 16);
    const std::uint32_t magic = read_u32(b, 0, path, "magic");
    if (magic != 0x00000803)
        fail(path, fmt::format("wrong IDX magic {:#010x} at byte 0 (images need 0x00000803{})", magic,
                               magic == 0x00000801 ? "; this is a labels file" : ""));
    IdxImages images;
    images.count = read_u32(b, 4, path, "image count");
    images.rows = read_u32(b, 8, path, "row count");
    images.cols = read_u32(b, 12, path, "column count");
    // Three 32-bit sizes can multiply past 2⁶⁴ and wrap to a small number (even to the payload's size).
    if (images.rows != 0 && images.cols != 0 && images.count > SIZE_MAX / (images.rows * images.cols))
        fail(path, fmt::format("the header (bytes 4 to 15) says {} images of {}×{}, more pixels than this machine can "
                               "address", images.count, images.rows, images.cols));
    images.pixels = read_payload(in, 16, images.count * images.rows * images.cols, path,
                                 fmt::format("{} images of {}×{}", images.count, images.rows, images.cols));
    return images;
}

std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
    GzipReader in(path);
    const std::vector<std::uint8_t> b = read_header(in, 8);
    const std::uint32_t magic = read_u32(b, 0, path, "magic");
    if (magic != 0x00000801)
        fail(path, fmt::format("wrong IDX magic {:#010x} at byte 0 (labels need 0x00000801{})", magic,
                               magic == 0x00000803 ? "; this is an images file" : ""));
    const std::size_t count = read_u32(b, 4, path, "label count");
    return read_payload(in, 8, count, path, fmt::format("{} labels", count));
}

}  // namespace tapeflow::flows
