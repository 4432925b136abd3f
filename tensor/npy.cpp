#include "tensor/npy.hpp"

#include <bit>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "tensor/file_io.hpp"

namespace tapeflow {

namespace {

constexpr unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// NumPy ≥ 1.14 aligns the data to 64 bytes (numpy.lib.format.ARRAY_ALIGN), so a memory map of
// the file has aligned rows for any dtype; the format itself only asks for 16.
constexpr std::size_t data_alignment = 64;

std::string shape_tuple(const Shape& shape) {
    if (shape.rank() == 1) return fmt::format("({},)", shape[0]);
    return fmt::format("({})", fmt::join(shape, ", "));
}

// Reads NumPy's header dict, a Python literal such as
//     {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }
// accepting what numpy.lib.format.read_array_header accepts for these three keys (either quote,
// any spacing, trailing commas) and nothing else. Offsets in messages are file offsets.
class HeaderParser {
public:
    HeaderParser(std::string_view text, std::size_t file_offset, const std::string& source)
        : text_(text), base_(file_offset), source_(source) {}

    struct Header {
        std::string descr;
        bool fortran_order = false;
        Shape shape;
    };

    Header parse() {
        Header h;
        bool has_descr = false, has_order = false, has_shape = false;
        expect('{', "the header dict");
        while (peek() != '}') {
            const std::size_t key_at = pos_;  // peek() skipped the spaces before the key
            const std::string key = string_literal("a key");
            expect(':', fmt::format("':' after the key '{}'", key));
            const auto once = [&](bool& seen) {
                if (seen) fail_at(key_at, fmt::format("the key '{}' appears twice", key));
                seen = true;
            };
            if (key == "descr") once(has_descr), h.descr = string_literal("the value of 'descr'");
            else if (key == "fortran_order") once(has_order), h.fortran_order = boolean("the value of 'fortran_order'");
            else if (key == "shape") once(has_shape), h.shape = tuple("the value of 'shape'");
            else fail_at(key_at, fmt::format("unexpected key '{}' (a .npy header has 'descr', 'fortran_order' and 'shape')", key));
            if (peek() == ',') ++pos_;
            else if (peek() != '}') fail_at(pos_, fmt::format("expected ',' or '}}' after the value of '{}', found '{}'", key, printable(text_[pos_])));
        }
        ++pos_;
        skip_space();
        if (pos_ != text_.size())
            fail_at(pos_, fmt::format("unexpected '{}' after the header dict", printable(text_[pos_])));
        if (!has_descr || !has_order || !has_shape)
            fail_at(0, fmt::format("the header lacks {}", !has_descr ? "'descr'" : !has_order ? "'fortran_order'" : "'shape'"));
        return h;
    }

    [[noreturn]] void fail_at(std::size_t at, const std::string& what) const {
        throw std::runtime_error(fmt::format("npy {}: at byte {} of the header: {}", source_, base_ + at, what));
    }

private:
    static std::string printable(char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x20 && u < 0x7f ? std::string(1, c) : fmt::format("\\x{:02x}", u);
    }

    void skip_space() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    // The next non-space character, or '\0' at the end (which every caller then rejects).
    char peek() {
        skip_space();
        if (pos_ == text_.size()) fail_at(pos_, "the header ends before its closing '}'");
        return text_[pos_];
    }
    void expect(char c, const std::string& what) {
        if (peek() != c) fail_at(pos_, fmt::format("expected {}, found '{}'", what, printable(text_[pos_])));
        ++pos_;
    }
    std::string string_literal(const std::string& what) {
        const char quote = peek();
        if (quote != '\'' && quote != '"') fail_at(pos_, fmt::format("expected {} (a quoted string), found '{}'", what, printable(quote)));
        const std::size_t start = ++pos_;
        const std::size_t end = text_.find(quote, start);
        if (end == std::string_view::npos) fail_at(start - 1, fmt::format("{} has no closing quote", what));
        pos_ = end + 1;
        return std::string(text_.substr(start, end - start));
    }
    bool boolean(const std::string& what) {
        peek();
        for (const auto& [word, value] : {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}})
            if (text_.substr(pos_, word.size()) == word) {
                pos_ += word.size();
                return value;
            }
        fail_at(pos_, fmt::format("expected {} (True or False)", what));
    }
    Shape tuple(const std::string& what) {
        expect('(', fmt::format("{} (a tuple)", what));
        Shape shape;
        while (peek() != ')') {
            const std::size_t at = pos_;
            if (!std::isdigit(static_cast<unsigned char>(text_[pos_])))
                fail_at(at, fmt::format("expected a dimension (a non-negative integer) in {}, found '{}'", what, printable(text_[pos_])));
            std::uint64_t dim = 0;
            while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
                const auto digit = static_cast<std::uint64_t>(text_[pos_++] - '0');
                if (dim > (UINT64_MAX - digit) / 10) fail_at(at, fmt::format("a dimension in {} does not fit 64 bits", what));
                dim = dim * 10 + digit;
            }
            if (shape.rank() == Shape::max_rank)
                fail_at(at, fmt::format("{} has more than {} dimensions, the most a tapeflow tensor has", what, Shape::max_rank));
            try {
                shape.push_back(static_cast<std::size_t>(dim));
            } catch (const std::invalid_argument&) {  // Shape refuses an element count that overflows size_t
                fail_at(at, fmt::format("{} has more elements than this machine can address", what));
            }
            if (peek() == ',') ++pos_;
            else if (peek() != ')') fail_at(pos_, fmt::format("expected ',' or ')' in {}, found '{}'", what, printable(text_[pos_])));
        }
        ++pos_;
        return shape;
    }

