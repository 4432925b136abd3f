#include "tensor/npy.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace tapeflow;
namespace fs = std::filesystem;

namespace {

std::vector<unsigned char> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

// A .npy file as NumPy 1.24 writes `np.save(f, np.array([1.0, -2.0]))`, typed in by hand:
// magic, version 1.0, header length 118 (0x76), the dict padded to 128 bytes, then the doubles.
std::vector<unsigned char> numpy_file_of_one_minus_two() {
    std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
    header += std::string(128 - 10 - header.size() - 1, ' ') + "\n";
    const std::string file = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + header +
                             std::string("\0\0\0\0\0\0\xf0\x3f", 8) +   // 1.0
                             std::string("\0\0\0\0\0\0\x00\xc0", 8);   // -2.0
    return bytes_of(file);
}

// Version `major`.0 file with header `dict` (unpadded) and `data` after it.
std::vector<unsigned char> npy_with(std::string_view dict, std::size_t data_bytes, unsigned major = 1) {
    std::string file = "\x93NUMPY";
    file += static_cast<char>(major);
    file += '\0';
    const std::string header = std::string(dict) + "\n";
    for (unsigned b = 0; b < (major == 1 ? 2u : 4u); ++b) file += static_cast<char>((header.size() >> (8 * b)) & 0xff);
    return bytes_of(file + header + std::string(data_bytes, '\0'));
}

std::string decode_error(const std::vector<unsigned char>& bytes) {
    try {
        (void)decode_npy(bytes, "x.npy");
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no exception)";
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (!(a.shape() == b.shape())) return false;
    for (std::size_t i = 0; i < a.numel(); ++i)
        if (std::bit_cast<std::uint64_t>(a[i]) != std::bit_cast<std::uint64_t>(b[i])) return false;
    return true;
}

}  // namespace

TEST_CASE("encode_npy writes byte for byte what NumPy writes") {
    CHECK(encode_npy(Tensor{1.0, -2.0}) == numpy_file_of_one_minus_two());
    CHECK(decode_npy(numpy_file_of_one_minus_two(), "numpy").to_vector() == std::vector<double>{1.0, -2.0});
}

TEST_CASE("encode_npy: the header is padded so the data starts at a multiple of 64, for every rank") {
    for (const Shape& shape : {Shape{}, Shape{3}, Shape{2, 3}, Shape{0, 4}, Shape{1, 2, 3, 4, 5, 6, 7, 8}}) {
        const auto bytes = encode_npy(Tensor::zeros(shape));
        const std::size_t header_length = bytes[8] | (std::size_t{bytes[9]} << 8);
        CHECK((10 + header_length) % 64 == 0);
        CHECK(bytes[10 + header_length - 1] == '\n');
        CHECK(bytes.size() == 10 + header_length + 8 * shape.numel());
    }
    const auto scalar = encode_npy(Tensor::scalar(3.0));
    CHECK(std::string(scalar.begin() + 10, scalar.begin() + 128).find("'shape': (), }") != std::string::npos);
}

TEST_CASE("npy round trip is bit-exact: −0.0, NaN payloads, denormals, infinities") {
    const double quiet_payload = std::bit_cast<double>(std::uint64_t{0x7ff8000000000123});
    const double signalling = std::bit_cast<double>(std::uint64_t{0x7ff0000000000001});
    const double negative_nan = std::bit_cast<double>(std::uint64_t{0xfff8000000000abc});
    const Tensor t(Shape{2, 5}, {-0.0, 0.0, quiet_payload, signalling, negative_nan,
                                 std::numeric_limits<double>::denorm_min(), -std::numeric_limits<double>::denorm_min(),
                                 std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                 std::numeric_limits<double>::max()});
    CHECK(same_bits(decode_npy(encode_npy(t), "t"), t));
    CHECK(decode_npy(encode_npy(Tensor::zeros({0, 3})), "empty").shape() == Shape{0, 3});
    CHECK(decode_npy(encode_npy(Tensor::scalar(-0.0)), "scalar").rank() == 0);
}

TEST_CASE("decode_npy accepts the header variants NumPy itself accepts") {
    // Double quotes, other key order, no trailing comma, extra spaces; version 2.0 (u32 length).
    const Tensor a = decode_npy(npy_with(R"({ "shape" : (2, 1) , "fortran_order":False,"descr":"<f8" })", 16), "a");
    CHECK(a.shape() == Shape{2, 1});
    CHECK(decode_npy(npy_with("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", 24, 2), "v2").shape() == Shape{3});
    CHECK(decode_npy(npy_with("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 0, 2,), }", 0), "e").numel() == 0);
}

TEST_CASE("decode_npy names the file, the byte offset and what was wrong") {
    const auto good = numpy_file_of_one_minus_two();
    CHECK(decode_error(bytes_of("PK\x03\x04")).find("npy x.npy: not a .npy file") == 0);
    CHECK(decode_error(std::vector<unsigned char>(good.begin(), good.begin() + 4)).find("truncated at byte 0") != std::string::npos);
    auto v4 = good;
    v4[6] = 4;
    CHECK(decode_error(v4).find("format version 4.0 at byte 6") != std::string::npos);
    CHECK(decode_error(std::vector<unsigned char>(good.begin(), good.begin() + 50)).find("truncated at byte 10 while reading the header") != std::string::npos);
    CHECK(decode_error(std::vector<unsigned char>(good.begin(), good.end() - 1)).find("truncated at byte 128 while reading the data of shape [2] (needs 16 bytes, 15 remain)") != std::string::npos);
    auto longer = good;
    longer.push_back(0);
    CHECK(decode_error(longer).find("1 unexpected bytes after the data of shape [2], which ends at byte 144") != std::string::npos);

    CHECK(decode_error(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8)).find("dtype '<f4' is not supported") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", 16)).find("big-endian") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", 32)).find("fortran_order is True") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'fortran_order': False}", 0)).find("the header lacks 'shape'") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", 16)).find("unexpected key 'x'") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': ()}", 8)).find("at byte 27 of the header: the key 'descr' appears twice") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, -1), }", 16)).find("expected a dimension") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,), }", 16)).find("True or False") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 8)).find("more than 8 dimensions") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0)).find("more elements than this machine can address") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8' 'fortran_order': False, 'shape': (2,), }", 16)).find("expected ',' or '}' after the value of 'descr', found '''") != std::string::npos);
    CHECK(decode_error(npy_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), } x", 16)).find("unexpected 'x' after the header dict") != std::string::npos);
}

TEST_CASE("save_npy and load_npy go through the file system and name the path on failure") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("tapeflow_npy_test_{}", ::getpid());
    fs::create_directories(dir);
    const std::string path = (dir / "a.npy").string();
    const Tensor t(Shape{3, 2}, {1, 2, 3, 4, 5, 6});
    save_npy(path, t);
    CHECK(same_bits(load_npy(path), t));
    CHECK(fs::file_size(path) == 128 + 48);
    CHECK_THROWS_WITH_AS(load_npy((dir / "missing.npy").string()), doctest::Contains("missing.npy"), std::runtime_error);
    CHECK_THROWS_AS(save_npy(path, Tensor()), std::invalid_argument);
    CHECK(same_bits(load_npy(path), t));  // the failed save left the file as it was
    fs::remove_all(dir);
}
