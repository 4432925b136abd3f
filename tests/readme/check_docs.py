#!/usr/bin/env python3
"""Checks that the documentation cannot rot. Usage: check_docs.py CHECK SOURCE_DIR [BUILD_DIR]

  images    every image link in tutorials/*.md points to a file that exists (the committed figures
            that `./tapeflow figures` regenerates), and every figure there is shown by its page
  readme    every command in README.md's ```sh blocks is one the test suite exercises: the cheap ones
            run here, the others are matched to the test that covers them (COMMANDS below); a command
            that fits no entry fails, so a new README command comes with its test
  headers   every public header (tensor/ autograd/ nn/ flows/) opens with a comment saying what it provides
  snippets  every ```cpp block of README.md and tutorials/*.md compiles: all of them in one translation
            unit against the library's headers (see SNIPPETS below for how fragments are wrapped);
            needs the compiler command after BUILD_DIR (check_docs.py snippets SOURCE BUILD CXX...)
  references  every file a page, comment or script of the repository names exists in the repository
            (paths under its top folders, relative markdown links), every section of docs/theory.md
            that is cited (docs/theory.md §N) exists, and nothing cites the developers' notes that a
            clone does not have
"""
import os
import re
import subprocess
import sys
from pathlib import Path


def fail(problems):
    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


