// The command line every tutorial shares: one parser, one set of rules.
//
//   int main(int argc, char** argv) {
//       tapeflow::tutorial::Cli cli("07_realnvp", "RealNVP on the two-moons data set");
//       cli.integer("--steps", {"5000", "300"}, {1, 10'000'000}, "training steps")
//           .real("--lr", "1e-3", {0, 1, true}, "Adam's learning rate")
//           .flag("--resume", "continue from the last checkpoint");
//       return tapeflow::tutorial::run_tutorial(argc, argv, cli, [](const tapeflow::tutorial::Options& opt) {
//           const auto steps = opt.integer("--steps");  // 5000, or 300 with --quick, unless given
//           ...
//           return verifier.exit_code();
//       });
//   }
//
// Common options: --quick, --out DIR (default out/<tutorial name>/), --seed N (default 0), --help.
// The rules, the same for every option of every tutorial:
//   - a value is given as "--steps 100" or "--steps=100"; a value that starts with "--" is taken for
//     the next option, so "--steps --quick" is a missing value, never steps = "--quick";
//   - numbers are whole: no blanks, no '+', no trailing junk (" 5", "+5", "5x", "1e3" for an integer
//     are refused), finite, and inside the bounds every numeric option declares;
//   - a choice is one of its listed words; a list is comma-separated, without empty items;
//   - an option given twice, an unknown option or a stray argument is refused;
//   - a default may differ under --quick (Default{full, quick}), whatever order the options come in.
// Every value is checked when the command line is parsed, before the tutorial starts. A mistake exits
// with code 2 and a usage line; any other error exits with code 1.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tapeflow::tutorial {

// The user typed something wrong: message plus the usage text to show with it.
class UsageError : public std::runtime_error {
public:
    UsageError(const std::string& message, std::string usage);
    const std::string& usage() const { return usage_; }

private:
    std::string usage_;
};

// --help was given; carries the full help text. Not an error (exit code 0).
class HelpRequested : public std::exception {
public:
    explicit HelpRequested(std::string help) : help_(std::move(help)) {}
    const char* what() const noexcept override { return help_.c_str(); }
    const std::string& help() const { return help_; }

private:
    std::string help_;
};

// An option's default as it would be typed: the same with and without --quick, or two values.
struct Default {
    Default(const char* both) : full(both), quick(both) {}  // NOLINT: "5000" reads as the default
    Default(std::string full_value, std::string quick_value) : full(std::move(full_value)), quick(std::move(quick_value)) {}
    std::string full, quick;
};

// Inclusive bounds of an integer option.
struct IntRange {
    std::int64_t min, max;
};
// Bounds of a real option: [min, max], or (min, max] when min_excluded (e.g. a learning rate > 0).
struct RealRange {
    double min, max;
    bool min_excluded = false;
};

struct Options {
    bool quick = false;
    std::string out_dir;
    std::uint64_t seed = 0;
    std::string usage;  // attached to a UsageError that the tutorial raises itself

    // The value of a declared option (name with or without "--"), already checked by the parser.
    // Asking for a name that was never declared, or with the wrong getter, throws
    // std::invalid_argument (a bug in the tutorial, not the user's mistake).
    std::int64_t integer(std::string_view name) const;         // Cli::integer
    double real(std::string_view name) const;                  // Cli::real
    const std::string& text(std::string_view name) const;      // Cli::choice, Cli::text
    bool boolean(std::string_view name) const;                 // Cli::boolean, Cli::flag
    std::vector<std::int64_t> integers(std::string_view name) const;  // Cli::integer_list
    std::vector<std::string> texts(std::string_view name) const;      // Cli::choice_list
    // True when the user gave the option (its value is not the default).
    bool given(std::string_view name) const;

private:
    friend class Cli;
    struct Value {
        char kind;  // the declaration's Kind, as a char
        std::string text;
        bool given = false;
    };
    const Value& value(std::string_view name, std::initializer_list<char> kinds) const;
    std::map<std::string, Value, std::less<>> values_;
};

class Cli {
public:
    Cli(std::string name, std::string description);

    Cli& integer(std::string name, Default value, IntRange range, std::string help);
    Cli& real(std::string name, Default value, RealRange range, std::string help);
    Cli& choice(std::string name, Default value, std::vector<std::string> choices, std::string help);
    Cli& boolean(std::string name, Default value, std::string help);  // true or false
    Cli& text(std::string name, Default value, std::string help);     // any non-empty text, e.g. a path
    Cli& integer_list(std::string name, Default value, IntRange range, std::string help);
    Cli& choice_list(std::string name, Default value, std::vector<std::string> choices, std::string help);
    // An option without a value: false unless given.
    Cli& flag(std::string name, std::string help);

    // Throws UsageError for unknown options, missing or bad values and stray arguments, and
    // HelpRequested for --help. Never exits the process.
    Options parse(int argc, char** argv) const;
    Options parse(std::span<const std::string> args) const;  // args without the program name

    std::string usage() const;  // one line plus a pointer to --help
    std::string help() const;   // usage, description and every option with its default and bounds

    const std::string& name() const { return name_; }

    // The kinds of option; public only so that Options can tell them apart.
    enum class Kind : char { integer = 'i', real = 'r', choice = 'c', boolean = 'b', text = 't', integer_list = 'I',
                             choice_list = 'C', flag = 'f' };

private:
    struct Declared {
        std::string name;  // without "--"
        Kind kind;
        Default value;
        IntRange int_range{0, 0};
        RealRange real_range{0, 0};
        std::vector<std::string> choices;
        std::string help;
    };

    Cli& declare(Declared d);
    const Declared* find(std::string_view name) const;
    std::string check_new_name(std::string name) const;
    // Throws `fail(message)` unless `text` is a valid value of `d`.
    void check_value(const Declared& d, const std::string& text, const std::function<void(const std::string&)>& fail) const;
    std::string bounds_text(const Declared& d) const;

    std::string name_, description_;
    std::vector<Declared> declared_;
};

// Parses the command line and runs `body`. Returns body's result; 2 after a UsageError (message and
// usage to `err`); 0 after printing --help to `out`; 1 after any other std::exception ("error: ..." to `err`).
int run_tutorial(int argc, char** argv, const Cli& cli, const std::function<int(const Options&)>& body,
                 std::FILE* out = stdout, std::FILE* err = stderr);

}  // namespace tapeflow::tutorial
