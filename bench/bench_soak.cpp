// Soak: trains the two-moons RealNVP (8 couplings, MLP 2→64→64→4, batch 512, Adam 1e-3) for 20,000
// steps on fresh batches and checks what a long run must never do: produce a NaN, grow the tape
// (its size and bytes must be identical after every step once the first is done), or grow the
// process's resident memory (flat within 1 MiB after a warm-up). Exits non-zero on any violation.
//
// Usage: bench_soak [--no-header] [--steps N]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <unistd.h>

#include "bench/bench_table.hpp"
#include "flows/datasets.hpp"
#include "flows/losses.hpp"
#include "flows/realnvp.hpp"
#include "nn/optimizer.hpp"

using namespace tapeflow;

namespace {

// Resident set size now (not the peak), from /proc/self/statm, in bytes.
double resident_bytes() {
    long pages_total = 0, pages_resident = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
        std::fclose(f);
    }
    return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace

int main(int argc, char** argv) {
    long steps = 20000;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--steps") == 0) steps = std::strtol(argv[i + 1], nullptr, 10);
    if (steps < 2) {
        fmt::print(stderr, "bench_soak: --steps needs at least 2\n");
        return 2;
    }

    Rng rng(0);
    auto flow = flows::make_realnvp({.dim = 2, .couplings = 8, .hidden = {64, 64}});
    nn::Adam adam(flow->parameters(), {.lr = 1e-3});
    Tape& tape = Tape::current();

    // Memory is compared after a warm-up: the first steps fill the storage cache and the tape's slots.
    const long warmup = std::min(100L, steps / 2);
    std::size_t tape_size = 0, tape_bytes = 0;
    double rss_after_warmup = 0, rss_max = 0, rss_min = 1e300, last_loss = 0;
    long nan_steps = 0, tape_changes = 0;
    for (long step = 0; step < steps; ++step) {
        adam.zero_grad();
        const Var loss = flows::forward_kl(*flow, Var(flows::sample_moons(512, rng)));
        last_loss = loss.item();
        if (!std::isfinite(last_loss)) ++nan_steps;
        tape.backward(loss);
        adam.step();
        // The tape is measured full, just before it is cleared: every step must record the same.
        if (step == 0) {
            tape_size = tape.size();
            tape_bytes = tape.bytes();
        } else if (tape.size() != tape_size || tape.bytes() != tape_bytes) {
            ++tape_changes;
        }
        tape.clear();
        if (step + 1 == warmup) rss_after_warmup = resident_bytes();
        if (step + 1 >= warmup) {
            const double rss = resident_bytes();
            rss_max = std::max(rss_max, rss);
            rss_min = std::min(rss_min, rss);
        }
    }
    const double growth_mib = (rss_max - rss_after_warmup) / (1024.0 * 1024.0);
    const bool ok = nan_steps == 0 && tape_changes == 0 && growth_mib <= 1.0;

    if (bench::wants_header(argc, argv)) bench::print_header();
    bench::print_row("soak", fmt::format("realnvp moons, {} steps", steps), static_cast<double>(nan_steps), 0,
                     "NaN steps",
                     fmt::format("tape {} nodes / {} bytes every step ({} changes); RSS {:.1f} MiB after warm-up, "
                                  "max growth {:.3f} MiB (limit 1); final loss {:.4f}; {}",
                                  tape_size, tape_bytes, tape_changes, rss_after_warmup / (1024.0 * 1024.0),
                                  growth_mib, last_loss, ok ? "ok" : "FAILED"));
    return ok ? 0 : 1;
}
