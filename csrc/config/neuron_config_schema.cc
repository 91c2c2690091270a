#include "config/neuron_config_schema.h"

#include <algorithm>
#include <cmath>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

namespace vnp {
namespace {

using nlohmann::json;

constexpr char kHwNote[] = "Neuron hardware knob (kernel, compiler or core layout)";
constexpr char kTpNote[] = "tensor-parallel layout; this backend runs tp_degree 1";

// Short constructors keep the table one key per line.
KeySpec Key(std::string name, std::string group, Kind kind, json def, Support s,
            std::string note) {
  KeySpec k;
  k.name = std::move(name);
  k.group = std::move(group);
  k.kind = kind;
  k.default_value = std::move(def);
  k.support = s;
  k.note = std::move(note);
  return k;
}
KeySpec Nullable(KeySpec k) { k.nullable = true; return k; }
KeySpec Derived(KeySpec k) { k.derived_default = true; return k; }
KeySpec Min(KeySpec k, int64_t min) { k.min = min; return k; }
KeySpec Choices(KeySpec k, std::vector<std::string> c) { k.choices = std::move(c); return k; }
KeySpec Runs(KeySpec k, std::vector<json> values) { k.supported = std::move(values); return k; }
KeySpec Fields(KeySpec k, const std::vector<KeySpec>* f) { k.fields = f; return k; }

KeySpec Hw(std::string name, std::string group, Kind kind, json def) {
  return Key(std::move(name), std::move(group), kind, std::move(def), Support::kNoEffect,
             std::string(kHwNote));
}
KeySpec Off(std::string name, std::string group, Kind kind, json def, std::string feature) {
  return Key(std::move(name), std::move(group), kind, std::move(def), Support::kUnsupported,
             std::move(feature));
}

const std::vector<KeySpec>& OnDeviceSamplingFields() {
  static const auto* f = new std::vector<KeySpec>{
      Key("deterministic", "sampling", Kind::kBool, false, Support::kHonoured, "fixed draw r = 0.5"),
      Min(Key("global_topk", "sampling", Kind::kInt, 256, Support::kHonoured, "candidate pool"), 1),
      Key("do_sample", "sampling", Kind::kBool, false, Support::kHonoured, "multinomial vs argmax"),
      Key("dynamic", "sampling", Kind::kBool, false, Support::kHonoured,
          "per-request top_k/top_p/temperature"),
      Min(Key("sampling_dp_degree", "sampling", Kind::kInt, 1, Support::kNoEffect,
              "batch-sharded sampler across cores"), 1),
      Min(Key("top_k", "sampling", Kind::kInt, 1, Support::kHonoured, "trace-time top_k"), -1),
      Key("top_k_kernel_enabled", "sampling", Kind::kBool, false, Support::kNoEffect,
          std::string(kHwNote)),
      Key("top_p", "sampling", Kind::kFloat, 1.0, Support::kHonoured, "trace-time top_p"),
      Key("temperature", "sampling", Kind::kFloat, 1.0, Support::kHonoured,
          "trace-time temperature"),
  };
  return *f;
}

const std::vector<KeySpec>& ChunkedPrefillFields() {
  static const auto* f = new std::vector<KeySpec>{
      Hw("kernel_kv_tile_size", "chunked prefill", Kind::kInt, 1024),
      Hw("kernel_q_tile_size", "chunked prefill", Kind::kInt, 128),
      Min(Key("max_num_seqs", "chunked prefill", Kind::kInt, 0, Support::kNoEffect,
              "vLLM's --max-num-seqs bounds the rows of a chunked step"), 0),
      Key("tkg_model_enabled", "chunked prefill", Kind::kBool, true, Support::kNoEffect,
          "decode rows always run in the same step as chunks here"),
  };
  return *f;
}

std::vector<KeySpec> BuildSchema() {
  const std::string G = "general", D = "distributed", A = "attention", S = "on-device sampling",
                    BK = "bucketing", CB = "continuous batching", SP = "speculative decoding",
                    ME = "Medusa", KV = "paged KV, prefix caching, chunked prefill",
                    Q = "quantization", KQ = "KV cache quantization", L = "multi-LoRA",
                    MO = "MoE", K = "kernels", C = "compiler and cores", DB = "debugging";
  const Support H = Support::kHonoured, N = Support::kNoEffect, X = Support::kDerived;
  const std::vector<std::string> dtypes = {"float32", "bfloat16", "float16", "float8_e4m3fn",
                                           "float8_e5m2"};
  std::vector<KeySpec> s = {
      // General
      Min(Key("batch_size", G, Kind::kInt, 1, H, "rows per step (vLLM's --max-num-seqs)"), 1),
      Runs(Choices(Key("padding_side", G, Kind::kString, "right", H,
                       "right padding only: the vLLM path pads right"), {"right", "left"}), {"right"}),
      Runs(Key("allow_input_truncation", G, Kind::kBool, false, H,
               "false only: over-long prompts get HTTP 400, not truncation"), {false}),
      Min(Key("seq_len", G, Kind::kInt, 128, H, "longest sequence (caps vLLM's max_model_len)"), 1),
      Derived(Min(Key("max_context_length", G, Kind::kInt, nullptr, H,
                      "longest prompt; default seq_len"), 1)),
      Derived(Min(Key("max_length", G, Kind::kInt, nullptr, H,
                      "longest sequence incl. output; default seq_len"), 1)),
      Derived(Nullable(Min(Key("max_new_tokens", G, Kind::kInt, nullptr, N,
                               "vLLM's per-request max_tokens decides; default seq_len - "
                               "max_context_length, null when 0"), 1))),
      Derived(Min(Key("n_active_tokens", G, Kind::kInt, nullptr, N,
                      "static graph shape; default seq_len"), 1)),
      Derived(Min(Key("n_positions", G, Kind::kInt, nullptr, N,
                      "static graph shape; default seq_len"), 1)),
      Runs(Choices(Key("torch_dtype", G, Kind::kDtype, "bfloat16", H,
                       "compute, weight and KV dtype"), dtypes),
           {"float32", "bfloat16", "float16"}),
      Choices(Nullable(Key("rpl_reduce_dtype", G, Kind::kDtype, nullptr, N,
                           "all-reduce dtype; no all-reduce at tp_degree 1")), dtypes),
      Runs(Choices(Key("cast_type", G, Kind::kString, "config", H,
                       "\"config\" only: every weight is cast to torch_dtype"), {"config", "as-declared"}),
           {"config"}),
      Key("async_mode", G, Kind::kBool, false, N,
          "double-buffered device steps; vLLM steps run in order here"),
      Key("save_sharded_checkpoint", G, Kind::kBool, true, H,
          "write prepared weights beside neuron_config.json and reuse them on the next start "
          "(NxDI's source defaults to false, its API reference to true; we follow the reference)"),
      Key("skip_sharding", G, Kind::kBool, false, N, "nothing to shard at tp_degree 1"),
      Key("skip_warmup", G, Kind::kBool, false, H, "skip the warm-up steps at start-up"),
      Key("on_cpu", G, Kind::kBool, false, N, "this backend always runs on the host"),
      Key("output_logits", DB, Kind::kBool, false, H,
          "keep each step's sampled-row logits: LLM.collective_rpc(\"last_logits\")"),
      Key("vocab_parallel", D, Kind::kBool, false, N, kTpNote),
      Nullable(Key("is_prefill_stage", G, Kind::kBool, nullptr, N,
                   "set per NxDI sub-model; one worker runs every phase here")),
      Hw("enable_cte_modular_flow", C, Kind::kBool, false),
      Hw("layer_boundary_markers", C, Kind::kBool, false),
      // Distributed
      Runs(Min(Key("tp_degree", D, Kind::kInt, 1, H,
                   "one process runs the whole model (tensor parallelism is not implemented yet)"),
               1), {1}),
      Min(Off("cp_degree", D, Kind::kInt, 1, "context parallelism"), 1),
      Min(Off("mlp_cp_degree", D, Kind::kInt, 1, "MLP context parallelism"), 1),
      Min(Off("attention_dp_degree", D, Kind::kInt, 1, "attention data parallelism"), 1),
      Min(Off("pp_degree", D, Kind::kInt, 1, "pipeline parallelism"), 1),
      Min(Off("ep_degree", D, Kind::kInt, 1, "expert parallelism"), 1),
      Derived(Min(Key("world_size", D, Kind::kInt, nullptr, X, "tp_degree * pp_degree * ep_degree"), 1)),
      Min(Key("start_rank_id", D, Kind::kInt, 0, N, "one process, rank 0"), 0),
      Derived(Min(Key("local_ranks_size", D, Kind::kInt, nullptr, X, "world_size"), 1)),
      Key("sequence_parallel_enabled", D, Kind::kBool, false, N, kTpNote),
      Key("enable_ve_data_parallel", D, Kind::kBool, false, N, kTpNote),
      Hw("weight_gather_seq_len_threshold", D, Kind::kInt, 32768),
      // Attention
      Key("fused_qkv", A, Kind::kBool, false, H, "one Wqkv matmul per layer (prepared weights)"),
      Key("attn_cls", A, Kind::kString, "NeuronLlamaAttention", N,
          "set per model class; the architecture comes from config.json"),
      Off("qk_layernorm", A, Kind::kBool, false,
          "per-head q/k RMSNorm on other architectures (Qwen3 checkpoints get it from config.json)"),
      Off("pre_rope_rmsnorm", A, Kind::kBool, false, "RMSNorm before RoPE"),
      Choices(Nullable(Key("attention_dtype", A, Kind::kDtype, nullptr, H,
                           "attention in another dtype (needs cast_type 'as-declared'); "
                           "only null or torch_dtype run")), dtypes),
      Hw("flash_decoding_enabled", A, Kind::kBool, false),
      Hw("disable_kv_cache_tiling", A, Kind::kBool, false),
      Derived(Key("kv_cache_tiling", A, Kind::kBool, nullptr, X,
                  "NxDI: fused/EAGLE speculation with max_length > 128 and % 128 == 0")),
      Hw("k_cache_transposed", A, Kind::kBool, false),
      Nullable(Off("windowed_context_encoding_size", A, Kind::kInt, nullptr,
                   "windowed context encoding")),
      // On-device sampling
      Fields(Nullable(Key("on_device_sampling_config", S, Kind::kObject, nullptr, H,
                          "NxDI's sampler (global top-k pool, NxDI's top-p rule); null: "
                          "vLLM's sampling semantics")),
             &OnDeviceSamplingFields()),
      Hw("disable_argmax_kernel", S, Kind::kBool, false),
      // Continuous batching
      Key("is_continuous_batching", CB, Kind::kBool, false, N,
          "every step here is continuously batched"),
      Derived(Min(Key("max_batch_size", CB, Kind::kInt, nullptr, N,
                      "static graph batch; rows are bounded by batch_size"), 1)),
      Derived(Min(Key("ctx_batch_size", CB, Kind::kInt, nullptr, N,
                      "static graph batch; prefill rows are bounded by batch_size"), 1)),
      Derived(Min(Key("tkg_batch_size", CB, Kind::kInt, nullptr, N,
                      "static graph batch; decode rows are bounded by batch_size"), 1)),
      Derived(Min(Key("spec_batch_size", SP, Kind::kInt, nullptr, N,
                      "static graph batch for speculation"), 1)),
      Derived(Min(Key("kv_cache_batch_size", CB, Kind::kInt, nullptr, N,
                      "cache lines; vLLM's paged blocks size the cache here"), 1)),
      Min(Key("kv_cache_padding_size", CB, Kind::kInt, 0, N, "cache line padding"), 0),
      Nullable(Off("token_generation_batches", CB, Kind::kIntOrIntList, nullptr,
                   "token-generation batch bucketing")),
      Key("apply_seq_ids_mask", CB, Kind::kBool, false, N, "seq-id masking of static batches"),
      // Bucketing
      Key("enable_bucketing", BK, Kind::kBool, false, H,
          "bucket routing, limits, warm-up and per-bucket step counts"),
      Derived(Key("buckets", BK, Kind::kIntList, nullptr, X, "NxDI's top-level list: [seq_len]")),
      Derived(Key("bucket_n_active_tokens", BK, Kind::kBool, nullptr, X,
                  "set per NxDI sub-model: false at top level")),
      Min(Nullable(Key("context_encoding_buckets", BK, Kind::kIntList, nullptr, H,
                       "prompt-length buckets; the largest is the longest prompt")), 1),
      Min(Nullable(Key("token_generation_buckets", BK, Kind::kIntList, nullptr, H,
                       "sequence-length buckets; the largest caps max_model_len")), 1),
      Min(Nullable(Key("prefix_buckets", BK, Kind::kIntList, nullptr, H,
                       "prefix dimension of the 2-D prefix-caching buckets")), 1),
      // Speculation
      Min(Key("speculation_length", SP, Kind::kInt, 0, H,
              "drafts verified per step (vLLM's --speculative-config num_speculative_tokens)"), 0),
      Key("enable_fused_speculation", SP, Kind::kBool, false, H,
          "the draft model runs in the worker (set when --speculative-config names a model)"),
      Off("enable_eagle_speculation", SP, Kind::kBool, false, "EAGLE speculation"),
      Off("is_eagle3", SP, Kind::kBool, false, "EAGLE-3 speculation"),
      Off("is_eagle_draft", SP, Kind::kBool, false, "EAGLE draft models"),
      Off("enable_eagle_draft_input_norm", SP, Kind::kBool, false, "EAGLE draft input norm"),
      Hw("eagle_rolling_buffer_kernel_enabled", SP, Kind::kBool, false),
      Nullable(Off("token_tree_config", SP, Kind::kObject, nullptr, "token-tree speculation")),
      Derived(Key("enable_token_tree", SP, Kind::kBool, nullptr, X, "token_tree_config is set")),
      Derived(Key("trace_tokengen_model", SP, Kind::kBool, nullptr, X,
                  "deprecated NxDI alias: not fused speculation")),
      // Medusa
      Off("is_medusa", ME, Kind::kBool, false, "Medusa decoding"),
      Min(Off("medusa_speculation_length", ME, Kind::kInt, 0, "Medusa decoding"), 0),
      Min(Off("num_medusa_heads", ME, Kind::kInt, 0, "Medusa decoding"), 0),
      Nullable(Off("medusa_tree", ME, Kind::kList, nullptr, "Medusa decoding")),
      // Paged KV, prefix caching, chunked prefill
      Key("is_block_kv_layout", KV, Kind::kBool, false, H,
          "paged blocks; the contiguous layout is one block of seq_len per sequence"),
      Derived(Min(Key("pa_num_blocks", KV, Kind::kInt, nullptr, H,
                      "KV blocks (vLLM's --num-gpu-blocks-override); default batch_size"), 1)),
      Derived(Min(Key("pa_block_size", KV, Kind::kInt, nullptr, H,
                      "tokens per KV block (vLLM's --block-size); default seq_len"), 1)),
      Key("is_prefix_caching", KV, Kind::kBool, false, H,
          "prefix-cache hits skip recomputation; 2-D prefix buckets"),
      Fields(Nullable(Key("chunked_prefill_config", KV, Kind::kObject, nullptr, H,
                          "chunked prefill (vLLM's --enable-chunked-prefill)")),
             &ChunkedPrefillFields()),
      Derived(Key("is_chunked_prefill", KV, Kind::kBool, nullptr, X,
                  "chunked_prefill_config is set")),
      // Quantization
      Off("quantized", Q, Kind::kBool, false, "weight quantization"),
      Nullable(Off("quantized_checkpoints_path", Q, Kind::kString, nullptr, "weight quantization")),
      Choices(Off("quantization_type", Q, Kind::kString, "per_tensor_symmetric",
                  "weight quantization"), {"per_tensor_symmetric", "per_channel_symmetric"}),
      Choices(Off("quantization_dtype", Q, Kind::kString, "int8", "weight quantization"),
              {"int8", "f8e4m3", "f8e5m2"}),
      Nullable(Off("quantization_block_size", Q, Kind::kIntList, nullptr, "block quantization")),
      Nullable(Off("quantization_block_axis", Q, Kind::kIntList, nullptr, "block quantization")),
      Choices(Off("quantization_scale_dtype", Q, Kind::kString, "f32", "weight quantization"),
              {"f32", "bf16", "f16"}),
      Nullable(Off("modules_to_not_convert", Q, Kind::kList, nullptr, "weight quantization")),
      Nullable(Off("draft_model_modules_to_not_convert", Q, Kind::kList, nullptr,
                   "weight quantization of draft models")),
      Hw("is_mxfp4_compute", Q, Kind::kBool, false),
      Hw("is_full_model_shuffled", Q, Kind::kBool, false),
      Nullable(Choices(Off("activation_quantization_type", Q, Kind::kString, nullptr,
                           "activation quantization"), {"static", "dynamic"})),
      Off("quantize_clamp_bound", Q, Kind::kFloat, "inf", "activation quantization"),
      // KV cache quantization
      Off("kv_cache_quant", KQ, Kind::kBool, false, "float8 KV cache"),
      Nullable(Off("kv_quant_config", KQ, Kind::kObject, nullptr, "KV cache quantization")),
      // Multi-LoRA
      Nullable(Off("lora_config", L, Kind::kObject, nullptr, "multi-LoRA serving")),
      // MoE (MoENeuronConfig; dense models have no experts to apply them to)
      Min(Off("moe_tp_degree", MO, Kind::kInt, 1, "MoE parallelism"), 1),
      Min(Off("moe_ep_degree", MO, Kind::kInt, 1, "MoE parallelism"), 1),
      Nullable(Off("hybrid_sharding_config", MO, Kind::kObject, nullptr, "MoE hybrid sharding")),
      Nullable(Off("router_config", MO, Kind::kObject, nullptr, "MoE router options")),
      Off("return_expert_index", MO, Kind::kBool, false, "MoE outputs"),
      Off("return_router_logits", MO, Kind::kBool, false, "MoE outputs"),
      Nullable(Hw("blockwise_matmul_config", MO, Kind::kObject, nullptr)),
      Nullable(Key("capacity_factor", MO, Kind::kFloat, nullptr, H,
                   "expert capacity per context-encoding bucket (tokens past it are dropped); "
                   "MoE models only; null = no dropping")),
      Runs(Key("glu_mlp", MO, Kind::kBool, true, H,
               "the supported MoE models (Mixtral, Qwen3-MoE) all have GLU experts"),
           {true}),
      Choices(Off("glu_type", MO, Kind::kString, "glu", "MoE GLU variants"), {"glu", "swiglu"}),
      Off("hidden_act_scaling_factor", MO, Kind::kFloat, 1.0, "MoE activation scaling"),
      Off("hidden_act_bias", MO, Kind::kFloat, 0.0, "MoE activation bias"),
      Nullable(Off("gate_clamp_upper_limit", MO, Kind::kFloat, nullptr, "MoE clamps")),
      Nullable(Off("gate_clamp_lower_limit", MO, Kind::kFloat, nullptr, "MoE clamps")),
      Nullable(Off("up_clamp_upper_limit", MO, Kind::kFloat, nullptr, "MoE clamps")),
      Nullable(Off("up_clamp_lower_limit", MO, Kind::kFloat, nullptr, "MoE clamps")),
      Hw("use_index_calc_kernel", MO, Kind::kBool, false),
      Off("early_expert_affinity_modulation", MO, Kind::kBool, false, "MoE affinity modulation"),
      Key("normalize_top_k_affinities", MO, Kind::kBool, true, H,
          "set by the checkpoint as NxDI's model configs set it (Mixtral: true, Qwen3-MoE: "
          "norm_topk_prob); a given value that differs is refused"),
      Off("fused_shared_experts", MO, Kind::kBool, false, "MoE shared experts"),
      Off("shared_experts_sequence_parallel_enabled", MO, Kind::kBool, false,
          "MoE shared experts"),
      Off("transpose_shared_experts_weights", MO, Kind::kBool, false, "MoE shared experts"),
      // Kernels
      Hw("attn_kernel_enabled", K, Kind::kBool, false),
      Hw("strided_context_parallel_kernel_enabled", K, Kind::kBool, false),
      Hw("qkv_kernel_enabled", K, Kind::kBool, false),
      Hw("qkv_nki_kernel_enabled", K, Kind::kBool, false),
      Hw("qkv_cte_nki_kernel_fuse_rope", K, Kind::kBool, false),
      Hw("qkv_kernel_nbsd_layout", K, Kind::kBool, false),
      Hw("mlp_kernel_enabled", K, Kind::kBool, false),
      Hw("mlp_tkg_nki_kernel_enabled", K, Kind::kBool, false),
      Off("fused_rmsnorm_skip_gamma", K, Kind::kBool, false,
          "folding RMSNorm gamma into the next weights"),
      Hw("mlp_kernel_fuse_residual_add", K, Kind::kBool, false),
      Hw("qkv_kernel_fuse_residual_add", K, Kind::kBool, false),
      Hw("quantized_mlp_kernel_enabled", K, Kind::kBool, false),
      Hw("out_proj_kernel_enabled", K, Kind::kBool, false),
      Hw("attn_tkg_nki_kernel_enabled", K, Kind::kBool, false),
      Hw("attn_tkg_builtin_kernel_enabled", K, Kind::kBool, false),
      Hw("attn_block_tkg_nki_kernel_enabled", K, Kind::kBool, false),
      Hw("attn_block_tkg_nki_kernel_cache_update", K, Kind::kBool, false),
      Hw("attn_block_tkg_nki_kernel_cascaded_attention", K, Kind::kBool, false),
      Hw("attn_block_tkg_nki_kernel_use_online_softmax", K, Kind::kBool, true),
      Hw("attn_block_tkg_nki_kernel_disable_gpsimd_sb2sb", K, Kind::kBool, false),
      Nullable(Hw("attn_block_cte_nki_kernel_enabled", K, Kind::kBool, nullptr)),
      Hw("rmsnorm_quantize_kernel_enabled", K, Kind::kBool, false),
      Nullable(Hw("moe_fused_nki_kernel_enabled", K, Kind::kBool, nullptr)),
      Nullable(Hw("router_topk_nki_kernel_enabled", K, Kind::kBool, nullptr)),
      Nullable(Hw("expert_mlp_nki_kernel_enabled", K, Kind::kBool, nullptr)),
      Nullable(Hw("shared_mlp_nki_kernel_enabled", K, Kind::kBool, nullptr)),
      // Compiler and cores
      Min(Hw("logical_nc_config", C, Kind::kInt, 1), 1),
      Nullable(Min(Hw("logical_neuron_cores", C, Kind::kInt, nullptr), 1)),
      Derived(Hw("lm_head_pad", C, Kind::kBool, nullptr)),
      Min(Hw("lm_head_pad_alignment_size", C, Kind::kInt, 1), 1),
      Min(Hw("cc_pipeline_tiling_factor", C, Kind::kInt, 2), 1),
      Min(Hw("seq_len_threshold_for_cc_tiling", C, Kind::kInt, 16384), 1),
      Derived(Key("tile_cc", C, Kind::kBool, nullptr, X, "NxDI: seq_len >= the cc tiling threshold")),
      Nullable(Hw("target", C, Kind::kString, nullptr)),
      Hw("enable_spill_reload_dge", C, Kind::kBool, false),
      Hw("weights_to_skip_layout_optimization", C, Kind::kList, json::array()),
      Nullable(Hw("dma_order_config", C, Kind::kObject, nullptr)),
      Derived(Nullable(Min(Hw("scratchpad_page_size", C, Kind::kInt, nullptr), 1))),
      Derived(Key("enable_long_context_mode", C, Kind::kBool, nullptr, X,
                  "NxDI: max_context_length >= 32768")),
      Hw("enable_output_completion_notifications", C, Kind::kBool, false),
      Nullable(Min(Hw("padded_hidden_size", C, Kind::kInt, nullptr), 1)),
      Nullable(Min(Hw("padded_intermediate_size", C, Kind::kInt, nullptr), 1)),
      Hw("disable_numeric_cc_token", C, Kind::kBool, false),
      Hw("switch_cc", C, Kind::kBool, false),
      Choices(Hw("ep_dispatch_cc_option", C, Kind::kString, "AR_AG"), {"AR_AG", "RS_AG", "A2A"}),
      Derived(Key("overrides_torch_dtype", G, Kind::kBool, nullptr, X, "torch_dtype was given")),
      // Debugging
      Nullable(Off("tensor_capture_config", DB, Kind::kObject, nullptr, "tensor capture")),
      Nullable(Off("tensor_replacement_config", DB, Kind::kObject, nullptr, "tensor replacement")),
  };
  std::sort(s.begin(), s.end(), [](const KeySpec& a, const KeySpec& b) { return a.name < b.name; });
  return s;
}

std::string JoinQuoted(const std::vector<std::string>& v) {
  return absl::StrJoin(v, ", ", [](std::string* out, const std::string& x) {
    absl::StrAppend(out, "\"", x, "\"");
  });
}

}  // namespace

const std::vector<KeySpec>& NeuronConfigSchema() {
  static const auto* schema = new std::vector<KeySpec>(BuildSchema());
  return *schema;
}

const KeySpec* FindKey(const std::vector<KeySpec>& schema, std::string_view name) {
  for (const KeySpec& k : schema) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string_view SupportName(Support s) {
  switch (s) {
    case Support::kHonoured: return "honoured";
    case Support::kNoEffect: return "no effect on this backend";
    case Support::kUnsupported: return "not yet supported";
    case Support::kDerived: return "derived";
  }
  return "";
}

std::string Describe(const KeySpec& spec) {
  std::string d;
  auto bound = [&](const std::string& what) {
    return spec.min == INT64_MIN ? std::string(what) : absl::StrCat(what, " >= ", spec.min);
  };
  switch (spec.kind) {
    case Kind::kBool: d = "true or false"; break;
    case Kind::kInt: d = bound("an integer"); break;
    case Kind::kFloat: d = "a number"; break;
    case Kind::kString:
      d = spec.choices.empty() ? "a string" : absl::StrCat("one of ", JoinQuoted(spec.choices));
      break;
    case Kind::kDtype: d = absl::StrCat("one of ", JoinQuoted(spec.choices)); break;
    case Kind::kIntList: d = absl::StrCat("a list of ", bound("integers")); break;
    case Kind::kIntOrIntList: d = absl::StrCat(bound("an integer"), " or a list of them"); break;
    case Kind::kList: d = "a list"; break;
    case Kind::kObject: d = "an object"; break;
  }
  if (spec.nullable) absl::StrAppend(&d, " or null");
  return d;
}

absl::Status CheckValue(const KeySpec& spec, const json& v, const std::string& path) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(kConfigError, "'", path, "' must be ",
                                                   Describe(spec), ", got ", v.dump()));
  };
  if (v.is_null()) return spec.nullable ? absl::OkStatus() : bad();
  auto int_ok = [&](const json& x) {
    return x.is_number_integer() && x.get<int64_t>() >= spec.min;
  };
  switch (spec.kind) {
    case Kind::kBool:
      if (!v.is_boolean()) return bad();
      break;
    case Kind::kInt:
      if (!int_ok(v)) return bad();
      break;
    case Kind::kFloat:
      // NxDI writes infinity as the string "inf" (quantize_clamp_bound).
      if (!(v.is_number() || (v.is_string() && (v == "inf" || v == "-inf")))) return bad();
      if (v.is_number() && !std::isfinite(v.get<double>())) return bad();
      break;
    case Kind::kString:
    case Kind::kDtype: {
      if (!v.is_string()) return bad();
      std::string s = v.get<std::string>();
      if (spec.kind == Kind::kDtype && s.starts_with("torch.")) s = s.substr(6);
      if (!spec.choices.empty() &&
          std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
        return bad();
      }
      break;
    }
    case Kind::kIntList:
      if (!v.is_array() || !std::all_of(v.begin(), v.end(), int_ok)) return bad();
      break;
    case Kind::kIntOrIntList:
      if (!int_ok(v) && !(v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), int_ok))) {
        return bad();
      }
      break;
    case Kind::kList:
      if (!v.is_array()) return bad();
      break;
    case Kind::kObject:
      if (!v.is_object()) return bad();
      break;
  }
  return absl::OkStatus();
}

}  // namespace vnp
