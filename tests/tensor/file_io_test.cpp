#include "tensor/file_io.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tensor/testing/save_faults.hpp"

using namespace tapeflow;
using testing::SaveFaultInjection;
using testing::SaveStage;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path root;
    TempDir() {
        static int counter = 0;
        root = fs::temp_directory_path() / fmt::format("tapeflow_file_io_{}_{}", ::getpid(), counter++);
        fs::remove_all(root);
        fs::create_directories(root);
    }
    ~TempDir() { fs::remove_all(root); }
    std::string file(const std::string& name) const { return (root / name).string(); }
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(root)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string runtime_error_of(const auto& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no exception)";
}

// A child that starts writing `path` and then dies by SIGKILL mid-write, as `kill -9` would leave it.
void killed_writer(const std::string& path) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        AtomicFileWriter w(path, "file");
        w.write(std::string(100000, 'k'));  // past the buffer: bytes reach the temporary
        ::raise(SIGKILL);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
}

}  // namespace

TEST_CASE("write_file_atomically writes the bytes, creates the folder and leaves no temporary") {
    TempDir dir;
    const std::string path = dir.file("sub/a.txt");
    write_file_atomically(path, std::string_view("hello\n"));
    CHECK(contents(path) == "hello\n");
    write_file_atomically(path, std::string_view("replaced"));
    CHECK(contents(path) == "replaced");
    CHECK(dir.listing() == std::vector<std::string>{"sub"});
    CHECK(fs::directory_iterator(dir.root / "sub")->path().filename() == "a.txt");
}

TEST_CASE("a failure at any stage keeps the previous file whole and removes the temporary") {
    TempDir dir;
    const std::string path = dir.file("fig.svg");
    write_file_atomically(path, std::string_view("<svg>old</svg>"), "figure");
    const struct {
        SaveStage stage;
        const char* step;
    } stages[] = {
        {SaveStage::open, "creating the temporary file"}, {SaveStage::write, "writing the temporary file"},
        {SaveStage::flush, "flushing the temporary file"}, {SaveStage::fsync, "fsync of the temporary file"},
        {SaveStage::close, "closing the temporary file"},  {SaveStage::rename, "renaming"},
    };
    for (const auto& [stage, step] : stages) {
        INFO("stage: ", step);
        std::string msg;
        {
            SaveFaultInjection fault(stage, ENOSPC);  // a full disk
            msg = runtime_error_of([&] { write_file_atomically(path, std::string_view("<svg>new</svg>"), "figure"); });
        }
        CHECK(msg.starts_with(fmt::format("figure {}: could not save ({} ", path, step)));
        CHECK(msg.ends_with("failed: No space left on device); any previous figure at this path is unchanged"));
        CHECK(contents(path) == "<svg>old</svg>");
        CHECK(dir.listing() == std::vector<std::string>{"fig.svg"});
    }
    {
        SaveFaultInjection fault(SaveStage::fsync_directory, EIO);
        CHECK(runtime_error_of([&] { write_file_atomically(path, std::string_view("new"), "figure"); })
                  .find("saved, but syncing the directory") != std::string::npos);
    }
    CHECK(contents(path) == "new");
}

TEST_CASE("a writer destroyed without commit (an exception midway) leaves the destination as it was") {
    TempDir dir;
    const std::string path = dir.file("a.dot");
    write_file_atomically(path, std::string_view("digraph {}"));
    {
        AtomicFileWriter w(path);
        w.write(std::string(200000, 'x'));
        CHECK(fs::exists(w.temporary_path()));
    }
    CHECK(contents(path) == "digraph {}");
    CHECK(dir.listing() == std::vector<std::string>{"a.dot"});
}

TEST_CASE("concurrent writers of one path use distinct temporaries and leave one complete file") {
    TempDir dir;
    const std::string path = dir.file("shared.bin");
    for (int trial = 0; trial < 20; ++trial) {
        const std::string a(300000, 'a'), b(200000, 'b');
        std::string error_a, error_b;
        std::thread ta([&] { error_a = runtime_error_of([&] { write_file_atomically(path, a); }); });
        std::thread tb([&] { error_b = runtime_error_of([&] { write_file_atomically(path, b); }); });
        ta.join();
        tb.join();
        CHECK(error_a == "(no exception)");
        CHECK(error_b == "(no exception)");
        const std::string got = contents(path);
        CHECK((got == a || got == b));
        CHECK(dir.listing() == std::vector<std::string>{"shared.bin"});
    }
}

