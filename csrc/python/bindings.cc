// pybind11 bindings, kept thin: convert, release the GIL, call, convert back.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <absl/status/statusor.h>
#include <absl/strings/str_join.h>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "config/neuron_config.h"
#include "config/neuron_config_schema.h"
#include "kernels/linear.h"
#include "model/module_probe.h"
#include "runtime/generate.h"
#include "runtime/ngram.h"
#include "runtime/worker.h"

namespace py = pybind11;

namespace vnp {
namespace {

// User-caused failures become ValueError (bad configuration, bad request, bad checkpoint);
// everything else RuntimeError.
[[noreturn]] void Raise(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kOutOfRange:
      throw py::value_error(std::string(s.message()));
    default:
      throw std::runtime_error(std::string(s.message()));
  }
}

template <typename T>
T Unwrap(absl::StatusOr<T> v) {
  if (!v.ok()) Raise(v.status());
  return *std::move(v);
}

void Check(const absl::Status& s) {
  if (!s.ok()) Raise(s);
}

py::dict ModelConfigDict(const ModelConfig& c) {
  py::dict d;
  d["architecture"] = c.architecture;
  d["vocab_size"] = c.vocab_size;
  d["hidden_size"] = c.hidden_size;
  d["num_layers"] = c.num_layers;
  d["num_heads"] = c.num_heads;
  d["num_kv_heads"] = c.num_kv_heads;
  d["head_dim"] = c.head_dim;
  d["max_position_embeddings"] = c.max_position_embeddings;
  d["checkpoint_dtype"] = DtypeName(c.checkpoint_dtype);
  return d;
}

py::list Buckets2D(const std::vector<Bucket2D>& v) {
  py::list out;
  for (const Bucket2D& b : v) out.append(py::make_tuple(b.active, b.prefix));
  return out;
}

// The parts of a resolved config the Python side reports or enforces.
py::dict ConfigSummary(const NeuronConfig& c) {
  py::dict d;
  d["resolved_json"] = c.ToJson();
  d["no_effect_keys"] = c.no_effect_keys;
  d["buckets"] = c.buckets.Describe();
  d["context_encoding_buckets"] = c.buckets.context_encoding;
  d["token_generation_buckets"] = c.buckets.token_generation;
  d["prefix_context_encoding_buckets"] = Buckets2D(c.buckets.prefix_context_encoding);
  d["prefix_token_generation_buckets"] = Buckets2D(c.buckets.prefix_token_generation);
  return d;
}

py::list SchemaRows(const std::vector<KeySpec>& schema, const std::string& prefix) {
  py::list rows;
  for (const KeySpec& k : schema) {
    py::dict r;
    r["name"] = prefix + k.name;
    r["group"] = k.group;
    r["accepts"] = Describe(k);
    r["default"] = k.derived_default ? std::string("derived") : k.default_value.dump();
    std::string support(SupportName(k.support));
    if (!k.supported.empty()) {  // honoured for some of its valid values only
      std::vector<std::string> runs;
      for (const auto& v : k.supported) runs.push_back(v.dump());
      support += " (runs " + absl::StrJoin(runs, ", ") + ")";
    }
    r["support"] = support;
    r["note"] = k.note;
    rows.append(r);
    if (k.fields != nullptr) {
      for (auto row : SchemaRows(*k.fields, k.name + ".")) rows.append(row);
    }
  }
  return rows;
}

// Runs `fn` (returning absl::StatusOr) without the GIL; a c10::Error becomes an InternalError.
template <typename Fn>
auto Released(Fn fn) -> decltype(fn()) {
  py::gil_scoped_release release;
  try {
    return fn();
  } catch (const c10::Error& e) {
    return absl::InternalError(e.what_without_backtrace());
  }
}

}  // namespace
}  // namespace vnp