def check_images(source: Path, _build):
    problems, count = [], 0
    for md in sorted((source / "tutorials").glob("*.md")):
        for line_no, line in enumerate(md.read_text().splitlines(), 1):
            # ![alt](target) and <img src="target">; web links are not ours to check.
            targets = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", line) + re.findall(r'<img[^>]*\ssrc="([^"]+)"', line)
            for target in targets:
                if re.match(r"[a-z]+://", target):
                    continue
                count += 1
                if not (md.parent / target).is_file():
                    problems.append(f"{md.relative_to(source)}:{line_no}: image {target} does not exist "
                                    f"(run ./tapeflow figures {md.stem[:2]})")
    # And the other way round: every committed figure is shown by its tutorial's page.
    for figure_dir in sorted((source / "tutorials" / "figures").glob("*")):
        md = source / "tutorials" / f"{figure_dir.name}.md"
        text = md.read_text() if md.is_file() else ""
        for svg in sorted(figure_dir.glob("*.svg")):
            if f"figures/{figure_dir.name}/{svg.name}" not in text:
                problems.append(f"{svg.relative_to(source)} is shown by no image link in {md.relative_to(source)}")
    print(f"{count} image links checked")
    return fail(problems)


def tutorial_names(source: Path):
    return sorted(p.stem for p in (source / "tutorials").glob("[0-9][0-9]_*.cpp"))


def resolve_tutorial(source: Path, query: str):
    """The tutorial NAME denotes, by the rules of ./tapeflow's resolve_tutorial; None unless exactly one."""
    names = tutorial_names(source)
    exact = [n for n in names if n == query or n.startswith(query + "_") or n.split("_", 1)[1] == query]
    if exact:
        return exact[0]
    matches = [n for n in names if n.split("_", 1)[1].startswith(query)]
    return matches[0] if len(matches) == 1 else None


def run(args, cwd):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


# How each README command is exercised: a pattern, and a check that raises on failure and returns how
# the command is covered. The cheap ones run here; the others name the test that runs them.
def cmd_tapeflow_cheap(source, build, m):
    r = run(["./tapeflow", m["sub"]], source)
    if r.returncode != 0 or not r.stdout.strip():
        raise ValueError(f"exited {r.returncode} with output {r.stdout!r} {r.stderr!r}")
    return "ran it"


def cmd_tutorial(source, build, m):
    name = resolve_tutorial(source, m["name"])
    if name is None:
        raise ValueError(f"'{m['name']}' names no single tutorial")
    exe = Path(build) / "tutorials" / name
    if not exe.is_file():
        raise ValueError(f"{name} is not built (missing from tutorials/meson.build?)")
    options = re.findall(r"--[a-z][a-z0-9-]*", m["args"] or "")
    if options:
        r = run([str(exe), "--help"], source)
        unknown = [o for o in options if o not in r.stdout]
        if r.returncode != 0 or unknown:
            raise ValueError(f"{name} --help does not list {unknown or r.stderr}")
    return f"{name} runs (--quick) in the suite"


def cmd_figures(source, build, m):
    for query in (m["names"] or "").split():
        if resolve_tutorial(source, query) is None:
            raise ValueError(f"'{query}' names no single tutorial")
    return "its output is checked by the 'docs tutorial images' test"


# The bench that `./tapeflow bench` is run with here: the cheapest (a second or two), so the script's
# loop over build/bench/ (and its table) is exercised on every suite run.
CHEAP_BENCH = "tape"


def run_cheap_bench(source, build):
    """`./tapeflow bench CHEAP_BENCH` through the script, in the suite's own build directory."""
    env = dict(os.environ, TAPEFLOW_BUILD=str(Path(build).resolve()))
    r = subprocess.run(["./tapeflow", "bench", CHEAP_BENCH], cwd=source, capture_output=True, text=True, timeout=240,
                       env=env)
    if r.returncode != 0:
        raise ValueError(f"./tapeflow bench {CHEAP_BENCH} exited {r.returncode}: {r.stderr.strip()}")
    lines = r.stdout.splitlines()
    rows = [line for line in lines[2:] if line.strip()]
    if not lines or not lines[0].startswith("bench") or not rows:
        raise ValueError(f"./tapeflow bench {CHEAP_BENCH} printed no table: {r.stdout!r}")
    # Only the named bench runs, and each of its rows carries a number.
    for row in rows:
        if not re.match(rf"{CHEAP_BENCH}\s+.*\s-?[0-9.]+\s+\S+", row):
            raise ValueError(f"./tapeflow bench {CHEAP_BENCH}: unexpected row {row!r}")
    return f"ran ./tapeflow bench {CHEAP_BENCH}: {len(rows)} rows"


def cmd_bench(source, build, m):
    prefix = m["name"] or ""
    if not any(p.is_file() and p.name.startswith("bench_" + prefix) for p in (Path(build) / "bench").glob("bench_*")):
        raise ValueError(f"no bench executable starts with bench_{prefix}")
    if "cheap bench" not in RAN:  # once per check, however many bench commands the README shows
        RAN["cheap bench"] = run_cheap_bench(source, build)
    return RAN["cheap bench"]


RAN = {}


COMMANDS = [
    (r"\./tapeflow (?P<sub>list|help)", cmd_tapeflow_cheap),
    (r"\./tapeflow tutorial (?P<name>\S+)(?P<args>( \S+)*)", cmd_tutorial),
    (r"\./tapeflow figures(?P<names>( [\w-]+)*)", cmd_figures),
    (r"\./tapeflow bench( (?P<name>\w+))?", cmd_bench),
    (r"\./tapeflow test", lambda *_: "the suite itself"),
    (r"\./tapeflow test --sanitize", lambda *_: "the suite itself, in CI's sanitizer job"),
    (r"\./tapeflow fuzz( \d+)?", lambda *_: "CI's fuzz job"),
    # The install-and-consume recipe: tests/install/consume.sh runs these steps.
    (r"meson setup \S+ --prefix[= ]\S+", lambda *_: "tests/install (install route)"),
    (r"meson setup \S+", lambda *_: "tests/install"),
    (r"meson install -C \S+", lambda *_: "tests/install (install route)"),
    (r"ninja -C \S+", lambda *_: "tests/install"),
    (r"meson test -C \S+", lambda *_: "tests/install"),
    (r"PKG_CONFIG_PATH=\S+ meson setup \S+", lambda *_: "tests/install (install route)"),
    (r"(mkdir -p \S*subprojects && )?ln -s \S+ \S*subprojects/tapeflow", lambda *_: "tests/install (subproject route)"),
    # The CMake consumer: tests/install/consume.sh's cmake routes run these steps.
    (r"cmake -S \S+ -B \S+( -D\S+)*", lambda *_: "tests/install (CMake routes)"),
    (r"cmake --build \S+", lambda *_: "tests/install (CMake routes)"),
    (r"ctest --test-dir \S+", lambda *_: "tests/install (CMake routes)"),
    (r"cd \S+", lambda *_: "a directory change"),
]


def readme_commands(text):
    """The commands of every ```sh block: comments and blank lines dropped, continuations joined."""
    commands = []
    for block in re.findall(r"^```(?:sh|bash|shell)\n(.*?)^```", text, flags=re.S | re.M):
        pending = ""
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if pending:
                line = pending + " " + line
                pending = ""
            if line.endswith("\\"):
                pending = line[:-1].strip()
                continue
            if line and not line.startswith("#"):
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def check_readme(source: Path, build):
    problems = []
    commands = readme_commands((source / "README.md").read_text())
    for command in commands:
        for pattern, check in COMMANDS:
            m = re.fullmatch(pattern, command)
            if m:
                try:
                    print(f"ok: {command}  ({check(source, build, m)})")
                except (ValueError, subprocess.SubprocessError, OSError) as e:
                    problems.append(f"README command `{command}`: {e}")
                break
        else:
            problems.append(f"README command `{command}` is exercised by no test: add it to COMMANDS in "
                            f"tests/readme/check_docs.py with the test that runs it")
    if not commands:
        problems.append("README.md has no ```sh block: the check would be vacuous")
    return fail(problems)


def check_headers(source: Path, _build):
    problems, count = [], 0
    for layer in ("tensor", "autograd", "nn", "flows"):
        for header in sorted((source / layer).glob("*.hpp")):
            count += 1
            first = header.read_text().split("\n", 1)[0]
            if not re.match(r"//\s*\S.{10,}", first) and not first.startswith("/*"):
                problems.append(f"{header.relative_to(source)}: the first line is not a comment saying "
                                f"what the header provides: {first!r}")
    print(f"{count} headers checked")
    return fail(problems)


# The developers' notes live outside the repository; a clone does not have them. Spelled in pieces so
# that this file does not name them itself.
NOT_IN_REPOSITORY = ["THEORY" + ".md", "STYLE" + ".md", "../" + "shared/"]
TOP_FOLDERS = ("tensor", "autograd", "nn", "flows", "tutorials", "tests", "bench", "docs", "examples")
TEXT_SUFFIXES = {".md", ".cpp", ".hpp", ".h", ".py", ".txt", ".build", ".sh", ".cmake"}


def repository_text_files(source: Path):
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part.startswith(".") or part.startswith("build") or part == "out" for part in rel.parts[:-1]):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in ("tapeflow", "meson.build", "run")):
            yield path


