#include "flows/idx.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <fmt/format.h>
#include <zlib.h>

namespace tapeflow::flows {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error(fmt::format("{}: {}", path, what));
}

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, fmt::format("cannot open ({})", std::strerror(errno)));
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(path, "read error");
    return bytes;
}

// Big-endian uint32 at `offset`, checking that four bytes remain.
std::uint32_t read_u32(const std::vector<std::uint8_t>& b, std::size_t offset, const std::string& path,
                       const char* field) {
    if (offset + 4 > b.size())
        fail(path, fmt::format("truncated IDX header: the {} field at byte {} needs 4 bytes, {} remain", field,
                               offset, b.size() > offset ? b.size() - offset : 0));
    return std::uint32_t{b[offset]} << 24 | std::uint32_t{b[offset + 1]} << 16 | std::uint32_t{b[offset + 2]} << 8 |
           std::uint32_t{b[offset + 3]};
}

// The payload after the header must hold exactly `expected` bytes.
void require_payload(const std::vector<std::uint8_t>& b, std::size_t header, std::size_t expected,
                     const std::string& path, const std::string& described) {
    const std::size_t present = b.size() - header;
    if (present != expected)
        fail(path, fmt::format("the header says {} ({} bytes from offset {}), but {} bytes follow it{}", described,
                               expected, header, present, present < expected ? " (truncated)" : " (trailing data)"));
}

}  // namespace

std::vector<std::uint8_t> read_gzip_file(const std::string& path) {
    const std::vector<std::uint8_t> compressed = read_file(path);
    if (compressed.size() < 2 || compressed[0] != 0x1f || compressed[1] != 0x8b)
        fail(path, "not a gzip file (it does not start with the gzip magic bytes 1f 8b at offset 0)");
    z_stream z{};
    // 16 + MAX_WBITS: expect a gzip wrapper, not a raw zlib stream.
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) fail(path, "zlib could not be initialized");
    std::vector<std::uint8_t> out;
    std::uint8_t chunk[1 << 16];
    z.next_in = const_cast<Bytef*>(compressed.data());
    z.avail_in = static_cast<uInt>(compressed.size());
    for (;;) {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        const int status = inflate(&z, Z_NO_FLUSH);
        if (status != Z_OK && status != Z_STREAM_END) {
            const std::size_t offset = compressed.size() - z.avail_in;
            const std::string reason = status == Z_BUF_ERROR ? "the compressed data ends early"
                                                             : (z.msg ? z.msg : "corrupt data");
            inflateEnd(&z);
            fail(path, fmt::format("corrupt gzip stream at compressed byte {}: {}", offset, reason));
        }
        out.insert(out.end(), chunk, chunk + (sizeof chunk - z.avail_out));
        if (status != Z_STREAM_END) continue;
        if (z.avail_in == 0) break;
        // A gzip file is a series of members whose contents concatenate (RFC 1952 §2.2; `cat a.gz b.gz`).
        // Anything else after a member is not gzip: reported rather than silently dropped.
        if (z.avail_in < 2 || z.next_in[0] != 0x1f || z.next_in[1] != 0x8b) {
            const std::size_t offset = compressed.size() - z.avail_in;
            inflateEnd(&z);
            fail(path, fmt::format("trailing data after the end of the gzip stream at compressed byte {} ({} bytes)",
                                   offset, compressed.size() - offset));
        }
        inflateReset(&z);
    }
    inflateEnd(&z);
    return out;
}

IdxImages read_idx_images(const std::string& path) {
    const std::vector<std::uint8_t> b = read_gzip_file(path);
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
    require_payload(b, 16, images.count * images.rows * images.cols, path,
                    fmt::format("{} images of {}×{}", images.count, images.rows, images.cols));
    images.pixels.assign(b.begin() + 16, b.end());
    return images;
}

std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
    const std::vector<std::uint8_t> b = read_gzip_file(path);
    const std::uint32_t magic = read_u32(b, 0, path, "magic");
    if (magic != 0x00000801)
        fail(path, fmt::format("wrong IDX magic {:#010x} at byte 0 (labels need 0x00000801{})", magic,
                               magic == 0x00000803 ? "; this is an images file" : ""));
    const std::size_t count = read_u32(b, 4, path, "label count");
    require_payload(b, 8, count, path, fmt::format("{} labels", count));
    return {b.begin() + 8, b.end()};
}

}  // namespace tapeflow::flows
