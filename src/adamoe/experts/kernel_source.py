"""C++ source of the CPU decode kernels (compiled by `adamoe.experts.kernels`; its text is in the build key).

Kept in a Python module rather than a ``.cpp`` file so it ships with the package without package-data.

* ``skinny_mm_out(x, w, out)``: ``out = x @ w.T`` for a few rows, reading each weight row once.
* ``moe_decode(x, gate_up, down, indices, weights, num_experts) -> (out, slots)``: a whole routed SwiGLU
  MoE step for a few tokens. The routing (count sort of the T*k slots by expert, null and empty slots
  dropped) runs single-threaded; the compute runs in ONE OpenMP parallel region: each thread owns a
  contiguous block of intermediate rows j (gate row j and up row j of every chosen expert, writing
  ``h = SiLU(gate) * up`` directly), then, after one barrier, a contiguous block of output columns n
  (row n of every chosen expert's down projection, accumulating ``weight * (down @ h)`` into its own
  columns of ``out``: no atomics, deterministic order). Every chosen expert's weights are streamed from
  memory exactly once, which is the bandwidth bound of decode. Weights may be fp32 or bf16 (converted
  in registers, fp32 accumulation); activations and routing weights are fp32. Scratch (the slot lists
  and ``h``) is thread-local to the calling thread and reused, so the only allocation is the output.
"""

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <omp.h>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

// out[m, n] = sum_k x[m, k] * w[n, k]; x (M, K), w (N, K), out (M, N) row-major, all contiguous fp32.
void skinny_mm_out(torch::Tensor x, torch::Tensor w, torch::Tensor out) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat && out.scalar_type() == at::kFloat,
              "skinny_mm_out: fp32 only");
  TORCH_CHECK(x.is_contiguous() && w.is_contiguous() && out.is_contiguous(), "skinny_mm_out: contiguous only");
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  TORCH_CHECK(w.size(1) == K && out.size(0) == M && out.size(1) == N, "skinny_mm_out: shape mismatch");
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* wr = wp + n * K;
      for (int64_t m = 0; m < M; ++m) {
        const float* xr = xp + m * K;
        float acc = 0.f;
#pragma omp simd reduction(+:acc)
        for (int64_t k = 0; k < K; ++k) acc += wr[k] * xr[k];
        op[m * N + n] = acc;
      }
    }
  });
}

static inline float to_f(float v) { return v; }
static inline float to_f(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }

// sum_k w[k] * x[k] with 32 independent partial sums, so the FMA latency never limits the stream.
template <typename W>
static inline float dot(const W* __restrict w, const float* __restrict x, int64_t n) {
  constexpr int64_t L = 32;
  float acc[L] = {};
  int64_t k = 0;
  for (; k + L <= n; k += L) {
#pragma omp simd
    for (int64_t l = 0; l < L; ++l) acc[l] += to_f(w[k + l]) * x[k + l];
  }
  float s = 0.f;
  for (; k < n; ++k) s += to_f(w[k]) * x[k];
  for (int64_t l = 0; l < L; ++l) s += acc[l];
  return s;
}

struct Group { int64_t expert, begin, end; };  // slots [begin, end) of the sorted lists go to `expert`

struct Scratch {  // thread-local to the calling thread: grows to the largest call, then is reused
  std::vector<int64_t> count, token;
  std::vector<float> weight, h;
  std::vector<Group> groups;
};

// Count sort of the true-expert slots by expert (stable: token order within an expert). Returns #slots.
static int64_t group_slots(const int64_t* idx, const float* wts, int64_t T, int64_t k, int64_t E, Scratch& s) {
  s.count.assign(E + 1, 0);
  for (int64_t i = 0; i < T * k; ++i)
    if (idx[i] >= 0 && idx[i] < E) ++s.count[idx[i] + 1];
  for (int64_t e = 0; e < E; ++e) s.count[e + 1] += s.count[e];
  const int64_t n = s.count[E];
  s.groups.clear();
  for (int64_t e = 0; e < E; ++e)
    if (s.count[e + 1] > s.count[e]) s.groups.push_back({e, s.count[e], s.count[e + 1]});
  if (s.token.size() < static_cast<size_t>(n)) { s.token.resize(n); s.weight.resize(n); }
  for (int64_t i = 0; i < T * k; ++i) {
    const int64_t e = idx[i];
    if (e < 0 || e >= E) continue;
    const int64_t p = s.count[e]++;
    s.token[p] = i / k;
    s.weight[p] = wts[i];
  }
  return n;
}

