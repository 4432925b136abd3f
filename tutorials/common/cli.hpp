// The command line every tutorial shares.
//
//   int main(int argc, char** argv) {
//       tapeflow::tutorial::Cli cli("07_realnvp", "RealNVP on the two-moons data set");
//       cli.option("--steps", "5000", "training steps").flag("--resume", "continue from the last checkpoint");
//       return tapeflow::tutorial::run_tutorial(argc, argv, cli, [](const tapeflow::tutorial::Options& opt) {
//           const auto steps = opt.get_int("--steps");
//           ...
//           return verifier.exit_code();
//       });
//   }
//
// Common options: --quick, --out DIR (default out/<tutorial name>/), --seed N
// (default 0), --help. Values are given as "--steps 100" or "--steps=100".
// A mistake on the command line exits with code 2 and a usage line; any
// other error exits with code 1.
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

struct Options {
    bool quick = false;
    std::string out_dir;
    std::uint64_t seed = 0;
    // Declared options and flags by name without the leading "--"; flags hold "true"/"false".
    std::map<std::string, std::string> extra;
    std::string usage;  // attached to the UsageError a bad value raises

    // Typed access to a declared option; the name may be given with or without
    // "--". A value that does not parse throws UsageError naming the option and
    // the value; an undeclared name throws std::invalid_argument (a bug in the tutorial).
    std::int64_t get_int(std::string_view name) const;     // whole number, no trailing junk, in range
    double get_double(std::string_view name) const;        // finite number
    std::string get_string(std::string_view name) const;
    bool get_bool(std::string_view name) const;            // true/false, 1/0, yes/no, on/off

private:
    const std::string& raw(std::string_view name) const;
};

class Cli {
public:
    Cli(std::string name, std::string description);

    // An option taking a value, e.g. option("--steps", "5000", "training steps").
    Cli& option(std::string name, std::string default_value, std::string help);
    // An option without a value: false unless given.
    Cli& flag(std::string name, std::string help);

    // Throws UsageError for unknown options, missing or bad values and stray
    // arguments, and HelpRequested for --help. Never exits the process.
    Options parse(int argc, char** argv) const;
    Options parse(std::span<const std::string> args) const;  // args without the program name

    std::string usage() const;  // one line plus a pointer to --help
    std::string help() const;   // usage, description and every option with its default

    const std::string& name() const { return name_; }

private:
    struct Declared {
        std::string name;  // without "--"
        std::string default_value;
        std::string help;
        bool is_flag;
    };

    const Declared* find(std::string_view name) const;
    std::string check_new_name(std::string name) const;

    std::string name_, description_;
    std::vector<Declared> declared_;
};

// Parses the command line and runs `body`. Returns body's result; 2 after a
// UsageError (message and usage to `err`); 0 after printing --help to `out`;
// 1 after any other std::exception ("error: ..." to `err`).
int run_tutorial(int argc, char** argv, const Cli& cli, const std::function<int(const Options&)>& body,
                 std::FILE* out = stdout, std::FILE* err = stderr);

}  // namespace tapeflow::tutorial
