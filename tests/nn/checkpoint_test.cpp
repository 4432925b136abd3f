#include "nn/checkpoint.hpp"
#include "tensor/testing/save_faults.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

using namespace tapeflow;
using namespace tapeflow::nn;
namespace fs = std::filesystem;

namespace {

// A layer with a weight and a bias, and a small network of two of them plus an optional scale:
// parameter names "log_scale", "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias".
class Affine : public Module {
public:
    Affine(std::size_t out, std::size_t in) {
        register_parameter("weight", Tensor::zeros(Shape{out, in}));
        register_parameter("bias", Tensor::zeros(Shape{out}));
    }
};

class Net : public Module {
public:
    explicit Net(std::size_t hidden) {
        register_module("0", std::make_unique<Affine>(hidden, 4));
        register_module("2", std::make_unique<Affine>(4, hidden));
    }
};

class Tiny : public Module {
public:
    // Values depend on `seed`, so two models differ everywhere.
    explicit Tiny(double seed, std::size_t hidden = 3, bool with_scale = true) {
        if (with_scale) register_parameter("log_scale", Tensor::zeros(Shape{3}));
        register_module("net", std::make_unique<Net>(hidden));
        double v = seed;
        for (auto& [name, p] : named_parameters())
            for (double& x : p->value.span()) {
                v += 0.37;
                x = v > 2 ? -v : v;
            }
    }
};

std::vector<std::uint64_t> bits(const Tensor& t) {
    std::vector<std::uint64_t> out;
    for (double v : t.span()) out.push_back(std::bit_cast<std::uint64_t>(v));
    return out;
}

// Every parameter's name, shape and exact bit patterns.
std::vector<std::pair<std::string, std::vector<std::uint64_t>>> snapshot(Module& m) {
    std::vector<std::pair<std::string, std::vector<std::uint64_t>>> out;
    for (auto& [name, p] : m.named_parameters()) out.emplace_back(name + " " + p->shape().str(), bits(p->value));
    return out;
}

// Values a careless format would lose: NaN payloads, −0.0, denormals, infinities, extremes.
void fill_special(Module& m) {
    const double special[] = {
        std::bit_cast<double>(0x7ff8000000000123ULL),  // quiet NaN with a payload
        std::bit_cast<double>(0xfff4000000000abcULL),  // negative NaN, another payload
        -0.0,
        std::numeric_limits<double>::denorm_min(),
        -std::numeric_limits<double>::denorm_min() * 12345,
        std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(),
        std::numeric_limits<double>::max(),
        std::numeric_limits<double>::min(),
        0.1,
        -1.0 / 3.0,
    };
    std::size_t i = 0;
    for (auto& [name, p] : m.named_parameters())
        for (double& x : p->value.span()) x = special[i++ % std::size(special)];
}

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "tapeflow-ckpt-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    // Names of everything in the directory, to show no temporary file is left behind.
    std::vector<std::string> listing() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }

private:
    fs::path path_;
};

std::vector<unsigned char> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
    // Removing first: rewriting a truncated file in place makes ext4 flush it on close
    // (auto_da_alloc), which costs milliseconds per file in the loops below.
    std::error_code ignored;
    fs::remove(path, ignored);
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The message of the std::runtime_error `f` throws ("" if it throws nothing, fails the test if it
// throws anything else).
template <class F>
std::string runtime_error_of(F&& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

// Builds a file by hand from the layout documented in checkpoint.hpp, independently of the writer.
class FileBuilder {
public:
    FileBuilder& raw(std::string_view s) {
        bytes.insert(bytes.end(), s.begin(), s.end());
        return *this;
    }
    FileBuilder& u32(std::uint32_t v) { return le(v, 4); }
    FileBuilder& u64(std::uint64_t v) { return le(v, 8); }
    FileBuilder& f64(double v) { return le(std::bit_cast<std::uint64_t>(v), 8); }
    FileBuilder& header(std::optional<std::uint64_t> step, std::uint32_t count) {
        return raw("TAPEFLOW").u32(1).u32(step ? 1 : 0).u64(step.value_or(0)).u32(count);
    }
    FileBuilder& tensor(std::string_view name, std::vector<std::uint64_t> dims, std::vector<double> values) {
        u32(static_cast<std::uint32_t>(name.size())).raw(name).u32(static_cast<std::uint32_t>(dims.size()));
        for (auto d : dims) u64(d);
        for (double v : values) f64(v);
        return *this;
    }
    std::vector<unsigned char> with_checksum() const {
        auto out = bytes;
        const std::uint64_t h = fnv1a_64(bytes);
        for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(h >> (8 * i)));
        return out;
    }
    std::vector<unsigned char> bytes;

private:
    FileBuilder& le(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) bytes.push_back(static_cast<unsigned char>(v >> (8 * i)));
        return *this;
    }
};

