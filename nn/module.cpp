#include "nn/module.hpp"

#include <iterator>
#include <stdexcept>

#include <fmt/format.h>

#include "tensor/shape.hpp"

namespace tapeflow::nn {

// Not this->name() in the messages: registration runs inside derived constructors, whose name()
// may read members that are not initialized yet.
void Module::check_new_name(const std::string& name, bool non_null, const char* op) const {
    if (name.empty()) throw std::invalid_argument(fmt::format("Module::{}: the name is empty", op));
    if (!non_null) throw std::invalid_argument(fmt::format("Module::{}: child \"{}\" is null", op, name));
    for (const auto& [existing, p] : parameters_)
        if (existing == name)
            throw std::invalid_argument(fmt::format("Module::{}: \"{}\" is already a parameter", op, name));
    for (const auto& [existing, b] : buffers_)
        if (existing == name)
            throw std::invalid_argument(fmt::format("Module::{}: \"{}\" is already a buffer", op, name));
    for (const auto& [existing, child] : children_)
        if (existing == name)
            throw std::invalid_argument(fmt::format("Module::{}: \"{}\" is already a child module", op, name));
}

Parameter& Module::register_parameter(std::string name, Tensor initial) {
    check_new_name(name, true, "register_parameter");
    auto p = std::make_unique<Parameter>(std::move(initial));
    Parameter& ref = *p;
    parameters_.emplace_back(std::move(name), std::move(p));
    return ref;
}

Tensor& Module::register_buffer(std::string name, Tensor initial) {
    check_new_name(name, true, "register_buffer");
    if (!initial.defined())
        throw std::invalid_argument(fmt::format("Module::register_buffer: buffer \"{}\" is an undefined tensor", name));
    auto b = std::make_unique<Tensor>(std::move(initial));
    Tensor& ref = *b;
    buffers_.emplace_back(std::move(name), std::move(b));
    return ref;
}

void Module::collect_buffers(const std::string& prefix,
                             std::vector<std::pair<std::string, const Tensor*>>& out) const {
    for (const auto& [name, b] : buffers_) out.emplace_back(prefix + name, b.get());
    for (const auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
}

std::vector<std::pair<std::string, const Tensor*>> Module::named_buffers() const {
    std::vector<std::pair<std::string, const Tensor*>> out;
    collect_buffers("", out);
    return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
    std::vector<std::pair<std::string, Tensor*>> out;
    for (const auto& [name, b] : std::as_const(*this).named_buffers()) out.emplace_back(name, const_cast<Tensor*>(b));
    return out;
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, const Parameter*>>& out) const {
    for (const auto& [name, p] : parameters_) out.emplace_back(prefix + name, p.get());
    for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, const Parameter*>> Module::named_parameters() const {
    std::vector<std::pair<std::string, const Parameter*>> out;
    collect("", out);
    return out;
}

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters() {
    std::vector<std::pair<std::string, Parameter*>> out;
    // The const walk finds them; this module owns them, so handing out mutable pointers is sound.
    for (const auto& [name, p] : std::as_const(*this).named_parameters())
        out.emplace_back(name, const_cast<Parameter*>(p));
    return out;
}

std::vector<Parameter*> Module::parameters() {
    std::vector<Parameter*> out;
    for (const auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
}

std::size_t Module::parameter_count() const {
    std::size_t n = 0;
    for (const auto& [name, p] : named_parameters()) n += p->numel();
    return n;
}

void Module::zero_grad() {
    for (Parameter* p : parameters()) p->zero_grad();
}

void Module::train(bool on) {
    training_ = on;
    on_mode_change(on);
    for (auto& [name, child] : children_) child->train(on);
}

std::string Module::summary() const {
    const auto params = named_parameters();
    std::size_t width = 9;
    for (const auto& [name, p] : params) width = std::max(width, name.size());
    std::string out = fmt::format("{}\n  {:<{}}  {:<14}  {:>10}\n", name(), "parameter", width, "shape", "count");
    for (const auto& [name, p] : params)
        fmt::format_to(std::back_inserter(out), "  {:<{}}  {:<14}  {:>10}\n", name, width, p->shape().str(), p->numel());
    fmt::format_to(std::back_inserter(out), "  {:<{}}  {:<14}  {:>10}\n", "total", width, "", parameter_count());
    return out;
}

}  // namespace tapeflow::nn
