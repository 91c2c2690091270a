#include "weights/decoder_weights.h"

#include <set>

#include <ATen/ATen.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include "weights/safetensors.h"

namespace vnp {
namespace {

class Reader {
 public:
  Reader(const Checkpoint& ckpt, c10::ScalarType dtype) : ckpt_(ckpt), dtype_(dtype) {}

  absl::StatusOr<at::Tensor> Required(const std::string& name, std::vector<int64_t> shape) {
    used_.insert(name);
    auto t = ckpt_.Get(name);
    if (!t.ok()) return t.status();
    if (t->sizes() != at::IntArrayRef(shape)) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has shape [",
                                                     absl::StrJoin(t->sizes(), ", "),
                                                     "], expected [", absl::StrJoin(shape, ", "), "]"));
    }
    if (t->scalar_type() == dtype_) return *t;
    converted_ = true;
    return t->to(dtype_);
  }

  absl::StatusOr<at::Tensor> Optional(const std::string& name, std::vector<int64_t> shape,
                                      bool wanted) {
    if (!wanted) return at::Tensor();
    return Required(name, std::move(shape));
  }

  bool converted() const { return converted_; }
  void MarkConverted() { converted_ = true; }

  // Tensors present in the checkpoint that nothing read: a sign of a different architecture.
  std::vector<std::string> Unused() const {
    std::vector<std::string> out;
    for (const auto& n : ckpt_.Names()) {
      // HF writes these buffers in some versions; they carry no weights.
      if (n.find("rotary_emb.inv_freq") != std::string::npos) continue;
      if (!used_.count(n)) out.push_back(n);
    }
    return out;
  }

 private:
  const Checkpoint& ckpt_;
  c10::ScalarType dtype_;
  std::set<std::string> used_;
  bool converted_ = false;
};

#define VNP_ASSIGN(lhs, expr)                 \
  {                                           \
    auto _v = (expr);                         \
    if (!_v.ok()) return _v.status();         \
    lhs = std::move(*_v);                     \
  }

// Fuses separate q/k/v into one matrix, or splits a fused one (as views), so the layer has
// the layout `fused` asks for whichever layout the checkpoint stored.
void SetQkvLayout(LayerWeights& l, bool fused, std::vector<int64_t> sizes) {
  if (fused && !l.qkv_proj.defined()) {
    l.qkv_proj = at::cat({l.q_proj, l.k_proj, l.v_proj}, 0);
    if (l.q_bias.defined()) l.qkv_bias = at::cat({l.q_bias, l.k_bias, l.v_bias}, 0);
    l.q_proj = l.k_proj = l.v_proj = l.q_bias = l.k_bias = l.v_bias = at::Tensor();
  } else if (!fused && l.qkv_proj.defined()) {
    auto w = l.qkv_proj.split_with_sizes(sizes, 0);
    l.q_proj = w[0], l.k_proj = w[1], l.v_proj = w[2];
    if (l.qkv_bias.defined()) {
      auto b = l.qkv_bias.split_with_sizes(sizes, 0);
      l.q_bias = b[0], l.k_bias = b[1], l.v_bias = b[2];
    }
    l.qkv_proj = l.qkv_bias = at::Tensor();
  }
}

