#include "tutorials/common/cli.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

using namespace tapeflow::tutorial;

namespace {

Cli realnvp_cli() {
    Cli cli("07_realnvp", "RealNVP on two moons");
    cli.integer("--steps", {"5000", "300"}, {1, 10'000'000}, "training steps")
        .real("--lr", "0.001", {0, 1, true}, "learning rate")
        .real("--cooldown", "0.2", {0, 1}, "cool-down fraction")
        .choice("--data", "moons", {"moons", "rings"}, "data set")
        .boolean("--confine", "true", "add a wall")
        .text("--images", "auto", "folder of images")
        .integer_list("--ks", {"2,8,32", "2"}, {1, 1000}, "layer counts")
        .choice_list("--targets", "u1,u2", {"u1", "u2", "u3"}, "energies")
        .flag("--resume", "continue");
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

TEST_CASE("defaults when nothing is given, and the quick defaults under --quick") {
    const Options opt = realnvp_cli().parse({});
    CHECK_FALSE(opt.quick);
    CHECK(opt.out_dir == "out/07_realnvp/");
    CHECK(opt.seed == 0);
    CHECK(opt.integer("--steps") == 5000);
    CHECK(opt.integer("steps") == 5000);
    CHECK(opt.real("--lr") == 0.001);
    CHECK(opt.text("--data") == "moons");
    CHECK(opt.boolean("--confine"));
    CHECK(opt.text("--images") == "auto");
    CHECK(opt.integers("--ks") == std::vector<std::int64_t>{2, 8, 32});
    CHECK(opt.texts("--targets") == std::vector<std::string>{"u1", "u2"});
    CHECK_FALSE(opt.boolean("--resume"));
    CHECK_FALSE(opt.given("--steps"));

    // --quick switches the defaults wherever it stands, and leaves given values alone.
    const Options quick = realnvp_cli().parse(std::vector<std::string>{"--lr", "0.01", "--quick"});
    CHECK(quick.quick);
    CHECK(quick.integer("--steps") == 300);
    CHECK(quick.integers("--ks") == std::vector<std::int64_t>{2});
    CHECK(quick.real("--lr") == 0.01);
    CHECK(realnvp_cli().parse(std::vector<std::string>{"--quick", "--steps", "77"}).integer("--steps") == 77);
}

TEST_CASE("common and declared options are parsed, in both spellings") {
    const std::vector<std::string> args = {"--quick",       "--seed",         "42",           "--out=/tmp/x",
                                           "--steps=100",   "--lr",           "1e-2",         "--resume",
                                           "--data", "rings", "--confine=false", "--ks", "1,1000", "--targets=u3",
                                           "--cooldown", "-0"};
    const Options opt = realnvp_cli().parse(args);
    CHECK(opt.quick);
    CHECK(opt.seed == 42);
    CHECK(opt.out_dir == "/tmp/x");
    CHECK(opt.integer("--steps") == 100);
    CHECK(opt.given("--steps"));
    CHECK(opt.real("--lr") == 0.01);
    CHECK(opt.boolean("--resume"));
    CHECK(opt.text("--data") == "rings");
    CHECK_FALSE(opt.boolean("--confine"));
    CHECK(opt.integers("--ks") == std::vector<std::int64_t>{1, 1000});
    CHECK(opt.texts("--targets") == std::vector<std::string>{"u3"});
    CHECK(opt.real("--cooldown") == 0.0);
}

TEST_CASE("command-line mistakes are usage errors naming what was wrong") {
    const Cli cli = realnvp_cli();
    CHECK(usage_error(cli, {"--bogus"}) == "unknown option '--bogus'");
    CHECK(usage_error(cli, {"--steps"}) == "option --steps needs a value");
    CHECK(usage_error(cli, {"--seed", "-1"}) == "option --seed: '-1' is not an unsigned 64-bit integer");
    CHECK(usage_error(cli, {"--seed", "12abc"}) == "option --seed: '12abc' is not an unsigned 64-bit integer");
    CHECK(usage_error(cli, {"--seed", " 5"}) == "option --seed: ' 5' is not an unsigned 64-bit integer");
    CHECK(usage_error(cli, {"--seed", "+5"}) == "option --seed: '+5' is not an unsigned 64-bit integer");
    CHECK(usage_error(cli, {"--quick=yes"}) == "option --quick takes no value");
    CHECK(usage_error(cli, {"--resume=1"}) == "option --resume takes no value");
    CHECK(usage_error(cli, {"extra"}) == "unexpected argument 'extra'");
    CHECK(usage_error(cli, {"--out="}) == "option --out: the directory is empty");
    CHECK(usage_error(cli, {"--steps", "5", "--steps", "6"}) == "option --steps is given twice");
}

TEST_CASE("an option never takes the next option as its value") {
    const Cli cli = realnvp_cli();
    CHECK(usage_error(cli, {"--steps", "--quick"}) == "option --steps needs a value, got the option '--quick'");
    CHECK(usage_error(cli, {"--out", "--seed", "3"}) == "option --out needs a value, got the option '--seed'");
    CHECK(usage_error(cli, {"--images", "--resume"}) == "option --images needs a value, got the option '--resume'");
    // A value that really starts with "--" can still be given inline; a negative number is a value.
    CHECK(realnvp_cli().parse(std::vector<std::string>{"--images=--odd"}).text("--images") == "--odd");
    CHECK(usage_error(cli, {"--cooldown", "-1"}) == "option --cooldown: -1 is out of range [0, 1]");
}

TEST_CASE("numbers are whole, finite and inside their bounds") {
    const Cli cli = realnvp_cli();
    auto error_for = [&](const std::string& option, const std::string& value) {
        return usage_error(cli, {option, value});
    };
    CHECK(error_for("--steps", "10x") == "option --steps: '10x' is not a whole number");
    CHECK(error_for("--steps", "1e3") == "option --steps: '1e3' is not a whole number");
    CHECK(error_for("--steps", "2.5") == "option --steps: '2.5' is not a whole number");
    CHECK(error_for("--steps", " 7") == "option --steps: ' 7' is not a whole number");
    CHECK(error_for("--steps", "7 ") == "option --steps: '7 ' is not a whole number");
    CHECK(error_for("--steps", "+7") == "option --steps: '+7' is not a whole number");
    CHECK(error_for("--steps", "0x10") == "option --steps: '0x10' is not a whole number");
    CHECK(error_for("--steps", "") == "option --steps: '' is not a whole number");
    CHECK(error_for("--steps", "0") == "option --steps: 0 is out of range 1..10000000");
    CHECK(error_for("--steps", "-12") == "option --steps: -12 is out of range 1..10000000");
    CHECK(error_for("--steps", "10000001") == "option --steps: 10000001 is out of range 1..10000000");
    CHECK(error_for("--steps", "99999999999999999999") ==
          "option --steps: '99999999999999999999' is out of range 1..10000000");
    CHECK(error_for("--lr", "fast") == "option --lr: 'fast' is not a finite number");
    CHECK(error_for("--lr", "inf") == "option --lr: 'inf' is not a finite number");
    CHECK(error_for("--lr", "nan") == "option --lr: 'nan' is not a finite number");
    CHECK(error_for("--lr", "0.1junk") == "option --lr: '0.1junk' is not a finite number");
    CHECK(error_for("--lr", " 0.1") == "option --lr: ' 0.1' is not a finite number");
    CHECK(error_for("--lr", "+0.1") == "option --lr: '+0.1' is not a finite number");
    CHECK(error_for("--lr", "0") == "option --lr: 0 is out of range (0, 1]");
    CHECK(error_for("--lr", "1.5") == "option --lr: 1.5 is out of range (0, 1]");
    CHECK(error_for("--lr", "1").empty());
    CHECK(error_for("--ks", "2,,8") == "option --ks: '2,,8' has an empty item (the list is comma-separated)");
    CHECK(error_for("--ks", "2,8,") == "option --ks: '2,8,' has an empty item (the list is comma-separated)");
    CHECK(error_for("--ks", "2, 8") == "option --ks: ' 8' is not a whole number");
    CHECK(error_for("--ks", "2,0") == "option --ks: 0 is out of range 1..1000");
}

TEST_CASE("choices, booleans and text") {
    const Cli cli = realnvp_cli();
    CHECK(usage_error(cli, {"--data", "spirals"}) == "option --data: 'spirals' is not one of moons, rings");
    CHECK(usage_error(cli, {"--targets", "u1,u9"}) == "option --targets: 'u9' is not one of u1, u2, u3");
    CHECK(usage_error(cli, {"--confine", "yes"}) == "option --confine: 'yes' is not true or false");
    CHECK(usage_error(cli, {"--images="}) == "option --images: the value is empty");
}

TEST_CASE("the tutorial's own mistakes are std::invalid_argument, not usage errors") {
    const Options opt = realnvp_cli().parse({});
    CHECK_THROWS_WITH_AS(opt.integer("--epochs"), "Options: '--epochs' was never declared", std::invalid_argument);
    CHECK_THROWS_WITH_AS(opt.real("--steps"), "Options: '--steps' was declared as another kind of option",
                         std::invalid_argument);
    Cli cli("t", "d");
    cli.integer("--steps", "1", {1, 10}, "steps");
    CHECK_THROWS_WITH_AS(cli.integer("--steps", "2", {1, 10}, "again"), "Cli: option '--steps' is already defined",
                         std::invalid_argument);
    CHECK_THROWS_AS(cli.flag("--seed", "clashes with the common option"), std::invalid_argument);
    CHECK_THROWS_AS(cli.integer("steps", "1", {1, 10}, "no dashes"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(cli.integer("--big", "11", {1, 10}, "a default out of its own bounds"),
                         "Cli: the default of --big is refused: 11 is out of range 1..10", std::invalid_argument);
    CHECK_THROWS_WITH_AS(cli.integer("--bad", {"5", "x"}, {1, 10}, "a quick default that does not parse"),
                         "Cli: the default of --bad is refused: 'x' is not a whole number", std::invalid_argument);
    CHECK_THROWS_WITH_AS(cli.integer("--upside", "5", {10, 1}, "min > max"), "Cli: --upside has bounds 10..1",
                         std::invalid_argument);
    CHECK_THROWS_AS(cli.real("--r", "1", {0, INFINITY}, "unbounded"), std::invalid_argument);
    CHECK_THROWS_AS(cli.choice("--c", "a", {}, "no choices"), std::invalid_argument);
}

TEST_CASE("--help lists every option with its default and bounds") {
    try {
        realnvp_cli().parse(std::vector<std::string>{"--help"});
        FAIL("--help should throw HelpRequested");
    } catch (const HelpRequested& h) {
        const std::string help = h.help();
        CHECK(help.find("usage: 07_realnvp") != std::string::npos);
        CHECK(help.find("RealNVP on two moons") != std::string::npos);
        CHECK(help.find("--steps N") != std::string::npos);
        CHECK(help.find("training steps (default: 5000, or 300 with --quick; range 1..10000000)") != std::string::npos);
        CHECK(help.find("learning rate (default: 0.001; range (0, 1])") != std::string::npos);
        CHECK(help.find("data set (default: moons; one of moons, rings)") != std::string::npos);
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

    r = run(cli, {"--steps", "ten"}, [](const Options& o) { return static_cast<int>(o.integer("--steps")); });
    CHECK(r.code == 2);
    CHECK(r.err.find("'ten' is not a whole number") != std::string::npos);

    r = run(cli, {}, [](const Options&) -> int { throw std::runtime_error("model diverged"); });
    CHECK(r.code == 1);
    CHECK(r.err == "07_realnvp: error: model diverged\n");

    r = run(cli, {"--help"}, ok_body);
    CHECK(r.code == 0);
    CHECK(r.out.find("options:") != std::string::npos);
}
