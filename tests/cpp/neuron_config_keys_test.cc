// One row per NeuronConfig key: its NxDI default, a valid non-default value with its outcome
// (accepted, or refused naming the feature this backend lacks) and an invalid value with the
// exact message. EveryKeyHasARow keeps the table and the schema in step.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/neuron_config.h"
#include "config/neuron_config_schema.h"

namespace vnp {
namespace {

using nlohmann::json;

struct Row {
  const char* key;
  const char* default_value;  // with "{}" (seq_len 128, batch_size 1)
  const char* with;           // companion keys the value needs
  const char* value;          // a valid non-default value
  const char* value_error;    // "" = accepted
  const char* bad;            // an invalid value
  const char* bad_error;      // its exact message
};

const Row kRows[] = {
    {"activation_quantization_type", R"(null)", R"({})", R"("dynamic")",
     R"(override_neuron_config: 'activation_quantization_type'="dynamic" is not supported by this backend yet (activation quantization); supported: null)",
     R"("nope")", R"(override_neuron_config: 'activation_quantization_type' must be one of "static", "dynamic" or null, got "nope")"},
    {"allow_input_truncation", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'allow_input_truncation'=true is not supported by this backend yet; supported: false)",
     R"("yes")", R"(override_neuron_config: 'allow_input_truncation' must be true or false, got "yes")"},
    {"apply_seq_ids_mask", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'apply_seq_ids_mask' must be true or false, got "yes")"},
    {"async_mode", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'async_mode' must be true or false, got "yes")"},
    {"attention_dp_degree", R"(1)", R"({})", R"(4)",
     R"(override_neuron_config: 'attention_dp_degree'=4 is not supported by this backend yet (attention data parallelism); supported: 1)",
     R"(-5)", R"(override_neuron_config: 'attention_dp_degree' must be an integer >= 1, got -5)"},
    {"attention_dtype", R"(null)", R"({})", R"("bfloat16")",
     R"()",
     R"("nope")", R"(override_neuron_config: 'attention_dtype' must be one of "float32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2" or null, got "nope")"},
    {"attn_block_cte_nki_kernel_enabled", R"(null)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_block_cte_nki_kernel_enabled' must be true or false or null, got "yes")"},
    {"attn_block_tkg_nki_kernel_cache_update", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_block_tkg_nki_kernel_cache_update' must be true or false, got "yes")"},
    {"attn_block_tkg_nki_kernel_cascaded_attention", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_block_tkg_nki_kernel_cascaded_attention' must be true or false, got "yes")"},
    {"attn_block_tkg_nki_kernel_disable_gpsimd_sb2sb", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_block_tkg_nki_kernel_disable_gpsimd_sb2sb' must be true or false, got "yes")"},
    {"attn_block_tkg_nki_kernel_enabled", R"(false)", R"({"fused_qkv": true, "qkv_kernel_enabled": true})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_block_tkg_nki_kernel_enabled' must be true or false, got "yes")"},
    {"attn_block_tkg_nki_kernel_use_online_softmax", R"(true)", R"({})", R"(false)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_block_tkg_nki_kernel_use_online_softmax' must be true or false, got "yes")"},
    {"attn_cls", R"("NeuronLlamaAttention")", R"({})", R"("NeuronQwen3Attention")",
     R"()",
     R"(7)", R"(override_neuron_config: 'attn_cls' must be a string, got 7)"},
    {"attn_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_kernel_enabled' must be true or false, got "yes")"},
    {"attn_tkg_builtin_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_tkg_builtin_kernel_enabled' must be true or false, got "yes")"},
    {"attn_tkg_nki_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'attn_tkg_nki_kernel_enabled' must be true or false, got "yes")"},
    {"batch_size", R"(1)", R"({})", R"(4)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'batch_size' must be an integer >= 1, got -5)"},
    {"blockwise_matmul_config", R"(null)", R"({})", R"({})",
     R"()",
     R"([1])", R"(override_neuron_config: 'blockwise_matmul_config' must be an object or null, got [1])"},
    {"bucket_n_active_tokens", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'bucket_n_active_tokens' is derived (set per NxDI sub-model: false at top level) and would be false; got true)",
     R"("yes")", R"(override_neuron_config: 'bucket_n_active_tokens' must be true or false, got "yes")"},
    {"buckets", R"([128])", R"({})", R"([256])",
     R"(override_neuron_config: 'buckets' is derived (NxDI's top-level list: [seq_len]) and would be [128]; got [256])",
     R"("4")", R"(override_neuron_config: 'buckets' must be a list of integers, got "4")"},
    {"capacity_factor", R"(null)", R"({})", R"(0.5)", "",
     R"("fast")", R"(override_neuron_config: 'capacity_factor' must be a number or null, got "fast")"},
    {"cast_type", R"("config")", R"({})", R"("as-declared")",
     R"(override_neuron_config: 'cast_type'="as-declared" is not supported by this backend yet; supported: "config")",
     R"("nope")", R"(override_neuron_config: 'cast_type' must be one of "config", "as-declared", got "nope")"},
    {"cc_pipeline_tiling_factor", R"(2)", R"({})", R"(5)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'cc_pipeline_tiling_factor' must be an integer >= 1, got -5)"},
    {"chunked_prefill_config", R"(null)", R"({"is_block_kv_layout": true})", R"({"kernel_q_tile_size": 256})",
     R"()",
     R"([1])", R"(override_neuron_config: 'chunked_prefill_config' must be an object or null, got [1])"},
    {"context_encoding_buckets", R"(null)", R"({"enable_bucketing": true})", R"([64, 32])",
     R"()",
     R"("4")", R"(override_neuron_config: 'context_encoding_buckets' must be a list of integers >= 1 or null, got "4")"},
    {"cp_degree", R"(1)", R"({})", R"(4)",
     R"(override_neuron_config: 'cp_degree'=4 is not supported by this backend yet (context parallelism); supported: 1)",
     R"(-5)", R"(override_neuron_config: 'cp_degree' must be an integer >= 1, got -5)"},
    {"ctx_batch_size", R"(1)", R"({})", R"(4)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'ctx_batch_size' must be an integer >= 1, got -5)"},
    {"disable_argmax_kernel", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'disable_argmax_kernel' must be true or false, got "yes")"},
    {"disable_kv_cache_tiling", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'disable_kv_cache_tiling' must be true or false, got "yes")"},
    {"disable_numeric_cc_token", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'disable_numeric_cc_token' must be true or false, got "yes")"},
    {"dma_order_config", R"(null)", R"({})", R"({})",
     R"()",
     R"([1])", R"(override_neuron_config: 'dma_order_config' must be an object or null, got [1])"},
    {"draft_model_modules_to_not_convert", R"(null)", R"({})", R"(["lm_head"])",
     R"(override_neuron_config: 'draft_model_modules_to_not_convert'=["lm_head"] is not supported by this backend yet (weight quantization of draft models); supported: null)",
     R"("x")", R"(override_neuron_config: 'draft_model_modules_to_not_convert' must be a list or null, got "x")"},
    {"eagle_rolling_buffer_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'eagle_rolling_buffer_kernel_enabled' must be true or false, got "yes")"},
    {"early_expert_affinity_modulation", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'early_expert_affinity_modulation'=true is not supported by this backend yet (MoE affinity modulation); supported: false)",
     R"("yes")", R"(override_neuron_config: 'early_expert_affinity_modulation' must be true or false, got "yes")"},
    {"enable_bucketing", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'enable_bucketing' must be true or false, got "yes")"},
    {"enable_cte_modular_flow", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'enable_cte_modular_flow' must be true or false, got "yes")"},
    {"enable_eagle_draft_input_norm", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'enable_eagle_draft_input_norm'=true is not supported by this backend yet (EAGLE draft input norm); supported: false)",
     R"("yes")", R"(override_neuron_config: 'enable_eagle_draft_input_norm' must be true or false, got "yes")"},
    {"enable_eagle_speculation", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'enable_eagle_speculation'=true is not supported by this backend yet (EAGLE speculation); supported: false)",
     R"("yes")", R"(override_neuron_config: 'enable_eagle_speculation' must be true or false, got "yes")"},
    {"enable_fused_speculation", R"(false)", R"({"speculation_length": 2})", R"(true)", "",
     R"("yes")", R"(override_neuron_config: 'enable_fused_speculation' must be true or false, got "yes")"},
    {"enable_long_context_mode", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'enable_long_context_mode' is derived (NxDI: max_context_length >= 32768) and would be false; got true)",
     R"("yes")", R"(override_neuron_config: 'enable_long_context_mode' must be true or false, got "yes")"},
    {"enable_output_completion_notifications", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'enable_output_completion_notifications' must be true or false, got "yes")"},
    {"enable_spill_reload_dge", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'enable_spill_reload_dge' must be true or false, got "yes")"},
    {"enable_token_tree", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'enable_token_tree' is derived (token_tree_config is set) and would be false; got true)",
     R"("yes")", R"(override_neuron_config: 'enable_token_tree' must be true or false, got "yes")"},
    {"enable_ve_data_parallel", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'enable_ve_data_parallel' must be true or false, got "yes")"},
    {"ep_degree", R"(1)", R"({})", R"(4)",
     R"(override_neuron_config: 'ep_degree'=4 is not supported by this backend yet (expert parallelism); supported: 1)",
     R"(-5)", R"(override_neuron_config: 'ep_degree' must be an integer >= 1, got -5)"},
    {"ep_dispatch_cc_option", R"("AR_AG")", R"({})", R"("RS_AG")",
     R"()",
     R"("nope")", R"(override_neuron_config: 'ep_dispatch_cc_option' must be one of "AR_AG", "RS_AG", "A2A", got "nope")"},
    {"expert_mlp_nki_kernel_enabled", R"(null)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'expert_mlp_nki_kernel_enabled' must be true or false or null, got "yes")"},
    {"flash_decoding_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'flash_decoding_enabled' must be true or false, got "yes")"},
    {"fused_qkv", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'fused_qkv' must be true or false, got "yes")"},
    {"fused_rmsnorm_skip_gamma", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'fused_rmsnorm_skip_gamma'=true is not supported by this backend yet (folding RMSNorm gamma into the next weights); supported: false)",
     R"("yes")", R"(override_neuron_config: 'fused_rmsnorm_skip_gamma' must be true or false, got "yes")"},
    {"fused_shared_experts", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'fused_shared_experts'=true is not supported by this backend yet (MoE shared experts); supported: false)",
     R"("yes")", R"(override_neuron_config: 'fused_shared_experts' must be true or false, got "yes")"},
    {"gate_clamp_lower_limit", R"(null)", R"({})", R"(0.5)",
     R"(override_neuron_config: 'gate_clamp_lower_limit'=0.5 is not supported by this backend yet (MoE clamps); supported: null)",
     R"("fast")", R"(override_neuron_config: 'gate_clamp_lower_limit' must be a number or null, got "fast")"},
    {"gate_clamp_upper_limit", R"(null)", R"({})", R"(0.5)",
     R"(override_neuron_config: 'gate_clamp_upper_limit'=0.5 is not supported by this backend yet (MoE clamps); supported: null)",
     R"("fast")", R"(override_neuron_config: 'gate_clamp_upper_limit' must be a number or null, got "fast")"},
    {"glu_mlp", R"(true)", R"({})", R"(false)",
     R"(override_neuron_config: 'glu_mlp'=false is not supported by this backend yet; supported: true)",
     R"("yes")", R"(override_neuron_config: 'glu_mlp' must be true or false, got "yes")"},
    {"glu_type", R"("glu")", R"({})", R"("swiglu")",
     R"(override_neuron_config: 'glu_type'="swiglu" is not supported by this backend yet (MoE GLU variants); supported: "glu")",
     R"("nope")", R"(override_neuron_config: 'glu_type' must be one of "glu", "swiglu", got "nope")"},
    {"hidden_act_bias", R"(0.0)", R"({})", R"(0.5)",
     R"(override_neuron_config: 'hidden_act_bias'=0.5 is not supported by this backend yet (MoE activation bias); supported: 0.0)",
     R"("fast")", R"(override_neuron_config: 'hidden_act_bias' must be a number, got "fast")"},
    {"hidden_act_scaling_factor", R"(1.0)", R"({})", R"(0.5)",
     R"(override_neuron_config: 'hidden_act_scaling_factor'=0.5 is not supported by this backend yet (MoE activation scaling); supported: 1.0)",
     R"("fast")", R"(override_neuron_config: 'hidden_act_scaling_factor' must be a number, got "fast")"},
    {"hybrid_sharding_config", R"(null)", R"({})", R"({})",
     R"(override_neuron_config: 'hybrid_sharding_config'={...} is not supported by this backend yet (MoE hybrid sharding); supported: null)",
     R"([1])", R"(override_neuron_config: 'hybrid_sharding_config' must be an object or null, got [1])"},
    {"is_block_kv_layout", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'is_block_kv_layout' must be true or false, got "yes")"},
    {"is_chunked_prefill", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'is_chunked_prefill' is derived (chunked_prefill_config is set) and would be false; got true)",
     R"("yes")", R"(override_neuron_config: 'is_chunked_prefill' must be true or false, got "yes")"},
    {"is_continuous_batching", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'is_continuous_batching' must be true or false, got "yes")"},
    {"is_eagle3", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'is_eagle3'=true is not supported by this backend yet (EAGLE-3 speculation); supported: false)",
     R"("yes")", R"(override_neuron_config: 'is_eagle3' must be true or false, got "yes")"},
    {"is_eagle_draft", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'is_eagle_draft'=true is not supported by this backend yet (EAGLE draft models); supported: false)",
     R"("yes")", R"(override_neuron_config: 'is_eagle_draft' must be true or false, got "yes")"},
    {"is_full_model_shuffled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'is_full_model_shuffled' must be true or false, got "yes")"},
    {"is_medusa", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'is_medusa'=true is not supported by this backend yet (Medusa decoding); supported: false)",
     R"("yes")", R"(override_neuron_config: 'is_medusa' must be true or false, got "yes")"},
    {"is_mxfp4_compute", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'is_mxfp4_compute' must be true or false, got "yes")"},
    {"is_prefill_stage", R"(null)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'is_prefill_stage' must be true or false or null, got "yes")"},
    {"is_prefix_caching", R"(false)", R"({"is_block_kv_layout": true})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'is_prefix_caching' must be true or false, got "yes")"},
    {"k_cache_transposed", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'k_cache_transposed' must be true or false, got "yes")"},
    {"kv_cache_batch_size", R"(1)", R"({})", R"(4)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'kv_cache_batch_size' must be an integer >= 1, got -5)"},
    {"kv_cache_padding_size", R"(0)", R"({})", R"(3)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'kv_cache_padding_size' must be an integer >= 0, got -5)"},
    {"kv_cache_quant", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'kv_cache_quant'=true is not supported by this backend yet (float8 KV cache); supported: false)",
     R"("yes")", R"(override_neuron_config: 'kv_cache_quant' must be true or false, got "yes")"},
    {"kv_cache_tiling", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'kv_cache_tiling' is derived (NxDI: fused/EAGLE speculation with max_length > 128 and % 128 == 0) and would be false; got true)",
     R"("yes")", R"(override_neuron_config: 'kv_cache_tiling' must be true or false, got "yes")"},
    {"kv_quant_config", R"(null)", R"({})", R"({})",
     R"(override_neuron_config: 'kv_quant_config'={...} is not supported by this backend yet (KV cache quantization); supported: null)",
     R"([1])", R"(override_neuron_config: 'kv_quant_config' must be an object or null, got [1])"},
    {"layer_boundary_markers", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'layer_boundary_markers' must be true or false, got "yes")"},
    {"lm_head_pad", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'lm_head_pad' must be true or false, got "yes")"},
    {"lm_head_pad_alignment_size", R"(1)", R"({})", R"(4)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'lm_head_pad_alignment_size' must be an integer >= 1, got -5)"},
    {"local_ranks_size", R"(1)", R"({})", R"(2)",
     R"(override_neuron_config: 'local_ranks_size' is derived (world_size) and would be 1; got 2)",
     R"(-5)", R"(override_neuron_config: 'local_ranks_size' must be an integer >= 1, got -5)"},
    {"logical_nc_config", R"(1)", R"({})", R"(2)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'logical_nc_config' must be an integer >= 1, got -5)"},
    {"logical_neuron_cores", R"(null)", R"({})", R"(8)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'logical_neuron_cores' must be an integer >= 1 or null, got -5)"},
    {"lora_config", R"(null)", R"({})", R"({})",
     R"(override_neuron_config: 'lora_config'={...} is not supported by this backend yet (multi-LoRA serving); supported: null)",
     R"([1])", R"(override_neuron_config: 'lora_config' must be an object or null, got [1])"},
    {"max_batch_size", R"(1)", R"({})", R"(4)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'max_batch_size' must be an integer >= 1, got -5)"},
    {"max_context_length", R"(128)", R"({"seq_len": 256})", R"(64)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'max_context_length' must be an integer >= 1, got -5)"},
    {"max_length", R"(128)", R"({"seq_len": 256})", R"(192)",
     R"(override_neuron_config: max_context_length (256) must not exceed max_length (192))",
     R"(-5)", R"(override_neuron_config: 'max_length' must be an integer >= 1, got -5)"},
    {"max_new_tokens", R"(null)", R"({})", R"(32)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'max_new_tokens' must be an integer >= 1 or null, got -5)"},
    {"medusa_speculation_length", R"(0)", R"({})", R"(3)",
     R"(override_neuron_config: 'medusa_speculation_length'=3 is not supported by this backend yet (Medusa decoding); supported: 0)",
     R"(-5)", R"(override_neuron_config: 'medusa_speculation_length' must be an integer >= 0, got -5)"},
    {"medusa_tree", R"(null)", R"({})", R"([[0]])",
     R"(override_neuron_config: 'medusa_tree'=[[0]] is not supported by this backend yet (Medusa decoding); supported: null)",
     R"("x")", R"(override_neuron_config: 'medusa_tree' must be a list or null, got "x")"},
    {"mlp_cp_degree", R"(1)", R"({})", R"(4)",
     R"(override_neuron_config: 'mlp_cp_degree'=4 is not supported by this backend yet (MLP context parallelism); supported: 1)",
     R"(-5)", R"(override_neuron_config: 'mlp_cp_degree' must be an integer >= 1, got -5)"},
    {"mlp_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'mlp_kernel_enabled' must be true or false, got "yes")"},
    {"mlp_kernel_fuse_residual_add", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'mlp_kernel_fuse_residual_add' must be true or false, got "yes")"},
    {"mlp_tkg_nki_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'mlp_tkg_nki_kernel_enabled' must be true or false, got "yes")"},
    {"modules_to_not_convert", R"(null)", R"({})", R"(["lm_head"])",
     R"(override_neuron_config: 'modules_to_not_convert'=["lm_head"] is not supported by this backend yet (weight quantization); supported: null)",
     R"("x")", R"(override_neuron_config: 'modules_to_not_convert' must be a list or null, got "x")"},
    {"moe_ep_degree", R"(1)", R"({})", R"(4)",
     R"(override_neuron_config: 'moe_ep_degree'=4 is not supported by this backend yet (MoE parallelism); supported: 1)",
     R"(-5)", R"(override_neuron_config: 'moe_ep_degree' must be an integer >= 1, got -5)"},
    {"moe_fused_nki_kernel_enabled", R"(null)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'moe_fused_nki_kernel_enabled' must be true or false or null, got "yes")"},
    {"moe_tp_degree", R"(1)", R"({})", R"(4)",
     R"(override_neuron_config: 'moe_tp_degree'=4 is not supported by this backend yet (MoE parallelism); supported: 1)",
     R"(-5)", R"(override_neuron_config: 'moe_tp_degree' must be an integer >= 1, got -5)"},
    {"n_active_tokens", R"(128)", R"({})", R"(64)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'n_active_tokens' must be an integer >= 1, got -5)"},
    {"n_positions", R"(128)", R"({})", R"(64)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'n_positions' must be an integer >= 1, got -5)"},
    {"normalize_top_k_affinities", R"(true)", R"({})", R"(false)", "",
     R"("yes")", R"(override_neuron_config: 'normalize_top_k_affinities' must be true or false, got "yes")"},
    {"num_medusa_heads", R"(0)", R"({})", R"(3)",
     R"(override_neuron_config: 'num_medusa_heads'=3 is not supported by this backend yet (Medusa decoding); supported: 0)",
     R"(-5)", R"(override_neuron_config: 'num_medusa_heads' must be an integer >= 0, got -5)"},
    {"on_cpu", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'on_cpu' must be true or false, got "yes")"},
    {"on_device_sampling_config", R"(null)", R"({})", R"({"do_sample": true})", "",
     R"([1])", R"(override_neuron_config: 'on_device_sampling_config' must be an object or null, got [1])"},
    {"out_proj_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'out_proj_kernel_enabled' must be true or false, got "yes")"},
    {"output_logits", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'output_logits' must be true or false, got "yes")"},
    {"overrides_torch_dtype", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'overrides_torch_dtype' must be true or false, got "yes")"},
    {"pa_block_size", R"(128)", R"({})", R"(16)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'pa_block_size' must be an integer >= 1, got -5)"},
    {"pa_num_blocks", R"(1)", R"({})", R"(9)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'pa_num_blocks' must be an integer >= 1, got -5)"},
    {"padded_hidden_size", R"(null)", R"({})", R"(8)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'padded_hidden_size' must be an integer >= 1 or null, got -5)"},
    {"padded_intermediate_size", R"(null)", R"({})", R"(8)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'padded_intermediate_size' must be an integer >= 1 or null, got -5)"},
    {"padding_side", R"("right")", R"({})", R"("left")",
     R"(override_neuron_config: 'padding_side'="left" is not supported by this backend yet; supported: "right")",
     R"("nope")", R"(override_neuron_config: 'padding_side' must be one of "right", "left", got "nope")"},
    {"pp_degree", R"(1)", R"({})", R"(4)",
     R"(override_neuron_config: 'pp_degree'=4 is not supported by this backend yet (pipeline parallelism); supported: 1)",
     R"(-5)", R"(override_neuron_config: 'pp_degree' must be an integer >= 1, got -5)"},
    {"pre_rope_rmsnorm", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'pre_rope_rmsnorm'=true is not supported by this backend yet (RMSNorm before RoPE); supported: false)",
     R"("yes")", R"(override_neuron_config: 'pre_rope_rmsnorm' must be true or false, got "yes")"},
    {"prefix_buckets", R"(null)", R"({"is_block_kv_layout": true, "is_prefix_caching": true, "enable_bucketing": true})", R"([64])",
     R"()",
     R"("4")", R"(override_neuron_config: 'prefix_buckets' must be a list of integers >= 1 or null, got "4")"},
    {"qk_layernorm", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'qk_layernorm'=true is not supported by this backend yet (per-head q/k RMSNorm on other architectures (Qwen3 checkpoints get it from config.json)); supported: false)",
     R"("yes")", R"(override_neuron_config: 'qk_layernorm' must be true or false, got "yes")"},
    {"qkv_cte_nki_kernel_fuse_rope", R"(false)", R"({"fused_qkv": true, "qkv_kernel_enabled": true, "qkv_nki_kernel_enabled": true})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'qkv_cte_nki_kernel_fuse_rope' must be true or false, got "yes")"},
    {"qkv_kernel_enabled", R"(false)", R"({"fused_qkv": true})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'qkv_kernel_enabled' must be true or false, got "yes")"},
    {"qkv_kernel_fuse_residual_add", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'qkv_kernel_fuse_residual_add' must be true or false, got "yes")"},
    {"qkv_kernel_nbsd_layout", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'qkv_kernel_nbsd_layout' must be true or false, got "yes")"},
    {"qkv_nki_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'qkv_nki_kernel_enabled' must be true or false, got "yes")"},
    {"quantization_block_axis", R"(null)", R"({})", R"([1])",
     R"(override_neuron_config: 'quantization_block_axis'=[1] is not supported by this backend yet (block quantization); supported: null)",
     R"("4")", R"(override_neuron_config: 'quantization_block_axis' must be a list of integers or null, got "4")"},
    {"quantization_block_size", R"(null)", R"({})", R"([128])",
     R"(override_neuron_config: 'quantization_block_size'=[128] is not supported by this backend yet (block quantization); supported: null)",
     R"("4")", R"(override_neuron_config: 'quantization_block_size' must be a list of integers or null, got "4")"},
    {"quantization_dtype", R"("int8")", R"({})", R"("f8e4m3")",
     R"(override_neuron_config: 'quantization_dtype'="f8e4m3" is not supported by this backend yet (weight quantization); supported: "int8")",
     R"("nope")", R"(override_neuron_config: 'quantization_dtype' must be one of "int8", "f8e4m3", "f8e5m2", got "nope")"},
    {"quantization_scale_dtype", R"("f32")", R"({})", R"("bf16")",
     R"(override_neuron_config: 'quantization_scale_dtype'="bf16" is not supported by this backend yet (weight quantization); supported: "f32")",
     R"("nope")", R"(override_neuron_config: 'quantization_scale_dtype' must be one of "f32", "bf16", "f16", got "nope")"},
    {"quantization_type", R"("per_tensor_symmetric")", R"({})", R"("per_channel_symmetric")",
     R"(override_neuron_config: 'quantization_type'="per_channel_symmetric" is not supported by this backend yet (weight quantization); supported: "per_tensor_symmetric")",
     R"("nope")", R"(override_neuron_config: 'quantization_type' must be one of "per_tensor_symmetric", "per_channel_symmetric", got "nope")"},
    {"quantize_clamp_bound", R"("inf")", R"({})", R"(448.0)",
     R"(override_neuron_config: 'quantize_clamp_bound'=448.0 is not supported by this backend yet (activation quantization); supported: "inf")",
     R"("fast")", R"(override_neuron_config: 'quantize_clamp_bound' must be a number, got "fast")"},
    {"quantized", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'quantized'=true is not supported by this backend yet (weight quantization); supported: false)",
     R"("yes")", R"(override_neuron_config: 'quantized' must be true or false, got "yes")"},
    {"quantized_checkpoints_path", R"(null)", R"({})", R"("/tmp/q")",
     R"(override_neuron_config: 'quantized_checkpoints_path'="/tmp/q" is not supported by this backend yet (weight quantization); supported: null)",
     R"(7)", R"(override_neuron_config: 'quantized_checkpoints_path' must be a string or null, got 7)"},
    {"quantized_mlp_kernel_enabled", R"(false)", R"({"mlp_kernel_enabled": true})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'quantized_mlp_kernel_enabled' must be true or false, got "yes")"},
    {"return_expert_index", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'return_expert_index'=true is not supported by this backend yet (MoE outputs); supported: false)",
     R"("yes")", R"(override_neuron_config: 'return_expert_index' must be true or false, got "yes")"},
    {"return_router_logits", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'return_router_logits'=true is not supported by this backend yet (MoE outputs); supported: false)",
     R"("yes")", R"(override_neuron_config: 'return_router_logits' must be true or false, got "yes")"},
    {"rmsnorm_quantize_kernel_enabled", R"(false)", R"({"mlp_kernel_enabled": true, "quantized_mlp_kernel_enabled": true})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'rmsnorm_quantize_kernel_enabled' must be true or false, got "yes")"},
    {"router_config", R"(null)", R"({})", R"({})",
     R"(override_neuron_config: 'router_config'={...} is not supported by this backend yet (MoE router options); supported: null)",
     R"([1])", R"(override_neuron_config: 'router_config' must be an object or null, got [1])"},
    {"router_topk_nki_kernel_enabled", R"(null)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'router_topk_nki_kernel_enabled' must be true or false or null, got "yes")"},
    {"rpl_reduce_dtype", R"(null)", R"({})", R"("float32")",
     R"()",
     R"("nope")", R"(override_neuron_config: 'rpl_reduce_dtype' must be one of "float32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2" or null, got "nope")"},
    {"save_sharded_checkpoint", R"(true)", R"({})", R"(false)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'save_sharded_checkpoint' must be true or false, got "yes")"},
    {"scratchpad_page_size", R"(null)", R"({})", R"(8)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'scratchpad_page_size' must be an integer >= 1 or null, got -5)"},
    {"seq_len", R"(128)", R"({})", R"(256)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'seq_len' must be an integer >= 1, got -5)"},
    {"seq_len_threshold_for_cc_tiling", R"(16384)", R"({})", R"(16387)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'seq_len_threshold_for_cc_tiling' must be an integer >= 1, got -5)"},
    {"sequence_parallel_enabled", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'sequence_parallel_enabled' must be true or false, got "yes")"},
    {"shared_experts_sequence_parallel_enabled", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'shared_experts_sequence_parallel_enabled'=true is not supported by this backend yet (MoE shared experts); supported: false)",
     R"("yes")", R"(override_neuron_config: 'shared_experts_sequence_parallel_enabled' must be true or false, got "yes")"},
    {"shared_mlp_nki_kernel_enabled", R"(null)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'shared_mlp_nki_kernel_enabled' must be true or false or null, got "yes")"},
    {"skip_sharding", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'skip_sharding' must be true or false, got "yes")"},
    {"skip_warmup", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'skip_warmup' must be true or false, got "yes")"},
    {"spec_batch_size", R"(1)", R"({})", R"(4)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'spec_batch_size' must be an integer >= 1, got -5)"},
    {"speculation_length", R"(0)", R"({})", R"(3)", "",
     R"(-5)", R"(override_neuron_config: 'speculation_length' must be an integer >= 0, got -5)"},
    {"start_rank_id", R"(0)", R"({})", R"(1)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'start_rank_id' must be an integer >= 0, got -5)"},
    {"strided_context_parallel_kernel_enabled", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: strided_context_parallel_kernel_enabled=true requires cp_degree > 1)",
     R"("yes")", R"(override_neuron_config: 'strided_context_parallel_kernel_enabled' must be true or false, got "yes")"},
    {"switch_cc", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'switch_cc' must be true or false, got "yes")"},
    {"target", R"(null)", R"({})", R"("trn2")",
     R"()",
     R"(7)", R"(override_neuron_config: 'target' must be a string or null, got 7)"},
    {"tensor_capture_config", R"(null)", R"({})", R"({})",
     R"(override_neuron_config: 'tensor_capture_config'={...} is not supported by this backend yet (tensor capture); supported: null)",
     R"([1])", R"(override_neuron_config: 'tensor_capture_config' must be an object or null, got [1])"},
    {"tensor_replacement_config", R"(null)", R"({})", R"({})",
     R"(override_neuron_config: 'tensor_replacement_config'={...} is not supported by this backend yet (tensor replacement); supported: null)",
     R"([1])", R"(override_neuron_config: 'tensor_replacement_config' must be an object or null, got [1])"},
    {"tile_cc", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'tile_cc' is derived (NxDI: seq_len >= the cc tiling threshold) and would be false; got true)",
     R"("yes")", R"(override_neuron_config: 'tile_cc' must be true or false, got "yes")"},
    {"tkg_batch_size", R"(1)", R"({})", R"(4)",
     R"()",
     R"(-5)", R"(override_neuron_config: 'tkg_batch_size' must be an integer >= 1, got -5)"},
    {"token_generation_batches", R"(null)", R"({})", R"([1, 2])",
     R"(override_neuron_config: 'token_generation_batches'=[1,2] is not supported by this backend yet (token-generation batch bucketing); supported: null)",
     R"("4")", R"(override_neuron_config: 'token_generation_batches' must be an integer or a list of them or null, got "4")"},
    {"token_generation_buckets", R"(null)", R"({"enable_bucketing": true})", R"([128, 64])",
     R"()",
     R"("4")", R"(override_neuron_config: 'token_generation_buckets' must be a list of integers >= 1 or null, got "4")"},
    {"token_tree_config", R"(null)", R"({})", R"({})",
     R"(override_neuron_config: 'token_tree_config'={...} is not supported by this backend yet (token-tree speculation); supported: null)",
     R"([1])", R"(override_neuron_config: 'token_tree_config' must be an object or null, got [1])"},
    {"torch_dtype", R"("bfloat16")", R"({})", R"("float32")",
     R"()",
     R"("nope")", R"(override_neuron_config: 'torch_dtype' must be one of "float32", "bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", got "nope")"},
    {"tp_degree", R"(1)", R"({})", R"(2)",
     R"(override_neuron_config: 'tp_degree'=2 is not supported by this backend yet; supported: 1)",
     R"(-5)", R"(override_neuron_config: 'tp_degree' must be an integer >= 1, got -5)"},
    {"trace_tokengen_model", R"(true)", R"({})", R"(false)",
     R"(override_neuron_config: 'trace_tokengen_model' is derived (deprecated NxDI alias: not fused speculation) and would be true; got false)",
     R"("yes")", R"(override_neuron_config: 'trace_tokengen_model' must be true or false, got "yes")"},
    {"transpose_shared_experts_weights", R"(false)", R"({})", R"(true)",
     R"(override_neuron_config: 'transpose_shared_experts_weights'=true is not supported by this backend yet (MoE shared experts); supported: false)",
     R"("yes")", R"(override_neuron_config: 'transpose_shared_experts_weights' must be true or false, got "yes")"},
    {"up_clamp_lower_limit", R"(null)", R"({})", R"(0.5)",
     R"(override_neuron_config: 'up_clamp_lower_limit'=0.5 is not supported by this backend yet (MoE clamps); supported: null)",
     R"("fast")", R"(override_neuron_config: 'up_clamp_lower_limit' must be a number or null, got "fast")"},
    {"up_clamp_upper_limit", R"(null)", R"({})", R"(0.5)",
     R"(override_neuron_config: 'up_clamp_upper_limit'=0.5 is not supported by this backend yet (MoE clamps); supported: null)",
     R"("fast")", R"(override_neuron_config: 'up_clamp_upper_limit' must be a number or null, got "fast")"},
    {"use_index_calc_kernel", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'use_index_calc_kernel' must be true or false, got "yes")"},
    {"vocab_parallel", R"(false)", R"({})", R"(true)",
     R"()",
     R"("yes")", R"(override_neuron_config: 'vocab_parallel' must be true or false, got "yes")"},
    {"weight_gather_seq_len_threshold", R"(32768)", R"({})", R"(32771)",
     R"()",
     R"("4")", R"(override_neuron_config: 'weight_gather_seq_len_threshold' must be an integer, got "4")"},
    {"weights_to_skip_layout_optimization", R"([])", R"({})", R"(["lm_head.weight"])",
     R"()",
     R"("x")", R"(override_neuron_config: 'weights_to_skip_layout_optimization' must be a list, got "x")"},
    {"windowed_context_encoding_size", R"(null)", R"({})", R"(8)",
     R"(override_neuron_config: 'windowed_context_encoding_size'=8 is not supported by this backend yet (windowed context encoding); supported: null)",
     R"("4")", R"(override_neuron_config: 'windowed_context_encoding_size' must be an integer or null, got "4")"},
    {"world_size", R"(1)", R"({})", R"(2)",
     R"(override_neuron_config: 'world_size' is derived (tp_degree * pp_degree * ep_degree) and would be 1; got 2)",
     R"(-5)", R"(override_neuron_config: 'world_size' must be an integer >= 1, got -5)"},
};