// Router and experts of one sparse layer under `p` ("model.layers.N.mlp." and the like).
// HF checkpoints store one tensor per expert and projection; they are stacked here.
absl::StatusOr<MoeWeights> LoadExperts(Reader& r, const Checkpoint& ckpt, const ModelConfig& c,
                                       const std::string& p) {
  const MoeConfig& m = c.moe;
  const int64_t E = m.num_experts, I = m.intermediate_size, H = c.hidden_size;
  MoeWeights w;
  VNP_ASSIGN(w.router, r.Required(p + "gate.weight", {E, H}));
  if (ckpt.Has(p + "experts.gate_up_proj")) {  // a prepared checkpoint
    VNP_ASSIGN(w.gate_up, r.Required(p + "experts.gate_up_proj", {E, 2 * I, H}));
    VNP_ASSIGN(w.down, r.Required(p + "experts.down_proj", {E, H, I}));
    return w;
  }
  std::vector<at::Tensor> gate_up(E), down(E);
  for (int64_t e = 0; e < E; ++e) {
    const std::string x = absl::StrCat(p, "experts.", e, ".");
    at::Tensor g, u;
    VNP_ASSIGN(g, r.Required(x + m.gate_name + ".weight", {I, H}));
    VNP_ASSIGN(u, r.Required(x + m.up_name + ".weight", {I, H}));
    VNP_ASSIGN(down[e], r.Required(x + m.down_name + ".weight", {H, I}));
    gate_up[e] = at::cat({g, u}, 0);
  }
  w.gate_up = at::stack(gate_up);
  w.down = at::stack(down);
  r.MarkConverted();
  return w;
}

}  // namespace

absl::StatusOr<DecoderWeights> DecoderWeights::Load(const Checkpoint& ckpt,
                                                    const ModelConfig& c,
                                                    c10::ScalarType dtype, bool fused_qkv) {
  Reader r(ckpt, dtype);
  DecoderWeights w;
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t q_out = c.num_heads * D, kv_out = c.num_kv_heads * D;
  const int64_t qkv_out = q_out + 2 * kv_out;
  VNP_ASSIGN(w.embed_tokens, r.Required("model.embed_tokens.weight", {c.vocab_size, H}));
  w.layers.resize(c.num_layers);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    LayerWeights& l = w.layers[i];
    VNP_ASSIGN(l.input_norm, r.Required(p + "input_layernorm.weight", {H}));
    VNP_ASSIGN(l.post_attention_norm, r.Required(p + "post_attention_layernorm.weight", {H}));
    if (ckpt.Has(p + "self_attn.qkv_proj.weight")) {  // a prepared checkpoint
      VNP_ASSIGN(l.qkv_proj, r.Required(p + "self_attn.qkv_proj.weight", {qkv_out, H}));
      VNP_ASSIGN(l.qkv_bias, r.Optional(p + "self_attn.qkv_proj.bias", {qkv_out}, c.qkv_bias));
    } else {
      VNP_ASSIGN(l.q_proj, r.Required(p + "self_attn.q_proj.weight", {q_out, H}));
      VNP_ASSIGN(l.k_proj, r.Required(p + "self_attn.k_proj.weight", {kv_out, H}));
      VNP_ASSIGN(l.v_proj, r.Required(p + "self_attn.v_proj.weight", {kv_out, H}));
      VNP_ASSIGN(l.q_bias, r.Optional(p + "self_attn.q_proj.bias", {q_out}, c.qkv_bias));
      VNP_ASSIGN(l.k_bias, r.Optional(p + "self_attn.k_proj.bias", {kv_out}, c.qkv_bias));
      VNP_ASSIGN(l.v_bias, r.Optional(p + "self_attn.v_proj.bias", {kv_out}, c.qkv_bias));
    }
    w.converted |= fused_qkv && !l.qkv_proj.defined();
    SetQkvLayout(l, fused_qkv, {q_out, kv_out, kv_out});
    VNP_ASSIGN(l.o_proj, r.Required(p + "self_attn.o_proj.weight", {H, q_out}));
    VNP_ASSIGN(l.o_bias, r.Optional(p + "self_attn.o_proj.bias", {H}, c.o_bias));
    VNP_ASSIGN(l.q_norm, r.Optional(p + "self_attn.q_norm.weight", {D}, c.qk_norm));
    VNP_ASSIGN(l.k_norm, r.Optional(p + "self_attn.k_norm.weight", {D}, c.qk_norm));
    if (c.sparse_layer[i]) {
      auto moe = LoadExperts(r, ckpt, c, p + c.moe.prefix + ".");
      if (!moe.ok()) return moe.status();
      l.moe = *std::move(moe);
      continue;
    }
    VNP_ASSIGN(l.gate_proj, r.Required(p + "mlp.gate_proj.weight", {I, H}));
    VNP_ASSIGN(l.up_proj, r.Required(p + "mlp.up_proj.weight", {I, H}));
    VNP_ASSIGN(l.down_proj, r.Required(p + "mlp.down_proj.weight", {H, I}));
    VNP_ASSIGN(l.gate_bias, r.Optional(p + "mlp.gate_proj.bias", {I}, c.mlp_bias));
    VNP_ASSIGN(l.up_bias, r.Optional(p + "mlp.up_proj.bias", {I}, c.mlp_bias));
    VNP_ASSIGN(l.down_bias, r.Optional(p + "mlp.down_proj.bias", {H}, c.mlp_bias));
  }
  VNP_ASSIGN(w.final_norm, r.Required("model.norm.weight", {H}));
  // Tied models may still store lm_head.weight (equal to the embedding); untied ones must.
  if (!c.tie_word_embeddings || ckpt.Has("lm_head.weight")) {
    VNP_ASSIGN(w.lm_head, r.Required("lm_head.weight", {c.vocab_size, H}));
  }
  if (c.tie_word_embeddings) w.lm_head = w.embed_tokens;
  w.converted |= r.converted();
  if (auto unused = r.Unused(); !unused.empty()) {
    const size_t n = unused.size();
    if (n > 8) unused.resize(8);
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint has ", n, " tensor(s) that ", c.architecture, " does not use: ",
        absl::StrJoin(unused, ", "), n > 8 ? ", ..." : ""));
  }
  return w;
}

