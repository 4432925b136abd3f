// The bench_train models in LibTorch (PyTorch's C++ API), float64, written op for op as the PyTorch
// versions in bench/compare_pytorch.py: the C++ user's alternative to tapeflow. Trains one model for
// WARMUP + REPEATS steps (zero_grad, loss, backward, Adam step) and prints one JSON line: the median
// wall and CPU milliseconds per timed step, the peak RSS, and the BLAS kernel OpenBLAS picked (when
// OpenBLAS is the BLAS LibTorch calls).
//
// Usage: bench_libtorch MODEL THREADS WARMUP REPEATS   (MODEL: moons, planar or fmnist)
#include <dlfcn.h>
#include <sys/resource.h>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

double cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

double median(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
}

// "coupling3": built by append, because GCC 12 raises a false -Wrestrict on "literal" + std::string.
std::string module_name(const char* kind, int index) {
    std::string name(kind);
    name.append(std::to_string(index));
    return name;
}

// One affine coupling: z = x ⊙ exp(s) + t with s = scale ⊙ tanh(s_raw) ⊙ (1 − b), t ⊙ (1 − b), where
// (s_raw, t) = MLP(x ⊙ b); the last layer starts at zero, so the coupling starts as the identity.
struct CouplingImpl : torch::nn::Module {
    CouplingImpl(int64_t dim, const std::vector<int64_t>& hidden, const torch::Tensor& b) {
        mask = register_buffer("mask", b);
        complement = register_buffer("complement", 1 - b);
        scale = register_parameter("scale", torch::ones({dim}, f64));
        std::vector<int64_t> sizes{dim};
        sizes.insert(sizes.end(), hidden.begin(), hidden.end());
        sizes.push_back(2 * dim);
        for (std::size_t k = 0; k + 1 < sizes.size(); ++k) {
            auto linear = torch::nn::Linear(sizes[k], sizes[k + 1]);
            if (k + 2 == sizes.size()) {
                torch::nn::init::zeros_(linear->weight);
                torch::nn::init::zeros_(linear->bias);
            }
            net->push_back(linear);
            if (k + 2 < sizes.size()) net->push_back(torch::nn::ReLU());
        }
        register_module("net", net);
    }
    std::pair<torch::Tensor, torch::Tensor> inverse(const torch::Tensor& x) {
        const auto st = net->forward(x * mask).chunk(2, 1);
        const torch::Tensor s = torch::tanh(st[0]) * (scale * complement);
        return {x * torch::exp(s) + st[1] * complement, s.sum(1)};
    }
    torch::Tensor mask, complement, scale;
    torch::nn::Sequential net;
};
TORCH_MODULE(Coupling);

struct RealNVPImpl : torch::nn::Module {
    RealNVPImpl(int64_t dim, int couplings, const std::vector<int64_t>& hidden, const torch::Tensor masks[2])
        : dim(dim) {
        for (int j = 0; j < couplings; ++j)
            layers.push_back(register_module(module_name("coupling", j), Coupling(dim, hidden, masks[j % 2])));
    }
    torch::Tensor log_prob(torch::Tensor x) {
        torch::Tensor log_det = torch::zeros({x.size(0)}, f64);
        for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
            auto [z, ld] = (*it)->inverse(x);
            x = z;
            log_det = log_det + ld;
        }
        return -0.5 * (x * x).sum(1) - 0.5 * static_cast<double>(dim) * std::log(2 * M_PI) + log_det;
    }
    int64_t dim;
    std::vector<Coupling> layers;
};
TORCH_MODULE(RealNVP);

// f(z) = z + û·tanh(wᵀz + b) with û the invertibility-enforcing u (Rezende & Mohamed 2015, appendix A).
struct PlanarImpl : torch::nn::Module {
    PlanarImpl() {
        u = register_parameter("u", 0.1 * torch::randn({2}, f64));
        w = register_parameter("w", 0.1 * torch::randn({2}, f64));
        b = register_parameter("b", torch::zeros({1}, f64));
    }
    std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& z) {
        namespace F = torch::nn::functional;
        const torch::Tensor a = (w * u).sum();
        const torch::Tensor u_hat = u + ((F::softplus(-a) - 1) / (w * w).sum()) * w;
        const torch::Tensor c = F::softplus(a) - 1;  // wᵀû
        const torch::Tensor h = torch::tanh(torch::matmul(z, w) + b);
        return {z + h.unsqueeze(1) * u_hat, torch::log1p((1 - h * h) * c)};
    }
    torch::Tensor u, w, b;
};
TORCH_MODULE(Planar);

// U1 of Rezende & Mohamed (2015), table 1.
torch::Tensor u1(const torch::Tensor& z) {
    const torch::Tensor z1 = z.select(1, 0);
    const torch::Tensor ring = 0.5 * torch::pow((torch::linalg::vector_norm(z, 2, 1, false, c10::nullopt) - 2) / 0.4, 2);
    return ring - torch::logaddexp(-0.5 * torch::pow((z1 - 2) / 0.6, 2), -0.5 * torch::pow((z1 + 2) / 0.6, 2));
}