json Resolve(const json& j) {
  auto c = NeuronConfig::FromJson(j.dump());
  EXPECT_TRUE(c.ok()) << j.dump() << ": " << c.status();
  return c.ok() ? json::parse(c->ToJson()) : json();
}

std::string ErrorOf(const json& j) {
  auto c = NeuronConfig::FromJson(j.dump());
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(NeuronConfigKeysTest, EveryKeyHasARow) {
  std::set<std::string> rows, keys(KnownNeuronConfigKeys().begin(), KnownNeuronConfigKeys().end());
  for (const Row& r : kRows) EXPECT_TRUE(rows.insert(r.key).second) << "duplicate row " << r.key;
  EXPECT_EQ(rows, keys);
}

TEST(NeuronConfigKeysTest, DefaultsAreNxdis) {
  json resolved = Resolve(json::object());
  for (const Row& r : kRows) EXPECT_EQ(resolved[r.key], json::parse(r.default_value)) << r.key;
}

TEST(NeuronConfigKeysTest, NonDefaultValuesAreHonouredReportedOrRefused) {
  for (const Row& r : kRows) {
    json in = json::parse(r.with);
    in[r.key] = json::parse(r.value);
    auto c = NeuronConfig::FromJson(in.dump());
    if (*r.value_error != '\0') {
      ASSERT_FALSE(c.ok()) << r.key;
      EXPECT_EQ(c.status().message(), r.value_error) << r.key;
      continue;
    }
    ASSERT_TRUE(c.ok()) << r.key << ": " << c.status();
    const KeySpec* spec = FindKey(NeuronConfigSchema(), r.key);
    json resolved = json::parse(c->ToJson());
    // Nested objects come back completed with defaults, bucket lists sorted; the rest as given.
    if (spec->fields == nullptr && !std::string(r.key).ends_with("_buckets")) {
      EXPECT_EQ(resolved[r.key], in[r.key]) << r.key;
    }
    // A no-effect key given a non-default value is reported; an honoured one never is.
    const bool reported = std::count(c->no_effect_keys.begin(), c->no_effect_keys.end(), r.key);
    EXPECT_EQ(reported, spec->support == Support::kNoEffect && !spec->derived_default) << r.key;
    EXPECT_NE(spec->support, Support::kUnsupported) << r.key << " accepted a non-default value";
  }
}

TEST(NeuronConfigKeysTest, InvalidValuesGetExactMessages) {
  for (const Row& r : kRows) {
    json in = json::parse(r.with);
    in[r.key] = json::parse(r.bad);
    EXPECT_EQ(ErrorOf(in), r.bad_error) << r.key;
  }
}

// The honoured keys reach the struct the worker reads.
TEST(NeuronConfigKeysTest, HonouredKeysReachTheWorker) {
  auto c = NeuronConfig::FromJson(R"({"batch_size": 4, "seq_len": 256, "max_context_length": 64,
      "max_length": 192, "torch_dtype": "torch.float16", "fused_qkv": true,
      "save_sharded_checkpoint": false, "skip_warmup": true, "enable_bucketing": true,
      "context_encoding_buckets": [64, 32], "token_generation_buckets": [192],
      "is_block_kv_layout": true, "pa_block_size": 16, "pa_num_blocks": 40,
      "is_prefix_caching": true, "prefix_buckets": [64],
      "chunked_prefill_config": {"max_num_seqs": 3, "tkg_model_enabled": false}})");
  EXPECT_FALSE(c.ok());  // tkg_model_enabled=false needs batch_size 1 (NxDI's assertion)
  EXPECT_EQ(c.status().message(),
            "override_neuron_config: chunked_prefill_config.tkg_model_enabled=false requires "
            "batch_size 1, got 4");
  c = NeuronConfig::FromJson(R"({"batch_size": 4, "seq_len": 256, "max_context_length": 64,
      "max_length": 192, "torch_dtype": "torch.float16", "fused_qkv": true,
      "save_sharded_checkpoint": false, "skip_warmup": true, "enable_bucketing": true,
      "context_encoding_buckets": [64, 32], "token_generation_buckets": [192],
      "is_block_kv_layout": true, "pa_block_size": 16, "pa_num_blocks": 40,
      "is_prefix_caching": true, "prefix_buckets": [64],
      "chunked_prefill_config": {"max_num_seqs": 3}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->batch_size, 4);
  EXPECT_EQ(c->seq_len, 256);
  EXPECT_EQ(c->max_context_length, 64);
  EXPECT_EQ(c->max_length, 192);
  EXPECT_EQ(c->torch_dtype, c10::ScalarType::Half);
  EXPECT_TRUE(c->fused_qkv);
  EXPECT_FALSE(c->save_sharded_checkpoint);
  EXPECT_TRUE(c->skip_warmup);
  EXPECT_EQ(c->buckets.context_encoding, (std::vector<int64_t>{32, 64}));  // sorted, as NxDI
  EXPECT_EQ(c->buckets.token_generation, (std::vector<int64_t>{192}));
  EXPECT_EQ(c->buckets.prefix_context_encoding,
            (std::vector<Bucket2D>{{32, 0}, {32, 64}, {64, 0}, {64, 64}}));
  EXPECT_EQ(c->buckets.prefix_token_generation, (std::vector<Bucket2D>{{1, 192}}));
  EXPECT_EQ(c->pa_block_size, 16);
  EXPECT_EQ(c->pa_num_blocks, 40);
  EXPECT_TRUE(c->is_prefix_caching);
  ASSERT_TRUE(c->is_chunked_prefill());
  EXPECT_EQ(c->chunked_prefill->max_num_seqs, 3);
  EXPECT_TRUE(c->chunked_prefill->tkg_model_enabled);
  json resolved = json::parse(c->ToJson());
  EXPECT_EQ(resolved["torch_dtype"], "float16");  // dtype strings without "torch."
  EXPECT_EQ(resolved["is_chunked_prefill"], true);
  EXPECT_EQ(resolved["max_new_tokens"], 192);  // seq_len - max_context_length
}

