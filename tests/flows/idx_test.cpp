#include "flows/idx.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <zlib.h>

#include "flows/fashion_mnist.hpp"

using namespace tapeflow::flows;
namespace fs = std::filesystem;

namespace {

std::vector<std::uint8_t> gzip(const std::vector<std::uint8_t>& raw) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::vector<std::uint8_t> out(deflateBound(&z, raw.size()));
    z.next_in = const_cast<Bytef*>(raw.data());
    z.avail_in = static_cast<uInt>(raw.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

void put_u32(std::vector<std::uint8_t>& b, std::uint32_t v) {
    for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::vector<std::uint8_t> images_idx(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, std::size_t payload) {
    std::vector<std::uint8_t> b;
    put_u32(b, 0x00000803);
    put_u32(b, count);
    put_u32(b, rows);
    put_u32(b, cols);
    for (std::size_t i = 0; i < payload; ++i) b.push_back(static_cast<std::uint8_t>(i * 7));
    return b;
}

std::vector<std::uint8_t> labels_idx(std::uint32_t count, std::size_t payload) {
    std::vector<std::uint8_t> b;
    put_u32(b, 0x00000801);
    put_u32(b, count);
    for (std::size_t i = 0; i < payload; ++i) b.push_back(static_cast<std::uint8_t>(i % 10));
    return b;
}

struct TempDir {
    fs::path path = fs::temp_directory_path() / ("tapeflow_idx_test_" + std::to_string(::getpid()));
    TempDir() { fs::create_directories(path); }
    ~TempDir() { fs::remove_all(path); }
    std::string write(const std::string& name, const std::vector<std::uint8_t>& bytes) const {
        const std::string p = (path / name).string();
        std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                 static_cast<std::streamsize>(bytes.size()));
        return p;
    }
};

std::string error_of(auto&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("IDX images and labels round trip through gzip") {
    TempDir dir;
    const auto raw = images_idx(3, 2, 4, 24);
    const IdxImages images = read_idx_images(dir.write("img.gz", gzip(raw)));
    CHECK(images.count == 3);
    CHECK(images.rows == 2);
    CHECK(images.cols == 4);
    REQUIRE(images.pixels.size() == 24);
    CHECK(images.pixels[5] == 35);
    const auto labels = read_idx_labels(dir.write("lab.gz", gzip(labels_idx(12, 12))));
    REQUIRE(labels.size() == 12);
    CHECK(labels[11] == 1);
}

TEST_CASE("malformed files are reported with the file name and the offset") {
    TempDir dir;
    const std::string plain = dir.write("plain.gz", images_idx(1, 2, 2, 4));
    CHECK(error_of([&] { read_idx_images(plain); }).find("plain.gz: not a gzip file") != std::string::npos);

    const auto good = gzip(images_idx(4, 8, 8, 256));
    std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<long>(good.size() / 2));
    const std::string cut_path = dir.write("cut.gz", cut);
    CHECK(error_of([&] { read_idx_images(cut_path); }).find("corrupt gzip stream at compressed byte") != std::string::npos);

    std::vector<std::uint8_t> flipped = good;
    for (std::size_t i = 12; i < flipped.size() - 8; ++i) flipped[i] ^= 0x5a;
    const std::string flipped_path = dir.write("flipped.gz", flipped);
    CHECK(error_of([&] { read_idx_images(flipped_path); }).find("corrupt gzip stream") != std::string::npos);

    const std::string labels_as_images = dir.write("labels.gz", gzip(labels_idx(3, 3)));
    CHECK(error_of([&] { read_idx_images(labels_as_images); }) ==
          labels_as_images + ": wrong IDX magic 0x00000801 at byte 0 (images need 0x00000803; this is a labels file)");

    const std::string short_payload = dir.write("short.gz", gzip(images_idx(2, 3, 3, 17)));
    CHECK(error_of([&] { read_idx_images(short_payload); }) ==
          short_payload + ": the header says 2 images of 3×3 (18 bytes from offset 16), but 17 bytes follow it (truncated)");

    const std::string long_payload = dir.write("long.gz", gzip(labels_idx(2, 3)));
    CHECK(error_of([&] { read_idx_labels(long_payload); }).find("(trailing data)") != std::string::npos);

    std::vector<std::uint8_t> header_only = images_idx(1, 1, 1, 0);
    header_only.resize(10);
    const std::string short_header = dir.write("header.gz", gzip(header_only));
    CHECK(error_of([&] { read_idx_images(short_header); }) ==
          short_header + ": truncated IDX header: the row count field at byte 8 needs 4 bytes, 2 remain");

    const std::string missing = (dir.path / "missing.gz").string();
    CHECK(error_of([&] { read_idx_labels(missing); }).find(missing + ": cannot open") == 0);
}

TEST_CASE("load_fashion_mnist checks that images and labels agree") {
    TempDir dir;
    dir.write("t10k-images-idx3-ubyte.gz", gzip(images_idx(3, 28, 28, 3 * 784)));
    dir.write("t10k-labels-idx1-ubyte.gz", gzip(labels_idx(2, 2)));
    CHECK(error_of([&] { load_fashion_mnist("test", dir.path.string()); }).find("3 images but 2 labels") != std::string::npos);
    dir.write("t10k-labels-idx1-ubyte.gz", gzip(labels_idx(3, 3)));
    const FashionMnist data = load_fashion_mnist("test", dir.path.string());
    CHECK(data.pixels.shape() == tapeflow::Shape{3, 784});
    CHECK(data.pixels.at({1, 0}) == static_cast<double>(static_cast<std::uint8_t>(784 * 7)));
    CHECK(error_of([&] { load_fashion_mnist("validation", dir.path.string()); }).find("split must be") != std::string::npos);
}

TEST_CASE("the Debian package's Fashion-MNIST test split" * doctest::skip(!fs::exists(fashion_mnist_dir()))) {
    const FashionMnist test = load_fashion_mnist("test", fashion_mnist_dir());
    CHECK(test.pixels.shape() == tapeflow::Shape{10000, 784});
    CHECK(test.labels[0] == 9);  // the first test image is an ankle boot
    double lo = 255, hi = 0;
    for (double v : test.pixels.span()) lo = std::min(lo, v), hi = std::max(hi, v);
    CHECK(lo == 0);
    CHECK(hi == 255);
}

// Inputs found by tests/fuzz/idx_fuzz (option byte dropped; the harness gzipped them as below).
TEST_CASE("fuzz regressions: header sizes whose product wraps, gzip members, trailing bytes") {
    TempDir dir;
    // 2²³ images of 2²⁴ × (11·2¹⁸) pixels: 11·2⁶⁵, which wrapped to 0 and matched the empty payload.
    const std::uint8_t wrapping_header[] = {0x00, 0x00, 0x08, 0x03, 0x00, 0x80, 0x00, 0x00,
                                            0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00};
    const std::string wrapping = dir.write("wrap.gz", gzip({std::begin(wrapping_header), std::end(wrapping_header)}));
    CHECK(error_of([&] { read_idx_images(wrapping); }) ==
          wrapping + ": the header (bytes 4 to 15) says 8388608 images of 16777216×2883584, more pixels than this "
                     "machine can address");

    // Two gzip members decompress to the concatenation of their contents (only the first was read).
    const std::vector<std::uint8_t> first = {0xff, 0xff}, second = {0xff, 0x00};
    std::vector<std::uint8_t> members = gzip(first);
    for (std::uint8_t b : gzip(second)) members.push_back(b);
    CHECK(read_gzip_file(dir.write("members.gz", members)) == std::vector<std::uint8_t>{0xff, 0xff, 0xff, 0x00});

    // Bytes after the last member that do not start another one are an error, not silently dropped.
    std::vector<std::uint8_t> trailing = gzip(labels_idx(2, 2));
    const std::size_t end = trailing.size();
    trailing.push_back(0x00);
    const std::string trailing_path = dir.write("trailing.gz", trailing);
    CHECK(error_of([&] { read_idx_labels(trailing_path); }) ==
          trailing_path + ": trailing data after the end of the gzip stream at compressed byte " + std::to_string(end) +
              " (1 bytes)");
}

TEST_CASE("bounded reading: inflation stops at the size the header declares") {
    TempDir dir;
    // A valid labels file followed by 200 gzip members of 1 MiB of zeros each (~1 kB compressed): the
    // reader used to inflate all 200 MiB before looking at the header; it now stops one byte after
    // the 5 declared labels.
    std::vector<std::uint8_t> file = gzip(labels_idx(5, 5));
    const std::size_t first_member_end = file.size();
    const std::vector<std::uint8_t> zeros_member = gzip(std::vector<std::uint8_t>(1 << 20, 0));
    for (int i = 0; i < 200; ++i) file.insert(file.end(), zeros_member.begin(), zeros_member.end());
    const std::string members = dir.write("members.gz", file);
    CHECK(error_of([&] { read_idx_labels(members); }) ==
          members + ": the header says 5 labels (5 bytes from offset 8), but more bytes follow it (trailing data)");
    // read_gzip_file has no header: its own bound stops it.
    CHECK(error_of([&] { read_gzip_file(members, 3 << 20); }) ==
          members + ": decompresses to more than the 3145728 bytes allowed");

    // Garbage after the last member, as before.
    std::vector<std::uint8_t> garbage(file.begin(), file.begin() + static_cast<long>(first_member_end));
    garbage.insert(garbage.end(), {'P', 'K', 3, 4});
    const std::string garbage_path = dir.write("garbage.gz", garbage);
    CHECK(error_of([&] { read_idx_labels(garbage_path); }) ==
          garbage_path + ": trailing data after the end of the gzip stream at compressed byte " +
              std::to_string(first_member_end) + " (4 bytes)");

    // A header that declares more than the file could ever hold fails before any allocation.
    const std::string liar = dir.write("liar.gz", gzip(images_idx(60000, 28000, 28000, 10)));
    CHECK(error_of([&] { read_idx_images(liar); })
              .find(": the header says 60000 images of 28000×28000 (47040000000000 bytes), more than a gzip file of") !=
          std::string::npos);

    // Members that split the declared data are still one file (RFC 1952 §2.2).
    const std::vector<std::uint8_t> whole = images_idx(2, 2, 2, 8);
    std::vector<std::uint8_t> split = gzip({whole.begin(), whole.begin() + 11});
    const auto rest = gzip({whole.begin() + 11, whole.end()});
    split.insert(split.end(), rest.begin(), rest.end());
    const IdxImages images = read_idx_images(dir.write("split.gz", split));
    CHECK(images.pixels == std::vector<std::uint8_t>(whole.begin() + 16, whole.end()));
}

TEST_CASE("bounded reading: a path that is not a regular file fails at once, naming it and why") {
    TempDir dir;
    const std::string folder = (dir.path / "images").string();
    fs::create_directories(folder);
    CHECK(error_of([&] { read_idx_images(folder); }) == folder + ": cannot read the file: Is a directory");
    const std::string fifo = (dir.path / "fifo.gz").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // would block a plain open() until a writer comes
    CHECK(error_of([&] { read_idx_labels(fifo); }) ==
          fifo + ": cannot read the file: it is a FIFO (named pipe), not a regular file");
    CHECK(error_of([] { read_idx_labels("/dev/zero"); }) ==
          "/dev/zero: cannot read the file: it is a character device, not a regular file");
}

TEST_CASE("load_fashion_mnist: fewer images than asked for is an error naming the file") {
    TempDir dir;
    dir.write("train-images-idx3-ubyte.gz", gzip(images_idx(3, 28, 28, 3 * 784)));
    dir.write("train-labels-idx1-ubyte.gz", gzip(labels_idx(3, 3)));
    CHECK(error_of([&] { load_fashion_mnist("train", dir.path.string(), 8); }) ==
          (dir.path / "train").string() + "-images-idx3-ubyte.gz: it holds 3 images, fewer than the 8 asked for");
    CHECK(load_fashion_mnist("train", dir.path.string(), 2).pixels.shape() == tapeflow::Shape{2, 784});
}
