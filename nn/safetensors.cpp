#include "nn/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "nn/json.hpp"
#include "tensor/file_io.hpp"

namespace tapeflow::nn {

namespace {

constexpr std::uint64_t max_header_bytes = 100ull << 20;  // as the reference implementation
constexpr std::string_view metadata_key = "__metadata__";

void put_u64(std::vector<unsigned char>& out, std::uint64_t v) {
    for (int b = 0; b < 8; ++b) out.push_back(static_cast<unsigned char>(v >> (8 * b)));
}

std::uint64_t get_u64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int b = 0; b < 8; ++b) v |= std::uint64_t{p[b]} << (8 * b);
    return v;
}

// "'b', 'c'" for up to `limit` names, then "and 3 more".
std::string name_list(const std::vector<std::string_view>& names, std::size_t limit = 8) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += fmt::format("{}'{}'", i ? ", " : "", names[i]);
    if (names.size() > limit) out += fmt::format(" and {} more", names.size() - limit);
    return out;
}

// Reads one header entry {"dtype": "F64", "shape": [...], "data_offsets": [b, e]}.
class EntryReader {
public:
    EntryReader(const std::string& source, const std::string& name) : source_(source), name_(name) {}

    [[noreturn]] void fail(std::size_t at, const std::string& what) const {
        throw std::runtime_error(fmt::format("safetensors {}: tensor '{}' (at byte {}): {}", source_, name_, at, what));
    }

    SafetensorsEntry read(const json::Value& v) {
        if (v.kind != json::Value::Kind::object)
            fail(v.offset, fmt::format("expected an object {{\"dtype\", \"shape\", \"data_offsets\"}}, found {}", json::kind_name(v.kind)));
        const json::Value *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
        for (const json::Member& m : v.members) {
            const json::Value** slot = m.key == "dtype" ? &dtype : m.key == "shape" ? &shape : m.key == "data_offsets" ? &offsets : nullptr;
            if (slot == nullptr) fail(m.key_offset, fmt::format("unexpected key \"{}\" (an entry has \"dtype\", \"shape\" and \"data_offsets\")", m.key));
            if (*slot != nullptr) fail(m.key_offset, fmt::format("the key \"{}\" appears twice", m.key));
            *slot = &m.value;
        }
        if (!dtype || !shape || !offsets)
            fail(v.offset, fmt::format("the entry lacks \"{}\"", !dtype ? "dtype" : !shape ? "shape" : "data_offsets"));
        if (dtype->kind != json::Value::Kind::string) fail(dtype->offset, fmt::format("dtype is {}, expected a string", json::kind_name(dtype->kind)));
        if (dtype->text != "F64")
            fail(dtype->offset, fmt::format("dtype {} is not supported: tapeflow tensors are float64 (F64); convert before "
                                            "saving (in PyTorch: {{k: v.double() for k, v in state_dict.items()}})",
                                            dtype->text));
        SafetensorsEntry e;
        e.name = name_;
        const std::vector<std::uint64_t> dims = integers(*shape, "shape");
        if (dims.size() > Shape::max_rank)
            fail(shape->offset, fmt::format("rank {} is above {}, the most a tapeflow tensor has", dims.size(), Shape::max_rank));
        try {
            for (const std::uint64_t d : dims) e.shape.push_back(static_cast<std::size_t>(d));
        } catch (const std::invalid_argument&) {  // Shape refuses an element count that overflows size_t
            fail(shape->offset, fmt::format("shape [{}] has more elements than this machine can address",
                                            fmt::join(dims, ", ")));
        }
        const std::vector<std::uint64_t> range = integers(*offsets, "data_offsets");
        if (range.size() != 2) fail(offsets->offset, fmt::format("data_offsets has {} numbers, expected 2 [begin, end]", range.size()));
        e.begin = range[0];
        e.end = range[1];
        if (e.begin > e.end) fail(offsets->offset, fmt::format("data_offsets [{}, {}] ends before it begins", e.begin, e.end));
        // numel · 8 without overflow; a zero dimension makes the tensor empty whatever the others are.
        std::optional<std::uint64_t> bytes = sizeof(double);
        for (const std::uint64_t d : dims) {
            if (d == 0) { bytes = 0; break; }
            if (bytes && *bytes > UINT64_MAX / d) bytes.reset();
            else if (bytes) *bytes *= d;
        }
        if (!bytes) fail(shape->offset, fmt::format("shape {} has more elements than this machine can address", e.shape));
        if (e.end - e.begin != *bytes)
            fail(offsets->offset, fmt::format("data_offsets [{}, {}] hold {} bytes, but shape {} of F64 needs {}", e.begin, e.end,
                                              e.end - e.begin, e.shape, *bytes));
        return e;
    }

private:
    std::vector<std::uint64_t> integers(const json::Value& v, std::string_view field) const {
        if (v.kind != json::Value::Kind::array) fail(v.offset, fmt::format("{} is {}, expected an array of integers", field, json::kind_name(v.kind)));
        std::vector<std::uint64_t> out;
        for (const json::Value& item : v.items) {
            const auto n = json::as_u64(item);
            if (!n) fail(item.offset, fmt::format("{} holds {}{}, expected a non-negative integer", field, json::kind_name(item.kind),
                                                  item.kind == json::Value::Kind::number ? " " + item.text : ""));
            out.push_back(*n);
        }
        return out;
    }

