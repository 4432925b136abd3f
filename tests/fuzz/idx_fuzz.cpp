// libFuzzer harness for the gzip/IDX reader (flows/idx.hpp): read_gzip_file, read_idx_images and
// read_idx_labels on a file holding the fuzz input.
//
// Input: one option byte, then the payload. With option bit 1 set the payload is an IDX file that the
// harness gzips first, so mutations reach the IDX header checks instead of dying in inflate; without
// it the payload is the file itself, which fuzzes the gzip handling. With bits 1 and 2 the payload is
// compressed as two gzip members (split in the middle), which a gzip file may hold (RFC 1952 §2.2).
// With bits 1 and 4, a member of 1 MiB of zeros follows (extra data after whatever the header
// declares: the bounded reader must stop at the declared size, inside the harness's malloc limit).
// The contract checked: each call returns or throws std::runtime_error, what it returns agrees with
// the header (pixels = count · rows · cols, computed without overflow; labels = count), and
// read_gzip_file never returns more than its bound.
#include <zlib.h>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "flows/idx.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace tapeflow;

namespace {

std::vector<std::uint8_t> gzip(const std::uint8_t* data, std::size_t size) {
    z_stream z{};
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        fuzz::finding("deflateInit2 failed");
    std::vector<std::uint8_t> out(deflateBound(&z, size));
    z.next_in = const_cast<Bytef*>(data);
    z.avail_in = static_cast<uInt>(size);
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) fuzz::finding("deflate failed");
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

template <class F>
void returns_or_throws_cleanly(const char* what, F&& f) {
    try {
        f();
    } catch (const std::runtime_error&) {
    } catch (const std::exception& e) {
        fuzz::finding(std::string(what) + " threw an undocumented exception: " + e.what());
    } catch (...) {
        fuzz::finding(std::string(what) + " threw a non-std exception");
    }
}

std::uint32_t big_endian_u32(const std::vector<std::uint8_t>& b, std::size_t at) {
    return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 | std::uint32_t{b[at + 2]} << 8 | b[at + 3];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string& path = fuzz::scratch_path("idx");
    if (data[0] & 1) {
        auto compressed = gzip(data + 1, size - 1);
        if (data[0] & 2) {
            const std::size_t half = (size - 1) / 2;
            compressed = gzip(data + 1, half);
            const auto second = gzip(data + 1 + half, size - 1 - half);
            compressed.insert(compressed.end(), second.begin(), second.end());
        }
        if (data[0] & 4) {
            static const std::vector<std::uint8_t> zeros(1 << 20, 0);
            const auto extra = gzip(zeros.data(), zeros.size());
            compressed.insert(compressed.end(), extra.begin(), extra.end());
        }
        fuzz::write_file(path, compressed.data(), compressed.size());
    } else {
        fuzz::write_file(path, data + 1, size - 1);
    }

    std::vector<std::uint8_t> raw;
    bool decompressed = false;
    returns_or_throws_cleanly("read_gzip_file", [&] {
        raw = flows::read_gzip_file(path);
        decompressed = true;
    });
    const bool padded = (data[0] & 1) && (data[0] & 4);
    if ((data[0] & 1) && !decompressed) fuzz::finding("read_gzip_file rejected a valid gzip file");
    if ((data[0] & 1) && !padded && !std::equal(raw.begin(), raw.end(), data + 1, data + size))
        fuzz::finding("read_gzip_file returned bytes different from those compressed");
    if (padded && (raw.size() != size - 1 + (1 << 20) || !std::equal(data + 1, data + size, raw.begin())))
        fuzz::finding("read_gzip_file lost or changed bytes of a padded file");
    returns_or_throws_cleanly("read_gzip_file with a bound", [&] {
        if (flows::read_gzip_file(path, 4096).size() > 4096) fuzz::finding("read_gzip_file returned more than its bound");
    });

    returns_or_throws_cleanly("read_idx_images", [&] {
        const flows::IdxImages images = flows::read_idx_images(path);
        std::size_t pixels = 0;
        if (__builtin_mul_overflow(images.count, images.rows, &pixels) ||
            __builtin_mul_overflow(pixels, images.cols, &pixels) || pixels != images.pixels.size())
            fuzz::finding("read_idx_images returned pixels that disagree with count × rows × cols");
        if (raw.size() < 16 || images.count != big_endian_u32(raw, 4) || images.rows != big_endian_u32(raw, 8) ||
            images.cols != big_endian_u32(raw, 12))
            fuzz::finding("read_idx_images returned sizes that differ from the header");
    });
    returns_or_throws_cleanly("read_idx_labels", [&] {
        const std::vector<std::uint8_t> labels = flows::read_idx_labels(path);
        if (raw.size() < 8 || labels.size() != big_endian_u32(raw, 4))
            fuzz::finding("read_idx_labels returned a label count different from the header");
    });
    return 0;
}
