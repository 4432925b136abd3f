#include "nn/safetensors.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace tapeflow;
using namespace tapeflow::nn;
namespace fs = std::filesystem;

namespace {

// Parameters "scale" [2], "net.0.weight" [2, 3], "net.0.bias" [3], filled with distinct values.
class Small : public Module {
public:
    explicit Small(std::size_t in = 2, double start = 0.5) {
        register_parameter("scale", Tensor::full(Shape{2}, start));
        register_module("net", std::make_unique<Layer2>(in));
        double v = start;
        for (auto& [name, p] : named_parameters())
            for (double& x : p->value.span()) x = (v += 0.25);
    }

private:
    class Layer2 : public Module {
    public:
        explicit Layer2(std::size_t in) {
            register_module("0", std::make_unique<Weights>(in));
        }
    };
    class Weights : public Module {
    public:
        explicit Weights(std::size_t in) {
            register_parameter("weight", Tensor::zeros(Shape{in, 3}));
            register_parameter("bias", Tensor::zeros(Shape{3}));
        }
    };
};

std::vector<std::uint64_t> bits(const Module& m) {
    std::vector<std::uint64_t> out;
    for (const auto& [name, p] : m.named_parameters())
        for (const double v : p->value.span()) out.push_back(std::bit_cast<std::uint64_t>(v));
    return out;
}

// The file as bytes: u64 header length, the header text, the data.
std::vector<unsigned char> file_of(std::string_view header, std::size_t data_bytes) {
    std::vector<unsigned char> out;
    for (int b = 0; b < 8; ++b) out.push_back(static_cast<unsigned char>(header.size() >> (8 * b)));
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data_bytes, 0);
    return out;
}

std::string decode_error(const std::vector<unsigned char>& bytes) {
    try {
        (void)decode_safetensors(bytes, "m.safetensors");
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no exception)";
}

class TempDir {
public:
    TempDir() : path_(fs::temp_directory_path() / fmt::format("tapeflow_safetensors_{}", ::getpid())) {
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

}  // namespace

TEST_CASE("encode_safetensors: the header and data as the format specifies, checked by hand") {
    const Tensor a{1.0, -2.0};
    const Tensor b = Tensor::scalar(0.5);
    const std::vector<std::pair<std::string, const Tensor*>> named{{"a", &a}, {"b.c", &b}};
    const auto bytes = encode_safetensors(named, {{"k", "v"}});
    const std::string header =
        R"({"__metadata__":{"k":"v"},"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
        R"("b.c":{"dtype":"F64","shape":[],"data_offsets":[16,24]}})";
    const std::size_t padded = (header.size() + 7) / 8 * 8;
    REQUIRE(bytes.size() == 8 + padded + 24);
    CHECK(bytes[0] == padded);
    CHECK(std::string(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header.size())) == header);
    CHECK(std::string(bytes.begin() + 8 + static_cast<long>(header.size()), bytes.begin() + 8 + static_cast<long>(padded)) ==
          std::string(padded - header.size(), ' '));
    // 1.0 = 0x3ff0000000000000, −2.0 = 0xc000000000000000, 0.5 = 0x3fe0000000000000, little-endian.
    const std::vector<unsigned char> data(bytes.begin() + 8 + static_cast<long>(padded), bytes.end());
    CHECK(data == std::vector<unsigned char>{0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f});

    const SafetensorsContents back = decode_safetensors(bytes, "mem");
    REQUIRE(back.entries.size() == 2);
    CHECK(back.entries[1].name == "b.c");
    CHECK(back.entries[1].shape.rank() == 0);
    CHECK(back.tensors[0].to_vector() == std::vector<double>{1.0, -2.0});
    CHECK(back.metadata == SafetensorsMetadata{{"k", "v"}});
}