    const std::string& source_;
    const std::string& name_;
};

}  // namespace

SafetensorsMetadata tapeflow_metadata() {
    // Readers (examples/python/load_realnvp_in_pytorch.py) check the layout key before transposing.
    return {{"producer", "tapeflow"}, {"linear_weight_layout", "[in, out]"}};
}

std::vector<std::pair<std::string, const Tensor*>> module_state(const Module& model) {
    std::vector<std::pair<std::string, const Tensor*>> out;
    for (const auto& [name, p] : model.named_parameters()) out.emplace_back(name, &p->value);
    for (const auto& [name, b] : model.named_buffers()) out.emplace_back(name, b);
    return out;
}

std::vector<std::pair<std::string, Tensor*>> module_state(Module& model) {
    std::vector<std::pair<std::string, Tensor*>> out;
    for (const auto& [name, p] : model.named_parameters()) out.emplace_back(name, &p->value);
    for (const auto& [name, b] : model.named_buffers()) out.emplace_back(name, b);
    return out;
}

std::vector<unsigned char> encode_safetensors(std::span<const std::pair<std::string, const Tensor*>> tensors,
                                              const SafetensorsMetadata& metadata) {
    std::unordered_set<std::string_view> seen;
    std::string header = "{";
    if (!metadata.empty()) {
        header += fmt::format("{}:{{", json::quote(metadata_key));
        for (std::size_t i = 0; i < metadata.size(); ++i)
            header += fmt::format("{}{}:{}", i ? "," : "", json::quote(metadata[i].first), json::quote(metadata[i].second));
        header += "}";
    }
    std::uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        if (name.empty() || name == metadata_key)
            throw std::invalid_argument(fmt::format("save_safetensors: '{}' cannot name a tensor", name));
        if (!seen.insert(name).second)
            throw std::invalid_argument(fmt::format("save_safetensors: the name '{}' is used twice", name));
        if (t == nullptr || !t->defined())
            throw std::invalid_argument(fmt::format("save_safetensors: tensor '{}' is undefined", name));
        const std::uint64_t bytes = t->numel() * sizeof(double);
        header += fmt::format("{}{}:{{\"dtype\":\"F64\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", header.size() > 1 ? "," : "",
                              json::quote(name), fmt::join(t->shape(), ","), offset, offset + bytes);
        offset += bytes;
    }
    header += "}";
    // Spaces (allowed after the JSON) align the data section to 8 bytes, as the reference writer does.
    header.append((8 - header.size() % 8) % 8, ' ');

    std::vector<unsigned char> out;
    out.reserve(8 + header.size() + offset);
    put_u64(out, header.size());
    out.insert(out.end(), header.begin(), header.end());
    for (const auto& [name, t] : tensors)
        for (const double v : t->span()) put_u64(out, std::bit_cast<std::uint64_t>(v));
    return out;
}

