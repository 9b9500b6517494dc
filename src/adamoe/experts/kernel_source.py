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
* ``moe_decode_routed(x, router, gate_up, down, num_experts, top_k, normalize, identity, null_bias)
  -> (out, indices, weights, probs, logits, slots)``: the same step with the softmax top-k routing of
  ``adamoe.routing.topk.TopKRouter`` inside the same parallel region: first the router GEMV (threads
  split the E+m router rows), then, on one thread, softmax, top-k (descending; among equal
  probabilities the LOWER index first, where ``torch.topk`` leaves the order unspecified), the
  combination weights of ``adamoe.routing.base.normalize_weights`` (options 0/1/2 from the picks'
  logits, zero or identity nulls) and the slot sort; then the expert phases, whose output starts from
  ``identity_weight * x`` with identity nulls. The routing tensors come back for ``Routing``.

Prefetch: while a thread reads one weight row it prefetches (into L2, ``__builtin_prefetch`` under GCC
and Clang) the row it reads next, spread over the dot product's blocks: the next row of its block, or its
first row of the next chosen expert. The hardware prefetchers stop at 4 KiB pages and know nothing of
the jump to the next expert; the software prefetch runs one row (4-8 KiB) ahead across both. Defining
``ADAMOE_NO_PREFETCH`` (``kernels.load(prefetch=False)``: the same text, another build) turns it off, for
the same-run A/B of ``benchmarks/profile_bounds.py --sections decode``.
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

// Prefetch n elements from p into L2 (no-op without GCC/Clang builtins, or when built with
// -DADAMOE_NO_PREFETCH: the A/B variant, whose dot() then reads with the hardware prefetchers alone).
template <typename W>
static inline void prefetch(const W* p, int64_t n) {
#if defined(__GNUC__) && !defined(ADAMOE_NO_PREFETCH)
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t b = 0; b < n * static_cast<int64_t>(sizeof(W)); b += 64) __builtin_prefetch(c + b, 0, 1);
#else
  (void)p; (void)n;
#endif
}

// sum_k w[k] * x[k] with 32 independent partial sums, so the FMA latency never limits the stream.
// `next` (or nullptr): the row read after this one, prefetched block by block alongside.
template <typename W>
static inline float dot(const W* __restrict w, const float* __restrict x, int64_t n, const W* next = nullptr) {
  constexpr int64_t L = 32;
  float acc[L] = {};
  int64_t k = 0;
  for (; k + L <= n; k += L) {
    if (next) prefetch(next + k, L);
#pragma omp simd
    for (int64_t l = 0; l < L; ++l) acc[l] += to_f(w[k + l]) * x[k + l];
  }
  if (next && k < n) prefetch(next + k, n - k);
  float s = 0.f;
  for (; k < n; ++k) s += to_f(w[k]) * x[k];
  for (int64_t l = 0; l < L; ++l) s += acc[l];
  return s;
}

struct Group { int64_t expert, begin, end; };  // slots [begin, end) of the sorted lists go to `expert`

