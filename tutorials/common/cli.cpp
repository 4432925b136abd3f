#include "tutorials/common/cli.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace tapeflow::tutorial {

namespace {

std::string without_dashes(std::string_view name) {
    if (name.starts_with("--")) name.remove_prefix(2);
    return std::string(name);
}

// Parses the whole of `text` as T; from_chars refuses leading blanks and '+', and the end check
// refuses trailing junk such as "10x", or "1e3" and "2.5" for an integer.
template <typename T>
bool parse_whole(std::string_view text, T& value, std::errc& error) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    error = ec;
    return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = text.find(',', start);
        parts.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) return parts;
        start = comma + 1;
    }
}

std::int64_t to_integer(const std::string& text) {
    std::int64_t value = 0;
    std::errc error{};
    parse_whole(text, value, error);
    return value;
}

struct Common {
    std::string_view name, metavar, help;
};
constexpr Common kCommon[] = {
    {"quick", "", "run a small, fast version (what the test suite runs)"},
    {"out", "DIR", "directory for figures and results"},
    {"seed", "N", "random seed, an unsigned integer"},
    {"help", "", "show this help and exit"},  // keep last: help() lists it after the tutorial's options
};

}  // namespace

UsageError::UsageError(const std::string& message, std::string usage)
    : std::runtime_error(message), usage_(std::move(usage)) {}

// ------------------------------------------------------------------ Options

const Options::Value& Options::value(std::string_view name, std::initializer_list<char> kinds) const {
    const std::string bare = without_dashes(name);
    const auto it = values_.find(bare);
    if (it == values_.end())
        throw std::invalid_argument(fmt::format("Options: '--{}' was never declared", bare));
    if (std::find(kinds.begin(), kinds.end(), it->second.kind) == kinds.end())
        throw std::invalid_argument(fmt::format("Options: '--{}' was declared as another kind of option", bare));
    return it->second;
}

std::int64_t Options::integer(std::string_view name) const {
    return to_integer(value(name, {static_cast<char>(Cli::Kind::integer)}).text);
}

double Options::real(std::string_view name) const {
    const std::string& text = value(name, {static_cast<char>(Cli::Kind::real)}).text;
    double v = 0;
    std::errc error{};
    parse_whole(text, v, error);
    return v;
}

const std::string& Options::text(std::string_view name) const {
    return value(name, {static_cast<char>(Cli::Kind::choice), static_cast<char>(Cli::Kind::text)}).text;
}

bool Options::boolean(std::string_view name) const {
    return value(name, {static_cast<char>(Cli::Kind::boolean), static_cast<char>(Cli::Kind::flag)}).text == "true";
}

std::vector<std::int64_t> Options::integers(std::string_view name) const {
    std::vector<std::int64_t> out;
    for (const std::string& part : split_commas(value(name, {static_cast<char>(Cli::Kind::integer_list)}).text))
        out.push_back(to_integer(part));
    return out;
}

std::vector<std::string> Options::texts(std::string_view name) const {
    return split_commas(value(name, {static_cast<char>(Cli::Kind::choice_list)}).text);
}

bool Options::given(std::string_view name) const {
    const auto it = values_.find(without_dashes(name));
    if (it == values_.end())
        throw std::invalid_argument(fmt::format("Options: '--{}' was never declared", without_dashes(name)));
    return it->second.given;
}

// ------------------------------------------------------------------ Cli: declaring

Cli::Cli(std::string name, std::string description) : name_(std::move(name)), description_(std::move(description)) {
    if (name_.empty()) throw std::invalid_argument("Cli: the tutorial name is empty");
}

std::string Cli::check_new_name(std::string name) const {
    if (!name.starts_with("--") || name.size() < 3 || name.find_first_of("= ") != std::string::npos) {
        throw std::invalid_argument(fmt::format("Cli: option name '{}' must look like --word", name));
    }
    std::string bare = without_dashes(name);
    const bool common = std::any_of(std::begin(kCommon), std::end(kCommon), [&](const Common& c) { return c.name == bare; });
    if (common || find(bare)) throw std::invalid_argument(fmt::format("Cli: option '{}' is already defined", name));
    return bare;
}

