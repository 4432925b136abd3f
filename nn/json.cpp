#include "nn/json.hpp"

#include <fmt/format.h>

namespace tapeflow::nn::json {

namespace {

constexpr int max_depth = 64;

class Parser {
public:
    Parser(std::string_view text, std::size_t base) : text_(text), base_(base) {}

    Value document() {
        Value v = value(0);
        skip_space();
        if (pos_ != text_.size()) fail(pos_, fmt::format("unexpected {} after the JSON value", describe(pos_)));
        return v;
    }

private:
    [[noreturn]] void fail(std::size_t at, const std::string& reason) const { throw ParseError(base_ + at, reason); }

    std::string describe(std::size_t at) const {
        if (at >= text_.size()) return "end of input";
        const auto c = static_cast<unsigned char>(text_[at]);
        return c >= 0x20 && c < 0x7f ? fmt::format("'{}'", static_cast<char>(c)) : fmt::format("byte {:#04x}", c);
    }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
            ++pos_;
    }

    Value value(int depth) {
        skip_space();
        if (depth > max_depth) fail(pos_, fmt::format("nesting deeper than {} levels", max_depth));
        Value v;
        v.offset = base_ + pos_;
        if (pos_ == text_.size()) fail(pos_, "expected a value, found the end of input");
        const char c = text_[pos_];
        if (c == '{') {
            v.kind = Value::Kind::object;
            ++pos_;
            skip_space();
            if (pos_ < text_.size() && text_[pos_] == '}') return ++pos_, v;
            for (;;) {
                skip_space();
                Member m;
                m.key_offset = base_ + pos_;
                if (pos_ >= text_.size() || text_[pos_] != '"') fail(pos_, fmt::format("expected a key (a string), found {}", describe(pos_)));
                m.key = string();
                skip_space();
                if (pos_ >= text_.size() || text_[pos_] != ':') fail(pos_, fmt::format("expected ':' after a key, found {}", describe(pos_)));
                ++pos_;
                m.value = value(depth + 1);
                v.members.push_back(std::move(m));
                if (separator('}')) return v;
            }
        }
        if (c == '[') {
            v.kind = Value::Kind::array;
            ++pos_;
            skip_space();
            if (pos_ < text_.size() && text_[pos_] == ']') return ++pos_, v;
            for (;;) {
                v.items.push_back(value(depth + 1));
                if (separator(']')) return v;
            }
        }
        if (c == '"') {
            v.kind = Value::Kind::string;
            v.text = string();
            return v;
        }
        for (const auto& [word, kind, truth] : {std::tuple{std::string_view("true"), Value::Kind::boolean, true},
                                                std::tuple{std::string_view("false"), Value::Kind::boolean, false},
                                                std::tuple{std::string_view("null"), Value::Kind::null, false}})
            if (text_.substr(pos_, word.size()) == word) {
                v.kind = kind;
                v.boolean = truth;
                pos_ += word.size();
                return v;
            }
        if (c == '-' || (c >= '0' && c <= '9')) {
            v.kind = Value::Kind::number;
            v.text = number();
            return v;
        }
        fail(pos_, fmt::format("expected a value, found {}", describe(pos_)));
    }

    // After an element: ',' continues, `close` ends the container (true).
    bool separator(char close) {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == ',') {
            ++pos_;
            return false;
        }
        if (pos_ < text_.size() && text_[pos_] == close) {
            ++pos_;
            return true;
        }
        fail(pos_, fmt::format("expected ',' or '{}', found {}", close, describe(pos_)));
    }

    bool digit_at(std::size_t at) const { return at < text_.size() && text_[at] >= '0' && text_[at] <= '9'; }

    // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    std::string number() {
        const std::size_t start = pos_;
        if (text_[pos_] == '-') ++pos_;
        if (!digit_at(pos_)) fail(pos_, "expected a digit in a number");
        if (text_[pos_] == '0' && digit_at(pos_ + 1)) fail(pos_, "a number has a leading zero");
        while (digit_at(pos_)) ++pos_;
        if (pos_ < text_.size() && text_[pos_] == '.') {
            if (!digit_at(++pos_)) fail(pos_, "expected a digit after the decimal point");
            while (digit_at(pos_)) ++pos_;
        }
        if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
            if (!digit_at(pos_)) fail(pos_, "expected a digit in the exponent");
            while (digit_at(pos_)) ++pos_;
        }
        return std::string(text_.substr(start, pos_ - start));
    }

    unsigned hex4(std::size_t at) const {
        if (text_.size() - at < 4) fail(at, "a \\u escape needs 4 hex digits");
        unsigned code = 0;
        for (std::size_t i = at; i < at + 4; ++i) {
            const char h = text_[i];
            const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) fail(i, fmt::format("expected a hex digit in a \\u escape, found {}", describe(i)));
            code = code * 16 + static_cast<unsigned>(d);
        }
        return code;
    }

    static void append_utf8(std::string& out, unsigned code) {
        if (code < 0x80) {
            out += static_cast<char>(code);
        } else if (code < 0x800) {
            out += static_cast<char>(0xc0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3f));
        } else if (code < 0x10000) {
            out += static_cast<char>(0xe0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (code & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (code >> 18));
            out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (code & 0x3f));
        }
    }

    std::string string() {
        const std::size_t open = pos_++;
        std::string out;
        for (;;) {
            if (pos_ >= text_.size()) fail(open, "a string has no closing quote");
            const char c = text_[pos_];
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) fail(pos_, fmt::format("an unescaped control character ({}) in a string", describe(pos_)));
            if (c != '\\') {
                out += c;
                ++pos_;
                continue;
            }
            const std::size_t escape = pos_++;
            if (pos_ >= text_.size()) fail(open, "a string has no closing quote");
            switch (text_[pos_++]) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned code = hex4(pos_);
                    pos_ += 4;
                    // UTF-16 surrogate pairs (RFC 8259 §7) for code points above U+FFFF.
                    if (code >= 0xd800 && code < 0xdc00) {
                        if (text_.substr(pos_, 2) != "\\u") fail(escape, "a high surrogate \\u escape without its low half");
                        const unsigned low = hex4(pos_ + 2);
                        if (low < 0xdc00 || low >= 0xe000) fail(pos_, "a high surrogate \\u escape without its low half");
                        pos_ += 6;
                        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                    } else if (code >= 0xdc00 && code < 0xe000) {
                        fail(escape, "a low surrogate \\u escape without its high half");
                    }
                    append_utf8(out, code);
                    break;
                }
                default: fail(escape, fmt::format("an invalid escape \\{}", text_[pos_ - 1]));
            }
        }
    }

    std::string_view text_;
    std::size_t base_;
    std::size_t pos_ = 0;
};

}  // namespace

std::string_view kind_name(Value::Kind kind) {
    switch (kind) {
        case Value::Kind::null: return "null";
        case Value::Kind::boolean: return "a boolean";
        case Value::Kind::number: return "a number";
        case Value::Kind::string: return "a string";
        case Value::Kind::array: return "an array";
        case Value::Kind::object: return "an object";
    }
    return "?";
}

ParseError::ParseError(std::size_t offset, const std::string& reason)
    : std::runtime_error(fmt::format("at byte {}: {}", offset, reason)), offset_(offset), reason_(reason) {}

Value parse(std::string_view text, std::size_t base) { return Parser(text, base).document(); }

std::optional<std::uint64_t> as_u64(const Value& v) {
    if (v.kind != Value::Kind::number || v.text.empty()) return std::nullopt;
    std::uint64_t n = 0;
    for (const char c : v.text) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (n > (UINT64_MAX - d) / 10) return std::nullopt;
        n = n * 10 + d;
    }
    return n;
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\', out += c;
        else if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else out += c;
    }
    return out + "\"";
}

}  // namespace tapeflow::nn::json