def theory_sections(source: Path):
    theory = source / "docs" / "theory.md"
    if not theory.is_file():
        return None
    return {int(m) for m in re.findall(r"^## (\d+)\.", theory.read_text(), re.M)}


def check_references(source: Path, _build):
    problems, count = [], 0
    sections = theory_sections(source)
    if sections is None:
        problems.append("docs/theory.md, the theory reference the sources cite, does not exist")
        sections = set()
    me = Path(__file__).resolve()
    for path in repository_text_files(source):
        if path.resolve() == me:
            continue
        rel = path.relative_to(source)
        for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            where = f"{rel}:{line_no}"
            for name in NOT_IN_REPOSITORY:
                if name in line:
                    count += 1
                    problems.append(f"{where}: cites {name}, which is not in the repository (cite docs/theory.md)")
            # "docs/theory.md §2, §3 and §8": every § after the file name, in the same clause.
            for m in re.finditer(r"theory\.md((?:\s*(?:,|and|or|–|-)?\s*§\s?\d+)+)", line):
                for number in re.findall(r"§\s?(\d+)", m.group(1)):
                    count += 1
                    if int(number) not in sections:
                        problems.append(f"{where}: cites docs/theory.md §{number}, which has no section {number}")
            # Paths under the repository's top folders, e.g. flows/planar.hpp or tutorials/figures/05_x/a.svg.
            for m in re.finditer(r"(?<![\w./-])((?:%s)/[\w./-]*\w\.[A-Za-z]{1,5})(?![\w*<])" % "|".join(TOP_FOLDERS), line):
                target = m.group(1)
                count += 1
                if not (source / target).exists():
                    problems.append(f"{where}: names {target}, which does not exist")
            # Relative markdown links [text](target) in pages.
            if path.suffix == ".md":
                for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", line):
                    if re.match(r"[a-z]+:", target):
                        continue
                    count += 1
                    if not (path.parent / target).exists():
                        problems.append(f"{where}: links to {target}, which does not exist")
    print(f"{count} references checked")
    return fail(problems)


SNIPPETS = """How a page's ```cpp blocks are compiled (tests/readme/check_docs.py snippets):
  - Each page gets a namespace of its own; its blocks go there in order, after every public header
    (tensor/ autograd/ nn/ flows/ and doctest) and `using namespace tapeflow;`. #include lines are
    moved to the top of the file.
  - A block is a function body by default: its statements are compiled inside a function of their own.
  - An HTML comment right above the fence (not shown by a markdown viewer) changes that:
        <!-- snippet: namespace -->      the block is namespace-scope code (functions, classes, tests),
                                         visible to the page's later blocks
        <!-- snippet: function            hidden context: the lines up to --> are compiled before the
        Tape& tape = Tape::current();    block, in the same scope (declarations the block assumes);
        -->                              a line @snippet in them marks where the block goes instead
                                         (to place it inside a class or a loop)
    with namespace in place of function for context at namespace scope.
  - Compiled with -Wall -Wextra -Werror, except the warnings a fragment cannot help (unused variables,
    parameters and functions)."""