Cli& Cli::declare(Declared d) {
    d.name = check_new_name(std::move(d.name));
    if (d.kind == Kind::integer || d.kind == Kind::integer_list) {
        if (d.int_range.min > d.int_range.max)
            throw std::invalid_argument(fmt::format("Cli: --{} has bounds {}..{}", d.name, d.int_range.min, d.int_range.max));
    }
    if (d.kind == Kind::real) {
        const RealRange& r = d.real_range;
        if (!(std::isfinite(r.min) && std::isfinite(r.max) && r.min <= r.max && !(r.min_excluded && r.min == r.max)))
            throw std::invalid_argument(fmt::format("Cli: --{} has bounds {}..{}", d.name, r.min, r.max));
    }
    if ((d.kind == Kind::choice || d.kind == Kind::choice_list) && d.choices.empty())
        throw std::invalid_argument(fmt::format("Cli: --{} has no choices", d.name));
    // A default the parser would refuse is a bug in the tutorial.
    auto bad_default = [&](const std::string& message) {
        throw std::invalid_argument(fmt::format("Cli: the default of --{} is refused: {}", d.name, message));
    };
    if (d.kind != Kind::flag) {
        check_value(d, d.value.full, bad_default);
        check_value(d, d.value.quick, bad_default);
    }
    declared_.push_back(std::move(d));
    return *this;
}

Cli& Cli::integer(std::string name, Default value, IntRange range, std::string help) {
    return declare({std::move(name), Kind::integer, std::move(value), range, {}, {}, std::move(help)});
}

Cli& Cli::real(std::string name, Default value, RealRange range, std::string help) {
    return declare({std::move(name), Kind::real, std::move(value), {}, range, {}, std::move(help)});
}

Cli& Cli::choice(std::string name, Default value, std::vector<std::string> choices, std::string help) {
    return declare({std::move(name), Kind::choice, std::move(value), {}, {}, std::move(choices), std::move(help)});
}

Cli& Cli::boolean(std::string name, Default value, std::string help) {
    return declare({std::move(name), Kind::boolean, std::move(value), {}, {}, {}, std::move(help)});
}

Cli& Cli::text(std::string name, Default value, std::string help) {
    return declare({std::move(name), Kind::text, std::move(value), {}, {}, {}, std::move(help)});
}

Cli& Cli::integer_list(std::string name, Default value, IntRange range, std::string help) {
    return declare({std::move(name), Kind::integer_list, std::move(value), range, {}, {}, std::move(help)});
}

Cli& Cli::choice_list(std::string name, Default value, std::vector<std::string> choices, std::string help) {
    return declare({std::move(name), Kind::choice_list, std::move(value), {}, {}, std::move(choices), std::move(help)});
}

Cli& Cli::flag(std::string name, std::string help) {
    return declare({std::move(name), Kind::flag, Default("false"), {}, {}, {}, std::move(help)});
}