// A model with one parameter "w" of any shape, for hand-built files.
class Single : public Module {
public:
    explicit Single(const Shape& shape) { w = &register_parameter("w", Tensor::full(shape, 7.0)); }
    Parameter* w;
};

}  // namespace

TEST_CASE("fnv1a_64 matches the published test vectors") {
    // From the FNV reference test suite (draft-eastlake-fnv, test vectors for FNV-1a 64).
    const auto h = [](std::string_view s) {
        return fnv1a_64({reinterpret_cast<const unsigned char*>(s.data()), s.size()});
    };
    CHECK(h("") == 0xcbf29ce484222325ULL);
    CHECK(h("a") == 0xaf63dc4c8601ec8cULL);
    CHECK(h("foobar") == 0x85944171f73967e8ULL);
}

TEST_CASE("a checkpoint round trips every bit, special values included") {
    TempDir dir;
    const std::string path = dir.file("a.ckpt");
    Tiny saved(0.0);
    fill_special(saved);
    save_checkpoint(path, saved);
    CHECK(dir.listing() == std::vector<std::string>{"a.ckpt"});

    Tiny loaded(5.0);
    REQUIRE(snapshot(loaded) != snapshot(saved));
    load_checkpoint(path, loaded);
    CHECK(snapshot(loaded) == snapshot(saved));

    // Saving over an existing checkpoint replaces it.
    Tiny other(1.0);
    save_checkpoint(path, other);
    load_checkpoint(path, loaded);
    CHECK(snapshot(loaded) == snapshot(other));
    CHECK(dir.listing() == std::vector<std::string>{"a.ckpt"});
}

TEST_CASE("extras and the step count round trip; undefined extras are allocated on load") {
    TempDir dir;
    const std::string path = dir.file("train.ckpt");
    Tiny model(0.0);
    Tensor m0{{1.5, -0.0}, {std::bit_cast<double>(0x7ff800000000beefULL), 4e-320}};
    Tensor v0 = Tensor::scalar(0.25);
    std::uint64_t step = 123456789012345ULL;
    save_checkpoint(path, model, {{{"optimizer/adam.m.0", &m0}, {"optimizer/adam.v.0", &v0}}, &step});

    Tiny model2(3.0);
    Tensor m1 = Tensor::zeros(Shape{2, 2});
    Tensor v1;  // lazily allocated optimizer state
    std::uint64_t step1 = 0;
    load_checkpoint(path, model2, {{{"optimizer/adam.m.0", &m1}, {"optimizer/adam.v.0", &v1}}, &step1});
    CHECK(snapshot(model2) == snapshot(model));
    CHECK(bits(m1) == bits(m0));
    REQUIRE(v1.defined());
    CHECK(v1.shape() == Shape{});
    CHECK(bits(v1) == bits(v0));
    CHECK(step1 == step);

    // Loading in place keeps the target's storage (an optimizer may hold other handles to it).
    Tensor alias = m1;
    m1.fill(0.0);
    load_checkpoint(path, model2, {{{"optimizer/adam.m.0", &m1}, {"optimizer/adam.v.0", &v1}}, &step1});
    CHECK(bits(alias) == bits(m0));

    // The model alone, from a training checkpoint, when the caller says so.
    Tiny eval_model(7.0);
    load_checkpoint(path, eval_model, {}, UnusedEntries::ignore);
    CHECK(snapshot(eval_model) == snapshot(model));
}

