// Writes the seed corpora in tests/fuzz/corpus/ (run by hand after a format change:
// `build-fuzz/make_seeds tests/fuzz/corpus`). Each seed starts with the harness's option byte.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "nn/checkpoint.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace tapeflow;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;

void write_seed(const fs::path& dir, const std::string& name, std::uint8_t options, const Bytes& bytes) {
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary);
    out.put(static_cast<char>(options));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Bytes saved(const nn::Module& model, const nn::CheckpointExtras& extras = {}) {
    const std::string path = fuzz::scratch_path("seed");
    nn::save_checkpoint(path, model, extras);
    Bytes bytes = read_all(path);
    fs::remove(path);
    return bytes;
}

Bytes gzip(const Bytes& raw) {
    z_stream z{};
    deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    Bytes out(deflateBound(&z, raw.size()));
    z.next_in = const_cast<Bytef*>(raw.data());
    z.avail_in = static_cast<uInt>(raw.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

Bytes idx(std::uint32_t magic, std::vector<std::uint32_t> sizes, std::size_t payload) {
    Bytes b;
    sizes.insert(sizes.begin(), magic);
    for (std::uint32_t v : sizes)
        for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<std::uint8_t>(v >> shift));
    for (std::size_t i = 0; i < payload; ++i) b.push_back(static_cast<std::uint8_t>(i * 37));
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const fs::path checkpoint = fs::path(argv[1]) / "checkpoint", images = fs::path(argv[1]) / "idx";

    fuzz::FuzzModel model;
    const Bytes plain = saved(model);
    write_seed(checkpoint, "model", 0, plain);
    write_seed(checkpoint, "model-fix-checksum", 1, plain);
    Tensor m = Tensor::full(Shape{2, 3}, 0.25), v = Tensor::full(Shape{3}, 4.0), unused = Tensor::full(Shape{1, 0}, 0);
    std::uint64_t step = 42;
    write_seed(checkpoint, "with-extras", 2 | 1, saved(model, {{{"optimizer/m", &m}, {"optimizer/v", &v}}, &step}));
    write_seed(checkpoint, "unused-entry", 4 | 1, saved(model, {{{"other/empty", &unused}}, &step}));
    write_seed(checkpoint, "empty", 0, {});
    write_seed(checkpoint, "header-only", 1, Bytes(plain.begin(), plain.begin() + 28));

    write_seed(images, "images-raw", 1, idx(0x803, {2, 3, 2}, 12));
    write_seed(images, "labels-raw", 1, idx(0x801, {5}, 5));
    write_seed(images, "images-gz", 0, gzip(idx(0x803, {3, 2, 2}, 12)));
    write_seed(images, "labels-gz", 0, gzip(idx(0x801, {4}, 4)));
    write_seed(images, "empty-images-raw", 1, idx(0x803, {0, 28, 28}, 0));
    write_seed(images, "empty-gz", 0, gzip({}));
    return 0;
}