TEST(NeuronConfigKeysTest, NestedConfigsAreCheckedKeyByKey) {
  EXPECT_EQ(ErrorOf(R"({"on_device_sampling_config": {"top_kk": 5}})"_json),
            "override_neuron_config: unknown key 'on_device_sampling_config.top_kk' (did you mean "
            "'on_device_sampling_config.top_k'?); see the NeuronConfig table in the README for "
            "every key this backend knows");
  EXPECT_EQ(ErrorOf(R"({"on_device_sampling_config": {"top_p": 1.5}})"_json),
            "override_neuron_config: on_device_sampling_config.top_p must be in (0, 1], got 1.5");
  EXPECT_EQ(ErrorOf(R"({"on_device_sampling_config": {"top_k": 300}})"_json),
            "override_neuron_config: on_device_sampling_config.top_k must be -1 or in [0, "
            "global_topk=256], got 300");
  EXPECT_EQ(ErrorOf(R"({"chunked_prefill_config": {"tkg_model_enabled": 1}})"_json),
            "override_neuron_config: 'chunked_prefill_config.tkg_model_enabled' must be true or "
            "false, got 1");
  EXPECT_EQ(ErrorOf(R"({"is_block_kv_layout": true, "chunked-prefill-config": {"kernel-q-tile-size": 64}})"_json), "");
}