void Cli::check_value(const Declared& d, const std::string& text, const std::function<void(const std::string&)>& fail) const {
    auto check_integer = [&](const std::string& item) {
        std::int64_t v = 0;
        std::errc error{};
        if (!parse_whole(item, v, error))
            fail(error == std::errc::result_out_of_range ? fmt::format("'{}' is out of range {}", item, bounds_text(d))
                                                          : fmt::format("'{}' is not a whole number", item));
        if (v < d.int_range.min || v > d.int_range.max) fail(fmt::format("{} is out of range {}", v, bounds_text(d)));
    };
    auto check_choice = [&](const std::string& item) {
        if (std::find(d.choices.begin(), d.choices.end(), item) == d.choices.end())
            fail(fmt::format("'{}' is not one of {}", item, fmt::join(d.choices, ", ")));
    };
    auto each_item = [&](const auto& check) {
        for (const std::string& item : split_commas(text)) {
            if (item.empty()) fail(fmt::format("'{}' has an empty item (the list is comma-separated)", text));
            check(item);
        }
    };
    switch (d.kind) {
        case Kind::integer: check_integer(text); break;
        case Kind::integer_list: each_item(check_integer); break;
        case Kind::choice: check_choice(text); break;
        case Kind::choice_list: each_item(check_choice); break;
        case Kind::real: {
            double v = 0;
            std::errc error{};
            if (!parse_whole(text, v, error) || !std::isfinite(v)) fail(fmt::format("'{}' is not a finite number", text));
            const RealRange& r = d.real_range;
            if (v > r.max || v < r.min || (r.min_excluded && v == r.min))
                fail(fmt::format("{} is out of range {}", text, bounds_text(d)));
            break;
        }
        case Kind::boolean:
            if (text != "true" && text != "false") fail(fmt::format("'{}' is not true or false", text));
            break;
        case Kind::text:
            if (text.empty()) fail("the value is empty");
            break;
        case Kind::flag: break;
    }
}

std::string Cli::bounds_text(const Declared& d) const {
    if (d.kind == Kind::integer || d.kind == Kind::integer_list) return fmt::format("{}..{}", d.int_range.min, d.int_range.max);
    if (d.kind == Kind::real)
        return fmt::format("{}{}, {}]", d.real_range.min_excluded ? "(" : "[", d.real_range.min, d.real_range.max);
    if (d.kind == Kind::choice || d.kind == Kind::choice_list) return fmt::format("{}", fmt::join(d.choices, ", "));
    return "";
}

const Cli::Declared* Cli::find(std::string_view name) const {
    const auto it = std::find_if(declared_.begin(), declared_.end(), [&](const Declared& d) { return d.name == name; });
    return it == declared_.end() ? nullptr : &*it;
}

// ------------------------------------------------------------------ Cli: text

namespace {

// How an option's value is shown in the usage line and the help.
std::string metavar(Cli::Kind kind) {
    switch (kind) {
        case Cli::Kind::integer: return "N";
        case Cli::Kind::real: return "X";
        case Cli::Kind::choice: return "WORD";
        case Cli::Kind::boolean: return "true|false";
        case Cli::Kind::text: return "TEXT";
        case Cli::Kind::integer_list: return "N,N,...";
        case Cli::Kind::choice_list: return "WORD,...";
        case Cli::Kind::flag: return "";
    }
    return "";
}

}  // namespace

std::string Cli::usage() const {
    std::string line = fmt::format("usage: {} [--quick] [--out DIR] [--seed N]", name_);
    for (const auto& d : declared_)
        line += d.kind == Kind::flag ? fmt::format(" [--{}]", d.name) : fmt::format(" [--{} {}]", d.name, metavar(d.kind));
    return line + fmt::format(" [--help]\nrun '{} --help' for details\n", name_);
}

std::string Cli::help() const {
    struct Row {
        std::string left, right;
    };
    std::vector<Row> rows;
    auto common_row = [&](const Common& c) {
        std::string left = c.metavar.empty() ? fmt::format("--{}", c.name) : fmt::format("--{} {}", c.name, c.metavar);
        std::string right(c.help);
        if (c.name == "out") right += fmt::format(" (default: out/{}/)", name_);
        if (c.name == "seed") right += " (default: 0)";
        rows.push_back({std::move(left), std::move(right)});
    };
    const std::span<const Common> common(kCommon);
    for (const auto& c : common.first(common.size() - 1)) common_row(c);
    for (const auto& d : declared_) {
        if (d.kind == Kind::flag) {
            rows.push_back({fmt::format("--{}", d.name), d.help});
            continue;
        }
        std::string right = d.help + " (default: " + d.value.full;
        if (d.value.quick != d.value.full) right += fmt::format(", or {} with --quick", d.value.quick);
        const std::string bounds = bounds_text(d);
        if (!bounds.empty()) right += fmt::format("; {} {}", d.choices.empty() ? "range" : "one of", bounds);
        rows.push_back({fmt::format("--{} {}", d.name, metavar(d.kind)), right + ")"});
    }
    common_row(common.back());
    std::size_t width = 0;
    for (const auto& r : rows) width = std::max(width, r.left.size());

    std::string text = fmt::format("{}\n{}\n\noptions:\n", usage().substr(0, usage().find('\n')), description_);
    for (const auto& r : rows) text += fmt::format("  {:<{}}  {}\n", r.left, width, r.right);
    return text;
}

