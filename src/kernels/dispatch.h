#pragma once
// Run-time choice of the kernel table by CPU features. The shipped binary carries every
// path (compiled per function with target attributes, never -march=native) and picks the
// widest one this CPU supports, unless DSV3_ISA (scalar|avx2|avx512) or select_isa() says
// otherwise; tests force each supported path in turn. The opt-in AMX prefill path has its own
// switch (kernels/amx.h, DSV3_AMX): call select_isa_from_env() and set_amx_mode_from_env()
// once at start-up.

#include <string>
#include <vector>

#include "base/result.h"
#include "kernels/kernel_table.h"

namespace dsv3::kernels {

enum class Isa { Scalar, Avx2, Avx512 };

const char* isa_name(Isa isa);
Result<Isa> parse_isa(const std::string& name);
// Paths this CPU can run, narrowest first (Scalar always).
std::vector<Isa> supported_isas();
Isa best_isa();
// Makes `isa` the active path; an error if this CPU cannot run it.
Status select_isa(Isa isa);
// Applies DSV3_ISA if set (an error if it names an unknown or unsupported path).
Status select_isa_from_env();
Isa active_isa();
const KernelTable& active_table();
// The table of a given path (for tests comparing paths); must be supported.
const KernelTable& table_for(Isa isa);
// Test hook: makes `table` the one ops.h runs (any table, e.g. the 16-lane AVX2 emulation of
// the AVX-512 kernels); select_isa() or select_isa_from_env() ends the override.
void set_active_table_for_testing(const KernelTable& table);

}  // namespace dsv3::kernels