std::vector<std::pair<std::string, at::Tensor>> DecoderWeights::Named(const ModelConfig& c) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto add = [&](std::string name, const at::Tensor& t) {
    if (t.defined()) out.emplace_back(std::move(name), t);
  };
  add("model.embed_tokens.weight", embed_tokens);
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerWeights& l = layers[i];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    add(p + "input_layernorm.weight", l.input_norm);
    add(p + "post_attention_layernorm.weight", l.post_attention_norm);
    add(p + "self_attn.qkv_proj.weight", l.qkv_proj);
    add(p + "self_attn.qkv_proj.bias", l.qkv_bias);
    add(p + "self_attn.q_proj.weight", l.q_proj);
    add(p + "self_attn.k_proj.weight", l.k_proj);
    add(p + "self_attn.v_proj.weight", l.v_proj);
    add(p + "self_attn.q_proj.bias", l.q_bias);
    add(p + "self_attn.k_proj.bias", l.k_bias);
    add(p + "self_attn.v_proj.bias", l.v_bias);
    add(p + "self_attn.o_proj.weight", l.o_proj);
    add(p + "self_attn.o_proj.bias", l.o_bias);
    add(p + "self_attn.q_norm.weight", l.q_norm);
    add(p + "self_attn.k_norm.weight", l.k_norm);
    if (l.moe.router.defined()) {
      const std::string m = p + c.moe.prefix + ".";
      add(m + "gate.weight", l.moe.router);
      add(m + "experts.gate_up_proj", l.moe.gate_up);
      add(m + "experts.down_proj", l.moe.down);
    }
    add(p + "mlp.gate_proj.weight", l.gate_proj);
    add(p + "mlp.up_proj.weight", l.up_proj);
    add(p + "mlp.down_proj.weight", l.down_proj);
    add(p + "mlp.gate_proj.bias", l.gate_bias);
    add(p + "mlp.up_proj.bias", l.up_bias);
    add(p + "mlp.down_proj.bias", l.down_bias);
  }
  add("model.norm.weight", final_norm);
  if (!c.tie_word_embeddings) add("lm_head.weight", lm_head);
  return out;
}

}  // namespace vnp