struct Scratch {  // thread-local to the calling thread: grows to the largest call, then is reused
  std::vector<int64_t> count, token;
  std::vector<float> weight, h, identity;
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

static int region_threads() { return omp_in_parallel() ? 1 : std::max(1, at::get_num_threads()); }

// The expert phases of thread `tid` of `nth`, inside a parallel region: its intermediate rows of every
// chosen expert, a barrier, then its output columns. `idw` (T,) or nullptr: out starts at idw[t] * x[t].
template <typename W>
static void expert_phases(const float* x, const W* gu, const W* dn, int64_t T, int64_t H, int64_t I,
                          const Scratch& s, float* h, const float* idw, float* out, int64_t tid, int64_t nth) {
  const int64_t j0 = I * tid / nth, j1 = I * (tid + 1) / nth;
  const size_t G = s.groups.size();
  for (size_t gi = 0; gi < G; ++gi) {
    const Group& g = s.groups[gi];
    const W* gate = gu + g.expert * 2 * I * H;
    const W* up = gate + I * H;
    const W* next_gate = gi + 1 < G ? gu + s.groups[gi + 1].expert * 2 * I * H : nullptr;
    for (int64_t j = j0; j < j1; ++j) {
      const W* ng = j + 1 < j1 ? gate + (j + 1) * H : (next_gate ? next_gate + j0 * H : nullptr);
      const W* nu = j + 1 < j1 ? up + (j + 1) * H : (next_gate ? next_gate + (I + j0) * H : nullptr);
      for (int64_t p = g.begin; p < g.end; ++p) {
        const float* xr = x + s.token[p] * H;
        const bool first = p == g.begin;
        const float a = dot(gate + j * H, xr, H, first ? ng : nullptr);
        const float b = dot(up + j * H, xr, H, first ? nu : nullptr);
        h[p * I + j] = a / (1.f + std::exp(-a)) * b;
      }
    }
  }
#pragma omp barrier
  const int64_t n0 = H * tid / nth, n1 = H * (tid + 1) / nth;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = n0; n < n1; ++n) out[t * H + n] = idw ? idw[t] * x[t * H + n] : 0.f;
  for (size_t gi = 0; gi < G; ++gi) {
    const Group& g = s.groups[gi];
    const W* d = dn + g.expert * H * I;
    const W* next_d = gi + 1 < G ? dn + s.groups[gi + 1].expert * H * I : nullptr;
    for (int64_t n = n0; n < n1; ++n) {
      const W* nd = n + 1 < n1 ? d + (n + 1) * I : (next_d ? next_d + n0 * I : nullptr);
      for (int64_t p = g.begin; p < g.end; ++p)
        out[s.token[p] * H + n] += s.weight[p] * dot(d + n * I, h + p * I, I, p == g.begin ? nd : nullptr);
    }
  }
}

// `s` is passed in, never named inside the region: a thread_local named there is each thread's own.
template <typename W>
static void decode_region(const float* x, const W* gu, const W* dn, int64_t T, int64_t H, int64_t I,
                          const Scratch& s, float* h, float* out) {
#pragma omp parallel num_threads(region_threads())
  expert_phases(x, gu, dn, T, H, I, s, h, nullptr, out, omp_get_thread_num(), omp_get_num_threads());
}

// f(pointer) with the data of an fp32 or bf16 tensor (bf16 as its raw uint16 bits).
template <typename F>
static void with_data(const torch::Tensor& t, F&& f) {
  if (t.scalar_type() == at::kFloat) f(static_cast<const float*>(t.data_ptr()));
  else f(static_cast<const uint16_t*>(t.data_ptr()));
}

static void check_experts(const torch::Tensor& x, const torch::Tensor& gate_up, const torch::Tensor& down,
                          int64_t num_experts) {
  TORCH_CHECK(x.scalar_type() == at::kFloat, "moe_decode: fp32 x");
  TORCH_CHECK(gate_up.scalar_type() == down.scalar_type() &&
              (gate_up.scalar_type() == at::kFloat || gate_up.scalar_type() == at::kBFloat16),
              "moe_decode: gate_up and down both fp32 or both bf16");
  TORCH_CHECK(x.is_contiguous() && gate_up.is_contiguous() && down.is_contiguous(), "moe_decode: contiguous only");
  TORCH_CHECK(x.dim() == 2 && gate_up.dim() == 3 && down.dim() == 3, "moe_decode: ranks");
  TORCH_CHECK(gate_up.size(1) == 2 * down.size(2) && gate_up.size(2) == x.size(1) && down.size(1) == x.size(1) &&
              down.size(0) == gate_up.size(0) && num_experts <= gate_up.size(0), "moe_decode: shape mismatch");
}

