"""C++ source of the one-pass SwiGLU activation kernels (built by `adamoe.experts.kernels.load_extension`
for `adamoe.experts.swiglu_act`; its text is in the build key).

A second extension beside `adamoe.experts.kernel_source` (whose module would pass the 400-line limit with
these), built by the same function with the same flags. Both kernels take fp32 (N, I) tensors whose
COLUMNS are contiguous and whose rows may have any stride, so the two halves of an (N, 2I) buffer are
passed as views (row stride 2I), never copied:

* ``silu_mul_out(g, u, h)``: ``h = silu(g) * u`` in one pass (read g, u; write h).
* ``silu_mul_backward_out(dh, g, u, dg, du)``: with ``s = sigmoid(g)``,
  ``dg = dh * u * s * (1 + g * (1 - s))`` and ``du = dh * g * s`` in one pass (read dh, g, u; write dg,
  du), e.g. into the two halves of the (N, 2I) gradient buffer of the grouped kernel.

Rows are split over the intra-op threads (``at::parallel_for``, at least `GRAIN` elements a task, so a
small call stays on the calling thread); each row is one ``#pragma omp simd`` loop (``-ffast-math`` lets
GCC call glibc's vector ``expf``; it also turns the vector division into ``rcp`` + a Newton step).
``s = 1 / (1 + exp(-g))`` with ``g`` clamped below at -80 (above, ``exp(-g)`` would overflow to inf and
the ``rcp`` step give NaN; below, |silu| < 2e-33 anyway), ``silu(g) = g * s`` and ``1 - s`` as
``exp(-g) * s`` (ATen's ``1 - s`` cancels for large ``g``: x * (1 - s) off by x ulps). Results agree with
ATen's to fp32 round-off, not bitwise. Outputs must not overlap inputs (``__restrict``).
"""

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>

static constexpr int64_t GRAIN = 32768;  // elements per parallel task at least

static void check_rows(const torch::Tensor& t, int64_t n, int64_t i, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.device().is_cpu() && t.dim() == 2 && t.size(0) == n &&
              t.size(1) == i && (t.stride(1) == 1 || i <= 1),
              "swiglu_act: ", what, " must be a CPU fp32 (N, I) tensor with contiguous columns");
}

// Below LOW, exp(-g) is evaluated at LOW: exp(80) * 80 stays finite in any order -ffast-math multiplies
// in, and the (rcp + Newton) vector division never meets inf (which gave NaN). silu there is < 2e-33.
static constexpr float LOW = -80.f;
static inline float sigmoid_clamped(float x) { return 1.f / (1.f + std::exp(-std::max(x, LOW))); }

static int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, GRAIN / std::max<int64_t>(1, cols)); }

// h = silu(g) * u, all (N, I) fp32 with contiguous columns (rows strided).
void silu_mul_out(torch::Tensor g, torch::Tensor u, torch::Tensor h) {
  const int64_t N = g.size(0), I = g.dim() == 2 ? g.size(1) : -1;
  check_rows(g, N, I, "g");
  check_rows(u, N, I, "u");
  check_rows(h, N, I, "h");
  const float* gp = g.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  float* hp = h.data_ptr<float>();
  const int64_t gs = g.stride(0), us = u.stride(0), hs = h.stride(0);
  at::parallel_for(0, N, row_grain(I), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* __restrict gr = gp + r * gs;
      const float* __restrict ur = up + r * us;
      float* __restrict hr = hp + r * hs;
#pragma omp simd
      for (int64_t j = 0; j < I; ++j) {
        const float x = gr[j];
        hr[j] = x * sigmoid_clamped(x) * ur[j];
      }
    }
  });
}

// dg = dh * u * s * (1 + g * (1 - s)), du = dh * g * s with s = sigmoid(g); all (N, I) as above.
void silu_mul_backward_out(torch::Tensor dh, torch::Tensor g, torch::Tensor u, torch::Tensor dg,
                           torch::Tensor du) {
  const int64_t N = g.size(0), I = g.dim() == 2 ? g.size(1) : -1;
  check_rows(dh, N, I, "dh");
  check_rows(g, N, I, "g");
  check_rows(u, N, I, "u");
  check_rows(dg, N, I, "dg");
  check_rows(du, N, I, "du");
  const float* dhp = dh.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  float* dgp = dg.data_ptr<float>();
  float* dup = du.data_ptr<float>();
  const int64_t hs = dh.stride(0), gs = g.stride(0), us = u.stride(0), dgs = dg.stride(0), dus = du.stride(0);
  at::parallel_for(0, N, row_grain(I), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* __restrict hr = dhp + r * hs;
      const float* __restrict gr = gp + r * gs;
      const float* __restrict ur = up + r * us;
      float* __restrict dgr = dgp + r * dgs;
      float* __restrict dur = dup + r * dus;
#pragma omp simd
      for (int64_t j = 0; j < I; ++j) {
        const float x = gr[j], d = hr[j], xc = std::max(x, LOW);
        const float e = std::exp(-xc), s = 1.f / (1.f + e);
        dur[j] = d * (x * s);
        dgr[j] = d * ur[j] * s * (1.f + xc * (e * s));  // 1 - s == e * s, without the cancellation
      }
    }
  });
}
"""
