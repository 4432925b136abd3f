// libFuzzer harness for the checkpoint reader (nn/checkpoint.hpp): load_checkpoint into a fixed
// small model, and read_checkpoint_index, on a file holding the fuzz input.
//
// Input: one option byte, then the file's bytes. Option bits:
//   1  overwrite the file's last 8 bytes with the right checksum, so mutations reach the code behind
//      the checksum check (name matching, shapes, lazy allocation) instead of stopping at it;
//   2  load with extras: an undefined tensor "optimizer/m" (allocated from the file's shape), a
//      defined one "optimizer/v" [3], and a step count;
//   4  UnusedEntries::ignore instead of reject;
//   8  load expecting a run configuration {"--lr": "0.001", "--seed": "0"} (version-2 files).
// The contract checked: each call returns or throws std::runtime_error / std::invalid_argument, and a
// load that throws leaves the model and the extras exactly as they were. Anything else (another
// exception, a sanitizer report, a leak, a huge allocation, a hang) is a finding.
#include <bit>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/checkpoint.hpp"
#include "tests/fuzz/fuzz_input.hpp"

using namespace tapeflow;

namespace {

std::vector<std::uint64_t> bits_of(const Tensor& t) {
    std::vector<std::uint64_t> out;
    if (!t.defined()) return out;
    for (double v : t.span()) out.push_back(std::bit_cast<std::uint64_t>(v));
    return out;
}

struct Snapshot {
    std::vector<std::pair<Shape, std::vector<std::uint64_t>>> tensors;
    std::uint64_t step;
    bool m_defined;
    bool operator==(const Snapshot&) const = default;
};

// Runs f; true when it returned, false when it threw one of the documented exception types.
template <class F>
bool returns_or_throws_cleanly(const char* what, F&& f) {
    try {
        f();
        return true;
    } catch (const std::runtime_error&) {
    } catch (const std::invalid_argument&) {
    } catch (const std::exception& e) {
        fuzz::finding(std::string(what) + " threw an undocumented exception: " + e.what());
    } catch (...) {
        fuzz::finding(std::string(what) + " threw a non-std exception");
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t options = data[0];
    std::vector<std::uint8_t> file(data + 1, data + size);
    if ((options & 1) && file.size() >= 8) {
        const std::size_t body = file.size() - 8;
        const std::uint64_t h = nn::fnv1a_64({file.data(), body});
        for (int i = 0; i < 8; ++i) file[body + i] = static_cast<std::uint8_t>(h >> (8 * i));
    }
    const std::string& path = fuzz::scratch_path("checkpoint");
    fuzz::write_file(path, file.data(), file.size());

    fuzz::FuzzModel model;
    Tensor m;                                  // undefined: allocated by the load
    Tensor v = Tensor::full(Shape{3}, 3.0);    // defined: written in place
    std::uint64_t step = 12345;
    nn::CheckpointExtras extras;
    if (options & 2) extras = {{{"optimizer/m", &m}, {"optimizer/v", &v}}, &step};
    const nn::CheckpointConfig config{{"--lr", "0.001"}, {"--seed", "0"}};
    if (options & 8) extras.config = &config;
    const auto unused = (options & 4) ? nn::UnusedEntries::ignore : nn::UnusedEntries::reject;

    const auto snapshot = [&] {
        Snapshot s{{}, step, m.defined()};
        for (auto& [name, p] : model.named_parameters()) s.tensors.emplace_back(p->shape(), bits_of(p->value));
        s.tensors.emplace_back(v.shape(), bits_of(v));
        return s;
    };
    const Snapshot before = snapshot();

    const bool loaded = returns_or_throws_cleanly("load_checkpoint", [&] { nn::load_checkpoint(path, model, extras, unused); });
    const Snapshot after = snapshot();
    if (!loaded && !(after == before)) fuzz::finding("a failed load_checkpoint modified the model or the extras");
    if (loaded) {
        for (std::size_t i = 0; i < before.tensors.size(); ++i)
            if (!(after.tensors[i].first == before.tensors[i].first))
                fuzz::finding("load_checkpoint changed the shape of a defined tensor");
        if ((options & 2) && !m.defined()) fuzz::finding("load_checkpoint left a lazily allocated extra undefined");
    }

    std::vector<nn::CheckpointEntry> index;
    const bool indexed = returns_or_throws_cleanly("read_checkpoint_index", [&] { index = nn::read_checkpoint_index(path); });
    // Both validate the whole file the same way: a file the index rejects can never load.
    if (loaded && !indexed) fuzz::finding("load_checkpoint accepted a file that read_checkpoint_index rejects");
    for (const auto& e : index) {
        // Every stored value is in the file: a non-empty tensor cannot claim more than the file holds.
        const std::size_t n = e.shape.numel();
        bool has_zero = false;
        for (std::size_t d : e.shape) has_zero |= d == 0;
        if (!has_zero && (n == 0 || n > file.size() / 8)) fuzz::finding("an indexed tensor has more values than the file");
    }
    return 0;
}