template <typename W>
static void decode_region(const float* x, const W* gu, const W* dn, int64_t T, int64_t H, int64_t I,
                          const Scratch& s, float* h, float* out) {
  const int nt = omp_in_parallel() ? 1 : std::max(1, at::get_num_threads());
#pragma omp parallel num_threads(nt)
  {
    const int64_t tid = omp_get_thread_num(), nth = omp_get_num_threads();
    const int64_t j0 = I * tid / nth, j1 = I * (tid + 1) / nth;
    for (const Group& g : s.groups) {
      const W* gate = gu + g.expert * 2 * I * H;
      const W* up = gate + I * H;
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t p = g.begin; p < g.end; ++p) {
          const float* xr = x + s.token[p] * H;
          const float a = dot(gate + j * H, xr, H), b = dot(up + j * H, xr, H);
          h[p * I + j] = a / (1.f + std::exp(-a)) * b;
        }
    }
#pragma omp barrier
    const int64_t n0 = H * tid / nth, n1 = H * (tid + 1) / nth;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = n0; n < n1; ++n) out[t * H + n] = 0.f;
    for (const Group& g : s.groups) {
      const W* d = dn + g.expert * H * I;
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t p = g.begin; p < g.end; ++p)
          out[s.token[p] * H + n] += s.weight[p] * dot(d + n * I, h + p * I, I);
    }
  }
}

// x (T, H) fp32; gate_up (E', 2I, H) and down (E', H, I) fp32 or bf16, E' >= num_experts; indices (T, k)
// int64 with true experts 0..num_experts-1 (anything else is dropped); weights (T, k) fp32.
std::tuple<torch::Tensor, int64_t> moe_decode(torch::Tensor x, torch::Tensor gate_up, torch::Tensor down,
                                              torch::Tensor indices, torch::Tensor weights, int64_t num_experts) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && weights.scalar_type() == at::kFloat, "moe_decode: fp32 x/weights");
  TORCH_CHECK(indices.scalar_type() == at::kLong, "moe_decode: int64 indices");
  TORCH_CHECK(gate_up.scalar_type() == down.scalar_type() &&
              (gate_up.scalar_type() == at::kFloat || gate_up.scalar_type() == at::kBFloat16),
              "moe_decode: gate_up and down both fp32 or both bf16");
  TORCH_CHECK(x.is_contiguous() && gate_up.is_contiguous() && down.is_contiguous() && indices.is_contiguous() &&
              weights.is_contiguous(), "moe_decode: contiguous only");
  TORCH_CHECK(x.dim() == 2 && gate_up.dim() == 3 && down.dim() == 3 && indices.dim() == 2, "moe_decode: ranks");
  const int64_t T = x.size(0), H = x.size(1), I = down.size(2), k = indices.size(1);
  TORCH_CHECK(gate_up.size(1) == 2 * I && gate_up.size(2) == H && down.size(1) == H &&
              down.size(0) == gate_up.size(0) && num_experts <= gate_up.size(0) && indices.size(0) == T &&
              weights.size(0) == T && weights.size(1) == k, "moe_decode: shape mismatch");
  static thread_local Scratch s;
  const int64_t n = group_slots(indices.data_ptr<int64_t>(), weights.data_ptr<float>(), T, k, num_experts, s);
  if (s.h.size() < static_cast<size_t>(n * I)) s.h.resize(n * I);
  torch::Tensor out = torch::empty({T, H}, x.options());
  if (gate_up.scalar_type() == at::kFloat) {
    decode_region(x.data_ptr<float>(), gate_up.data_ptr<float>(), down.data_ptr<float>(), T, H, I, s,
                  s.h.data(), out.data_ptr<float>());
  } else {
    decode_region(x.data_ptr<float>(), reinterpret_cast<const uint16_t*>(gate_up.data_ptr<at::BFloat16>()),
                  reinterpret_cast<const uint16_t*>(down.data_ptr<at::BFloat16>()), T, H, I, s, s.h.data(),
                  out.data_ptr<float>());
  }
  return {out, n};
}
"""