TEST_CASE("the file follows the documented layout") {
    TempDir dir;
    const std::string path = dir.file("a.ckpt");
    Tiny model(0.0);
    std::uint64_t step = 42;
    Tensor extra{1.0, 2.0};
    save_checkpoint(path, model, {{{"opt/x", &extra}}, &step});

    // Rebuild the same file by hand from the header comment: byte-identical.
    FileBuilder b;
    b.header(42, 6);
    for (auto& [name, p] : model.named_parameters()) {
        std::vector<std::uint64_t> dims(p->shape().begin(), p->shape().end());
        b.tensor(name, dims, p->value.to_vector());
    }
    b.tensor("opt/x", {2}, {1.0, 2.0});
    CHECK(read_bytes(path) == b.with_checksum());

    const CheckpointInfo info = read_checkpoint_info(path);
    CHECK(info.version == 1);
    CHECK(info.step == std::optional<std::uint64_t>(42));
    CHECK(info.file_bytes == read_bytes(path).size());
    const auto index = read_checkpoint_index(path);
    REQUIRE(index.size() == 6);
    CHECK(index[0].name == "log_scale");
    CHECK(index[0].shape == Shape{3});
    CHECK(index[1].name == "net.0.weight");
    CHECK(index[1].shape == Shape{3, 4});
    CHECK(index[4].name == "net.2.bias");
    CHECK(index[4].shape == Shape{4});
    CHECK(index[5].name == "opt/x");

    // A hand-built file with a scalar, an empty tensor and no step loads as documented.
    FileBuilder h;
    h.header(std::nullopt, 1).tensor("w", {2, 0, 3}, {});
    write_bytes(path, h.with_checksum());
    Single empty(Shape{2, 0, 3});
    CHECK_NOTHROW(load_checkpoint(path, empty));
    CHECK_FALSE(read_checkpoint_info(path).step.has_value());
}

TEST_CASE("a file from another model or state is rejected with a message naming the tensor") {
    TempDir dir;
    const std::string path = dir.file("a.ckpt");
    Tiny saved(0.0, 3);
    save_checkpoint(path, saved);

    SUBCASE("wrong shape") {
        Tiny model(9.0, 2);
        const auto before = snapshot(model);
        CHECK(runtime_error_of([&] { load_checkpoint(path, model); }) ==
              fmt::format("checkpoint {}: tensor 'net.0.weight' has shape [3, 4], the model expects [2, 4]", path));
        CHECK(snapshot(model) == before);
    }
    SUBCASE("a parameter missing from the file") {
        save_checkpoint(path, Tiny(0.0, 3, false));
        Tiny model(9.0);
        const auto before = snapshot(model);
        CHECK(runtime_error_of([&] { load_checkpoint(path, model); }) ==
              fmt::format("checkpoint {}: the file has no tensor 'log_scale' (the model expects shape [3])", path));
        CHECK(snapshot(model) == before);
    }
    SUBCASE("several missing names are all listed") {
        Tiny model(9.0);
        Tensor a = Tensor::zeros(Shape{1}), b, c = Tensor::zeros(Shape{2});
        const std::string msg = runtime_error_of(
            [&] { load_checkpoint(path, model, {{{"opt/a", &a}, {"opt/b", &b}, {"opt/c", &c}}}); });
        CHECK(msg == fmt::format("checkpoint {}: the file has no tensor 'opt/a' (the extras expect shape [1]); "
                                 "also missing: 'opt/b', 'opt/c'",
                                 path));
        CHECK_FALSE(b.defined());
    }
    SUBCASE("an unexpected tensor in the file") {
        Tiny model(9.0, 3, false);
        const auto before = snapshot(model);
        const std::string msg = runtime_error_of([&] { load_checkpoint(path, model); });
        CHECK(msg == fmt::format("checkpoint {}: the file has a tensor 'log_scale' of shape [3] that neither the "
                                 "model nor the extras expect (pass UnusedEntries::ignore to skip unused entries)",
                                 path));
        CHECK(snapshot(model) == before);
        load_checkpoint(path, model, {}, UnusedEntries::ignore);
        CHECK(snapshot(model) != before);
    }
    SUBCASE("an extra of the wrong shape leaves model and extras unchanged") {
        Tensor m = Tensor::zeros(Shape{2});
        save_checkpoint(path, saved, {{{"opt/m", &m}}});
        Tiny model(9.0);
        const auto before = snapshot(model);
        Tensor wrong = Tensor::full(Shape{3}, 5.0);
        CHECK(runtime_error_of([&] { load_checkpoint(path, model, {{{"opt/m", &wrong}}}); }) ==
              fmt::format("checkpoint {}: tensor 'opt/m' has shape [2], the extras expect [3]", path));
        CHECK(snapshot(model) == before);
        CHECK(bits(wrong) == bits(Tensor::full(Shape{3}, 5.0)));
    }
    SUBCASE("step count present or absent") {
        Tiny model(9.0);
        const auto before = snapshot(model);
        std::uint64_t step = 77;
        CHECK(runtime_error_of([&] { load_checkpoint(path, model, {{}, &step}); }) ==
              fmt::format("checkpoint {}: the file stores no step count, but the extras expect one", path));
        CHECK(step == 77);
        save_checkpoint(path, saved, {{}, &step});
        CHECK(runtime_error_of([&] { load_checkpoint(path, model); }) ==
              fmt::format("checkpoint {}: the file stores step count 77 that the extras do not ask for (set "
                          "CheckpointExtras::step, or pass UnusedEntries::ignore)",
                          path));
        CHECK(snapshot(model) == before);
    }
}

