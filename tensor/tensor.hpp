// Tensor: an N-d array of doubles, contiguous and row-major.
//
// A Tensor is a handle: copying one shares its storage (like a NumPy array or a torch.Tensor),
// so tensors are cheap to pass around and the tape can keep the values its backward rules need
// without copying them. `clone()` makes an independent copy. Every operation returns a new tensor;
// only the explicitly mutating members (`data()`, `at()`, `fill`, the compound assignments) write
// into an existing storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tensor/shape.hpp"
#include "tensor/storage.hpp"

namespace tapeflow {

class Tensor {
public:
    // An undefined tensor: no storage. Gradients start out undefined until something flows in.
    Tensor() = default;
    // Uninitialized storage of the given shape; use the factories below unless every element is
    // written right away.
    explicit Tensor(const Shape& shape);
    Tensor(const Shape& shape, std::vector<double> values);
    // Nested braces: Tensor{1, 2, 3}, Tensor{{1, 2}, {3, 4}}, Tensor{{{...}}}.
    Tensor(std::initializer_list<double> values);
    Tensor(std::initializer_list<std::initializer_list<double>> rows);
    Tensor(std::initializer_list<std::initializer_list<std::initializer_list<double>>> blocks);

    static Tensor scalar(double value);
    static Tensor zeros(const Shape& shape);
    static Tensor ones(const Shape& shape);
    static Tensor full(const Shape& shape, double value);
    // [start, start + step, ...) up to but excluding stop, as numpy.arange.
    static Tensor arange(double start, double stop, double step = 1.0);
    // n points from a to b inclusive, as numpy.linspace.
    static Tensor linspace(double a, double b, std::size_t n);
    static Tensor zeros_like(const Tensor& t) { return zeros(t.shape()); }
    static Tensor ones_like(const Tensor& t) { return ones(t.shape()); }

    bool defined() const { return storage_ != nullptr; }
    const Shape& shape() const { return shape_; }
    std::size_t rank() const { return shape_.rank(); }
    std::size_t numel() const { return numel_; }
    // Size along one axis; negative axes count from the end.
    std::size_t size(int axis) const;

    // Reads never count as writes; writes bump the storage's version (see version()) and throw
    // std::logic_error on a read-only storage. Element access through a non-const handle (operator[],
    // at) gives an Element: reading it is a read, assigning to it (=, +=, …) is the write. A mutable
    // pointer or span (data(), span() on a non-const handle) is handed out for writing and counts as a
    // write when it is handed out; read raw memory through a const handle (std::as_const(t).data()).
    double* data() {
        write_access();
        return storage_.get();
    }
    const double* data() const { return storage_.get(); }
    std::span<double> span() { return {data(), numel_}; }
    std::span<const double> span() const { return {data(), numel_}; }
    std::vector<double> to_vector() const { return {data(), data() + numel_}; }

    // The single element of a one-element tensor (any rank).
    double item() const;
    // One element seen through a non-const handle: converting it to double reads (the version stays),
    // assigning to it writes (the version is bumped, a read-only storage refuses). A short-lived
    // proxy, as std::vector<bool>::reference: bind elements you keep to a double, not to auto.
    class Element {
    public:
        Element(const Element&) = default;
        operator double() const { return *at_; }
        Element& operator=(double v) {
            owner_.count_write(storage_header(owner_.storage_.get()));
            *at_ = v;
            return *this;
        }
        Element& operator=(const Element& other) { return *this = static_cast<double>(other); }
        Element& operator+=(double v) { return *this = *at_ + v; }
        Element& operator-=(double v) { return *this = *at_ - v; }
        Element& operator*=(double v) { return *this = *at_ * v; }
        Element& operator/=(double v) { return *this = *at_ / v; }

    private:
        friend class Tensor;
        Element(Tensor& owner, double* at) : owner_(owner), at_(at) {}
        Tensor& owner_;
        double* at_;
    };

    // Bounds-checked element access by multi-index.
    Element at(std::initializer_list<std::size_t> index);
    double at(std::initializer_list<std::size_t> index) const;
    // Flat (row-major) element access, unchecked: for kernels and loops over numel(). Defined, as for
    // every unchecked access.
    Element operator[](std::size_t i) { return {*this, storage_.get() + i}; }
    double operator[](std::size_t i) const { return storage_[i]; }

    Tensor clone() const;
    void fill(double value);
    // Same storage, new shape with the same number of elements (contiguous, so always a view).
    Tensor reshape(const Shape& shape) const;
    // How many handles share this storage; the tape uses it to decide whether a gradient
    // buffer may be reused in place.
    long use_count() const { return storage_.use_count(); }
    bool shares_storage_with(const Tensor& other) const { return storage_ == other.storage_; }
    // How many write accesses the storage has seen (shared by every view of it; 0 when undefined), as
    // PyTorch's `tensor._version`: the tape saves it at record time and checks it at backward.
    std::uint64_t version() const { return storage_ ? storage_header(storage_.get()).version : 0; }
    // A read-only storage refuses writes through every handle and view (the tape marks the gradient a
    // backward rule receives, which may also be another node's gradient). clone() gives a writable copy.
    bool read_only() const { return storage_ && storage_header(storage_.get()).read_only != 0; }
    void set_read_only(bool read_only) {
        if (storage_) storage_header(storage_.get()).read_only = read_only ? 1 : 0;
    }

    // In-place elementwise updates; `other` broadcasts to this tensor's shape.
    Tensor& operator+=(const Tensor& other);
    Tensor& operator-=(const Tensor& other);
    Tensor& operator*=(double s);

private:
    void write_access() {
        if (storage_) count_write(storage_header(storage_.get()));
    }
    void count_write(StorageHeader& h) {
        if (h.read_only) [[unlikely]] refuse_write();
        ++h.version;
    }
    [[noreturn]] void refuse_write() const;

    Shape shape_;
    std::size_t numel_ = 0;
    std::shared_ptr<double[]> storage_;
};

// Throws naming `op` unless the tensor is defined; the entry check of every operation.
void require_defined(const Tensor& t, std::string_view op);
// Exact equality of shapes and every element.
bool equal(const Tensor& a, const Tensor& b);
// |a − b| ≤ atol + rtol·|b| elementwise, same shape. Equal infinities count as close; any other
// infinity or NaN never does.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-9, double atol = 1e-12);
// The largest |a − b| over all elements (shapes must match); NaN if any difference is NaN.
double max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace tapeflow

// An element prints as its value.
template <>
struct fmt::formatter<tapeflow::Tensor::Element> : fmt::formatter<double> {
    template <class Context>
    auto format(const tapeflow::Tensor::Element& e, Context& ctx) const {
        return fmt::formatter<double>::format(static_cast<double>(e), ctx);
    }
};