// x (T, H) fp32; gate_up (E', 2I, H) and down (E', H, I) fp32 or bf16, E' >= num_experts; indices (T, k)
// int64 with true experts 0..num_experts-1 (anything else is dropped); weights (T, k) fp32.
std::tuple<torch::Tensor, int64_t> moe_decode(torch::Tensor x, torch::Tensor gate_up, torch::Tensor down,
                                              torch::Tensor indices, torch::Tensor weights, int64_t num_experts) {
  check_experts(x, gate_up, down, num_experts);
  TORCH_CHECK(weights.scalar_type() == at::kFloat && indices.scalar_type() == at::kLong, "moe_decode: routing dtypes");
  TORCH_CHECK(indices.is_contiguous() && weights.is_contiguous() && indices.dim() == 2, "moe_decode: routing layout");
  const int64_t T = x.size(0), H = x.size(1), I = down.size(2), k = indices.size(1);
  TORCH_CHECK(indices.size(0) == T && weights.size(0) == T && weights.size(1) == k, "moe_decode: routing shape");
  static thread_local Scratch s;
  const int64_t n = group_slots(indices.data_ptr<int64_t>(), weights.data_ptr<float>(), T, k, num_experts, s);
  if (s.h.size() < static_cast<size_t>(n * I)) s.h.resize(n * I);
  torch::Tensor out = torch::empty({T, H}, x.options());
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  with_data(gate_up, [&](auto gu) {
    decode_region(xp, gu, static_cast<decltype(gu)>(down.data_ptr()), T, H, I, s, s.h.data(), op);
  });
  return {out, n};
}

// The softmax top-k rule of TopKRouter: E true experts of N = E + m; k picks; normalize 0/1/2.
struct Rule { int64_t E, N, k, normalize; bool identity; float bias; };
struct Routed { float *out, *logits, *probs, *w; int64_t* idx; };  // the call's output buffers

// logits[t, e] = router row e . x[t] for rows [r0, r1), the null rows shifted by the dial's bias.
template <typename R>
static void router_rows(const float* x, const R* rw, int64_t T, int64_t H, const Rule& r, int64_t r0, int64_t r1,
                        float* logits) {
  for (int64_t e = r0; e < r1; ++e) {
    const R* next = e + 1 < r1 ? rw + (e + 1) * H : nullptr;
    const float shift = e >= r.E ? r.bias : 0.f;
    for (int64_t t = 0; t < T; ++t) logits[t * r.N + e] = dot(rw + e * H, x + t * H, H, t == 0 ? next : nullptr) + shift;
  }
}

// normalize_weights on the k picks (w holds their probabilities on entry). Contributing: a true expert,
// or any pick with identity nulls. 0 keeps the probabilities of the contributing picks; 1 and 2 give them
// a softmax of the picks' logits taken over all picks (1) or over the contributing ones (2).
static void combine(const float* logit, const Rule& r, const int64_t* idx, float* w) {
  auto contributes = [&](int64_t j) { return r.identity || idx[j] < r.E; };
  auto over = [&](int64_t j) { return r.normalize == 1 || contributes(j); };
  if (r.normalize == 0) {
    for (int64_t j = 0; j < r.k; ++j) w[j] = contributes(j) ? w[j] : 0.f;
    return;
  }
  float mx = 0.f, sum = 0.f;
  bool any = false;
  for (int64_t j = 0; j < r.k; ++j)
    if (over(j)) { mx = any ? std::max(mx, logit[idx[j]]) : logit[idx[j]]; any = true; }
  for (int64_t j = 0; j < r.k; ++j) sum += over(j) ? std::exp(logit[idx[j]] - mx) : 0.f;
  for (int64_t j = 0; j < r.k; ++j) w[j] = any && contributes(j) ? std::exp(logit[idx[j]] - mx) / sum : 0.f;
}

// One token: softmax of its N logits, the k most probable (descending, ties: lower index first), weights.
static void route_token(const float* logit, const Rule& r, float* prob, int64_t* idx, float* w) {
  float mx = logit[0], sum = 0.f;
  for (int64_t e = 1; e < r.N; ++e) mx = std::max(mx, logit[e]);
  for (int64_t e = 0; e < r.N; ++e) { prob[e] = std::exp(logit[e] - mx); sum += prob[e]; }
  for (int64_t e = 0; e < r.N; ++e) prob[e] /= sum;
  int64_t n = 0;
  for (int64_t e = 0; e < r.N; ++e) {
    const float p = prob[e];
    if (n == r.k && !(p > w[r.k - 1])) continue;
    int64_t j = n < r.k ? n++ : r.k - 1;
    for (; j > 0 && p > w[j - 1]; --j) { w[j] = w[j - 1]; idx[j] = idx[j - 1]; }
    w[j] = p;
    idx[j] = e;
  }
  combine(logit, r, idx, w);
}