TEST_CASE("corrupt files are rejected with the file, the field and the offset") {
    TempDir dir;
    const std::string path = dir.file("a.ckpt");
    Single model(Shape{4});
    const auto before = snapshot(model);
    const auto load = [&] { return runtime_error_of([&] { load_checkpoint(path, model); }); };
    const auto valid = [] { return FileBuilder().header(std::nullopt, 1).tensor("w", {4}, {1, 2, 3, 4}); };
    bool loaded = false;

    SUBCASE("wrong magic") {
        auto bytes = valid().with_checksum();
        bytes[0] = 'P';
        bytes[1] = 'K';
        bytes[2] = 3;
        write_bytes(path, bytes);
        CHECK(load() == fmt::format("checkpoint {}: not a tapeflow checkpoint: the file starts with "
                                    "\"PK\\x03EFLOW\", expected \"TAPEFLOW\"",
                                    path));
    }
    SUBCASE("a short file that is not a checkpoint") {
        write_bytes(path, {'h', 'i', '\n'});
        CHECK(load() == fmt::format("checkpoint {}: not a tapeflow checkpoint: the file starts with \"hi\\x0a\", "
                                    "expected \"TAPEFLOW\"",
                                    path));
    }
    SUBCASE("unsupported version") {
        FileBuilder b;
        b.raw("TAPEFLOW").u32(2).u32(0).u64(0).u32(0);
        write_bytes(path, b.with_checksum());
        CHECK(load() == fmt::format("checkpoint {}: format version 2 is not supported (this build reads version 1; "
                                    "written by a newer tapeflow?)",
                                    path));
    }
    SUBCASE("truncated inside a tensor's data") {
        auto bytes = valid().with_checksum();
        // The data of 'w' starts at 28 + (4 + 1) + 4 + 8 = 45 and needs 32 bytes; keep 7 of them.
        bytes.resize(45 + 7);
        write_bytes(path, bytes);
        CHECK(load() == fmt::format("checkpoint {}: truncated at byte 45 while reading the data of 'w' "
                                    "(needs 32 bytes, 7 remain)",
                                    path));
    }
    SUBCASE("truncated inside the checksum") {
        auto bytes = valid().with_checksum();
        bytes.resize(bytes.size() - 3);
        write_bytes(path, bytes);
        CHECK(load() == fmt::format("checkpoint {}: truncated at byte 77 while reading the checksum "
                                    "(needs 8 bytes, 5 remain)",
                                    path));
    }
    SUBCASE("an empty file") {
        write_bytes(path, {});
        CHECK(load() == fmt::format("checkpoint {}: truncated at byte 0 while reading the magic number "
                                    "(needs 8 bytes, 0 remain)",
                                    path));
    }
    SUBCASE("bad checksum") {
        auto bytes = valid().with_checksum();
        bytes[50] ^= 0x10;  // one bit of the data
        write_bytes(path, bytes);
        CHECK(load().starts_with(fmt::format("checkpoint {}: checksum mismatch (stored 0x", path)));
        CHECK(load().ends_with("over bytes 0..77): the file is corrupt"));
    }
    SUBCASE("bytes after the checksum") {
        auto bytes = valid().with_checksum();
        bytes.push_back(0);
        bytes.push_back(0);
        write_bytes(path, bytes);
        CHECK(load() == fmt::format("checkpoint {}: 2 unexpected bytes after the checksum, which ends at byte 85",
                                    path));
    }
    SUBCASE("rank above the maximum") {
        write_bytes(path, FileBuilder().header(std::nullopt, 1).tensor("w", {1, 1, 1, 1, 1, 1, 1, 1, 4}, {1, 2, 3, 4})
                              .with_checksum());
        CHECK(load() == fmt::format("checkpoint {}: tensor 'w' has rank 9 (at byte 33); at most 8 is supported", path));
    }
    SUBCASE("a shape too large to address") {
        write_bytes(path, FileBuilder().header(std::nullopt, 1).tensor("w", {1ULL << 40, 1ULL << 40}, {}).with_checksum());
        CHECK(load() == fmt::format("checkpoint {}: tensor 'w' has shape [1099511627776, 1099511627776], more "
                                    "elements than this machine can address",
                                    path));
    }
    SUBCASE("a shape whose element count wraps to zero in 64 bits") {
        // 2³² · 2³² ≡ 0 (mod 2⁶⁴): must not be mistaken for an empty tensor.
        write_bytes(path, FileBuilder().header(std::nullopt, 1).tensor("w", {1ULL << 32, 1ULL << 32}, {}).with_checksum());
        CHECK(load().find("more elements than this machine can address") != std::string::npos);
    }
    SUBCASE("a huge claimed size is a truncation, not an allocation") {
        write_bytes(path, FileBuilder().header(std::nullopt, 1).tensor("w", {1ULL << 50}, {}).with_checksum());
        CHECK(load() == fmt::format("checkpoint {}: truncated at byte 45 while reading the data of 'w' "
                                    "(needs 9007199254740992 bytes, 8 remain)",
                                    path));
    }
    SUBCASE("a name stored twice") {
        write_bytes(path, FileBuilder().header(std::nullopt, 2).tensor("w", {4}, {1, 2, 3, 4}).tensor("w", {}, {5})
                              .with_checksum());
        CHECK(load() == fmt::format("checkpoint {}: tensor 'w' is stored twice (entries 0 and 1)", path));
    }
    SUBCASE("an invalid step flag") {
        FileBuilder b;
        b.raw("TAPEFLOW").u32(1).u32(7).u64(0).u32(0);
        write_bytes(path, b.with_checksum());
        CHECK(load() == fmt::format("checkpoint {}: the step flag at byte 12 is 7, expected 0 or 1", path));
    }
    SUBCASE("a name length running past the end") {
        FileBuilder b;
        b.header(std::nullopt, 1).u32(1000).raw("w");
        write_bytes(path, b.bytes);
        CHECK(load() == fmt::format("checkpoint {}: truncated at byte 32 while reading the name of entry 0 "
                                    "(needs 1000 bytes, 1 remain)",
                                    path));
    }
    SUBCASE("the hand-built reference file itself loads") {
        write_bytes(path, valid().with_checksum());
        CHECK(load() == "");
        CHECK(model.w->value.to_vector() == std::vector<double>{1, 2, 3, 4});
        loaded = true;
    }
    if (!loaded) CHECK(snapshot(model) == before);
}

