// Safetensors: a module's named tensors in the format the PyTorch / Hugging Face ecosystem uses to
// exchange weights (github.com/huggingface/safetensors), so a model trained here can be opened by
// `safetensors.torch.load_file`, by NumPy, or by the standard-library reader in
// examples/python/tapeflow_files.py.
//
// File layout:
//
//     offset   size  field
//     0        8     header length N, u64 little-endian
//     8        N     header: a JSON object, UTF-8, padded with spaces so 8 + N is a multiple of 8:
//                      {"__metadata__": {"producer": "tapeflow", ...},
//                       "layers.0.scale": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}, ...}
//     8 + N    …     the data section: each tensor's bytes, little-endian, row-major, at
//                    [begin, end) of its data_offsets (counted from the start of the data section)
//
// The data section is indexed entirely, without holes or overlaps, as the format requires (so a
// file cannot hide anything between tensors). tapeflow writes and reads dtype "F64" only: its
// tensors are float64, and reading F32 weights would silently round-trip through another precision.
//
// Names are the module's dotted names, as summary() prints them: "layers.3.conditioner.0.weight".
// A module's parameters are saved, then its buffers (non-trainable state such as BatchNorm's running
// statistics, nn::Module::register_buffer), under the same dotted names a checkpoint uses.
//
// Layouts against PyTorch (what to do when loading into an equivalent torch model):
//
//     tapeflow                                  PyTorch                      mapping
//     Linear weight [in, out] (y = x·W + b)     nn.Linear weight [out, in]   transpose: W_torch = Wᵀ
//     Linear bias [out]                         nn.Linear bias [out]         as is
//     MLP "k.weight" (Linear at even k)         nn.Sequential "k.weight"     same indices (ReLU at odd)
//     AffineCoupling "conditioner.…", "scale"   your own module's names      rename, shapes as is
//     Tensor [N, D], row-major                  torch.Tensor [N, D], C order as is
//
// examples/python/load_realnvp_in_pytorch.py applies this mapping to tutorial 07's RealNVP.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "nn/checkpoint.hpp"  // UnusedEntries
#include "nn/module.hpp"
#include "tensor/shape.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::nn {

// The safetensors "__metadata__": string keys and string values, in the order given.
using SafetensorsMetadata = std::vector<std::pair<std::string, std::string>>;

// What save_safetensors(path, module) stores as metadata, so a reader can tell the layout.
SafetensorsMetadata tapeflow_metadata();

struct SafetensorsEntry {
    std::string name;
    Shape shape;
    std::uint64_t begin = 0, end = 0;  // data_offsets, relative to the data section
};

// A parsed file. The tensors are copies, in header order (= the order they were saved in).
struct SafetensorsContents {
    std::vector<SafetensorsEntry> entries;
    std::vector<Tensor> tensors;  // tensors[i] holds entries[i]
    SafetensorsMetadata metadata;
    std::uint64_t header_bytes = 0;  // N
};

// The tensors a module saves and loads: its parameters (then its buffers), with dotted names.
std::vector<std::pair<std::string, const Tensor*>> module_state(const Module& model);
std::vector<std::pair<std::string, Tensor*>> module_state(Module& model);

// The complete file contents. Throws std::invalid_argument for an undefined tensor, an empty or
// repeated name, or the reserved name "__metadata__".
std::vector<unsigned char> encode_safetensors(std::span<const std::pair<std::string, const Tensor*>> tensors,
                                              const SafetensorsMetadata& metadata = {});

// Parses and validates file contents; `source` names the file in messages. Throws
// std::runtime_error "safetensors <source>: …" naming the byte offset or the tensor, and what was
// found, for: a file shorter than 8 bytes; a header length beyond the file or above 100 MiB (the
// reference implementation's limit); a header that is not a JSON object, or malformed JSON; an entry
// that is not {"dtype", "shape", "data_offsets"}; a dtype other than F64; a rank above
// Shape::max_rank; data_offsets out of range (a truncated file), reversed, overlapping, leaving a
// hole or unindexed bytes at the end; a byte count different from the shape's; a name stored twice;
// metadata that is not an object of strings.
SafetensorsContents decode_safetensors(std::span<const unsigned char> bytes, const std::string& source);

// Writes module_state(model) with tapeflow_metadata() to `path`, atomically (tensor/file_io.hpp):
// on any error the previous file at `path` is unchanged.
void save_safetensors(const std::string& path, const Module& model);
void save_safetensors(const std::string& path, std::span<const std::pair<std::string, const Tensor*>> tensors,
                      const SafetensorsMetadata& metadata = {});

// Reads `path` into the model's state. Everything is validated before the model changes: the file
// (decode_safetensors), then the names and shapes against the model; on any problem a
// std::runtime_error names the file and the tensor, and the model is left exactly as it was:
//   - a tensor the model expects that the file lacks (with its expected shape);
//   - a stored tensor the model does not have, unless `unused` is UnusedEntries::ignore;
//   - a stored shape different from the model's.
void load_safetensors(const std::string& path, Module& model, UnusedEntries unused = UnusedEntries::reject);

// The validated contents of `path`, for inspection and for tensors that are not a module's.
SafetensorsContents read_safetensors(const std::string& path);

}  // namespace tapeflow::nn
