// JSON (RFC 8259), as much as a safetensors header needs: a strict parser into a small tree that
// remembers where each value and key starts (so a loader can name the byte at fault), and the
// quoting of a string for writing. Numbers keep their literal text; as_u64 reads the non-negative
// integers that shapes and byte offsets are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tapeflow::nn::json {

struct Member;

struct Value {
    enum class Kind { null, boolean, number, string, array, object };
    Kind kind = Kind::null;
    std::size_t offset = 0;  // of the value's first character, counted from `base` (see parse)
    bool boolean = false;
    std::string text;  // a string's decoded contents (UTF-8), or a number's literal
    std::vector<Value> items;     // an array's elements
    std::vector<Member> members;  // an object's members in file order; duplicates are kept
};

struct Member {
    std::string key;
    std::size_t key_offset = 0;
    Value value;
};

// "an object", "a string", ... for messages.
std::string_view kind_name(Value::Kind kind);

// A syntax error: the offset (counted from `base`) and what was expected there.
class ParseError : public std::runtime_error {
public:
    ParseError(std::size_t offset, const std::string& reason);
    std::size_t offset() const { return offset_; }
    const std::string& reason() const { return reason_; }

private:
    std::size_t offset_;
    std::string reason_;
};

// Parses one JSON value surrounded by optional whitespace. Offsets in the tree and in a ParseError
// are `base` + the position in `text`, so a caller can report file offsets. Strict: no comments,
// no trailing commas, no control characters in strings, nesting at most 64 deep (so a hostile
// input cannot exhaust the stack).
Value parse(std::string_view text, std::size_t base = 0);

// The value as a u64, when it is a number literal of digits only (no sign, fraction or exponent)
// that fits 64 bits.
std::optional<std::uint64_t> as_u64(const Value& v);

// `s` as a JSON string literal, quotes included; control characters, '"' and '\\' are escaped.
std::string quote(std::string_view s);

}  // namespace tapeflow::nn::json
