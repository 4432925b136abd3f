// Training-step time of three fixed flow models: zero_grad, loss, backward, Adam step, tape.clear(),
// the median over timed steps after warm-up steps. Each model runs in a process of its own (this
// executable re-runs itself with the model's name), so the peak resident memory it reports,
// getrusage's ru_maxrss read at the end of the run, is that model's alone.
//
//   moons    RealNVP, 8 alternating affine couplings, conditioners MLP 2→64→64→4, batch 512, forward KL
//   planar   32 planar layers on U1, reverse KL with n = 256 samples per step (annealed β)
//   fmnist   RealNVP, 6 checkerboard couplings (28×28), conditioners MLP 784→512→512→1568, batch 256,
//            forward KL on a fixed batch of standard-normal "pixels" (the time does not depend on them)
//
// The steady state must allocate nothing: beside the time, each row shows, per step after warm-up,
// how many tensor buffers came fresh from the system allocator (tensor/storage.hpp storage_stats) and
// how many times global operator new ran at all (counted by the replacement below, which counts every
// heap allocation of this executable: tensors' blocks, vectors, std::function, ...). Both are the
// maximum over the timed steps.
//
// Usage: bench_train [--no-header] [--threads N] [MODEL...]   (no MODEL: all three, 1 and 2 threads)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "bench/bench_table.hpp"
#include "flows/datasets.hpp"
#include "flows/distributions.hpp"
#include "flows/flow.hpp"
#include "flows/losses.hpp"
#include "flows/planar.hpp"
#include "flows/realnvp.hpp"
#include "flows/targets.hpp"
#include "nn/optimizer.hpp"
#include "tensor/gemm.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/storage.hpp"

