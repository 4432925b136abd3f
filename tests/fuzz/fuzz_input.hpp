// What the fuzz harnesses share: the fixed model a checkpoint is loaded into, and a per-process
// temporary file the input bytes are written to (the loaders under test take paths, not buffers).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "nn/module.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::fuzz {

// Three parameters of ranks 2, 1 and 0, one of them in a child module, so a checkpoint exercises
// dotted names and a scalar: "weight" [2, 3], "bias" [3], "head.log_scale" [].
class Head : public nn::Module {
public:
    Head() { register_parameter("log_scale", Tensor::full(Shape{}, 0.5)); }
};
class FuzzModel : public nn::Module {
public:
    FuzzModel() {
        register_parameter("weight", Tensor::full(Shape{2, 3}, 1.25));
        register_parameter("bias", Tensor::full(Shape{3}, -2.0));
        register_module("head", std::make_unique<Head>());
    }
};

// One path per process in $TMPDIR, reused for every input (`./tapeflow fuzz` points TMPDIR at a
// directory of its own in /dev/shm, so there is no disk traffic and nothing is left behind).
inline const std::string& scratch_path(const char* tag) {
    static const std::string path = [tag] {
        const auto file = std::filesystem::temp_directory_path() /
                          (std::string("tapeflow-fuzz-") + tag + "-" + std::to_string(::getpid()));
        return file.string();
    }();
    static const bool removed_at_exit = std::atexit([] { std::remove(path.c_str()); }) == 0;
    (void)removed_at_exit;
    return path;
}

inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::abort();
    }
}

// A finding that is not a sanitizer report: say what broke, then abort so libFuzzer saves the input.
[[noreturn]] inline void finding(const std::string& what) {
    std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
    std::abort();
}

}  // namespace tapeflow::fuzz
