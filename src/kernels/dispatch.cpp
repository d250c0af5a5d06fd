#include "kernels/dispatch.h"

#include <atomic>

#include "base/cpu_features.h"
#include "kernels/cpu/tables.h"

namespace dsv3::kernels {


namespace {
bool supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return f.has_avx2_path();
    case Isa::Avx512: return f.has_avx512_path();
  }
  return false;
}

std::atomic<const KernelTable*> g_active{nullptr};
std::atomic<int> g_active_isa{-1};
}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

Result<Isa> parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  return Error("unknown kernel path '" + name.substr(0, 40) + "' (scalar, avx2 or avx512)");
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (supported(isa)) out.push_back(isa);
  return out;
}

Isa best_isa() { return supported_isas().back(); }

const KernelTable& table_for(Isa isa) {
  // Calling a table's functions on a CPU without its instructions would fault (SIGILL).
  DSV3_CHECK(supported(isa), "kernel path %s not supported by this CPU", isa_name(isa));
  switch (isa) {
    case Isa::Avx2: return cpu::avx2_table();
    case Isa::Avx512: return cpu_features().avx512_vnni ? cpu::avx512_vnni_table() : cpu::avx512_table();
    default: return ref::table();
  }
}

Status select_isa(Isa isa) {
  if (!supported(isa))
    return Error(std::string("kernel path '") + isa_name(isa) + "' is not supported by this CPU (" +
                 cpu_features().summary() + ")");
  g_active.store(&table_for(isa));
  g_active_isa.store(static_cast<int>(isa));
  return {};
}

void set_active_table_for_testing(const KernelTable& table) { g_active.store(&table); }

Status select_isa_from_env() {
  const char* env = std::getenv("DSV3_ISA");
  if (!env || !*env) return {};
  DSV3_ASSIGN(Isa isa, parse_isa(env));
  return select_isa(isa).context("DSV3_ISA");
}

Isa active_isa() {
  if (g_active_isa.load() < 0) (void)active_table();
  return static_cast<Isa>(g_active_isa.load());
}

const KernelTable& active_table() {
  const KernelTable* t = g_active.load(std::memory_order_acquire);
  if (t) return *t;
  Isa isa = best_isa();
  g_active_isa.store(static_cast<int>(isa));
  g_active.store(&table_for(isa));
  return table_for(isa);
}

}  // namespace dsv3::kernels