PUBLIC_LAYERS = ("tensor", "autograd", "nn", "flows")


def page_snippets(md: Path):
    """(first line number, kind, hidden context, code) of each ```cpp block of a page."""
    lines = md.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() != "```cpp":
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        # The comment directly above the fence, if it is a snippet directive.
        kind, context, j = "function", [], i - 1
        if j >= 0 and lines[j].rstrip().endswith("-->"):
            k = j
            while k >= 0 and "<!--" not in lines[k]:
                k -= 1
            comment = lines[k:j + 1]
            m = re.match(r"\s*<!--\s*snippet:\s*(namespace|function)\b(.*)", comment[0])
            if m:
                kind = m.group(1)
                body = [m.group(2)] + comment[1:]
                body[-1] = body[-1].rsplit("-->", 1)[0]
                context = [line for line in body if line.strip()]
        blocks.append((start + 1, kind, context, lines[start:end]))
        i = end + 1
    return blocks


def snippets_translation_unit(source: Path):
    pages = [source / "README.md"] + sorted((source / "tutorials").glob("*.md"))
    includes, body, count = set(), [], 0
    for md in pages:
        rel = md.relative_to(source)
        blocks = page_snippets(md)
        if not blocks:
            continue
        page = re.sub(r"\W", "_", md.stem)
        body.append(f"namespace page_{page} {{")
        for first_line, kind, context, code in blocks:
            count += 1
            kept = []
            for n, line in enumerate(code):
                if line.startswith("#include"):
                    includes.add(line.strip())
                    kept.append("")  # keeps the line numbers of what follows
                else:
                    kept.append(line)
            placed = [f'#line {first_line} "{rel}"'] + kept
            if any(line.strip() == "@snippet" for line in context):
                at = [line.strip() for line in context].index("@snippet")
                unit = context[:at] + placed + [f'#line 1 "{rel} (hidden context)"'] + context[at + 1:]
            else:
                unit = [f'#line 1 "{rel} (hidden context)"'] + context + placed
            if kind == "function":
                body += [f"[[maybe_unused]] void snippet_{count}() {{"] + unit + ["}"]
            else:
                body += unit
        body.append("}")
    headers = sorted(f'#include "{h.relative_to(source)}"' for layer in PUBLIC_LAYERS
                     for h in (source / layer).glob("*.hpp")
                     if "// Internal header: not installed." not in h.read_text().splitlines())
    prelude = ["#include <doctest/doctest.h>"] + headers + sorted(includes) + ["using namespace tapeflow;"]
    return "\n".join(prelude + body) + "\n", count


def check_snippets(source: Path, build, compiler):
    if not compiler:
        print("snippets: needs the compiler command after BUILD_DIR", file=sys.stderr)
        return 2
    text, count = snippets_translation_unit(source)
    if count == 0:
        return fail(["no ```cpp block in README.md or tutorials/*.md: the check would be vacuous"])
    unit = Path(build) / "docs_snippets.cpp"
    unit.write_text(text)
    flags = ["-std=c++20", "-fsyntax-only", f"-I{source}", "-Wall", "-Wextra", "-Werror",
             "-Wno-missing-field-initializers", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
             "-Wno-unused-parameter", "-Wno-unused-function", "-Wno-unused-local-typedefs"]
    r = subprocess.run(compiler + flags + [str(unit)], capture_output=True, text=True, timeout=300)
    print(f"{count} snippets compiled in one translation unit ({unit})")
    if r.returncode != 0:
        print(r.stderr)
        return fail([f"the snippets do not compile (errors above, located in the pages). {SNIPPETS}"])
    return 0


if __name__ == "__main__":
    checks = {"images": check_images, "readme": check_readme, "headers": check_headers, "references": check_references}
    if len(sys.argv) >= 4 and sys.argv[1] == "snippets":
        sys.exit(check_snippets(Path(sys.argv[2]), sys.argv[3], sys.argv[4:]))
    if len(sys.argv) < 3 or sys.argv[1] not in checks:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(checks[sys.argv[1]](Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