struct PlanarFlowImpl : torch::nn::Module {
    explicit PlanarFlowImpl(int k) {
        for (int j = 0; j < k; ++j) layers.push_back(register_module(module_name("planar", j), Planar()));
    }
    torch::Tensor reverse_kl(int64_t n, double beta) {
        torch::Tensor z = torch::randn({n, 2}, f64);
        torch::Tensor log_q = -0.5 * (z * z).sum(1) - std::log(2 * M_PI);
        for (auto& layer : layers) {
            auto [x, log_det] = layer->forward(z);
            z = x;
            log_q = log_q - log_det;
        }
        return (log_q + beta * u1(z)).mean();
    }
    std::vector<Planar> layers;
};
TORCH_MODULE(PlanarFlow);

torch::Tensor moons(int64_t n, double noise = 0.05) {
    const torch::Tensor t = torch::rand({n}, f64) * M_PI;
    const torch::Tensor outer = torch::rand({n}) < 0.5;
    const torch::Tensor x = torch::where(outer, torch::cos(t), 1 - torch::cos(t));
    const torch::Tensor y = torch::where(outer, torch::sin(t), 0.5 - torch::sin(t));
    return torch::stack({x, y}, 1) + noise * torch::randn({n, 2}, f64);
}

torch::Tensor alternating(int64_t dim, int parity) {
    return ((torch::arange(dim) + parity) % 2 == 0).to(torch::kFloat64);
}

torch::Tensor checkerboard(int64_t height, int64_t width, int parity) {
    const torch::Tensor r = torch::arange(height).unsqueeze(1);
    const torch::Tensor c = torch::arange(width).unsqueeze(0);
    return (((r + c + parity) % 2) == 1).to(torch::kFloat64).reshape(-1);
}

// The kernel OpenBLAS runs ("Cooperlake", "Haswell", ...), or "not OpenBLAS" when LibTorch's BLAS is
// another library.
std::string blas_kernel() {
    using CoreName = char* (*)();
    if (auto f = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) return f();
    return "not OpenBLAS";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: bench_libtorch MODEL THREADS WARMUP REPEATS\n");
        return 2;
    }
    const std::string model = argv[1];
    const int threads = std::stoi(argv[2]), warmup = std::stoi(argv[3]), repeats = std::stoi(argv[4]);
    torch::set_num_threads(threads);
    torch::manual_seed(0);
    torch::set_default_dtype(caffe2::TypeMeta::Make<double>());  // nn::Linear's parameters in float64

    std::shared_ptr<torch::nn::Module> flow;
    std::function<torch::Tensor(int)> loss;
    if (model == "moons") {
        const torch::Tensor masks[2] = {alternating(2, 0), alternating(2, 1)};
        auto f = RealNVP(2, 8, std::vector<int64_t>{64, 64}, masks);
        const torch::Tensor x = moons(512);
        loss = [f, x](int) mutable { return -f->log_prob(x).mean(); };
        flow = f.ptr();
    } else if (model == "planar") {
        auto f = PlanarFlow(32);
        loss = [f](int step) mutable { return f->reverse_kl(256, std::min(1.0, 0.01 + step / 10000.0)); };
        flow = f.ptr();
    } else if (model == "fmnist") {
        const torch::Tensor masks[2] = {checkerboard(28, 28, 0), checkerboard(28, 28, 1)};
        auto f = RealNVP(784, 6, std::vector<int64_t>{512, 512}, masks);
        const torch::Tensor x = torch::randn({256, 784}, f64);
        loss = [f, x](int) mutable { return -f->log_prob(x).mean(); };
        flow = f.ptr();
    } else {
        std::fprintf(stderr, "bench_libtorch: unknown model '%s' (moons, planar, fmnist)\n", model.c_str());
        return 2;
    }
    torch::optim::Adam adam(flow->parameters(), torch::optim::AdamOptions(1e-4));
    std::vector<double> wall, cpu;
    for (int step = 0; step < warmup + repeats; ++step) {
        const double c0 = cpu_ms();
        const auto t0 = std::chrono::steady_clock::now();
        adam.zero_grad();
        torch::Tensor l = loss(step);
        l.backward();
        adam.step();
        const auto t1 = std::chrono::steady_clock::now();
        const double c1 = cpu_ms();
        if (step < warmup) continue;
        wall.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        cpu.push_back(c1 - c0);
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("{\"ms\": %.4f, \"cpu\": %.4f, \"rss\": %.1f, \"blas\": \"%s\"}\n", median(wall), median(cpu),
                static_cast<double>(usage.ru_maxrss) / 1024.0, blas_kernel().c_str());
}
