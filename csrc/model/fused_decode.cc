#include "model/fused_decode.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "kernels/cpu_features.h"
#include "kernels/decode_attention.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/task_phases.h"
#include "model/decoder.h"

namespace vnp {
namespace {

bool SameCpuDtype(const at::Tensor& t, c10::ScalarType dtype) {
  return !t.defined() || (t.device().is_cpu() && t.scalar_type() == dtype && t.is_contiguous());
}

// Row m's pointer in a contiguous [M, ...] tensor.
char* Row(const at::Tensor& t, int64_t m) {
  return static_cast<char*>(t.data_ptr()) + m * t.stride(0) * t.element_size();
}

}  // namespace

// The buffers and per-layer task lists for M rows, kept from step to step while the batch size
// and the KV cache stay (no allocation per step beyond the attention plans and the phase list).
// Every buffer is written by one phase's tasks and read by the next phases'; no two tasks of a
// phase write the same bytes.
class FusedDecodeStep {
 public:
  FusedDecodeStep(const ModelConfig& c, const DecoderWeights& w, const at::Tensor& h, KvCache& kv)
      : c_(c), dtype_(h.scalar_type()), M_(h.size(0)), D_(c.head_dim), kv_(&kv),
        keys0_(kv.keys(0).data_ptr()) {
    const at::TensorOptions o = h.options();
    const int64_t q_out = c.num_heads * D_, kv_out = c.num_kv_heads * D_;
    x_ = at::empty({M_, c.hidden_size}, o);
    q_ = at::empty({M_, c.num_heads, D_}, o);
    attn_ = at::empty({M_, c.num_heads, D_}, o);
    o_ = at::empty({M_, c.hidden_size}, o);
    if (w.layers[0].qkv_proj.defined()) {
      qkv_ = at::empty({M_, q_out + 2 * kv_out}, o);
    } else {
      qkv_parts_ = {at::empty({M_, q_out}, o), at::empty({M_, kv_out}, o),
                    at::empty({M_, kv_out}, o)};
    }
    gate_ = at::empty({M_, c.intermediate_size}, o);
    up_ = at::empty({M_, c.intermediate_size}, o);
    down_ = at::empty({M_, c.hidden_size}, o);
    rows_.resize(M_);
    for (int64_t m = 0; m < M_; ++m) rows_[m] = m;
    // One fp32 scratch for every GEMV (they run one phase after another): the widest one's.
    const int64_t widest = std::max({q_out + 2 * kv_out, c.hidden_size, 2 * c.intermediate_size});
    y_.reset(new float[M_ * widest]);
    layers_.resize(c.num_layers);
    for (int64_t l = 0; l < c.num_layers; ++l) Plan(w, kv, l);
  }

  // Made for this many rows of this dtype, and this KV cache (whose tensors the attention tasks
  // hold, so an equal address is the same storage).
  bool Fits(const at::Tensor& h, const KvCache& kv) const {
    return h.size(0) == M_ && h.scalar_type() == dtype_ && &kv == kv_ &&
           kv.keys(0).data_ptr() == keys0_;
  }

  void Run(const DecoderWeights& w, const ForwardInput& in,
           const std::pair<at::Tensor, at::Tensor>& rope, at::Tensor& h) {
    w_ = &w, h_ = &h;
    cos_ = rope.first.contiguous(), sin_ = rope.second.contiguous();
    // Each row's KV slot, or -1 (padding: not written).
    slot_block_.assign(M_, -1), slot_offset_.assign(M_, 0);
    auto as_long = [](const at::Tensor& t) {
      return t.scalar_type() == at::kLong && t.is_contiguous() ? t : t.to(at::kLong).contiguous();
    };
    at::Tensor blocks = as_long(in.slots.blocks), offsets = as_long(in.slots.offsets);
    at::Tensor rows = in.slots.all_rows ? at::Tensor() : as_long(in.slots.rows);
    for (int64_t i = 0; i < blocks.numel(); ++i) {
      const int64_t r = in.slots.all_rows ? i : rows.const_data_ptr<int64_t>()[i];
      slot_block_[r] = blocks.const_data_ptr<int64_t>()[i];
      slot_offset_[r] = offsets.const_data_ptr<int64_t>()[i];
    }
    for (int64_t l = 0; l < c_.num_layers; ++l) {
      layers_[l].attention->Plan(in.attention, rows_, c_.sliding_window[l]);
    }
    std::vector<TaskPhase> phases;
    // Before layer 0: its input norm of the embeddings.
    phases.push_back({M_, [this](int64_t m, int64_t) {
                        NormRow(m, nullptr, w_->layers[0].input_norm, *layers_[0].qkv);
                      }});
    for (int64_t l = 0; l < c_.num_layers; ++l) AddPhases(l, phases);
    RunTaskPhases(phases);
  }