TEST(NeuronConfigKeysTest, CrossKeyRulesNameBothValues) {
  struct Case { const char* json; const char* error; };
  for (const Case& k : {
           Case{R"({"seq_len": 256, "max_context_length": 200, "max_length": 100})",
                "override_neuron_config: max_context_length (200) must not exceed max_length (100)"},
           Case{R"({"seq_len": 128, "max_length": 256})",
                "override_neuron_config: max_length (256) must not exceed seq_len (128)"},
           Case{R"({"enable_bucketing": true, "token_generation_buckets": [64, 256]})",
                "override_neuron_config: the largest token_generation_buckets entry (256) must "
                "not exceed max_length (128)"},
           Case{R"({"enable_bucketing": true, "context_encoding_buckets": []})",
                "override_neuron_config: context_encoding_buckets must not be empty"},
           Case{R"({"enable_bucketing": true, "prefix_buckets": [64]})",
                "override_neuron_config: prefix_buckets needs is_prefix_caching=true"},
           Case{R"({"chunked_prefill_config": {}})",
                "override_neuron_config: chunked_prefill_config requires is_block_kv_layout=true"},
           Case{R"({"k_cache_transposed": true, "is_block_kv_layout": true})",
                "override_neuron_config: k_cache_transposed cannot be combined with "
                "is_block_kv_layout"},
           Case{R"({"attention_dtype": "float32"})",
                "override_neuron_config: attention_dtype \"float32\" differs from torch_dtype "
                "\"bfloat16\", which needs cast_type \"as-declared\""},
           Case{R"({"qkv_kernel_enabled": true})",
                "override_neuron_config: qkv_kernel_enabled=true requires fused_qkv=true"},
           Case{R"({"capacity_factor": 0})",
                "override_neuron_config: capacity_factor must be > 0 (or null for no token "
                "dropping), got 0"},
           Case{R"({"strided_context_parallel_kernel_enabled": true})",
                "override_neuron_config: strided_context_parallel_kernel_enabled=true requires "
                "cp_degree > 1"},
       }) {
    EXPECT_EQ(ErrorOf(json::parse(k.json)), k.error) << k.json;
  }
}

}  // namespace
}  // namespace vnp