// Route every token, sort the slots, size h and (identity nulls) sum each token's null weights.
static int64_t route_all(int64_t T, int64_t I, const Rule& r, Scratch& s, const Routed& o) {
  for (int64_t t = 0; t < T; ++t) route_token(o.logits + t * r.N, r, o.probs + t * r.N, o.idx + t * r.k, o.w + t * r.k);
  const int64_t n = group_slots(o.idx, o.w, T, r.k, r.E, s);
  if (s.h.size() < static_cast<size_t>(n * I)) s.h.resize(n * I);
  s.identity.assign(T, 0.f);
  for (int64_t i = 0; r.identity && i < T * r.k; ++i)
    if (o.idx[i] >= r.E) s.identity[i / r.k] += o.w[i];
  return n;
}

template <typename R, typename W>
static int64_t routed_region(const float* x, const R* rw, const W* gu, const W* dn, int64_t T, int64_t H,
                             int64_t I, const Rule& r, Scratch& s, const Routed& o) {
  int64_t n = 0;
#pragma omp parallel num_threads(region_threads())
  {
    const int64_t tid = omp_get_thread_num(), nth = omp_get_num_threads();
    router_rows(x, rw, T, H, r, r.N * tid / nth, r.N * (tid + 1) / nth, o.logits);
#pragma omp barrier
#pragma omp single
    n = route_all(T, I, r, s, o);
    expert_phases(x, gu, dn, T, H, I, s, s.h.data(), r.identity ? s.identity.data() : nullptr, o.out, tid, nth);
  }
  return n;
}

// x (T, H) fp32; router (E + m, H), gate_up and down fp32 or bf16 (see moe_decode). Returns the output,
// (T, k) int64 picks, (T, k) fp32 weights, (T, E + m) fp32 probabilities and logits, and #true slots.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, int64_t> moe_decode_routed(
    torch::Tensor x, torch::Tensor router, torch::Tensor gate_up, torch::Tensor down, int64_t num_experts,
    int64_t top_k, int64_t normalize, bool identity, double null_bias) {
  check_experts(x, gate_up, down, num_experts);
  TORCH_CHECK((router.scalar_type() == at::kFloat || router.scalar_type() == at::kBFloat16) && router.is_contiguous() &&
              router.dim() == 2 && router.size(1) == x.size(1), "moe_decode_routed: router (E + m, H) fp32/bf16");
  const int64_t T = x.size(0), H = x.size(1), I = down.size(2), N = router.size(0);
  TORCH_CHECK(top_k >= 1 && top_k <= N && num_experts <= N && normalize >= 0 && normalize <= 2,
              "moe_decode_routed: rule");
  const Rule r{num_experts, N, top_k, normalize, identity, static_cast<float>(null_bias)};
  torch::Tensor out = torch::empty({T, H}, x.options()), logits = torch::empty({T, N}, x.options());
  torch::Tensor probs = torch::empty({T, N}, x.options()), w = torch::empty({T, top_k}, x.options());
  torch::Tensor idx = torch::empty({T, top_k}, x.options().dtype(at::kLong));
  const Routed o{out.data_ptr<float>(), logits.data_ptr<float>(), probs.data_ptr<float>(), w.data_ptr<float>(),
                 idx.data_ptr<int64_t>()};
  static thread_local Scratch s;
  int64_t n = 0;
  with_data(router, [&](auto rw) {
    with_data(gate_up, [&](auto gu) {
      n = routed_region(x.data_ptr<float>(), rw, gu, static_cast<decltype(gu)>(down.data_ptr()), T, H, I, r, s, o);
    });
  });
  return {out, idx, w, probs, logits, n};
}
"""
