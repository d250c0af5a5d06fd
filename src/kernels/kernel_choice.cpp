#include "kernels/kernel_choice.h"

#include <cstdlib>

namespace dsv3::kernels {
namespace {

const char* env_value(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

const char* amx_mode_name(AmxMode mode) {
  switch (mode) {
    case AmxMode::Hardware: return "on";
    case AmxMode::Emulated: return "emulated";
    default: return "off";
  }
}

}  // namespace

Result<KernelChoice> kernel_choice_from_env() {
  KernelChoice c;
  if (const char* v = env_value("DSV3_ISA")) {
    DSV3_ASSIGN(c.isa, parse_isa(v).context("DSV3_ISA"));
  }
  if (const char* v = env_value("DSV3_MATH")) {
    DSV3_ASSIGN(c.math, parse_matmul_math(v).context("DSV3_MATH"));
  }
  if (const char* v = env_value("DSV3_AMX")) {
    const std::string s = v;
    if (s == "0") c.amx = AmxMode::Off;
    else if (s == "1") c.amx = AmxMode::Hardware;
    else if (s == "emulated") c.amx = AmxMode::Emulated;
    else return Error("DSV3_AMX: expected 0, 1 or emulated, got '" + s.substr(0, 20) + "'");
  }
  return c;
}

Status apply_kernel_choice(const KernelChoice& choice) {
  if (choice.isa) DSV3_TRY(select_isa(*choice.isa));
  if (choice.math) DSV3_TRY(set_matmul_math(*choice.math));
  if (choice.amx) DSV3_TRY(set_amx_mode(*choice.amx).context("AMX"));
  return {};
}

std::string active_kernels_summary() {
  return std::string("kernels ") + isa_name(active_isa()) + ", math " + matmul_math_name(matmul_math()) + ", AMX " +
         amx_mode_name(amx_mode());
}

}  // namespace dsv3::kernels