 private:
  struct Layer {
    std::unique_ptr<GemvTasks> qkv, o, gate_up, down;
    std::unique_ptr<DecodeAttentionTasks> attention;
    // gate/up task b: intermediate rows [mlp_bounds[b], mlp_bounds[b + 1]).
    std::vector<int64_t> mlp_bounds;
  };

  // x[m] = norm(h[m] (+= add[m])); then the next GEMV reads row m.
  void NormRow(int64_t m, const at::Tensor* add, const at::Tensor& norm, GemvTasks& next) {
    RmsNormRow(dtype_, Row(*h_, m), add ? Row(*add, m) : nullptr, norm.const_data_ptr(), Row(x_, m),
               c_.hidden_size, c_.rms_norm_eps);
    next.LoadRows(m, m + 1);
  }

  void Plan(const DecoderWeights& weights, KvCache& kv, int64_t l) {
    const LayerWeights& w = weights.layers[l];
    Layer& L = layers_[l];
    if (w.qkv_proj.defined()) {
      L.qkv = std::make_unique<GemvTasks>(x_, std::vector<Projection>{{w.qkv_proj, w.qkv_bias}},
                                          std::vector<at::Tensor>{qkv_}, y_.get());
    } else {
      L.qkv = std::make_unique<GemvTasks>(
          x_,
          std::vector<Projection>{{w.q_proj, w.q_bias}, {w.k_proj, w.k_bias}, {w.v_proj, w.v_bias}},
          qkv_parts_, y_.get());
    }
    L.attention = std::make_unique<DecodeAttentionTasks>(q_, kv.keys(l), kv.values(l),
                                                         c_.AttentionScale(), attn_);
    const at::Tensor attn2d = attn_.view({M_, c_.num_heads * D_});
    L.o = std::make_unique<GemvTasks>(attn2d, std::vector<Projection>{{w.o_proj, w.o_bias}},
                                      std::vector<at::Tensor>{o_}, y_.get());
    L.gate_up = std::make_unique<GemvTasks>(
        x_, std::vector<Projection>{{w.gate_proj, w.gate_bias}, {w.up_proj, w.up_bias}},
        std::vector<at::Tensor>{gate_, up_}, y_.get());
    // SiLU·up overwrites gate in place, which the down projection reads as its x.
    L.down = std::make_unique<GemvTasks>(gate_, std::vector<Projection>{{w.down_proj, w.down_bias}},
                                         std::vector<at::Tensor>{down_}, y_.get());
    // gate/up tasks: blocks of intermediate rows, as a GEMV of that many rows would cut them,
    // each computing its gate and up rows and then their SiLU·up.
    L.mlp_bounds = GemvTasks::Bounds(c_.intermediate_size);
  }

