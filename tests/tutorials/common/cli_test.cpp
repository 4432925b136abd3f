#include "tutorials/common/cli.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace tapeflow::tutorial;

namespace {

Cli realnvp_cli() {
    Cli cli("07_realnvp", "RealNVP on two moons");
    cli.option("--steps", "5000", "training steps").option("--lr", "0.001", "learning rate").flag("--resume", "continue");
    return cli;
}

// The UsageError message for `args`, or "" if parsing succeeded.
std::string usage_error(const Cli& cli, const std::vector<std::string>& args) {
    try {
        cli.parse(args);
    } catch (const UsageError& e) {
        CHECK(e.usage().find("usage: 07_realnvp") != std::string::npos);
        return e.what();
    }
    return "";
}

// Runs run_tutorial on `args` (argv[0] added) and captures what it printed.
struct Run {
    int code;
    std::string out, err;
};

std::string read_all(std::FILE* f) {
    std::rewind(f);
    std::string text;
    for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) text += static_cast<char>(c);
    std::fclose(f);
    return text;
}

Run run(const Cli& cli, std::vector<std::string> args, const std::function<int(const Options&)>& body) {
    args.insert(args.begin(), "07_realnvp");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    REQUIRE(out != nullptr);
    REQUIRE(err != nullptr);
    const int code = run_tutorial(static_cast<int>(args.size()), argv.data(), cli, body, out, err);
    return {code, read_all(out), read_all(err)};
}

}  // namespace

TEST_CASE("defaults when nothing is given") {
    const Options opt = realnvp_cli().parse({});
    CHECK_FALSE(opt.quick);
    CHECK(opt.out_dir == "out/07_realnvp/");
    CHECK(opt.seed == 0);
    CHECK(opt.get_int("--steps") == 5000);
    CHECK(opt.get_int("steps") == 5000);
    CHECK(opt.get_double("--lr") == 0.001);
    CHECK_FALSE(opt.get_bool("--resume"));
}

TEST_CASE("common and declared options are parsed, in both spellings") {
    const std::vector<std::string> args = {"--quick", "--seed", "42", "--out=/tmp/x", "--steps=100", "--lr", "1e-2", "--resume"};
    const Options opt = realnvp_cli().parse(args);
    CHECK(opt.quick);
    CHECK(opt.seed == 42);
    CHECK(opt.out_dir == "/tmp/x");
    CHECK(opt.get_int("--steps") == 100);
    CHECK(opt.get_double("--lr") == 0.01);
    CHECK(opt.get_bool("--resume"));
    CHECK(opt.get_string("--steps") == "100");
}

TEST_CASE("command-line mistakes are usage errors naming what was wrong") {
    const Cli cli = realnvp_cli();
    CHECK(usage_error(cli, {"--bogus"}) == "unknown option '--bogus'");
    CHECK(usage_error(cli, {"--steps"}) == "option --steps needs a value");
    CHECK(usage_error(cli, {"--seed", "-1"}) == "option --seed: '-1' is not an unsigned 64-bit integer");
    CHECK(usage_error(cli, {"--seed", "12abc"}) == "option --seed: '12abc' is not an unsigned 64-bit integer");
    CHECK(usage_error(cli, {"--quick=yes"}) == "option --quick takes no value");
    CHECK(usage_error(cli, {"--resume=1"}) == "option --resume takes no value");
    CHECK(usage_error(cli, {"extra"}) == "unexpected argument 'extra'");
    CHECK(usage_error(cli, {"--out="}) == "option --out: the directory is empty");
}