TEST_CASE("a checkpoint cut at every length fails cleanly and leaves the model unchanged") {
    TempDir dir;
    const std::string full_path = dir.file("full.ckpt"), cut_path = dir.file("cut.ckpt");
    Tiny saved(0.0, 2);
    Tensor extra{1.0, 2.0};
    std::uint64_t step = 5;
    save_checkpoint(full_path, saved, {{{"opt/m", &extra}}, &step});
    const auto bytes = read_bytes(full_path);
    REQUIRE(bytes.size() > 200);

    Tiny model(9.0, 2);
    Tensor target = Tensor::full(Shape{2}, -1.0);
    std::uint64_t target_step = 99;
    const auto before = snapshot(model);
    int failures = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        write_bytes(cut_path, {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)});
        const std::string msg =
            runtime_error_of([&] { load_checkpoint(cut_path, model, {{{"opt/m", &target}}, &target_step}); });
        const bool clean = msg.starts_with(fmt::format("checkpoint {}: truncated at byte ", cut_path)) &&
                           snapshot(model) == before && target.to_vector() == std::vector<double>{-1, -1} &&
                           target_step == 99;
        if (!clean && ++failures <= 3) {  // show the first few, not hundreds
            INFO("cut at ", n, " bytes: ", msg);
            CHECK(clean);
        }
    }
    CHECK(failures == 0);
    // The whole file still loads.
    load_checkpoint(full_path, model, {{{"opt/m", &target}}, &target_step});
    CHECK(snapshot(model) == snapshot(saved));
}

