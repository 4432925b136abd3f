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

// Parses the whole of `text` as T; from_chars rejects leading blanks and
// '+', and the end check rejects trailing junk such as "10x" or "1e3" for an int.
template <typename T>
bool parse_whole(std::string_view text, T& value, std::errc& error) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    error = ec;
    return ec == std::errc() && end == text.data() + text.size();
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

const std::string& Options::raw(std::string_view name) const {
    const auto it = extra.find(without_dashes(name));
    if (it == extra.end()) {
        throw std::invalid_argument(fmt::format("Options: '--{}' was never declared with Cli::option or Cli::flag",
                                                without_dashes(name)));
    }
    return it->second;
}

std::int64_t Options::get_int(std::string_view name) const {
    const std::string& text = raw(name);
    std::int64_t value = 0;
    std::errc error{};
    if (parse_whole(text, value, error)) return value;
    const char* why = error == std::errc::result_out_of_range ? "is out of range for a 64-bit integer"
                                                               : "is not a whole number";
    throw UsageError(fmt::format("option --{}: '{}' {}", without_dashes(name), text, why), usage);
}

double Options::get_double(std::string_view name) const {
    const std::string& text = raw(name);
    double value = 0;
    std::errc error{};
    if (parse_whole(text, value, error) && std::isfinite(value)) return value;
    throw UsageError(fmt::format("option --{}: '{}' is not a finite number", without_dashes(name), text), usage);
}

std::string Options::get_string(std::string_view name) const { return raw(name); }

bool Options::get_bool(std::string_view name) const {
    const std::string& text = raw(name);
    if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "0" || text == "no" || text == "off") return false;
    throw UsageError(fmt::format("option --{}: '{}' is not a boolean (true/false, 1/0, yes/no, on/off)",
                                 without_dashes(name), text),
                     usage);
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

Cli& Cli::option(std::string name, std::string default_value, std::string help) {
    declared_.push_back({check_new_name(std::move(name)), std::move(default_value), std::move(help), false});
    return *this;
}

Cli& Cli::flag(std::string name, std::string help) {
    declared_.push_back({check_new_name(std::move(name)), "false", std::move(help), true});
    return *this;
}

const Cli::Declared* Cli::find(std::string_view name) const {
    const auto it = std::find_if(declared_.begin(), declared_.end(), [&](const Declared& d) { return d.name == name; });
    return it == declared_.end() ? nullptr : &*it;
}

// ------------------------------------------------------------------ Cli: text

std::string Cli::usage() const {
    std::string line = fmt::format("usage: {} [--quick] [--out DIR] [--seed N]", name_);
    for (const auto& d : declared_) line += d.is_flag ? fmt::format(" [--{}]", d.name) : fmt::format(" [--{} VALUE]", d.name);
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
        if (d.is_flag) {
            rows.push_back({fmt::format("--{}", d.name), d.help});
        } else {
            rows.push_back({fmt::format("--{} VALUE", d.name), fmt::format("{} (default: {})", d.help, d.default_value)});
        }
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
    for (const auto& d : declared_) options.extra[d.name] = d.default_value;

    auto fail = [&](const std::string& message) { throw UsageError(message, options.usage); };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (!arg.starts_with("--")) fail(fmt::format("unexpected argument '{}'", arg));

        // "--name=value" or "--name value"
        const auto equals = arg.find('=');
        const std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
        const bool inline_value = equals != std::string::npos;
        const Declared* declared = find(name);
        const bool takes_value = name == "out" || name == "seed" || (declared && !declared->is_flag);
        if (name != "quick" && name != "help" && !takes_value && !declared) fail(fmt::format("unknown option '--{}'", name));
        if (!takes_value && inline_value) fail(fmt::format("option --{} takes no value", name));

        std::string value;
        if (takes_value) {
            if (inline_value) {
                value = arg.substr(equals + 1);
            } else if (i + 1 < args.size()) {
                value = args[++i];
            } else {
                fail(fmt::format("option --{} needs a value", name));
            }
        }

        if (name == "help") throw HelpRequested(help());
        if (name == "quick") {
            options.quick = true;
        } else if (name == "out") {
            if (value.empty()) fail("option --out: the directory is empty");
            options.out_dir = value;
        } else if (name == "seed") {
            std::errc error{};
            if (!parse_whole(value, options.seed, error)) {
                fail(fmt::format("option --seed: '{}' is not an unsigned 64-bit integer", value));
            }
        } else {
            options.extra[name] = declared->is_flag ? "true" : value;
        }
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