TEST_CASE("save_safetensors / load_safetensors round-trip a module bit for bit (−0.0, NaN payloads, denormals, inf)") {
    TempDir dir;
    Small saved;
    const double special[] = {-0.0, std::bit_cast<double>(std::uint64_t{0x7ff8000000000123}),
                              std::bit_cast<double>(std::uint64_t{0xfff4000000000abc}),
                              std::numeric_limits<double>::denorm_min(), -std::numeric_limits<double>::infinity(),
                              std::numeric_limits<double>::infinity(), std::numeric_limits<double>::max(), 0.1};
    std::size_t i = 0;
    for (auto& [name, p] : saved.named_parameters())
        for (double& x : p->value.span()) x = special[i++ % std::size(special)];
    save_safetensors(dir.file("m.safetensors"), saved);

    Small loaded(2, 9.0);
    CHECK(bits(loaded) != bits(saved));
    load_safetensors(dir.file("m.safetensors"), loaded);
    CHECK(bits(loaded) == bits(saved));

    const SafetensorsContents info = read_safetensors(dir.file("m.safetensors"));
    REQUIRE(info.entries.size() == 3);
    CHECK(info.entries[1].name == "net.0.weight");
    CHECK(info.entries[1].shape == Shape{2, 3});
    CHECK(info.metadata == tapeflow_metadata());
}

TEST_CASE("save_safetensors / load_safetensors carry a module's buffers beside its parameters") {
    TempDir dir;
    class WithBuffer : public Small {
    public:
        explicit WithBuffer(double fill) : running(register_buffer("running_mean", Tensor::full(Shape{3}, fill))) {}
        Tensor& running;
    };
    WithBuffer saved(0.25);
    saved.running[1] = -7.5;
    save_safetensors(dir.file("b.safetensors"), saved);
    const SafetensorsContents info = read_safetensors(dir.file("b.safetensors"));
    REQUIRE(info.entries.size() == 4);
    CHECK(info.entries[3].name == "running_mean");
    CHECK(info.entries[3].shape == Shape{3});

    WithBuffer loaded(9.0);
    load_safetensors(dir.file("b.safetensors"), loaded);
    CHECK(loaded.running[0] == 0.25);
    CHECK(loaded.running[1] == -7.5);
    CHECK(loaded.running[2] == 0.25);
    // A file without the buffer is a different model: named, and the model is left as it was.
    save_safetensors(dir.file("p.safetensors"), Small());
    WithBuffer untouched(3.0);
    CHECK_THROWS_WITH_AS(load_safetensors(dir.file("p.safetensors"), untouched),
                         doctest::Contains("running_mean"), std::runtime_error);
    CHECK(untouched.running[0] == 3.0);
}

TEST_CASE("load_safetensors: a different model is reported by name and shape, and left untouched") {
    TempDir dir;
    Small three_inputs(3);
    save_safetensors(dir.file("three.safetensors"), three_inputs);
    Small two_inputs;
    const auto before = bits(two_inputs);
    CHECK_THROWS_WITH_AS(load_safetensors(dir.file("three.safetensors"), two_inputs),
                         doctest::Contains("tensor 'net.0.weight' has shape [3, 3], the model expects [2, 3]"), std::runtime_error);
    CHECK(bits(two_inputs) == before);

    const Tensor w = Tensor::zeros({2, 3}), extra = Tensor::ones({4});
    save_safetensors(dir.file("partial.safetensors"), std::vector<std::pair<std::string, const Tensor*>>{{"net.0.weight", &w}, {"other", &extra}});
    CHECK_THROWS_WITH_AS(load_safetensors(dir.file("partial.safetensors"), two_inputs),
                         doctest::Contains("the file has no tensor 'scale' (the model expects shape [2]); also missing: 'net.0.bias'"),
                         std::runtime_error);
    CHECK(bits(two_inputs) == before);

    Small full;
    const Tensor more = Tensor::ones({1});
    auto state = module_state(static_cast<const Module&>(full));
    state.emplace_back("unused", &more);
    save_safetensors(dir.file("more.safetensors"), state);
    CHECK_THROWS_WITH_AS(load_safetensors(dir.file("more.safetensors"), two_inputs),
                         doctest::Contains("a tensor 'unused' of shape [1] that the model does not have"), std::runtime_error);
    CHECK(bits(two_inputs) == before);
    load_safetensors(dir.file("more.safetensors"), two_inputs, UnusedEntries::ignore);
    CHECK(bits(two_inputs) == bits(full));
}

