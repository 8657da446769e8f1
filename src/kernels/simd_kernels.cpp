// Builds one KernelSet per Highway target that is compiled in and supported by this CPU.
#include <hwy/highway.h>

#if HWY_ARCH_X86
#include <cpuid.h>
#endif

#include <cctype>
#include <string>

#include "kernels/amx.h"
#include "kernels/kernel_set.h"

namespace edgelm::kernels {

// Short lower-case names for EDGELM_CPU; AVX3_DL is Ice Lake-class AVX-512 with VNNI (and
// "avx512amx" the same set with prompt batches on AMX tiles, where the CPU and OS allow).
std::string_view highway_target_name(int64_t target) {
  switch (target) {
#if HWY_ARCH_X86
    case HWY_SSSE3:
      return "ssse3";
    case HWY_SSE4:
      return "sse4";
    case HWY_AVX2:
      return "avx2";
    case HWY_AVX3:
      return "avx512";
    case HWY_AVX3_DL:
      return "avx512vnni";
#endif
#if HWY_ARCH_ARM
    case HWY_NEON:
      return "neon";
    case HWY_SVE:
      return "sve";
    case HWY_SVE2:
      return "sve2";
    case HWY_SVE_256:
      return "sve256";
    case HWY_SVE2_128:
      return "sve2_128";
#endif
    case HWY_EMU128:
      return "emu128";
    case HWY_SCALAR:
      return "hwy_scalar";
    default:
      return hwy::TargetName(target);
  }
}

namespace {

// Highway 1.0.3 selects AVX3_DL on AVX512-VNNI CPUs but compiles it with the VEX-encoded AVX-VNNI
// instructions (simd_matmul.cpp), which e.g. Ice Lake and Zen 4 lack.
bool cpu_can_run(int64_t target) {
#if HWY_ARCH_X86
  if (target == HWY_AVX3_DL) {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
    return (eax >> 4) & 1;  // CPUID.(EAX=7,ECX=1):EAX[4] = AVX-VNNI
  }
#endif
  return true;
}

}  // namespace

std::vector<KernelSet> simd_kernel_sets() {
  std::vector<KernelSet> sets;
  // Highway dispatches on a process-wide "chosen target"; pinning it to each target in turn
  // captures that target's function pointers, which are then called directly.
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (!cpu_can_run(target)) continue;
    hwy::SetSupportedTargetsForTest(target);
    KernelSet set{};
    set.name = highway_target_name(target);
    fill_matmul_kernels(&set);
    fill_elementwise_kernels(&set);
#if HWY_ARCH_X86
    if (target == HWY_AVX3_DL && amx::available()) {
      KernelSet with_amx = set;
      with_amx.name = "avx512amx";
      fill_amx_matmul_kernels(&with_amx);
      sets.push_back(with_amx);
    }
#endif
    sets.push_back(set);
  }
  hwy::SetSupportedTargetsForTest(0);
  return sets;
}

}  // namespace edgelm::kernels