    std::string_view text_;
    std::size_t base_;
    const std::string& source_;
    std::size_t pos_ = 0;
};

// numel · 8 bytes, or nullopt when that overflows size_t (a zero dimension makes it 0 regardless).
std::optional<std::size_t> data_bytes(const Shape& shape) {
    std::size_t bytes = sizeof(double);
    bool overflow = false;
    for (const std::size_t d : shape) {
        if (d == 0) return 0;
        if (bytes > SIZE_MAX / d) overflow = true;
        else bytes *= d;
    }
    if (overflow) return std::nullopt;
    return bytes;
}

std::string dtype_hint(const std::string& descr) {
    if (descr == ">f8") return " (big-endian float64: convert with a.astype('<f8'))";
    if (descr == "<f4" || descr == ">f4") return " (float32: convert with a.astype('<f8'))";
    if (descr.size() >= 2 && (descr[1] == 'i' || descr[1] == 'u' || descr[1] == 'b'))
        return " (integers or booleans: convert with a.astype('<f8'))";
    return "";
}

}  // namespace

std::vector<unsigned char> encode_npy(const Tensor& t) {
    require_defined(t, "save_npy");
    std::string header = fmt::format("{{'descr': '<f8', 'fortran_order': False, 'shape': {}, }}", shape_tuple(t.shape()));
    const std::size_t prefix = sizeof npy_magic + 2 + 2;
    // Spaces, then '\n', up to the next multiple of the alignment (NumPy's own padding).
    const std::size_t unpadded = prefix + header.size() + 1;
    header.append((data_alignment - unpadded % data_alignment) % data_alignment, ' ');
    header.push_back('\n');

    std::vector<unsigned char> out{npy_magic[0], npy_magic[1], npy_magic[2], npy_magic[3], npy_magic[4], npy_magic[5],
                                   1, 0,  // version 1.0
                                   static_cast<unsigned char>(header.size() & 0xff),
                                   static_cast<unsigned char>(header.size() >> 8)};
    out.reserve(prefix + header.size() + t.numel() * sizeof(double));
    out.insert(out.end(), header.begin(), header.end());
    for (const double v : t.span()) {
        const auto bits = std::bit_cast<std::uint64_t>(v);
        for (int b = 0; b < 8; ++b) out.push_back(static_cast<unsigned char>(bits >> (8 * b)));
    }
    return out;
}

Tensor decode_npy(std::span<const unsigned char> bytes, const std::string& source) {
    const auto fail = [&](const std::string& what) { throw std::runtime_error(fmt::format("npy {}: {}", source, what)); };
    const auto need = [&](std::size_t at, std::size_t n, std::string_view what) {
        if (bytes.size() < at || bytes.size() - at < n)
            fail(fmt::format("truncated at byte {} while reading {} (needs {} bytes, {} remain)", at, what, n,
                             bytes.size() > at ? bytes.size() - at : 0));
    };
    const std::size_t magic_seen = std::min(bytes.size(), sizeof npy_magic);
    if (magic_seen > 0 && std::memcmp(bytes.data(), npy_magic, magic_seen) != 0)
        fail("not a .npy file: it does not start with the bytes \"\\x93NUMPY\"");
    need(0, sizeof npy_magic, "the magic number");
    need(6, 2, "the format version");
    const unsigned major = bytes[6], minor = bytes[7];
    if (major < 1 || major > 3)
        fail(fmt::format("format version {}.{} at byte 6 is not supported (versions 1.0, 2.0 and 3.0 are)", major, minor));
    const std::size_t length_bytes = major == 1 ? 2 : 4;
    need(8, length_bytes, "the header length");
    std::size_t header_length = 0;
    for (std::size_t b = 0; b < length_bytes; ++b) header_length |= std::size_t{bytes[8 + b]} << (8 * b);
    const std::size_t header_at = 8 + length_bytes;
    need(header_at, header_length, "the header");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + header_at), header_length);

    HeaderParser parser(text, header_at, source);
    const HeaderParser::Header h = parser.parse();
    if (h.descr != "<f8")
        parser.fail_at(0, fmt::format("dtype '{}' is not supported: tapeflow reads only float64, little-endian ('<f8'){}",
                                      h.descr, dtype_hint(h.descr)));
    if (h.fortran_order)
        parser.fail_at(0, "fortran_order is True: tapeflow reads only C (row-major) order; save "
                          "np.ascontiguousarray(a) instead");
    const auto size = data_bytes(h.shape);
    if (!size) fail(fmt::format("shape {} has more elements than this machine can address", h.shape));

    const std::size_t data_at = header_at + header_length;
    need(data_at, *size, fmt::format("the data of shape {}", h.shape));
    if (bytes.size() - data_at != *size)
        fail(fmt::format("{} unexpected bytes after the data of shape {}, which ends at byte {}",
                         bytes.size() - data_at - *size, h.shape, data_at + *size));
    Tensor t(h.shape);
    const unsigned char* p = bytes.data() + data_at;
    for (std::size_t i = 0; i < t.numel(); ++i) {
        std::uint64_t bits = 0;
        for (int b = 0; b < 8; ++b) bits |= std::uint64_t{p[8 * i + b]} << (8 * b);
        t[i] = std::bit_cast<double>(bits);
    }
    return t;
}

void save_npy(const std::string& path, const Tensor& t) { write_file_atomically(path, encode_npy(t), "npy"); }

Tensor load_npy(const std::string& path) { return decode_npy(read_file_bytes(path, "npy"), path); }

}  // namespace tapeflow