SafetensorsContents decode_safetensors(std::span<const unsigned char> bytes, const std::string& source) {
    const auto fail = [&](const std::string& what) { throw std::runtime_error(fmt::format("safetensors {}: {}", source, what)); };
    if (bytes.size() < 8)
        fail(fmt::format("truncated at byte 0 while reading the header length (needs 8 bytes, {} remain)", bytes.size()));
    SafetensorsContents out;
    out.header_bytes = get_u64(bytes.data());
    if (out.header_bytes > max_header_bytes)
        fail(fmt::format("the header length at byte 0 is {} bytes, above the format's limit of {} (not a safetensors file?)",
                         out.header_bytes, max_header_bytes));
    if (out.header_bytes > bytes.size() - 8)
        fail(fmt::format("the header length at byte 0 is {} bytes, but only {} follow: the file is truncated (or not a "
                         "safetensors file)",
                         out.header_bytes, bytes.size() - 8));
    const std::string_view header(reinterpret_cast<const char*>(bytes.data() + 8), out.header_bytes);
    if (header.empty() || header[0] != '{')
        fail("the header at byte 8 does not start with '{' (not a safetensors file?)");
    json::Value root;
    try {
        root = json::parse(header, 8);
    } catch (const json::ParseError& e) {
        fail(fmt::format("the header is not valid JSON: {}", e.what()));
    }
    if (root.kind != json::Value::Kind::object) fail("the header at byte 8 is not a JSON object");

    std::unordered_map<std::string_view, std::size_t> first_at;
    for (const json::Member& m : root.members) {
        if (const auto [it, fresh] = first_at.emplace(m.key, m.key_offset); !fresh)
            fail(fmt::format("'{}' is stored twice (at bytes {} and {})", m.key, it->second, m.key_offset));
        if (m.key == metadata_key) {
            if (m.value.kind != json::Value::Kind::object)
                fail(fmt::format("__metadata__ (at byte {}) is {}, expected an object of strings", m.value.offset,
                                 json::kind_name(m.value.kind)));
            for (const json::Member& kv : m.value.members) {
                if (kv.value.kind != json::Value::Kind::string)
                    fail(fmt::format("__metadata__ \"{}\" (at byte {}) is {}, expected a string", kv.key, kv.value.offset,
                                     json::kind_name(kv.value.kind)));
                out.metadata.emplace_back(kv.key, kv.value.text);
            }
            continue;
        }
        out.entries.push_back(EntryReader(source, m.key).read(m.value));
    }

    // The data section is [8 + N, size): every byte belongs to exactly one tensor, in some order.
    const std::uint64_t data_at = 8 + out.header_bytes;
    const std::uint64_t data_size = bytes.size() - data_at;
    std::vector<std::size_t> order(out.entries.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return std::pair(out.entries[a].begin, out.entries[a].end) < std::pair(out.entries[b].begin, out.entries[b].end);
    });
    std::uint64_t cursor = 0;
    const SafetensorsEntry* previous = nullptr;
    for (const std::size_t i : order) {
        const SafetensorsEntry& e = out.entries[i];
        if (e.end > data_size)
            fail(fmt::format("tensor '{}' has data_offsets [{}, {}] out of range: the data section holds {} bytes (file bytes "
                             "{}..{}); the file is truncated or the offsets are wrong",
                             e.name, e.begin, e.end, data_size, data_at, bytes.size()));
        if (e.begin < cursor)
            fail(fmt::format("tensor '{}' at data_offsets [{}, {}] overlaps '{}' at [{}, {}]", e.name, e.begin, e.end,
                             previous->name, previous->begin, previous->end));
        if (e.begin > cursor)
            fail(fmt::format("data bytes [{}, {}) belong to no tensor (before '{}'): a safetensors file indexes every byte",
                             cursor, e.begin, e.name));
        cursor = e.end;
        previous = &e;
    }
    if (cursor != data_size)
        fail(fmt::format("data bytes [{}, {}) after the last tensor belong to no tensor (file bytes {}..{})", cursor, data_size,
                         data_at + cursor, bytes.size()));

    for (const SafetensorsEntry& e : out.entries) {
        Tensor t(e.shape);
        const unsigned char* p = bytes.data() + data_at + e.begin;
        for (std::size_t k = 0; k < t.numel(); ++k) t[k] = std::bit_cast<double>(get_u64(p + 8 * k));
        out.tensors.push_back(std::move(t));
    }
    return out;
}