// ---- every heap allocation of this executable, counted -------------------------------------------
namespace {
std::uint64_t new_calls = 0;  // only the main thread trains; the gemm pool worker never allocates

void* counted_alloc(std::size_t bytes) {
    ++new_calls;
    if (void* p = std::malloc(bytes ? bytes : 1)) return p;
    throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t bytes) { return counted_alloc(bytes); }
void* operator new[](std::size_t bytes) { return counted_alloc(bytes); }
void* operator new(std::size_t bytes, const std::nothrow_t&) noexcept {
    ++new_calls;
    return std::malloc(bytes ? bytes : 1);
}
void* operator new[](std::size_t bytes, const std::nothrow_t&) noexcept {
    ++new_calls;
    return std::malloc(bytes ? bytes : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
// ----------------------------------------------------------------------------------------------------

using namespace tapeflow;

namespace {

double process_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

struct Model {
    std::string label;
    std::size_t batch;  // rows through each linear layer
    int warmup;
    int repeats;
    std::unique_ptr<flows::Flow> flow;
    std::function<Var(std::size_t step)> loss;  // records the step's loss on the current tape
};

Model make_model(const std::string& name, Rng& rng) {
    if (name == "moons") {
        auto flow = flows::make_realnvp({.dim = 2, .couplings = 8, .hidden = {64, 64}});
        const Tensor x = flows::sample_moons(512, rng);
        flows::Flow* f = flow.get();
        return {"realnvp moons 8×(2→64→64→4) b512", 512, 20, 200, std::move(flow),
                [f, x](std::size_t) { return flows::forward_kl(*f, Var(x)); }};
    }
    if (name == "planar") {
        std::vector<std::unique_ptr<flows::Bijector>> layers;
        for (int k = 0; k < 32; ++k) layers.push_back(std::make_unique<flows::Planar>(2, rng));
        auto flow = std::make_unique<flows::Flow>(std::make_unique<flows::StandardNormal>(2), std::move(layers));
        flows::Flow* f = flow.get();
        const flows::Energy energy = flows::U1;
        return {"planar K=32 reverse KL on U1 n256", 256, 20, 300, std::move(flow),
                [f, energy, &rng](std::size_t step) {
                    return flows::reverse_kl(*f, energy, 256, flows::annealing_beta(step), rng);
                }};
    }
    if (name == "fmnist") {
        auto flow = flows::make_realnvp({.dim = 784,
                                         .couplings = 6,
                                         .hidden = {512, 512},
                                         .mask = flows::CouplingMask::checkerboard,
                                         .height = 28,
                                         .width = 28});
        const Tensor x = randn(Shape{256, 784}, rng);
        flows::Flow* f = flow.get();
        return {"realnvp fmnist 6×(784→512→512→1568) b256", 256, 3, 15, std::move(flow),
                [f, x](std::size_t) { return flows::forward_kl(*f, Var(x)); }};
    }
    throw std::invalid_argument(fmt::format("bench_train: unknown model '{}' (moons, planar, fmnist)", name));
}

// The step's matrix products timed alone: for every linear layer (a rank-2 "weight" [in, out]) its
// forward x·W and backward dX = dY·Wᵀ, dW = Xᵀ·dY at the model's batch, by the same gemm on the same
// threads. Its ratio to the step's time says how close the step runs to the gemm rate. It slightly
// overcounts: the first coupling the data enters needs no dX of its first layer (RealNVP fmnist: 1.5 %).
struct GemmAlone {
    double ms = 0;      // CPU ms of all the products, per step
    double gflop = 0;   // their flops, per step
};

GemmAlone time_gemm_alone(flows::Flow& flow, std::size_t batch) {
    using kernels::Transpose;
    std::map<std::pair<std::size_t, std::size_t>, int> layers;  // [in, out] → how many layers
    for (const auto& [name, p] : flow.named_parameters())
        if (p->shape().rank() == 2 && name.ends_with("weight")) ++layers[{p->shape()[0], p->shape()[1]}];
    GemmAlone total;
    for (const auto& [shape, count] : layers) {
        const auto [in, out] = shape;
        const std::vector<double> x(batch * in, 0.5), w(in * out, 0.25), dy(batch * out, 0.125);
        std::vector<double> y(batch * out), dx(batch * in), dw(in * out);
        const bench::Timing t = bench::median_seconds_per_call(
            [&] {
                kernels::gemm(Transpose::no, Transpose::no, batch, out, in, x.data(), in, w.data(), out, y.data(), out,
                              false, num_threads());
                kernels::gemm(Transpose::no, Transpose::yes, batch, in, out, dy.data(), out, w.data(), out, dx.data(),
                              in, false, num_threads());
                kernels::gemm(Transpose::yes, Transpose::no, in, out, batch, x.data(), in, dy.data(), out, dw.data(),
                              out, false, num_threads());
            },
            {.repeats = 3, .min_seconds = 0.02});
        total.ms += count * t.cpu * 1e3;
        total.gflop += count * 3 * 2.0 * static_cast<double>(batch * in * out) * 1e-9;
    }
    return total;
}

// Trains one model in this process and prints its row.
void run(const std::string& name) {
    Rng rng(0);
    Model m = make_model(name, rng);
    nn::Adam adam(m.flow->parameters(), {.lr = 1e-4});
    Tape& tape = Tape::current();
    std::vector<double> step_ms, cpu_ms, forward_ms, backward_ms, adam_ms;
    std::uint64_t max_fresh = 0, max_new = 0;
    std::size_t tape_nodes = 0;
    double sink = 0;
    for (int r = 0; r < m.warmup + m.repeats; ++r) {
        const std::uint64_t fresh0 = storage_stats().fresh_allocations;
        const std::uint64_t new0 = new_calls;
        const double c0 = process_cpu_ms();
        const auto t0 = bench::clock_type::now();
        adam.zero_grad();
        const Var loss = m.loss(static_cast<std::size_t>(r));
        const auto t1 = bench::clock_type::now();
        tape.backward(loss);
        const auto t2 = bench::clock_type::now();
        adam.step();
        const auto t3 = bench::clock_type::now();
        sink += loss.item();
        tape_nodes = tape.size();
        tape.clear();
        const auto t4 = bench::clock_type::now();
        const double c4 = process_cpu_ms();
        if (r < m.warmup) continue;
        step_ms.push_back(bench::seconds_between(t0, t4) * 1e3);
        cpu_ms.push_back(c4 - c0);
        forward_ms.push_back(bench::seconds_between(t0, t1) * 1e3);
        backward_ms.push_back(bench::seconds_between(t1, t2) * 1e3);
        adam_ms.push_back(bench::seconds_between(t2, t3) * 1e3);
        max_fresh = std::max(max_fresh, storage_stats().fresh_allocations - fresh0);
        max_new = std::max(max_new, new_calls - new0);
    }
    if (!std::isfinite(sink)) fmt::print(stderr, "bench_train: {}: the loss diverged\n", name);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double peak_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
    const GemmAlone gemm = time_gemm_alone(*m.flow, m.batch);
    const double step_cpu = bench::median(cpu_ms);
    const std::string gemm_share =
        gemm.gflop > 0 ? fmt::format("; gemm alone {:.2f} ms cpu for {:.2f} GFLOP: step at {:.0f} % of the gemm rate",
                                     gemm.ms, gemm.gflop, 100 * gemm.ms / step_cpu)
                       : std::string();
    bench::print_row("train",
                     fmt::format("{}, {} thread{}", m.label, num_threads(), num_threads() == 1 ? "" : "s"),
                     bench::median(step_ms), 3, "ms/step",
                     fmt::format("cpu {:.2f}; fwd {:.2f} bwd {:.2f} adam {:.2f} ms; {} nodes; per step: {} fresh "
                                 "buffers, {} new; peak RSS {:.1f} MiB{}",
                                 step_cpu, bench::median(forward_ms), bench::median(backward_ms),
                                 bench::median(adam_ms), tape_nodes, max_fresh, max_new, peak_mib, gemm_share));
}

// Runs this executable again for one model, so that the model's peak RSS is measured alone.
int run_child(const char* self, const std::string& model, int threads) {
    const std::string threads_arg = std::to_string(threads);
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        execl(self, self, "--no-header", "--child", "--threads", threads_arg.c_str(), model.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int main(int argc, char** argv) {
    bool child = false;
    int threads = 0;  // 0: both 1 and 2
    std::vector<std::string> models;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--no-header") continue;
        if (arg == "--child") child = true;
        else if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
        else models.push_back(arg);
    }
    try {
        if (child) {
            set_num_threads(threads);
            for (const std::string& m : models) run(m);
            return 0;
        }
        if (bench::wants_header(argc, argv)) bench::print_header();
        if (models.empty()) models = {"moons", "planar", "fmnist"};
        int status = 0;
        for (const std::string& m : models)
            for (int t : threads ? std::vector<int>{threads} : std::vector<int>{1, 2})
                status |= run_child("/proc/self/exe", m, t);
        return status;
    } catch (const std::exception& e) {
        fmt::print(stderr, "bench_train: {}\n", e.what());
        return 1;
    }
}