TEST_CASE("kill -9 mid-write: the debris is removed by the next write of the same path, and only it") {
    TempDir dir;
    const std::string path = dir.file("c.ckpt");
    write_file_atomically(path, std::string_view("good"));
    killed_writer(path);
    killed_writer(path);  // its own start already removed the first one's debris
    // An unrelated file and another path's temporary are never touched.
    write_file_atomically(dir.file("other.ckpt.tmp-1-0"), std::string_view("x"));
    write_file_atomically(dir.file("c.ckpt.tmp-notes"), std::string_view("y"));
    CHECK(dir.listing().size() == 4);
    CHECK(contents(path) == "good");  // the killed writes never reached the destination
    write_file_atomically(path, std::string_view("next"));
    CHECK(dir.listing() == std::vector<std::string>{"c.ckpt", "c.ckpt.tmp-notes", "other.ckpt.tmp-1-0"});
    CHECK(contents(path) == "next");
}

TEST_CASE("a live writer's temporary is never removed, in this process or another") {
    TempDir dir;
    const std::string path = dir.file("d.ckpt");
    SUBCASE("another thread of this process") {
        AtomicFileWriter in_progress(path);
        in_progress.write(std::string_view("partial"));
        CHECK(remove_stale_temporaries(path) == 0);
        CHECK(fs::exists(in_progress.temporary_path()));
    }
    SUBCASE("another process, alive and holding its lock") {
        int ready[2], release[2];
        REQUIRE(::pipe(ready) == 0);
        REQUIRE(::pipe(release) == 0);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            AtomicFileWriter w(path);
            w.write(std::string(100000, 'w'));
            char c = 1;
            (void)!::write(ready[1], &c, 1);
            (void)!::read(release[0], &c, 1);
            w.commit();
            ::_exit(0);
        }
        char c = 0;
        REQUIRE(::read(ready[0], &c, 1) == 1);
        CHECK(remove_stale_temporaries(path) == 0);
        CHECK(dir.listing().size() == 1);  // the child's temporary
        (void)!::write(release[1], &c, 1);
        int status = 0;
        ::waitpid(child, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK(contents(path) == std::string(100000, 'w'));
        for (int fd : {ready[0], ready[1], release[0], release[1]}) ::close(fd);
    }
}

TEST_CASE("InputFile checks the kind and size of a path before reading, naming it and the reason") {
    TempDir dir;
    const std::string missing = dir.file("missing.bin");
    CHECK(runtime_error_of([&] { InputFile f(missing, 100, "data file"); }) ==
          fmt::format("data file {}: cannot open the file: No such file or directory", missing));
    CHECK(runtime_error_of([&] { InputFile f(dir.root.string(), 100, "data file"); }) ==
          fmt::format("data file {}: cannot read the file: Is a directory", dir.root.string()));
    // A FIFO with no writer would block a plain open() forever.
    const std::string fifo = dir.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(runtime_error_of([&] { InputFile f(fifo, 100, "data file"); }) ==
          fmt::format("data file {}: cannot read the file: it is a FIFO (named pipe), not a regular file", fifo));
    // A device that never ends.
    CHECK(runtime_error_of([] { (void)read_file_bytes("/dev/zero", "checkpoint"); }) ==
          "checkpoint /dev/zero: cannot read the file: it is a character device, not a regular file");
    // An absurd size fails before a byte is read (a sparse file: no disk is used).
    const std::string huge = dir.file("huge.bin");
    { std::ofstream(huge) << ""; }
    fs::resize_file(huge, std::uint64_t{1} << 40);  // 1 TiB
    CHECK(runtime_error_of([&] { (void)read_file_bytes(huge, "checkpoint"); })
              .starts_with(fmt::format("checkpoint {}: the file is 1099511627776 bytes, more than the", huge)));
    // Within the bound the bytes come back exactly.
    const std::string small = dir.file("small.bin");
    write_file_atomically(small, std::string_view("abc\0def", 7));
    const auto bytes = read_file_bytes(small);
    CHECK(std::string(bytes.begin(), bytes.end()) == std::string("abc\0def", 7));
    CHECK(runtime_error_of([&] { (void)read_file_bytes(small, "file", 6); })
              .starts_with(fmt::format("file {}: the file is 7 bytes, more than the 6 bytes allowed", small)));
}

TEST_CASE("a write into a path under a regular file names the directory and the system's reason") {
    TempDir dir;
    write_file_atomically(dir.file("plain"), std::string_view("x"));
    const std::string path = dir.file("plain/sub/out.svg");
    CHECK(runtime_error_of([&] { write_file_atomically(path, std::string_view("y"), "figure"); })
              .find("Not a directory") != std::string::npos);
    // Without creating folders, the temporary cannot be created: its name and the reason are given.
    const std::string msg = runtime_error_of([&] { AtomicFileWriter w(dir.file("plain/out.svg"), "figure"); });
    CHECK(msg.starts_with(fmt::format("figure {}: could not save (creating the temporary file {}.tmp-",
                                      dir.file("plain/out.svg"), dir.file("plain/out.svg"))));
    CHECK(msg.find("Not a directory") != std::string::npos);
}