void save_safetensors(const std::string& path, std::span<const std::pair<std::string, const Tensor*>> tensors,
                      const SafetensorsMetadata& metadata) {
    write_file_atomically(path, encode_safetensors(tensors, metadata), "safetensors");
}

void save_safetensors(const std::string& path, const Module& model) {
    save_safetensors(path, module_state(model), tapeflow_metadata());
}

SafetensorsContents read_safetensors(const std::string& path) {
    return decode_safetensors(read_file_bytes(path, "safetensors"), path);
}

void load_safetensors(const std::string& path, Module& model, UnusedEntries unused) {
    const auto targets = module_state(model);
    SafetensorsContents file = read_safetensors(path);
    const auto fail = [&](const std::string& what) { throw std::runtime_error(fmt::format("safetensors {}: {}", path, what)); };

    // Phase 1, checks only: every target has a stored tensor of its shape, and nothing is left over.
    std::unordered_map<std::string_view, std::size_t> stored;
    for (std::size_t i = 0; i < file.entries.size(); ++i) stored.emplace(file.entries[i].name, i);
    std::vector<std::string_view> missing;
    std::unordered_set<std::string_view> wanted;
    for (const auto& [name, t] : targets) {
        wanted.insert(name);
        if (!stored.contains(name)) missing.push_back(name);
    }
    if (!missing.empty()) {
        const Tensor& first = *std::find_if(targets.begin(), targets.end(), [&](const auto& t) { return t.first == missing[0]; })->second;
        fail(fmt::format("the file has no tensor '{}' (the model expects shape {}){}", missing[0], first.shape(),
                         missing.size() > 1 ? "; also missing: " + name_list({missing.begin() + 1, missing.end()}) : ""));
    }
    if (unused == UnusedEntries::reject) {
        std::vector<std::string_view> extra;
        for (const SafetensorsEntry& e : file.entries)
            if (!wanted.contains(e.name)) extra.push_back(e.name);
        if (!extra.empty())
            fail(fmt::format("the file has a tensor '{}' of shape {} that the model does not have{} (pass "
                             "UnusedEntries::ignore to skip unused entries)",
                             extra[0], file.entries[stored.at(extra[0])].shape,
                             extra.size() > 1 ? "; also unexpected: " + name_list({extra.begin() + 1, extra.end()}) : ""));
    }
    for (const auto& [name, t] : targets) {
        const SafetensorsEntry& e = file.entries[stored.at(name)];
        if (!(e.shape == t->shape())) fail(fmt::format("tensor '{}' has shape {}, the model expects {}", name, e.shape, t->shape()));
    }
    // Phase 2 cannot fail: same shapes, so each copy is a memcpy into the existing storage.
    for (const auto& [name, t] : targets) {
        const Tensor& from = file.tensors[stored.at(name)];
        if (from.numel() > 0) std::memcpy(t->data(), from.data(), from.numel() * sizeof(double));
    }
}

}  // namespace tapeflow::nn
