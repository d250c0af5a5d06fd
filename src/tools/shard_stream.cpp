#include "tools/shard_stream.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>

#include "format/safetensors.h"
#include "tensor/dtype.h"
#include "tensor/fp8_quant.h"
#include "tensor/int_quant.h"
#include "tools/page_release.h"
#include "tools/partial_file.h"

namespace dsv3 {
namespace {

// Total buffer budget when chunk_bytes is left to us: small enough for any machine that can
// hold the model's page cache working set, large enough to keep every core busy.
constexpr uint64_t kBufferBudget = uint64_t(256) << 20;

int batch_items_for(const StreamOptions& o, const ThreadPool& pool) {
  if (o.batch_items > 0) return o.batch_items;
  return std::min(64, 2 * pool.size());
}

uint64_t chunk_bytes_for(const StreamOptions& o, const ThreadPool& pool) {
  if (o.chunk_bytes > 0) return o.chunk_bytes;
  // Each slot holds an output buffer and a float staging buffer, in two sets.
  const uint64_t per = kBufferBudget / (4 * static_cast<uint64_t>(batch_items_for(o, pool)));
  return std::clamp<uint64_t>(per, uint64_t(256) << 10, uint64_t(4) << 20);
}

// One unit of work: a band of rows of a converted tensor, or a byte range of a copied one.
struct Item {
  size_t tensor = 0;
  int64_t row0 = 0, row1 = 0;      // DequantFp8 / QuantFp8
  uint64_t byte0 = 0, byte1 = 0;   // Copy / WriteScales
  uint64_t progress = 0;           // input bytes it accounts for
  bool compute = false;
};

struct Slot {
  std::vector<uint8_t> out;  // the item's output bytes
  std::vector<float> stage;  // QuantFp8: the rows as float32
};

void dequant_rows(const PlannedTensor& t, int64_t r0, int64_t r1, uint8_t* out) {
  const int64_t cols = t.shape[1];
  const int64_t scale_cols = (cols + t.block_cols - 1) / t.block_cols;
  const uint8_t* q = t.source->data;
  const auto* scales = reinterpret_cast<const float*>(t.source_scales->data);  // F32, aligned by Checkpoint
  auto* o = reinterpret_cast<uint16_t*>(out);
  // Every value of a block shares one scale, so the block's 256 possible results are computed
  // once (the float32 product e4m3 * scale_inv rounded to nearest-even BF16, exactly what
  // fp8_cast_bf16.py computes) and each element becomes a table lookup.
  std::vector<uint16_t> tables(static_cast<size_t>(scale_cols) * 256);  // [scale_cols][256]
  int64_t tables_for = -1;  // block row the tables were built for
  for (int64_t r = r0; r < r1; ++r) {
    if (r / t.block_rows != tables_for) {
      tables_for = r / t.block_rows;
      const float* srow = scales + tables_for * scale_cols;
      for (int64_t b = 0; b < scale_cols; ++b)
        for (int v = 0; v < 256; ++v) tables[b * 256 + v] = f32_to_bf16(e4m3_to_f32(static_cast<uint8_t>(v)) * srow[b]);
    }
    const uint8_t* qrow = q + r * cols;
    uint16_t* orow = o + (r - r0) * cols;
    for (int64_t c0 = 0, b = 0; c0 < cols; c0 += t.block_cols, ++b) {
      const uint16_t* table = tables.data() + b * 256;
      const int64_t c1 = std::min(cols, c0 + t.block_cols);
      for (int64_t c = c0; c < c1; ++c) orow[c] = table[qrow[c]];
    }
  }
}

void to_float_rows(const TensorRef& t, int64_t r0, int64_t r1, int64_t cols, float* out) {
  const uint64_t first = static_cast<uint64_t>(r0 * cols), n = static_cast<uint64_t>((r1 - r0) * cols);
  switch (t.dtype) {
    case DType::F32: std::memcpy(out, t.data + first * 4, n * 4); break;
    case DType::BF16: {
      const auto* p = reinterpret_cast<const uint16_t*>(t.data) + first;
      for (uint64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(p[i]);
      break;
    }
    case DType::F16: {
      const auto* p = reinterpret_cast<const uint16_t*>(t.data) + first;
      for (uint64_t i = 0; i < n; ++i) out[i] = f16_to_f32(p[i]);
      break;
    }
    default: DSV3_CHECK(false, "QuantFp8 planned for %s", dtype_name(t.dtype));
  }
}

void quant_rows(const PlannedTensor& t, int64_t r0, int64_t r1, Slot& slot, std::vector<float>& scales) {
  const int64_t cols = t.shape[1];
  const int64_t scale_cols = (cols + t.block_cols - 1) / t.block_cols;
  slot.stage.resize(static_cast<size_t>((r1 - r0) * cols));
  to_float_rows(*t.source, r0, r1, cols, slot.stage.data());
  // r0 is a multiple of block_rows: each band below is one row of blocks.
  for (int64_t b0 = r0; b0 < r1; b0 += t.block_rows) {
    const int64_t b1 = std::min(r1, b0 + t.block_rows);
    quantize_fp8_band(slot.stage.data() + (b0 - r0) * cols, b1 - b0, cols, t.block_cols,
                      slot.out.data() + (b0 - r0) * cols, scales.data() + (b0 / t.block_rows) * scale_cols);
  }
}

// QuantInt: rows [r0, r1) as float32 (FP8 dequantized exactly as the oracle does:
// e4m3 * scale_inv), then each row quantized in groups into the output rows and its scales.
void quant_int_rows(const PlannedTensor& t, int64_t r0, int64_t r1, Slot& slot, std::vector<uint16_t>& scales) {
  const int64_t cols = t.source->shape[1];
  const int64_t groups = (cols + t.group_size - 1) / t.group_size;
  const int64_t out_row = t.bits == 8 ? cols : (cols + 1) / 2;
  slot.stage.resize(static_cast<size_t>((r1 - r0) * cols));
  if (t.source->dtype == DType::F8_E4M3) {
    const int64_t scale_cols = (cols + t.block_cols - 1) / t.block_cols;
    const auto* sc = reinterpret_cast<const float*>(t.source_scales->data);
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* q = t.source->data + r * cols;
      const float* srow = sc + (r / t.block_rows) * scale_cols;
      float* out = slot.stage.data() + (r - r0) * cols;
      for (int64_t c = 0; c < cols; ++c) out[c] = e4m3_to_f32(q[c]) * srow[c / t.block_cols];
    }
  } else {
    to_float_rows(*t.source, r0, r1, cols, slot.stage.data());
  }
  for (int64_t r = r0; r < r1; ++r)
    quantize_int_row(slot.stage.data() + (r - r0) * cols, cols, t.group_size, t.bits,
                     slot.out.data() + (r - r0) * out_row, scales.data() + r * groups);
}

std::vector<Item> plan_items(const PlannedShard& shard, uint64_t chunk) {
  std::vector<Item> items;
  for (size_t i = 0; i < shard.tensors.size(); ++i) {
    const PlannedTensor& t = shard.tensors[i];
    if (t.op == TensorOp::Copy || t.op == TensorOp::WriteScales || t.op == TensorOp::WriteGroupScales) {
      const uint64_t n = t.out_bytes();
      for (uint64_t b = 0; b < n; b += chunk) {
        Item it;
        it.tensor = i;
        it.byte0 = b;
        it.byte1 = std::min(n, b + chunk);
        it.progress = t.op == TensorOp::Copy ? it.byte1 - it.byte0 : 0;
        items.push_back(it);
      }
      continue;
    }
    const int64_t rows = t.shape[0], cols = t.shape[1];
    int64_t step;
    if (t.op == TensorOp::DequantFp8) {
      step = std::max<int64_t>(1, static_cast<int64_t>(chunk / static_cast<uint64_t>(cols * 2)));
    } else if (t.op == TensorOp::QuantInt) {  // sized by the float staging buffer
      step = std::max<int64_t>(1, static_cast<int64_t>(chunk / static_cast<uint64_t>(t.source->shape[1] * 4)));
    } else {  // QuantFp8: whole bands of block rows, sized by the float staging buffer
      const uint64_t band_bytes = static_cast<uint64_t>(t.block_rows * cols) * 4;
      step = std::max<int64_t>(1, static_cast<int64_t>(chunk / band_bytes)) * t.block_rows;
    }
    auto progress_at = [&](int64_t r) { return t.progress_bytes * static_cast<uint64_t>(r) / static_cast<uint64_t>(rows); };
    for (int64_t r = 0; r < rows; r += step) {
      Item it;
      it.tensor = i;
      it.row0 = r;
      it.row1 = std::min(rows, r + step);
      it.progress = progress_at(it.row1) - progress_at(it.row0);
      it.compute = true;
      items.push_back(it);
    }
  }
  return items;
}

}  // namespace

uint64_t stream_buffer_bound(const StreamOptions& o, const ThreadPool& pool) {
  const uint64_t staging = o.direct_io ? uint64_t(8) << 20 : 0;  // PartialFile's direct-I/O buffer
  return 2 * static_cast<uint64_t>(batch_items_for(o, pool)) * 2 * chunk_bytes_for(o, pool) + staging;
}

Status write_planned_shard(const PlannedShard& shard, const Checkpoint& ck, const std::string& out_path,
                           ThreadPool& pool, const StreamOptions& opt) {
  const uint64_t chunk = chunk_bytes_for(opt, pool);
  const int batch = batch_items_for(opt, pool);
  const std::vector<Item> items = plan_items(shard, chunk);

  // Scales of every tensor quantized in this shard, sized up front: compute tasks fill
  // disjoint ranges, the writer reads them once their tensor is done; the map never changes
  // shape while threads run.
  std::map<std::string, std::vector<float>> scales;
  for (const PlannedTensor& t : shard.tensors)
    if (t.op == TensorOp::QuantFp8)
      scales[t.name].assign(static_cast<size_t>(((t.shape[0] + t.block_rows - 1) / t.block_rows) *
                                                ((t.shape[1] + t.block_cols - 1) / t.block_cols)), 0.0f);

  std::map<std::string, std::vector<uint16_t>> group_scales;
  for (const PlannedTensor& t : shard.tensors)
    if (t.op == TensorOp::QuantInt)
      group_scales[t.name].assign(
          static_cast<size_t>(t.shape[0] * ((t.source->shape[1] + t.group_size - 1) / t.group_size)), 0);

  std::vector<TensorToWrite> list;
  for (const PlannedTensor& t : shard.tensors) list.push_back({t.name, t.dtype, t.shape});
  std::vector<uint64_t> offsets;
  const std::string header = make_safetensors_header(list, {{"format", "pt"}}, &offsets);

  DSV3_ASSIGN(PartialFile file, PartialFile::create(out_path, opt.direct_io));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((header.size() >> (8 * i)) & 0xFF);
  DSV3_TRY(file.write(len, 8));
  DSV3_TRY(file.write(header.data(), header.size()));

  auto cancelled = [&] { return opt.cancel && opt.cancel->load(std::memory_order_relaxed); };
  auto source_file = [&](const TensorRef& t) -> const MappedFile& { return ck.shards()[static_cast<size_t>(t.shard)]->file(); };

  std::vector<Slot> slots[2];
  slots[0].resize(static_cast<size_t>(batch));
  slots[1].resize(static_cast<size_t>(batch));

  // Writes the items of one computed batch in order (runs on the writer thread).
  auto write_batch = [&](size_t first, size_t count, std::vector<Slot>& set) -> Status {
    for (size_t k = 0; k < count; ++k) {
      if (cancelled()) return Error("interrupted");
      const Item& it = items[first + k];
      const PlannedTensor& t = shard.tensors[it.tensor];
      if (it.compute) {
        DSV3_TRY(file.write(set[k].out.data(), set[k].out.size()));
        const uint64_t row_bytes = static_cast<uint64_t>(t.source->shape[1]) * dtype_size(t.source->dtype);
        drop_mapped_pages(source_file(*t.source), t.source->data + it.row0 * row_bytes,
                          static_cast<uint64_t>(it.row1 - it.row0) * row_bytes);
      } else if (t.op == TensorOp::WriteScales) {
        const auto& s = scales.at(*t.source->name);
        DSV3_TRY(file.write(reinterpret_cast<const uint8_t*>(s.data()) + it.byte0, it.byte1 - it.byte0));
      } else if (t.op == TensorOp::WriteGroupScales) {
        const auto& s = group_scales.at(*t.source->name);
        DSV3_TRY(file.write(reinterpret_cast<const uint8_t*>(s.data()) + it.byte0, it.byte1 - it.byte0));
      } else {
        DSV3_TRY(file.write(t.source->data + it.byte0, it.byte1 - it.byte0));
        drop_mapped_pages(source_file(*t.source), t.source->data + it.byte0, it.byte1 - it.byte0);
      }
    }
    return {};
  };

  std::thread writer;
  Status writer_status;
  uint64_t writer_progress = 0;
  Status status;
  for (size_t first = 0, b = 0; first < items.size(); first += static_cast<size_t>(batch), ++b) {
    if (cancelled()) {
      status = Error("interrupted");
      break;
    }
    const size_t count = std::min(items.size() - first, static_cast<size_t>(batch));
    std::vector<Slot>& set = slots[b % 2];
    pool.parallel_for(static_cast<int64_t>(count), [&](int64_t k) {
      const Item& it = items[first + static_cast<size_t>(k)];
      if (!it.compute) return;
      const PlannedTensor& t = shard.tensors[it.tensor];
      Slot& slot = set[static_cast<size_t>(k)];
      slot.out.resize(static_cast<size_t>(it.row1 - it.row0) * static_cast<size_t>(t.shape[1]) * dtype_size(t.dtype));
      if (t.op == TensorOp::DequantFp8) dequant_rows(t, it.row0, it.row1, slot.out.data());
      else if (t.op == TensorOp::QuantInt) quant_int_rows(t, it.row0, it.row1, slot, group_scales.at(t.name));
      else quant_rows(t, it.row0, it.row1, slot, scales.at(t.name));
    });
    // The previous batch must be written out before this one is (file order) and before its
    // buffers are reused by the next computation.
    if (writer.joinable()) {
      writer.join();
      if (!writer_status.ok()) break;
      if (opt.on_progress) opt.on_progress(writer_progress);
    }
    uint64_t progress = 0;
    for (size_t k = 0; k < count; ++k) progress += items[first + k].progress;
    writer_progress = progress;
    std::vector<Slot>* written = &set;
    writer = std::thread([&, first, count, written] { writer_status = write_batch(first, count, *written); });
  }
  if (writer.joinable()) {
    writer.join();
    if (writer_status.ok() && status.ok() && opt.on_progress) opt.on_progress(writer_progress);
  }
  if (!writer_status.ok()) return std::move(writer_status).error();
  if (!status.ok()) return status;
  DSV3_CHECK(file.bytes_written() == 8 + header.size() + offsets.back(), "shard %s: wrote %llu bytes, planned %llu",
             out_path.c_str(), static_cast<unsigned long long>(file.bytes_written()),
             static_cast<unsigned long long>(8 + header.size() + offsets.back()));
  return file.commit(opt.durable);
}

}  // namespace dsv3
