#include "nn/checkpoint.hpp"

#include "tensor/file_io.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

namespace tapeflow::nn {

// Dims are stored as u64 and become std::size_t; the tensor library assumes a 64-bit machine.
static_assert(sizeof(std::size_t) == 8, "checkpoints assume a 64-bit std::size_t");

std::uint64_t fnv1a_64(std::span<const unsigned char> bytes, std::uint64_t h) {
    for (unsigned char b : bytes) {
        h ^= b;
        h *= 1099511628211ULL;
    }
    return h;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Saving.

// Streams bytes to the atomic writer, hashing everything except the checksum.
class Writer {
public:
    explicit Writer(AtomicFileWriter& out) : out_(out) {}

    void put(std::span<const unsigned char> bytes) {
        hash_ = fnv1a_64(bytes, hash_);
        out_.write(bytes);
    }
    template <class U>
    void put_le(U value) {
        put(little_endian(value));
    }
    void put_doubles(const Tensor& t) {
        if constexpr (std::endian::native == std::endian::little) {
            put({reinterpret_cast<const unsigned char*>(t.data()), t.numel() * sizeof(double)});
        } else {
            for (double v : t.span()) put_le(std::bit_cast<std::uint64_t>(v));
        }
    }
    // Appends the checksum of everything written so far.
    void finish() { out_.write(little_endian(hash_)); }

private:
    template <class U>
    static std::array<unsigned char, sizeof(U)> little_endian(U value) {
        std::array<unsigned char, sizeof(U)> b;
        for (std::size_t i = 0; i < sizeof(U); ++i) b[i] = static_cast<unsigned char>(value >> (8 * i));
        return b;
    }

    AtomicFileWriter& out_;
    std::uint64_t hash_ = 14695981039346656037ULL;  // FNV-1a offset basis
};

// Everything a save writes, in file order, validated before the disk is touched.
std::vector<std::pair<std::string, const Tensor*>> tensors_to_save(const Module& model,
                                                                   const CheckpointExtras& extras) {
    std::vector<std::pair<std::string, const Tensor*>> out;
    for (const auto& [name, p] : model.named_parameters()) out.emplace_back(name, &p->value);
    for (const auto& [name, t] : extras.tensors) {
        if (t == nullptr)
            throw std::invalid_argument(fmt::format("save_checkpoint: extra tensor '{}' is a null pointer", name));
        out.emplace_back(name, t);
    }
    std::unordered_set<std::string_view> seen;
    for (const auto& [name, t] : out) {
        if (!seen.insert(name).second)
            throw std::invalid_argument(fmt::format(
                "save_checkpoint: the name '{}' is used twice (prefix extras, e.g. \"optimizer/...\")", name));
        if (!t->defined())
            throw std::invalid_argument(fmt::format("save_checkpoint: tensor '{}' is undefined", name));
        if (name.size() > UINT32_MAX)
            throw std::invalid_argument(fmt::format("save_checkpoint: a name of {} bytes is too long", name.size()));
    }
    return out;
}

void write_contents(Writer& w, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                    const std::uint64_t* step) {
    w.put({reinterpret_cast<const unsigned char*>(checkpoint_magic), sizeof checkpoint_magic});
    w.put_le(checkpoint_version);
    w.put_le(std::uint32_t{step != nullptr});
    w.put_le(std::uint64_t{step != nullptr ? *step : 0});
    w.put_le(static_cast<std::uint32_t>(tensors.size()));
    for (const auto& [name, t] : tensors) {
        w.put_le(static_cast<std::uint32_t>(name.size()));
        w.put({reinterpret_cast<const unsigned char*>(name.data()), name.size()});
        w.put_le(static_cast<std::uint32_t>(t->rank()));
        for (std::size_t d : t->shape()) w.put_le(std::uint64_t{d});
        w.put_doubles(*t);
    }
    w.finish();
}

// ---------------------------------------------------------------------------------------------
// Loading.

// "TAPE\x00..." for the start of a file that is not a checkpoint.
std::string printable(std::span<const unsigned char> bytes) {
    std::string out;
    for (unsigned char c : bytes) {
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') out += static_cast<char>(c);
        else out += fmt::format("\\x{:02x}", c);
    }
    return out;
}

// Bounds-checked little-endian reads: every read names its field and offset when bytes run out.
class Reader {
public:
    Reader(const std::string& path, std::span<const unsigned char> bytes) : path_(path), bytes_(bytes) {}

    std::size_t offset() const { return offset_; }
    std::size_t remaining() const { return bytes_.size() - offset_; }

    std::span<const unsigned char> take(std::size_t n, std::string_view what) {
        if (n > remaining())
            throw std::runtime_error(fmt::format(
                "checkpoint {}: truncated at byte {} while reading {} (needs {} bytes, {} remain)", path_,
                offset_, what, n, remaining()));
        const auto out = bytes_.subspan(offset_, n);
        offset_ += n;
        return out;
    }
    template <class U>
    U read_le(std::string_view what) {
        const auto b = take(sizeof(U), what);
        U value = 0;
        for (std::size_t i = 0; i < sizeof(U); ++i) value |= static_cast<U>(b[i]) << (8 * i);
        return value;
    }

private:
    const std::string& path_;
    std::span<const unsigned char> bytes_;
    std::size_t offset_ = 0;
};

struct StoredTensor {
    std::string name;
    Shape shape;
    std::span<const unsigned char> data;  // numel · 8 bytes inside the file buffer
};

struct ParsedCheckpoint {
    std::uint32_t version = 0;
    std::optional<std::uint64_t> step;
    std::vector<StoredTensor> tensors;
};

// Reads and checks the whole layout (see the header) without interpreting names against a model.
ParsedCheckpoint parse(const std::string& path, std::span<const unsigned char> bytes) {
    const auto fail = [&](const std::string& what) {
        throw std::runtime_error(fmt::format("checkpoint {}: {}", path, what));
    };
    Reader in(path, bytes);
    ParsedCheckpoint out;

    const std::size_t head = std::min(bytes.size(), sizeof checkpoint_magic);
    if (head > 0 && std::memcmp(bytes.data(), checkpoint_magic, head) != 0)
        fail(fmt::format("not a tapeflow checkpoint: the file starts with \"{}\", expected \"TAPEFLOW\"",
                         printable(bytes.first(head))));
    in.take(sizeof checkpoint_magic, "the magic number");
    out.version = in.read_le<std::uint32_t>("the format version");
    if (out.version != checkpoint_version)
        fail(fmt::format("format version {} is not supported (this build reads version {}{})", out.version,
                         checkpoint_version, out.version > checkpoint_version ? "; written by a newer tapeflow?" : ""));
    const std::size_t flag_at = in.offset();
    const auto has_step = in.read_le<std::uint32_t>("the step flag");
    if (has_step > 1) fail(fmt::format("the step flag at byte {} is {}, expected 0 or 1", flag_at, has_step));
    const auto step = in.read_le<std::uint64_t>("the step count");
    if (has_step) out.step = step;
    const auto count = in.read_le<std::uint32_t>("the entry count");

    std::unordered_map<std::string_view, std::uint32_t> index_of;
    for (std::uint32_t i = 0; i < count; ++i) {
        const auto length = in.read_le<std::uint32_t>(fmt::format("the name length of entry {}", i));
        const auto name_bytes = in.take(length, fmt::format("the name of entry {}", i));
        StoredTensor t;
        t.name.assign(reinterpret_cast<const char*>(name_bytes.data()), name_bytes.size());
        const std::size_t rank_at = in.offset();
        const auto rank = in.read_le<std::uint32_t>(fmt::format("the rank of '{}'", t.name));
        if (rank > Shape::max_rank)
            fail(fmt::format("tensor '{}' has rank {} (at byte {}); at most {} is supported", t.name, rank, rank_at,
                             Shape::max_rank));
        // numel · 8 must fit in size_t; a zero dim makes the tensor empty whatever the others are.
        std::size_t numel = 1;
        bool has_zero = false, overflow = false;
        for (std::uint32_t axis = 0; axis < rank; ++axis) {
            const auto dim = in.read_le<std::uint64_t>(fmt::format("the dims of '{}'", t.name));
            t.shape.push_back(dim);
            if (dim == 0) has_zero = true;
            else if (numel > SIZE_MAX / sizeof(double) / dim) overflow = true;
            else numel *= dim;
        }
        if (has_zero) numel = 0;
        else if (overflow)
            fail(fmt::format("tensor '{}' has shape {}, more elements than this machine can address", t.name, t.shape));
        t.data = in.take(numel * sizeof(double), fmt::format("the data of '{}'", t.name));
        out.tensors.push_back(std::move(t));
    }
    // Duplicate names are checked once the names live at stable addresses in out.tensors.
    for (std::uint32_t i = 0; i < count; ++i) {
        const auto [it, inserted] = index_of.emplace(out.tensors[i].name, i);
        if (!inserted)
            fail(fmt::format("tensor '{}' is stored twice (entries {} and {})", out.tensors[i].name, it->second, i));
    }

    const std::size_t checksum_at = in.offset();
    const auto stored = in.read_le<std::uint64_t>("the checksum");
    if (in.remaining() != 0)
        fail(fmt::format("{} unexpected bytes after the checksum, which ends at byte {}", in.remaining(), in.offset()));
    const std::uint64_t computed = fnv1a_64(bytes.first(checksum_at));
    if (stored != computed)
        fail(fmt::format("checksum mismatch (stored {:#018x}, computed {:#018x} over bytes 0..{}): the file is corrupt",
                         stored, computed, checksum_at));
    return out;
}

ParsedCheckpoint parse_file(const std::string& path, std::vector<unsigned char>& storage) {
    storage = read_file_bytes(path, "checkpoint");
    return parse(path, storage);
}

// "'b', 'c'" for up to `limit` names, then "and 3 more".
std::string quoted_list(const std::vector<std::string>& names, std::size_t limit = 8) {
    std::string out;
    for (std::size_t i = 0; i < std::min(names.size(), limit); ++i)
        out += fmt::format("{}'{}'", i ? ", " : "", names[i]);
    if (names.size() > limit) out += fmt::format(" and {} more", names.size() - limit);
    return out;
}

void copy_values(std::span<const unsigned char> from, Tensor& to) {
    if constexpr (std::endian::native == std::endian::little) {
        if (!from.empty()) std::memcpy(to.data(), from.data(), from.size());
    } else {
        for (std::size_t i = 0; i < to.numel(); ++i) {
            std::uint64_t bits = 0;
            for (std::size_t b = 0; b < 8; ++b) bits |= std::uint64_t{from[8 * i + b]} << (8 * b);
            to[i] = std::bit_cast<double>(bits);
        }
    }
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const CheckpointExtras& extras) {
    const auto tensors = tensors_to_save(model, extras);
    AtomicFileWriter out(path, "checkpoint");
    Writer writer(out);
    write_contents(writer, tensors, extras.step);
    out.commit();
}

void load_checkpoint(const std::string& path, Module& model, const CheckpointExtras& extras, UnusedEntries unused) {
    struct Target {
        std::string name;
        Tensor* tensor;
        std::string_view expects;  // "the model expects", for messages
    };
    std::vector<Target> targets;
    for (auto& [name, p] : model.named_parameters()) targets.push_back({name, &p->value, "the model expects"});
    for (const auto& [name, t] : extras.tensors) {
        if (t == nullptr)
            throw std::invalid_argument(fmt::format("load_checkpoint: extra tensor '{}' is a null pointer", name));
        targets.push_back({name, t, "the extras expect"});
    }
    std::unordered_set<std::string_view> wanted;
    for (const Target& t : targets)
        if (!wanted.insert(t.name).second)
            throw std::invalid_argument(fmt::format("load_checkpoint: the name '{}' is used twice", t.name));

    std::vector<unsigned char> bytes;
    const ParsedCheckpoint file = parse_file(path, bytes);
    const auto fail = [&](const std::string& what) {
        throw std::runtime_error(fmt::format("checkpoint {}: {}", path, what));
    };

    std::unordered_map<std::string_view, const StoredTensor*> stored;
    for (const StoredTensor& s : file.tensors) stored.emplace(s.name, &s);

    // Phase 1: match every target to a stored tensor; nothing is modified yet.
    const Target* first_missing = nullptr;
    std::vector<std::string> more_missing;
    for (const Target& t : targets) {
        if (stored.contains(t.name)) continue;
        if (first_missing == nullptr) first_missing = &t;
        else more_missing.push_back(t.name);
    }
    if (first_missing != nullptr) {
        const Target& t = *first_missing;
        fail(fmt::format("the file has no tensor '{}' ({} {}){}", t.name, t.expects,
                         t.tensor->defined() ? fmt::format("shape {}", t.tensor->shape()) : "it",
                         more_missing.empty() ? "" : fmt::format("; also missing: {}", quoted_list(more_missing))));
    }
    if (unused == UnusedEntries::reject) {
        std::vector<std::string> extra;
        for (const StoredTensor& s : file.tensors)
            if (!wanted.contains(s.name)) extra.push_back(s.name);
        if (!extra.empty()) {
            const StoredTensor& first = *stored.at(extra[0]);
            std::vector<std::string> rest(extra.begin() + 1, extra.end());
            fail(fmt::format("the file has a tensor '{}' of shape {} that neither the model nor the extras expect{} "
                             "(pass UnusedEntries::ignore to skip unused entries)",
                             first.name, first.shape,
                             rest.empty() ? "" : fmt::format("; also unexpected: {}", quoted_list(rest))));
        }
    }
    for (const Target& t : targets) {
        const StoredTensor& s = *stored.at(t.name);
        if (t.tensor->defined() && !(t.tensor->shape() == s.shape))
            fail(fmt::format("tensor '{}' has shape {}, {} {}", t.name, s.shape, t.expects, t.tensor->shape()));
    }
    if (extras.step != nullptr && !file.step)
        fail("the file stores no step count, but the extras expect one");
    if (extras.step == nullptr && file.step && unused == UnusedEntries::reject)
        fail(fmt::format("the file stores step count {} that the extras do not ask for (set CheckpointExtras::step, "
                         "or pass UnusedEntries::ignore)",
                         *file.step));

    // Phase 2: allocate lazily-created targets (the only step that can still throw), then copy.
    std::vector<const StoredTensor*> source(targets.size());
    std::vector<Tensor> fresh(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i) {
        source[i] = stored.at(targets[i].name);
        if (!targets[i].tensor->defined()) fresh[i] = Tensor(source[i]->shape);
    }
    for (std::size_t i = 0; i < targets.size(); ++i) {
        if (fresh[i].defined()) *targets[i].tensor = std::move(fresh[i]);
        copy_values(source[i]->data, *targets[i].tensor);
    }
    if (extras.step != nullptr) *extras.step = *file.step;
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
    std::vector<unsigned char> bytes;
    const ParsedCheckpoint file = parse_file(path, bytes);
    CheckpointInfo info;
    info.version = file.version;
    info.step = file.step;
    info.file_bytes = bytes.size();
    for (const StoredTensor& s : file.tensors) info.entries.push_back({s.name, s.shape});
    return info;
}

std::vector<CheckpointEntry> read_checkpoint_index(const std::string& path) {
    return read_checkpoint_info(path).entries;
}

}  // namespace tapeflow::nn