TEST_CASE("encode_safetensors rejects names it cannot write") {
    const Tensor t = Tensor::ones({1});
    using Named = std::vector<std::pair<std::string, const Tensor*>>;
    CHECK_THROWS_AS(encode_safetensors(Named{{"a", &t}, {"a", &t}}), std::invalid_argument);
    CHECK_THROWS_AS(encode_safetensors(Named{{"__metadata__", &t}}), std::invalid_argument);
    CHECK_THROWS_AS(encode_safetensors(Named{{"", &t}}), std::invalid_argument);
    const Tensor undefined;
    CHECK_THROWS_AS(encode_safetensors(Named{{"u", &undefined}}), std::invalid_argument);
    // A name that needs JSON escapes survives.
    const auto bytes = encode_safetensors(Named{{"quote\"back\\slash", &t}});
    CHECK(decode_safetensors(bytes, "mem").entries[0].name == "quote\"back\\slash");
}

TEST_CASE("decode_safetensors: every malformed file is named with its offset or tensor") {
    const std::string entry = R"("w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]})";
    CHECK(decode_error(file_of("{" + entry + "}", 16)) == "(no exception)");

    CHECK(decode_error({1, 2, 3}).find("truncated at byte 0 while reading the header length (needs 8 bytes, 3 remain)") != std::string::npos);
    auto too_long = file_of("{" + entry + "}", 16);
    too_long[0] = 0xff;
    too_long[1] = 0xff;
    CHECK(decode_error(too_long).find("the header length at byte 0 is 65535 bytes, but only") != std::string::npos);
    auto huge = file_of("{}", 0);
    huge[7] = 1;
    CHECK(decode_error(huge).find("above the format's limit") != std::string::npos);
    CHECK(decode_error(file_of("[1]", 0)).find("does not start with '{'") != std::string::npos);
    CHECK(decode_error(file_of("{\"w\": }", 0)).find("the header is not valid JSON: at byte 14: expected a value, found '}'") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)).find("tensor 'w' (at byte 22): dtype F32 is not supported") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F64","shape":[3],"data_offsets":[0,16]}})", 16)).find("data_offsets [0, 16] hold 16 bytes, but shape [3] of F64 needs 24") != std::string::npos);
    CHECK(decode_error(file_of("{" + entry + "}", 15)).find("out of range: the data section holds 15 bytes") != std::string::npos);
    CHECK(decode_error(file_of("{" + entry + "}", 17)).find("data bytes [16, 17) after the last tensor belong to no tensor") != std::string::npos);
    CHECK(decode_error(file_of("{" + entry + R"(,"v":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})", 16)).find("tensor 'v' at data_offsets [8, 16] overlaps 'w' at [0, 16]") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})", 16)).find("data bytes [0, 8) belong to no tensor") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[16,8]}})", 16)).find("ends before it begins") != std::string::npos);
    CHECK(decode_error(file_of("{" + entry + "," + entry + "}", 16)).find("'w' is stored twice") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F64","shape":[-2],"data_offsets":[0,16]}})", 16)).find("shape holds a number -2, expected a non-negative integer") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F64","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,8]}})", 8)).find("rank 9 is above 8") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0)).find("more elements than this machine can address") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F64","shape":[1]}})", 8)).find("the entry lacks \"data_offsets\"") != std::string::npos);
    CHECK(decode_error(file_of(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8],"x":1}})", 8)).find("unexpected key \"x\"") != std::string::npos);
    CHECK(decode_error(file_of(R"({"__metadata__":{"a":1}})", 0)).find("__metadata__ \"a\" (at byte 29) is a number, expected a string") != std::string::npos);
    // Empty tensors take no bytes and may sit anywhere; padding spaces after the JSON are allowed.
    const auto ok = decode_safetensors(file_of(R"({"e":{"dtype":"F64","shape":[0,3],"data_offsets":[0,0]}}   )", 0), "ok");
    CHECK(ok.tensors[0].shape() == Shape{0, 3});
}