  // Row m's q heads rotated into q_, its k heads rotated into the KV slot, its v copied there.
  void RopeAndWrite(int64_t l, int64_t m) {
    const LayerWeights& w = w_->layers[l];
    const int64_t H = c_.num_heads, KVH = c_.num_kv_heads, es = h_->element_size();
    char* q = qkv_.defined() ? Row(qkv_, m) : Row(qkv_parts_[0], m);
    char* k = qkv_.defined() ? q + H * D_ * es : Row(qkv_parts_[1], m);
    char* v = qkv_.defined() ? k + KVH * D_ * es : Row(qkv_parts_[2], m);
    if (w.q_norm.defined()) {  // Qwen3: per-head RMSNorm before RoPE, in place
      for (int64_t i = 0; i < H + KVH; ++i) {
        char* head = i < H ? q + i * D_ * es : k + (i - H) * D_ * es;
        const at::Tensor& norm = i < H ? w.q_norm : w.k_norm;
        RmsNormRow(dtype_, head, nullptr, norm.const_data_ptr(), head, D_, c_.rms_norm_eps);
      }
    }
    const char* cos = Row(cos_, m);
    const char* sin = Row(sin_, m);
    RopeRow(dtype_, q, cos, sin, Row(q_, m), H, D_, D_);
    if (slot_block_[m] < 0) return;
    const int64_t BS = kv_->block_size();
    const int64_t at = ((slot_block_[m] * KVH) * BS + slot_offset_[m]) * D_ * es;
    char* kc = static_cast<char*>(kv_->keys(l).data_ptr()) + at;
    char* vc = static_cast<char*>(kv_->values(l).data_ptr()) + at;
    RopeRow(dtype_, k, cos, sin, kc, KVH, D_, BS * D_);
    for (int64_t i = 0; i < KVH; ++i) std::memcpy(vc + i * BS * D_ * es, v + i * D_ * es, D_ * es);
  }

  void AddPhases(int64_t l, std::vector<TaskPhase>& phases) {
    Layer& L = layers_[l];
    phases.push_back({L.qkv->size(), [&L](int64_t b, int64_t) { L.qkv->Run(b); }});
    phases.push_back({M_, [this, l](int64_t m, int64_t) { RopeAndWrite(l, m); }});
    DecodeAttentionTasks& a = *L.attention;
    if (a.merges() > 0) {
      phases.push_back({a.size(), [&a](int64_t t, int64_t thread) { a.Run(t, thread); }});
      phases.push_back({a.merges(), [&a, &L](int64_t t, int64_t) {
                          a.Merge(t);
                          L.o->LoadRows(t, t + 1);  // decode: token t is row t
                        }});
    } else {
      phases.push_back({a.size(), [&a, &L](int64_t t, int64_t thread) {
                          a.Run(t, thread);
                          L.o->LoadRows(t, t + 1);
                        }});
    }
    phases.push_back({L.o->size(), [&L](int64_t b, int64_t) { L.o->Run(b); }});
    const LayerWeights& w = w_->layers[l];
    phases.push_back({M_, [this, &L, &w](int64_t m, int64_t) {
                        NormRow(m, &o_, w.post_attention_norm, *L.gate_up);
                      }});
    const int64_t mlp_tasks = static_cast<int64_t>(L.mlp_bounds.size()) - 1;
    phases.push_back({mlp_tasks, [this, &L](int64_t b, int64_t) {
                        const int64_t lo = L.mlp_bounds[b], hi = L.mlp_bounds[b + 1];
                        L.gate_up->RunRows(0, lo, hi);
                        L.gate_up->RunRows(1, lo, hi);
                        const int64_t es = h_->element_size();
                        for (int64_t m = 0; m < M_; ++m) {
                          char* g = Row(gate_, m) + lo * es;
                          SiluMulRow(dtype_, g, Row(up_, m) + lo * es, g, hi - lo);
                        }
                        L.down->LoadColumns(lo, hi);
                      }});
    phases.push_back({L.down->size(), [&L](int64_t b, int64_t) { L.down->Run(b); }});
    if (l + 1 < c_.num_layers) {
      Layer& next = layers_[l + 1];
      phases.push_back({M_, [this, &next, l](int64_t m, int64_t) {
                          NormRow(m, &down_, w_->layers[l + 1].input_norm, *next.qkv);
                        }});
    } else {
      phases.push_back({M_, [this](int64_t m, int64_t) {
                          RmsNormRow(dtype_, Row(*h_, m), Row(down_, m), nullptr, nullptr,
                                     c_.hidden_size, 0.0);
                        }});
    }
  }