TEST_CASE("a changed byte anywhere is detected, never loaded and never a crash") {
    TempDir dir;
    const std::string full_path = dir.file("full.ckpt"), bad_path = dir.file("bad.ckpt");
    Tiny saved(0.0, 2);
    std::uint64_t step = 5;
    save_checkpoint(full_path, saved, {{}, &step});
    const auto bytes = read_bytes(full_path);

    Tiny model(9.0, 2);
    const auto before = snapshot(model);
    std::uint64_t target_step = 99;
    int undetected = 0, checksum_errors = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (unsigned char mask : {0x01, 0x80, 0xff}) {
            auto bad = bytes;
            bad[i] ^= mask;
            write_bytes(bad_path, bad);
            const std::string msg = runtime_error_of([&] { load_checkpoint(bad_path, model, {{}, &target_step}); });
            const bool rejected = !msg.empty() && snapshot(model) == before && target_step == 99;
            if (!rejected && ++undetected <= 3) {  // show the first few, not hundreds
                INFO("byte ", i, " ^ ", int(mask), ": ", msg);
                CHECK(rejected);
            }
            if (msg.find("checksum mismatch") != std::string::npos) ++checksum_errors;
        }
    }
    CHECK(undetected == 0);
    // Most bytes are names and values, which only the checksum can vouch for.
    CHECK(checksum_errors > static_cast<int>(bytes.size()));
}

TEST_CASE("unreadable paths name the path and the system error") {
    TempDir dir;
    Tiny model(0.0);
    const std::string missing = dir.file("nope.ckpt");
    CHECK(runtime_error_of([&] { load_checkpoint(missing, model); }) ==
          fmt::format("checkpoint {}: cannot open the file: No such file or directory", missing));
    CHECK(runtime_error_of([&] { read_checkpoint_index(missing); }) ==
          fmt::format("checkpoint {}: cannot open the file: No such file or directory", missing));
    const std::string a_dir = dir.file("");
    CHECK(runtime_error_of([&] { load_checkpoint(a_dir, model); }) ==
          fmt::format("checkpoint {}: cannot read the file: Is a directory", a_dir));
}

TEST_CASE("saving into a missing directory fails clearly and creates nothing") {
    TempDir dir;
    Tiny model(0.0);
    const std::string path = dir.file("no/such/dir/a.ckpt");
    const std::string msg = runtime_error_of([&] { save_checkpoint(path, model); });
    const std::string head = fmt::format("checkpoint {}: could not save (creating the temporary file {}.tmp-{}-", path,
                                         path, ::getpid());
    CHECK(msg.starts_with(head));
    CHECK(msg.ends_with(" failed: No such file or directory); any previous checkpoint at this path is unchanged"));
    CHECK(dir.listing().empty());
}

TEST_CASE("a failure at any save stage keeps the previous checkpoint and removes the temporary file") {
    TempDir dir;
    const std::string path = dir.file("a.ckpt");
    Tiny first(0.0);
    fill_special(first);
    save_checkpoint(path, first);
    const auto first_bytes = read_bytes(path);

    Tiny second(4.0);  // a different model, never saved
    const struct {
        testing::SaveStage stage;
        const char* step;
    } stages[] = {
        {testing::SaveStage::open, "creating the temporary file"},    {testing::SaveStage::write, "writing the temporary file"},
        {testing::SaveStage::flush, "flushing the temporary file"},   {testing::SaveStage::fsync, "fsync of the temporary file"},
        {testing::SaveStage::close, "closing the temporary file"},    {testing::SaveStage::rename, "renaming"},
    };
    for (const auto& [stage, step] : stages) {
        INFO("stage: ", step);
        std::string msg;
        {
            testing::SaveFaultInjection fault(stage, ENOSPC);
            msg = runtime_error_of([&] { save_checkpoint(path, second); });
        }
        CHECK(msg.starts_with(fmt::format("checkpoint {}: could not save ({} ", path, step)));
        CHECK(msg.ends_with("failed: No space left on device); any previous checkpoint at this path is unchanged"));
        CHECK(dir.listing() == std::vector<std::string>{"a.ckpt"});
        CHECK(read_bytes(path) == first_bytes);
        Tiny loaded(8.0);
        load_checkpoint(path, loaded);
        CHECK(snapshot(loaded) == snapshot(first));
    }

    // The directory fsync comes after the rename: the new checkpoint is in place, and the error says so.
    {
        testing::SaveFaultInjection fault(testing::SaveStage::fsync_directory, EIO);
        CHECK(runtime_error_of([&] { save_checkpoint(path, second); }) ==
              fmt::format("checkpoint {}: saved, but syncing the directory {} failed: Input/output error; the new "
                          "checkpoint is in place but the rename may not survive a power loss",
                          path, fs::path(path).parent_path().string()));
    }
    CHECK(dir.listing() == std::vector<std::string>{"a.ckpt"});
    Tiny loaded(8.0);
    load_checkpoint(path, loaded);
    CHECK(snapshot(loaded) == snapshot(second));

    // The injection ends with its scope.
    CHECK_NOTHROW(save_checkpoint(path, first));
    CHECK(read_bytes(path) == first_bytes);
}