// ------------------------------------------------------------------ Cli: parsing

Options Cli::parse(int argc, char** argv) const {
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
    return parse(args);
}

Options Cli::parse(std::span<const std::string> args) const {
    Options options;
    options.out_dir = fmt::format("out/{}/", name_);
    options.usage = usage();

    auto fail = [&](const std::string& message) { throw UsageError(message, options.usage); };
    std::map<std::string, std::string> given;  // name without "--" → the value as typed
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (!arg.starts_with("--")) fail(fmt::format("unexpected argument '{}'", arg));

        // "--name=value" or "--name value"
        const auto equals = arg.find('=');
        const std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
        const bool inline_value = equals != std::string::npos;
        const Declared* declared = find(name);
        const bool takes_value = name == "out" || name == "seed" || (declared && declared->kind != Kind::flag);
        if (name != "quick" && name != "help" && !takes_value && !declared) fail(fmt::format("unknown option '--{}'", name));
        if (!takes_value && inline_value) fail(fmt::format("option --{} takes no value", name));
        if (given.count(name)) fail(fmt::format("option --{} is given twice", name));

        std::string value;
        if (takes_value) {
            if (inline_value) {
                value = arg.substr(equals + 1);
            } else if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
                value = args[++i];
            } else if (i + 1 < args.size()) {
                fail(fmt::format("option --{} needs a value, got the option '{}'", name, args[i + 1]));
            } else {
                fail(fmt::format("option --{} needs a value", name));
            }
        }
        given[name] = value;

        if (name == "help") throw HelpRequested(help());
        if (name == "quick") {
            options.quick = true;
        } else if (name == "out") {
            if (value.empty()) fail("option --out: the directory is empty");
            options.out_dir = value;
        } else if (name == "seed") {
            std::errc error{};
            if (!parse_whole(value, options.seed, error))
                fail(fmt::format("option --seed: '{}' is not an unsigned 64-bit integer", value));
        } else if (declared->kind != Kind::flag) {
            check_value(*declared, value, [&](const std::string& message) { fail(fmt::format("option --{}: {}", name, message)); });
        }
    }
    for (const auto& d : declared_) {
        const auto it = given.find(d.name);
        Options::Value v{static_cast<char>(d.kind), options.quick ? d.value.quick : d.value.full, it != given.end()};
        if (v.given) v.text = d.kind == Kind::flag ? "true" : it->second;
        options.values_[d.name] = std::move(v);
    }
    return options;
}

// ------------------------------------------------------------------ running

int run_tutorial(int argc, char** argv, const Cli& cli, const std::function<int(const Options&)>& body,
                 std::FILE* out, std::FILE* err) {
    try {
        return body(cli.parse(argc, argv));
    } catch (const HelpRequested& h) {
        fmt::print(out, "{}", h.help());
        return 0;
    } catch (const UsageError& e) {
        fmt::print(err, "{}: error: {}\n{}", cli.name(), e.what(), e.usage());
        return 2;
    } catch (const std::exception& e) {
        fmt::print(err, "{}: error: {}\n", cli.name(), e.what());
        return 1;
    }
}

}  // namespace tapeflow::tutorial
