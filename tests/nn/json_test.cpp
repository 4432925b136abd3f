#include "nn/json.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace tapeflow::nn;

namespace {

std::string error_of(std::string_view text, std::size_t base = 0) {
    try {
        (void)json::parse(text, base);
    } catch (const json::ParseError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("json::parse builds the tree with offsets counted from the base") {
    const json::Value v = json::parse(R"( {"a": [1, 20, -3.5e2], "b": {"c": "d"}, "e": true, "f": null} )", 100);
    REQUIRE(v.kind == json::Value::Kind::object);
    CHECK(v.offset == 101);
    REQUIRE(v.members.size() == 4);
    CHECK(v.members[0].key == "a");
    CHECK(v.members[0].key_offset == 102);
    const json::Value& a = v.members[0].value;
    REQUIRE(a.items.size() == 3);
    CHECK(a.offset == 107);
    CHECK(json::as_u64(a.items[1]) == 20u);
    CHECK(a.items[2].text == "-3.5e2");
    CHECK(!json::as_u64(a.items[2]));
    CHECK(v.members[1].value.members[0].value.text == "d");
    CHECK(v.members[2].value.boolean);
    CHECK(v.members[3].value.kind == json::Value::Kind::null);
}

TEST_CASE("json strings: escapes, \\u and surrogate pairs decode to UTF-8; quote() round-trips") {
    CHECK(json::parse(R"("a\"b\\c\/d\n\t")").text == "a\"b\\c/d\n\t");
    CHECK(json::parse(R"("\u00e9\u2192")").text == "é→");
    CHECK(json::parse(R"("\ud83d\ude00")").text == "\xf0\x9f\x98\x80");  // U+1F600
    for (const std::string& s : std::vector<std::string>{"plain", "quote \" and \\ backslash", std::string("ctrl \x01 \n", 8), "layers.3.conditioner.0.weight"})
        CHECK(json::parse(json::quote(s)).text == s);
}

TEST_CASE("json::as_u64 reads exactly the non-negative integers of 64 bits") {
    CHECK(json::as_u64(json::parse("18446744073709551615")) == UINT64_MAX);
    CHECK(!json::as_u64(json::parse("18446744073709551616")));
    CHECK(!json::as_u64(json::parse("-1")));
    CHECK(!json::as_u64(json::parse("1e3")));
    CHECK(!json::as_u64(json::parse("\"7\"")));
}

TEST_CASE("json::parse rejects malformed input, naming the offset") {
    CHECK(error_of(R"({"a": 1,})", 8) == "at byte 16: expected a key (a string), found '}'");
    CHECK(error_of(R"({"a" 1})") == "at byte 5: expected ':' after a key, found '1'");
    CHECK(error_of("[1 2]") == "at byte 3: expected ',' or ']', found '2'");
    CHECK(error_of("{\"a\": \"x") == "at byte 6: a string has no closing quote");
    CHECK(error_of("\"a\x01\"") == "at byte 2: an unescaped control character (byte 0x01) in a string");
    CHECK(error_of(R"("\q")") == "at byte 1: an invalid escape \\q");
    CHECK(error_of(R"("\ud83d")") == "at byte 1: a high surrogate \\u escape without its low half");
    CHECK(error_of("012") == "at byte 0: a number has a leading zero");
    CHECK(error_of("1.") == "at byte 2: expected a digit after the decimal point");
    CHECK(error_of("{} x") == "at byte 3: unexpected 'x' after the JSON value");
    CHECK(error_of("") == "at byte 0: expected a value, found the end of input");
    CHECK(error_of("tru") == "at byte 0: expected a value, found 't'");
    CHECK(error_of(std::string(100, '[')) .find("nesting deeper than 64 levels") != std::string::npos);
}