TEST_CASE("a real rename failure (destination is a directory) cleans up") {
    TempDir dir;
    const std::string path = dir.file("taken");
    fs::create_directory(path);
    std::ofstream(dir.file("taken/keep")) << "x";
    Tiny model(0.0);
    const std::string msg = runtime_error_of([&] { save_checkpoint(path, model); });
    CHECK(msg.starts_with(fmt::format("checkpoint {}: could not save (renaming {}.tmp-", path, path)));
    CHECK(msg.find("Is a directory") != std::string::npos);
    CHECK(dir.listing() == std::vector<std::string>{"taken"});
    CHECK(fs::exists(dir.file("taken/keep")));
}

TEST_CASE("a large checkpoint (bigger than the write buffer) round trips") {
    TempDir dir;
    const std::string path = dir.file("big.ckpt");
    Single big(Shape{300, 200});  // 480 kB of data
    for (std::size_t i = 0; i < big.w->numel(); ++i) big.w->value[i] = std::sin(static_cast<double>(i)) * 1e-300;
    save_checkpoint(path, big);
    Single loaded(Shape{300, 200});
    load_checkpoint(path, loaded);
    CHECK(bits(loaded.w->value) == bits(big.w->value));
    {
        testing::SaveFaultInjection fault(testing::SaveStage::write, EIO);
        Single other(Shape{300, 200});
        CHECK_THROWS_AS(save_checkpoint(path, other), std::runtime_error);
    }
    load_checkpoint(path, loaded);
    CHECK(bits(loaded.w->value) == bits(big.w->value));
    CHECK(dir.listing() == std::vector<std::string>{"big.ckpt"});
}

TEST_CASE("save rejects unsaveable input before touching the disk") {
    TempDir dir;
    const std::string path = dir.file("a.ckpt");
    Tiny model(0.0);
    Tensor t{1.0}, undefined;
    CHECK_THROWS_WITH_AS(save_checkpoint(path, model, {{{"net.0.bias", &t}}}),
                         "save_checkpoint: the name 'net.0.bias' is used twice (prefix extras, e.g. \"optimizer/...\")",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(save_checkpoint(path, model, {{{"opt/m", nullptr}}}),
                         "save_checkpoint: extra tensor 'opt/m' is a null pointer", std::invalid_argument);
    CHECK_THROWS_WITH_AS(save_checkpoint(path, model, {{{"opt/m", &undefined}}}),
                         "save_checkpoint: tensor 'opt/m' is undefined", std::invalid_argument);
    CHECK_THROWS_WITH_AS(load_checkpoint(path, model, {{{"log_scale", &t}}}),
                         "load_checkpoint: the name 'log_scale' is used twice", std::invalid_argument);
    CHECK(dir.listing().empty());
}

TEST_CASE("a model without parameters round trips") {
    TempDir dir;
    const std::string path = dir.file("empty.ckpt");
    Module empty;
    std::uint64_t step = 3, loaded_step = 0;
    save_checkpoint(path, empty, {{}, &step});
    load_checkpoint(path, empty, {{}, &loaded_step});
    CHECK(loaded_step == 3);
    CHECK(read_checkpoint_index(path).empty());
}
