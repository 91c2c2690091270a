#include "weights/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <ATen/ops/from_blob.h>
#include <absl/cleanup/cleanup.h>
#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "kernels/huge_pages.h"

namespace vnp {

// A safetensors file read whole into huge-page memory (kernels/huge_pages.h): the decode step
// streams every weight once, and from a file mapping that stream would walk 4 KB page tables.
// Reading costs what first touching a mapping did (the bytes come from the page cache either
// way) and the peak RSS is the same: a mapping's touched pages count towards RSS too.
class LoadedFile {
 public:
  static absl::StatusOr<std::shared_ptr<LoadedFile>> Read(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
    absl::Cleanup close_fd = [fd] { ::close(fd); };
    struct stat st {};
    if (::fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat("cannot stat ", path));
    const size_t size = static_cast<size_t>(st.st_size);
    auto buffer = HugePageBuffer(size);
    if (!buffer.ok()) {
      return absl::Status(buffer.status().code(),
                          absl::StrCat("cannot load ", path, ": ", buffer.status().message()));
    }
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::pread(fd, buffer->get() + done, size - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string why = n < 0 ? strerror(errno) : "the file shrank while being read";
        return absl::DataLossError(absl::StrCat("cannot read ", path, ": ", why));
      }
      done += static_cast<size_t>(n);
    }
    return std::shared_ptr<LoadedFile>(new LoadedFile(*std::move(buffer), size));
  }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  LoadedFile(std::shared_ptr<char> data, size_t size) : data_(std::move(data)), size_(size) {}
  std::shared_ptr<char> data_;
  size_t size_;
};

namespace {

using nlohmann::json;

absl::StatusOr<std::pair<c10::ScalarType, size_t>> ParseDtype(const std::string& s) {
  if (s == "F32") return std::make_pair(c10::ScalarType::Float, size_t{4});
  if (s == "BF16") return std::make_pair(c10::ScalarType::BFloat16, size_t{2});
  if (s == "F16") return std::make_pair(c10::ScalarType::Half, size_t{2});
  if (s == "I64") return std::make_pair(c10::ScalarType::Long, size_t{8});
  if (s == "I32") return std::make_pair(c10::ScalarType::Int, size_t{4});
  if (s == "I8") return std::make_pair(c10::ScalarType::Char, size_t{1});
  if (s == "U8") return std::make_pair(c10::ScalarType::Byte, size_t{1});
  if (s == "BOOL") return std::make_pair(c10::ScalarType::Bool, size_t{1});
  return absl::InvalidArgumentError(absl::StrCat("unsupported safetensors dtype ", s));
}

absl::StatusOr<std::string> DtypeCode(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return std::string("F32");
    case c10::ScalarType::BFloat16: return std::string("BF16");
    case c10::ScalarType::Half: return std::string("F16");
    case c10::ScalarType::Long: return std::string("I64");
    case c10::ScalarType::Int: return std::string("I32");
    default:
      return absl::InvalidArgumentError(absl::StrCat("cannot write dtype ", c10::toString(t)));
  }
}

}  // namespace

absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto code = DtypeCode(t.scalar_type());
    if (!code.ok()) return code.status();
    at::Tensor c = t.contiguous();
    const size_t bytes = c.numel() * c.element_size();
    header[name] = {{"dtype", *code}, {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(c));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << text;
  for (const at::Tensor& c : data) {
    out.write(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  }
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status Checkpoint::AddFile(const std::string& path) {
  auto loaded = LoadedFile::Read(path);
  if (!loaded.ok()) return loaded.status();
  std::shared_ptr<LoadedFile> file = *loaded;
  auto corrupt = [&](std::string_view why) {
    return absl::DataLossError(absl::StrCat(path, ": corrupt safetensors file: ", std::string(why)));
  };
  if (file->size() < 8) return corrupt("shorter than its 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file->data(), 8);  // little-endian, as the format specifies
  if (header_len > file->size() - 8) return corrupt("header length past the end of the file");
  json header = json::parse(file->data() + 8, file->data() + 8 + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return corrupt("header is not a JSON object");
  const size_t data_begin = 8 + header_len;
  const size_t data_size = file->size() - data_begin;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets")) {
      return corrupt(absl::StrCat("tensor '", name, "' lacks dtype/shape/data_offsets"));
    }
    try {
      auto dt = ParseDtype(info["dtype"].get<std::string>());
      if (!dt.ok()) return corrupt(absl::StrCat("tensor '", name, "': ", dt.status().message()));
      Entry e{file, dt->first, info["shape"].get<std::vector<int64_t>>(),
              info["data_offsets"][0].get<size_t>(), info["data_offsets"][1].get<size_t>()};
      size_t numel = 1;
      for (int64_t d : e.shape) {
        if (d < 0) return corrupt(absl::StrCat("tensor '", name, "' has a negative dimension"));
        numel *= static_cast<size_t>(d);
      }
      if (e.begin > e.end || e.end > data_size || e.end - e.begin != numel * dt->second) {
        return corrupt(absl::StrCat("tensor '", name, "' has data_offsets [", e.begin, ", ", e.end,
                                    ") that do not match its shape or the file size"));
      }
      e.begin += data_begin;
      e.end += data_begin;
      entries_[name] = std::move(e);
    } catch (const json::exception& ex) {
      return corrupt(absl::StrCat("tensor '", name, "': ", ex.what()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> Checkpoint::OpenFile(const std::string& path) {
  Checkpoint c;
  if (auto s = c.AddFile(path); !s.ok()) return s;
  return c;
}

absl::StatusOr<Checkpoint> Checkpoint::Open(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (!fs::exists(index)) {
    fs::path single = fs::path(dir) / "model.safetensors";
    if (!fs::exists(single)) {
      return absl::NotFoundError(
          absl::StrCat(dir, ": no model.safetensors or model.safetensors.index.json"));
    }
    return OpenFile(single.string());
  }
  std::ifstream in(index);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return absl::DataLossError(absl::StrCat(index.string(), ": malformed index (no weight_map)"));
  }
  std::set<std::string> shards;
  for (const auto& [name, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) return absl::DataLossError(absl::StrCat(index.string(), ": bad shard"));
    shards.insert(shard.get<std::string>());
  }
  Checkpoint c;
  for (const auto& shard : shards) {
    if (auto s = c.AddFile((fs::path(dir) / shard).string()); !s.ok()) return s;
  }
  for (const auto& [name, shard] : j["weight_map"].items()) {
    if (!c.Has(name)) {
      return absl::DataLossError(absl::StrCat(index.string(), ": tensor '", name,
                                              "' is listed for ", shard.get<std::string>(),
                                              " but that shard does not contain it"));
    }
  }
  return c;
}

absl::StatusOr<at::Tensor> Checkpoint::Get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("checkpoint has no tensor '", name, "'"));
  const Entry& e = it->second;
  auto keep_alive = e.file;
  // Tensors share the loaded file: callers copy before writing (from_blob wants a mutable
  // pointer, the views are meant read-only).
  void* ptr = const_cast<char*>(e.file->data() + e.begin);
  return at::from_blob(ptr, e.shape, [keep_alive](void*) {}, at::TensorOptions().dtype(e.dtype));
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : entries_) names.push_back(name);
  return names;
}

}  // namespace vnp