TEST_CASE("typed getters reject values that do not parse") {
    const Cli cli = realnvp_cli();
    auto getter_error = [&](const std::string& option, const std::string& value, auto get) -> std::string {
        const Options opt = cli.parse(std::vector<std::string>{option, value});
        try {
            get(opt);
        } catch (const UsageError& e) {
            CHECK(e.usage().find("usage: 07_realnvp") != std::string::npos);
            return e.what();
        }
        return "";
    };
    auto as_int = [](const Options& o) { return o.get_int("--steps"); };
    auto as_double = [](const Options& o) { return o.get_double("--lr"); };
    CHECK(getter_error("--steps", "10x", as_int) == "option --steps: '10x' is not a whole number");
    CHECK(getter_error("--steps", "1e3", as_int) == "option --steps: '1e3' is not a whole number");
    CHECK(getter_error("--steps", "2.5", as_int) == "option --steps: '2.5' is not a whole number");
    CHECK(getter_error("--steps", " 7", as_int) == "option --steps: ' 7' is not a whole number");
    CHECK(getter_error("--steps", "99999999999999999999", as_int) ==
          "option --steps: '99999999999999999999' is out of range for a 64-bit integer");
    CHECK(getter_error("--steps", "-12", as_int).empty());
    CHECK(getter_error("--lr", "fast", as_double) == "option --lr: 'fast' is not a finite number");
    CHECK(getter_error("--lr", "inf", as_double) == "option --lr: 'inf' is not a finite number");
    CHECK(getter_error("--lr", "0.1junk", as_double) == "option --lr: '0.1junk' is not a finite number");

    const Options opt = cli.parse(std::vector<std::string>{"--steps", "maybe"});
    CHECK_THROWS_WITH_AS(opt.get_bool("--steps"),
                         "option --steps: 'maybe' is not a boolean (true/false, 1/0, yes/no, on/off)", UsageError);
    CHECK_THROWS_WITH_AS(opt.get_int("--epochs"), "Options: '--epochs' was never declared with Cli::option or Cli::flag",
                         std::invalid_argument);
}

TEST_CASE("declaring options checks the names") {
    Cli cli("t", "d");
    cli.option("--steps", "1", "steps");
    CHECK_THROWS_WITH_AS(cli.option("--steps", "2", "again"), "Cli: option '--steps' is already defined",
                         std::invalid_argument);
    CHECK_THROWS_AS(cli.flag("--seed", "clashes with the common option"), std::invalid_argument);
    CHECK_THROWS_AS(cli.option("steps", "1", "no dashes"), std::invalid_argument);
}

TEST_CASE("--help lists every option with its default") {
    try {
        realnvp_cli().parse(std::vector<std::string>{"--help"});
        FAIL("--help should throw HelpRequested");
    } catch (const HelpRequested& h) {
        const std::string help = h.help();
        CHECK(help.find("usage: 07_realnvp") != std::string::npos);
        CHECK(help.find("RealNVP on two moons") != std::string::npos);
        CHECK(help.find("--steps VALUE") != std::string::npos);
        CHECK(help.find("training steps (default: 5000)") != std::string::npos);
        CHECK(help.find("(default: out/07_realnvp/)") != std::string::npos);
        CHECK(help.find("--resume") != std::string::npos);
    }
}

TEST_CASE("run_tutorial maps outcomes to exit codes") {
    const Cli cli = realnvp_cli();
    auto ok_body = [](const Options& o) { return o.quick ? 7 : 3; };

    Run r = run(cli, {"--quick"}, ok_body);
    CHECK(r.code == 7);
    CHECK(r.err.empty());

    r = run(cli, {"--bogus"}, ok_body);
    CHECK(r.code == 2);
    CHECK(r.err.find("error: unknown option '--bogus'") != std::string::npos);
    CHECK(r.err.find("usage: 07_realnvp") != std::string::npos);

    r = run(cli, {"--steps", "ten"}, [](const Options& o) { return static_cast<int>(o.get_int("--steps")); });
    CHECK(r.code == 2);
    CHECK(r.err.find("'ten' is not a whole number") != std::string::npos);

    r = run(cli, {}, [](const Options&) -> int { throw std::runtime_error("model diverged"); });
    CHECK(r.code == 1);
    CHECK(r.err == "07_realnvp: error: model diverged\n");

    r = run(cli, {"--help"}, ok_body);
    CHECK(r.code == 0);
    CHECK(r.out.find("options:") != std::string::npos);
}
