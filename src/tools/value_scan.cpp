#include "tools/value_scan.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "tensor/dtype.h"
#include "tools/page_release.h"

namespace dsv3 {
namespace {

constexpr uint64_t kChunkBytes = uint64_t(16) << 20;

struct ChunkResult {
  uint64_t nan = 0, inf = 0;
  int64_t first_bad = -1;   // element index within the tensor
  uint64_t max_bits = 0;    // largest finite magnitude, as its bit pattern
};

// IEEE-style formats: with the sign cleared, the bit patterns of finite values order like the
// values, all-ones exponent with zero mantissa is Inf, anything above it NaN. e4m3fn has no
// Inf: its all-ones pattern 0x7F is NaN (has_inf = false).
template <typename U>
ChunkResult scan_bits(const uint8_t* p, uint64_t first, uint64_t n, U magnitude_mask, U inf_bits, bool has_inf) {
  ChunkResult r;
  const U nan_from = has_inf ? static_cast<U>(inf_bits + 1) : inf_bits;
  U max_bits = 0;
  uint64_t nan = 0, inf = 0;
  for (uint64_t i = 0; i < n; ++i) {
    U x;
    std::memcpy(&x, p + i * sizeof(U), sizeof(U));  // mapped data may be unaligned
    const U a = static_cast<U>(x & magnitude_mask);
    nan += a >= nan_from;
    inf += has_inf && a == inf_bits;
    const U finite = a < (has_inf ? inf_bits : nan_from) ? a : U(0);
    max_bits = finite > max_bits ? finite : max_bits;
  }
  r.nan = nan;
  r.inf = inf;
  r.max_bits = max_bits;
  if (nan + inf > 0) {  // rare: find where the first one is
    for (uint64_t i = 0; i < n; ++i) {
      U x;
      std::memcpy(&x, p + i * sizeof(U), sizeof(U));
      const U a = static_cast<U>(x & magnitude_mask);
      if (a >= nan_from || (has_inf && a == inf_bits)) {
        r.first_bad = static_cast<int64_t>(first + i);
        break;
      }
    }
  }
  return r;
}

bool scannable(DType t) {
  switch (t) {
    case DType::F64: case DType::F32: case DType::F16: case DType::BF16: case DType::F8_E4M3: case DType::F8_E5M2:
      return true;
    default:
      return false;
  }
}

ChunkResult scan_range(DType t, const uint8_t* p, uint64_t first, uint64_t n) {
  switch (t) {
    case DType::F64: return scan_bits<uint64_t>(p, first, n, 0x7FFFFFFFFFFFFFFFull, 0x7FF0000000000000ull, true);
    case DType::F32: return scan_bits<uint32_t>(p, first, n, 0x7FFFFFFFu, 0x7F800000u, true);
    case DType::F16: return scan_bits<uint16_t>(p, first, n, 0x7FFF, 0x7C00, true);
    case DType::BF16: return scan_bits<uint16_t>(p, first, n, 0x7FFF, 0x7F80, true);
    case DType::F8_E4M3: return scan_bits<uint8_t>(p, first, n, 0x7F, 0x7F, false);
    case DType::F8_E5M2: return scan_bits<uint8_t>(p, first, n, 0x7F, 0x7C, true);
    default: return {};
  }
}

double magnitude_value(DType t, uint64_t bits) {
  switch (t) {
    case DType::F64: { double d; std::memcpy(&d, &bits, 8); return d; }
    case DType::F32: return f32_from_bits(static_cast<uint32_t>(bits));
    case DType::F16: return f16_to_f32(static_cast<uint16_t>(bits));
    case DType::BF16: return bf16_to_f32(static_cast<uint16_t>(bits));
    case DType::F8_E4M3: return e4m3_to_f32(static_cast<uint8_t>(bits));
    case DType::F8_E5M2: return f16_to_f32(static_cast<uint16_t>(bits << 8));  // e5m2 is the top byte of an f16
    default: return 0;
  }
}

struct Chunk {
  size_t tensor;
  uint64_t first, count;  // elements
};

}  // namespace

ValueScanReport scan_checkpoint_values(const Checkpoint& ck, ThreadPool& pool,
                                       const std::function<void(uint64_t)>& on_bytes,
                                       const std::atomic<bool>* cancel) {
  const auto t0 = std::chrono::steady_clock::now();
  ValueScanReport report;
  std::vector<const TensorRef*> refs;
  std::vector<Chunk> chunks;
  for (const auto& [name, t] : ck.tensors()) {
    TensorValueScan s;
    s.name = name;
    s.dtype = t.dtype;
    s.elements = t.numel();
    s.scanned = scannable(t.dtype);
    const size_t index = report.tensors.size();
    report.tensors.push_back(std::move(s));
    refs.push_back(&t);
    if (!report.tensors.back().scanned) continue;
    const uint64_t per_chunk = std::max<uint64_t>(1, kChunkBytes / static_cast<uint64_t>(dtype_size(t.dtype)));
    for (uint64_t e = 0; e < t.numel(); e += per_chunk) chunks.push_back({index, e, std::min(per_chunk, t.numel() - e)});
  }

  std::vector<ChunkResult> results(chunks.size());
  std::vector<char> done(chunks.size(), 0);
  pool.parallel_for(static_cast<int64_t>(chunks.size()), [&](int64_t i) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return;
    const Chunk& c = chunks[static_cast<size_t>(i)];
    const TensorRef& t = *refs[c.tensor];
    const uint64_t esize = static_cast<uint64_t>(dtype_size(t.dtype));
    const uint8_t* p = t.data + c.first * esize;
    results[static_cast<size_t>(i)] = scan_range(t.dtype, p, c.first, c.count);
    done[static_cast<size_t>(i)] = 1;
    drop_mapped_pages(ck.shards()[static_cast<size_t>(t.shard)]->file(), p, c.count * esize);
    if (on_bytes) on_bytes(c.count * esize);
  });

  // Merge in chunk order, so first_bad is the first in the tensor whatever thread found it.
  std::vector<uint64_t> max_bits(report.tensors.size(), 0);
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!done[i]) {
      report.cancelled = true;
      continue;
    }
    TensorValueScan& s = report.tensors[chunks[i].tensor];
    const ChunkResult& r = results[i];
    s.nan += r.nan;
    s.inf += r.inf;
    if (s.first_bad < 0 && r.first_bad >= 0) s.first_bad = r.first_bad;
    max_bits[chunks[i].tensor] = std::max(max_bits[chunks[i].tensor], r.max_bits);
    report.bytes_scanned += chunks[i].count * static_cast<uint64_t>(dtype_size(refs[chunks[i].tensor]->dtype));
  }
  for (size_t k = 0; k < report.tensors.size(); ++k) {
    TensorValueScan& s = report.tensors[k];
    if (s.scanned) s.max_abs = magnitude_value(s.dtype, max_bits[k]);
    if (!s.ok()) ++report.bad_tensors;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace dsv3
