#include "model/module_probe.h"

#include <filesystem>

#include <ATen/ATen.h>
#include <absl/strings/str_cat.h>

#include "model/rms_norm.h"
#include "weights/safetensors.h"

namespace vnp {

absl::StatusOr<std::unique_ptr<ModuleProbe>> ModuleProbe::Open(const std::string& model_dir,
                                                               c10::ScalarType dtype,
                                                               int64_t max_positions) {
  auto mc = ModelConfig::FromFile((std::filesystem::path(model_dir) / "config.json").string());
  if (!mc.ok()) return mc.status();
  auto ckpt = Checkpoint::Open(model_dir);
  if (!ckpt.ok()) return ckpt.status();
  auto weights = DecoderWeights::Load(*ckpt, *mc, dtype);
  if (!weights.ok()) return weights.status();
  const int64_t blocks = (max_positions + kBlockSize - 1) / kBlockSize;
  KvCache kv(mc->num_layers, blocks, mc->num_kv_heads, kBlockSize, mc->head_dim, dtype);
  Decoder decoder(*mc, *std::move(weights), max_positions);
  return std::unique_ptr<ModuleProbe>(new ModuleProbe(std::move(decoder), std::move(kv)));
}

absl::Status ModuleProbe::CheckLayer(int64_t layer, bool sparse_wanted) const {
  if (layer < 0 || layer >= config().num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer must be in [0, ", config().num_layers, "), got ", layer));
  }
  if (sparse_wanted && !config().sparse_layer[layer]) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " has no experts"));
  }
  return absl::OkStatus();
}

absl::StatusOr<at::Tensor> ModuleProbe::Norm(int64_t layer, const std::string& which,
                                             const at::Tensor& x) const {
  const DecoderWeights& w = decoder_.weights();
  const double eps = config().rms_norm_eps;
  if (which == "final") return RmsNorm(x, w.final_norm, eps);
  if (auto s = CheckLayer(layer); !s.ok()) return s;
  const LayerWeights& l = w.layers[layer];
  const at::Tensor* weight = which == "input"            ? &l.input_norm
                             : which == "post_attention" ? &l.post_attention_norm
                             : which == "q"              ? &l.q_norm
                             : which == "k"              ? &l.k_norm
                                                         : nullptr;
  if (weight == nullptr || !weight->defined()) {
    return absl::InvalidArgumentError(absl::StrCat("no '", which, "' norm in layer ", layer));
  }
  return RmsNorm(x, *weight, eps);
}

std::pair<at::Tensor, at::Tensor> ModuleProbe::Rope(const at::Tensor& positions, int64_t seq_len,
                                                    c10::ScalarType dtype) const {
  ForwardInput f;
  f.positions = positions.to(at::kLong);
  f.attention.query_start = {0, positions.numel()};
  f.attention.seq_lens = {seq_len};
  auto [cos, sin] = decoder_.RopeTables(f, dtype);
  return {cos.squeeze(1), sin.squeeze(1)};
}

absl::StatusOr<at::Tensor> ModuleProbe::Attention(int64_t layer, const at::Tensor& x,
                                                  int64_t start) {
  if (auto s = CheckLayer(layer); !s.ok()) return s;
  const int64_t T = x.size(0), len = start + T;
  if (start < 0 || len > kv_.num_blocks() * kBlockSize) {
    return absl::InvalidArgumentError(absl::StrCat("positions [", start, ", ", len,
                                                   ") do not fit the probe's KV cache"));
  }
  ForwardInput f;
  f.positions = at::arange(start, len, at::kLong);
  // Block b of the sequence is cache block b, so a position is its own slot.
  f.slots = SlotIndex::FromSlotMapping(f.positions, kBlockSize);
  f.attention.query_start = {0, T};
  f.attention.seq_lens = {len};
  f.attention.block_tables = at::arange(kv_.num_blocks(), at::kLong).unsqueeze(0);
  return decoder_.Attention(layer, x, f, decoder_.RopeTables(f, x.scalar_type()), kv_);
}

absl::StatusOr<at::Tensor> ModuleProbe::Mlp(int64_t layer, const at::Tensor& x) const {
  if (auto s = CheckLayer(layer); !s.ok()) return s;
  return decoder_.Mlp(layer, x);
}

absl::StatusOr<MoeRouting> ModuleProbe::Route(int64_t layer, const at::Tensor& x) const {
  if (auto s = CheckLayer(layer, /*sparse_wanted=*/true); !s.ok()) return s;
  return RouteTokens(config().moe, decoder_.weights().layers[layer].moe.router, x);
}

absl::StatusOr<at::Tensor> ModuleProbe::Experts(int64_t layer, const at::Tensor& x,
                                                const MoeRouting& r) const {
  if (auto s = CheckLayer(layer, /*sparse_wanted=*/true); !s.ok()) return s;
  return RunExperts(decoder_.weights().layers[layer].moe, x, r);
}

}  // namespace vnp