PYBIND11_MODULE(_C, m) {
  using namespace vnp;
  m.doc() = "vllm-neuron-plugin C++ worker";

  m.def("read_model_config", [](const std::string& path) {
    return ModelConfigDict(Unwrap(ModelConfig::FromFile(path)));
  }, "Reads an HF config.json and returns the fields the worker uses.");

  m.def("known_neuron_config_keys", &KnownNeuronConfigKeys);

  m.def("neuron_config_summary", [](const std::string& json, const std::string& model_config) {
    NeuronConfig nc = Unwrap(NeuronConfig::FromJson(json));
    if (!model_config.empty()) Check(nc.CheckModel(Unwrap(ModelConfig::FromFile(model_config))));
    return ConfigSummary(nc);
  }, py::arg("json"), py::arg("model_config") = "",
  "Resolves merged NeuronConfig JSON; returns the resolved JSON, buckets and no-effect keys. "
  "With a config.json path, also checks that this build runs the model and that the config "
  "suits it (MoE keys).");

  m.def("neuron_config_schema", [] { return SchemaRows(NeuronConfigSchema(), ""); },
        "Every NeuronConfig key: group, accepted values, default, support class, note.");

  // The decoder's projection kernel (tests and benchmarks/linear_kernel.py).
  m.def("propose_ngram", [](const std::vector<std::vector<int64_t>>& sequences, int64_t min_n,
                            int64_t max_n, const std::vector<int64_t>& k) {
    if (min_n < 1 || max_n < min_n) throw py::value_error("propose_ngram needs 1 <= min_n <= max_n");
    if (k.size() != sequences.size()) throw py::value_error("propose_ngram: one k per sequence");
    std::vector<std::vector<int64_t>> out(sequences.size());
    py::gil_scoped_release release;
    for (size_t i = 0; i < sequences.size(); ++i) {
      if (k[i] > 0) {
        out[i] = ProposeNgram(sequences[i].data(), static_cast<int64_t>(sequences[i].size()),
                              NgramParams{min_n, max_n, k[i]});
      }
    }
    return out;
  }, py::arg("sequences"), py::arg("min_n"), py::arg("max_n"), py::arg("k"),
  "N-gram prompt lookup (vLLM's rule): up to k[i] drafts for each token sequence.");

  m.def("linear", [](at::Tensor x, at::Tensor w, std::optional<at::Tensor> b) {
    py::gil_scoped_release release;
    return Linear(x, w, b.value_or(at::Tensor()));
  }, py::arg("x"), py::arg("w"), py::arg("b") = py::none(),
  "x·wᵀ + b as the decoder runs it (16-bit weights: AVX2 GEMV up to linear_gemv_max_rows(w) "
  "rows; beyond, widened fp32 GEMM, or torch's bf16 linear on a CPU with bf16 units).");
  m.def("linear_gemv_max_rows", [](const at::Tensor& w) { return LinearGemvMaxRows(w.scalar_type()); },
        py::arg("w"), "Rows up to which linear(x, w) takes the GEMV path for this weight's dtype.");

  // The worker's sampler on given logits (tests and benchmarks/sampling_cost.py). `config` is
  // override_neuron_config JSON: its on_device_sampling_config picks NxDI's mode.
  m.def("sample", [](at::Tensor logits, at::Tensor params, at::Tensor seeds, at::Tensor offsets,
                     const std::string& config, uint64_t seed) {
    NeuronConfig nc = Unwrap(NeuronConfig::FromJson(config));
    Sampler sampler(seed, nc.on_device_sampling);
    py::gil_scoped_release release;
    return sampler.Sample(logits.to(at::kFloat), SamplingBatch{params, seeds, offsets});
  }, py::arg("logits"), py::arg("params"), py::arg("seeds"), py::arg("offsets"),
  py::arg("config") = "{}", py::arg("seed") = 0);

  // Test aid: the decoder's modules one at a time (tests/python/test_modules.py).
  py::class_<ModuleProbe>(m, "ModuleProbe")
      .def(py::init([](const std::string& model_dir, const std::string& dtype, int64_t max_positions) {
             return Unwrap(ModuleProbe::Open(model_dir, Unwrap(ParseDtype(dtype)), max_positions));
           }),
           py::arg("model_dir"), py::arg("dtype"), py::arg("max_positions") = 512)
      .def("embed", &ModuleProbe::Embed)
      .def("norm", [](const ModuleProbe& p, int64_t layer, const std::string& which, at::Tensor x) {
        return Unwrap(p.Norm(layer, which, x));
      })
      .def("rope", [](const ModuleProbe& p, at::Tensor positions, int64_t seq_len, const std::string& dtype) {
        return p.Rope(positions, seq_len, Unwrap(ParseDtype(dtype)));
      })
      .def("attention", [](ModuleProbe& p, int64_t layer, at::Tensor x, int64_t start) {
        return Unwrap(p.Attention(layer, x, start));
      })
      .def("mlp", [](const ModuleProbe& p, int64_t layer, at::Tensor x) { return Unwrap(p.Mlp(layer, x)); })
      .def("route", [](const ModuleProbe& p, int64_t layer, at::Tensor x) {
        MoeRouting r = Unwrap(p.Route(layer, x));
        return py::make_tuple(r.experts, r.weights);
      })
      .def("experts", [](const ModuleProbe& p, int64_t layer, at::Tensor x, at::Tensor experts, at::Tensor weights) {
        MoeRouting r{experts.to(at::kLong), weights, experts.new_ones(experts.sizes(), at::kBool)};
        return Unwrap(p.Experts(layer, x, r));
      })
      .def("logits", &ModuleProbe::Logits);

  py::class_<Worker>(m, "Worker")
      .def(py::init([](const std::string& model_dir, const std::string& neuron_config_json,
                       uint64_t seed, const std::string& draft_dir) {
             py::gil_scoped_release release;
             return Unwrap(Worker::Create(model_dir, neuron_config_json, seed, draft_dir));
           }),
           py::arg("model_dir"), py::arg("neuron_config_json"), py::arg("seed") = 0,
           py::arg("draft_dir") = "")
      .def("kv_bytes_per_block", &Worker::KvBytesPerBlock)
      .def("draft_kv_bytes_per_block", &Worker::DraftKvBytesPerBlock)
      .def_property_readonly("has_draft", &Worker::has_draft)
      .def("warm_up", [](Worker& w) {
             py::gil_scoped_release release;
             return Unwrap(w.WarmUp());
           })
      .def_property_readonly("bucket_counts", &Worker::bucket_counts)
      .def_property_readonly("artifact_dir", &Worker::artifact_dir)
      .def_property_readonly("artifact_reused", &Worker::artifact_reused)
      .def_property_readonly("config_summary", [](const Worker& w) { return ConfigSummary(w.neuron_config()); })
      .def("allocate_kv", [](Worker& w, int64_t num_blocks, int64_t block_size) {
             py::gil_scoped_release release;
             Check(w.AllocateKv(num_blocks, block_size));
           })
      .def_property_readonly("model_config", [](const Worker& w) { return ModelConfigDict(w.model_config()); })
      .def_property_readonly("neuron_config_json", [](const Worker& w) { return w.neuron_config().ToJson(); })
      .def("step",
           [](Worker& w, at::Tensor token_ids, at::Tensor positions, at::Tensor query_lens,
              at::Tensor context_lens, at::Tensor block_tables, at::Tensor slot_mapping,
              at::Tensor sample_rows, at::Tensor sampling, at::Tensor seeds,
              at::Tensor seed_offsets, int logits_mode, std::optional<at::Tensor> draft_lens) -> py::tuple {
             if (logits_mode < 0 || logits_mode > 2) {
               throw py::value_error("logits_mode must be 0 (none), 1 (last) or 2 (all)");
             }
             StepInput in{token_ids,   positions, query_lens, context_lens, block_tables,
                          slot_mapping, sample_rows, sampling, seeds,       seed_offsets,
                          static_cast<LogitsMode>(logits_mode), draft_lens.value_or(at::Tensor())};
             StepOutput o = Unwrap(Released([&] { return w.Step(in); }));
             return py::make_tuple(o.tokens, o.logits.defined() ? py::cast(o.logits) : py::none());
           },
           py::arg("token_ids"), py::arg("positions"), py::arg("query_lens"),
           py::arg("context_lens"), py::arg("block_tables"), py::arg("slot_mapping"),
           py::arg("sample_rows"), py::arg("sampling"), py::arg("seeds"), py::arg("seed_offsets"),
           py::arg("logits_mode") = 0, py::arg("draft_lens") = py::none(),
           "One step; returns (tokens [B, 1 + max(draft_lens)] with -1 padding, logits or None).")
      .def("generate",
           [](Worker& w, const std::vector<std::vector<int64_t>>& prompts, int64_t max_new_tokens,
              float temperature, int64_t top_k, float top_p, int64_t seed, int64_t block_size,
              int64_t num_blocks, int64_t prefill_chunk) {
             std::vector<GenerateRequest> requests;
             for (const auto& p : prompts) {
               requests.push_back({p, max_new_tokens, temperature, top_k, top_p, seed});
             }
             GenerateOptions options{block_size, num_blocks, prefill_chunk};
             GenerateResult r = Unwrap(Released([&] { return Generate(w, requests, options); }));
             return py::make_tuple(r.tokens, r.step_seconds);
           },
           py::arg("prompts"), py::arg("max_new_tokens"), py::arg("temperature") = 0.0f,
           py::arg("top_k") = 0, py::arg("top_p") = 1.0f, py::arg("seed") = -1,
           py::arg("block_size") = 16, py::arg("num_blocks") = 256, py::arg("prefill_chunk") = 0,
           "The C++ continuous-batching loop, no vLLM: sizes the KV to num_blocks, runs every prompt to "
           "max_new_tokens; returns (generated tokens per prompt, seconds of each step).")
      .def("propose",
           [](Worker& w, at::Tensor token_ids, at::Tensor query_lens, at::Tensor context_lens,
              at::Tensor block_tables, at::Tensor num_drafts) {
             ProposeInput in{token_ids, query_lens, context_lens, block_tables, num_drafts};
             return Unwrap(Released([&] { return w.Propose(in); }));
           },
           py::arg("token_ids"), py::arg("query_lens"), py::arg("context_lens"),
           py::arg("block_tables"), py::arg("num_drafts"),
           "The draft model: catch up on each row's tokens, then propose num_drafts[b] greedy "
           "drafts; returns [B, max(num_drafts)] int64, -1 padded.");
}