  const ModelConfig c_;
  const c10::ScalarType dtype_;
  const int64_t M_, D_;
  KvCache* const kv_;
  const void* const keys0_;
  const DecoderWeights* w_ = nullptr;  // this step's
  at::Tensor* h_ = nullptr;
  at::Tensor x_, q_, attn_, o_, qkv_, gate_, up_, down_, cos_, sin_;
  std::vector<at::Tensor> qkv_parts_;
  std::vector<int64_t> slot_block_, slot_offset_, rows_;
  std::vector<Layer> layers_;
  std::unique_ptr<float[]> y_;
};

bool FusedDecodeModelSupported(const ModelConfig& config, const DecoderWeights& weights) {
  const c10::ScalarType t = weights.embed_tokens.scalar_type();
  if (config.num_layers == 0 || config.residual_multiplier != 1.0 || !Avx2Format(t) ||
      config.num_heads % config.num_kv_heads != 0) {
    return false;
  }
  const int64_t H = config.hidden_size, attn = config.num_heads * config.head_dim;
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const LayerWeights& w = weights.layers[l];
    if (config.sparse_layer[l] || !w.gate_proj.defined()) return false;
    for (const at::Tensor* n : {&w.input_norm, &w.post_attention_norm, &w.q_norm, &w.k_norm}) {
      if (!SameCpuDtype(*n, t)) return false;
    }
    const bool projections =
        (w.qkv_proj.defined()
             ? GemvTasks::Supports(t, 1, H, {{w.qkv_proj, w.qkv_bias}})
             : GemvTasks::Supports(t, 1, H, {{w.q_proj, w.q_bias}, {w.k_proj, w.k_bias},
                                             {w.v_proj, w.v_bias}})) &&
        GemvTasks::Supports(t, 1, attn, {{w.o_proj, w.o_bias}}) &&
        GemvTasks::Supports(t, 1, H, {{w.gate_proj, w.gate_bias}, {w.up_proj, w.up_bias}}) &&
        GemvTasks::Supports(t, 1, config.intermediate_size, {{w.down_proj, w.down_bias}});
    if (!projections) return false;
  }
  return true;
}

bool FusedDecodeStepSupported(const ModelConfig& config, const DecoderWeights& weights,
                              const ForwardInput& in, const KvCache& kv,
                              const std::pair<at::Tensor, at::Tensor>& rope, const at::Tensor& h) {
  const c10::ScalarType t = h.scalar_type();
  const int64_t M = h.dim() == 2 ? h.size(0) : 0;
  const at::Tensor& w0 = weights.layers[0].down_proj;
  if (M == 0 || !SameCpuDtype(h, t) || M > LinearGemvMaxRows(w0.scalar_type()) ||
      !in.attention.draft_lens.empty() || static_cast<int64_t>(in.attention.seq_lens.size()) != M) {
    return false;
  }
  for (int64_t b = 0; b <= M; ++b) {
    if (in.attention.query_start[b] != b) return false;  // every row one query token
  }
  if (!SameCpuDtype(rope.first, t) || !SameCpuDtype(rope.second, t) ||
      rope.first.numel() != M * config.head_dim || rope.second.numel() != M * config.head_dim) {
    return false;
  }
  for (int64_t l = 0; l < config.num_layers; ++l) {
    if (!SameCpuDtype(kv.keys(l), t) || !SameCpuDtype(kv.values(l), t)) return false;
  }
  return true;
}

void FusedDecodeLayers(const ModelConfig& config, const DecoderWeights& weights,
                       const ForwardInput& in, const std::pair<at::Tensor, at::Tensor>& rope,
                       KvCache& kv, at::Tensor& h, std::shared_ptr<FusedDecodeStep>& workspace) {
  if (!workspace || !workspace->Fits(h, kv)) {
    workspace = std::make_shared<FusedDecodeStep>(config, weights, h, kv);
  }
  workspace->Run(weights, in, rope, h);
}

}  // namespace vnp
