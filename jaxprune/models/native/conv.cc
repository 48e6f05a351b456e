// Direct stride-1 convolutions (any kernel size, any zero padding) for
// XLA:CPU, called through the XLA FFI by jaxprune/models/native_conv.py
// (which explains when and why).
//
// Layouts: x [..., N, H, W, CI] (NHWC), k [..., KH, KW, CI, CO] (HWIO), leading
// "..." dims from vmap (JAX's vmap_method="expand_dims": every operand has
// them, 1 where it is not batched, so they broadcast). Any channel counts:
// output channels run in tiles of 16 and 8 lanes and a masked tail.
//
// Both kernels keep a tile of the result in AVX2 registers for a whole
// reduction (one image, zero-padded into a per-thread buffer so the inner
// loops have no bounds checks): forward, 6 output pixels (consecutive in
// row-major order, across row ends) x 16 channels, or 12 pixels x 8 channels
// for the last 8 or fewer, over (kh, kw, ci); filter
// gradient, a group of up to 8 input channels (or, with one input channel,
// kernel taps) x 16 output channels over every output pixel of an image, per
// tap. With few output channels (input gradients of convs with few input
// channels) the forward is instead 8 output pixels at a time, each a dot
// product along kernel rows (`FwdImageRowDot`). The pads are attributes.
// Forward accumulators are named variables because GCC keeps arrays of
// vectors in memory in that loop.

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Lanes [0, n) of a tail vector (n < 8).
inline __m256i TailMask(int n) {
  alignas(32) int32_t m[8];
  for (int i = 0; i < 8; ++i) m[i] = i < n ? -1 : 0;
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

// 1 vector of 8 lanes, or a masked partial one.
template <bool kMasked>
inline __m256 Load(const float* p, __m256i mask) {
  if constexpr (kMasked) return _mm256_maskload_ps(p, mask);
  return _mm256_loadu_ps(p);
}
template <bool kMasked>
inline void Store(float* p, __m256 v, __m256i mask) {
  if constexpr (kMasked) _mm256_maskstore_ps(p, mask, v);
  else _mm256_storeu_ps(p, v);
}

// The padding of a conv and the shapes it implies.
struct Geometry {
  int h, w, ci, co, kh, kw;  // Input size and channels, kernel size.
  int top, bottom, left, right;
  int hp() const { return h + top + bottom; }  // Padded input.
  int wp() const { return w + left + right; }
  int oh() const { return hp() - kh + 1; }  // Output.
  int ow() const { return wp() - kw + 1; }
  // The padded image plus slack for the last forward tile's over-read.
  size_t padded() const { return ((size_t)hp() * wp() + kw + 8) * ci; }
};

void PadImage(const float* x, float* xp, const Geometry& g) {
  const int wp = g.wp(), c = g.ci;
  std::memset(xp, 0, sizeof(float) * g.padded());
  for (int i = 0; i < g.h; ++i)
    std::memcpy(xp + ((size_t)(i + g.top) * wp + g.left) * c, x + (size_t)i * g.w * c,
                sizeof(float) * (size_t)g.w * c);
}

constexpr int kPixels = 6;  // Output pixels per forward tile of two vectors.
constexpr int kNarrowPixels = 12;  // ... of one vector (8 or fewer channels left).
constexpr int kStrip = 4 * kNarrowPixels;  // Pixels per pass over the channels.

// out[p, cb + 0..16) for kPixels output pixels whose top-left taps sit at
// xp + off[p]. A tile runs over the output in row-major order, across row
// ends, so no tile is partly empty except the image's last (npix < kPixels:
// its extra pixels repeat a real one and are not stored).
void FwdTile(const float* xp, const int64_t* off, const float* k, float* o, int wp,
             int ci_n, int co_n, int kh_n, int kw_n, int npix) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
  __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0;
  const float *p0 = xp + off[0], *p1 = xp + off[1], *p2 = xp + off[2];
  const float *p3 = xp + off[3], *p4 = xp + off[4], *p5 = xp + off[5];
  for (int kh = 0; kh < kh_n; ++kh)
    for (int kw = 0; kw < kw_n; ++kw) {
      const size_t tap = ((size_t)kh * wp + kw) * ci_n;
      const float* kt = k + (size_t)(kh * kw_n + kw) * ci_n * co_n;
      for (int ci = 0; ci < ci_n; ++ci) {
        const float* kr = kt + (size_t)ci * co_n;
        const __m256 w0 = _mm256_loadu_ps(kr), w1 = _mm256_loadu_ps(kr + 8);
        const size_t at = tap + ci;
#define JP_PIXEL(P, A, B)                              \
  {                                                    \
    const __m256 v = _mm256_broadcast_ss(P + at);      \
    A = _mm256_fmadd_ps(v, w0, A);                     \
    B = _mm256_fmadd_ps(v, w1, B);                     \
  }
        JP_PIXEL(p0, a0, b0) JP_PIXEL(p1, a1, b1) JP_PIXEL(p2, a2, b2)
        JP_PIXEL(p3, a3, b3) JP_PIXEL(p4, a4, b4) JP_PIXEL(p5, a5, b5)
#undef JP_PIXEL
      }
    }
  const __m256 as[kPixels] = {a0, a1, a2, a3, a4, a5};
  const __m256 bs[kPixels] = {b0, b1, b2, b3, b4, b5};
  for (int p = 0; p < kPixels; ++p) {
    if (p >= npix) break;
    float* dst = o + (size_t)p * co_n;
    _mm256_storeu_ps(dst, as[p]);
    _mm256_storeu_ps(dst + 8, bs[p]);
  }
}

// FwdTile for one vector of output channels (8, or a masked tail): 12 pixels,
// so twelve FMA chains hide the FMA latency that 6 could not. With 8 or fewer
// output channels this is every tile (LeNet-5's convs and the input gradient
// of its second conv, whose output channels are the conv's 6 inputs).
template <bool kMasked>
// Its first `full` pixels store all 8 lanes even when fewer channels are left
// (`FwdImage` says when that is safe): a masked store is microcoded on AMD
// cores and cost more than the tile's FMAs for LeNet-5's 6-channel outputs.
void FwdTileNarrow(const float* xp, const int64_t* off, const float* k, float* o,
                   int wp, int ci_n, int co_n, int kh_n, int kw_n, int npix, int full,
                   __m256i mask) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
  __m256 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  const float *p0 = xp + off[0], *p1 = xp + off[1], *p2 = xp + off[2];
  const float *p3 = xp + off[3], *p4 = xp + off[4], *p5 = xp + off[5];
  const float *p6 = xp + off[6], *p7 = xp + off[7], *p8 = xp + off[8];
  const float *p9 = xp + off[9], *p10 = xp + off[10], *p11 = xp + off[11];
  for (int kh = 0; kh < kh_n; ++kh)
    for (int kw = 0; kw < kw_n; ++kw) {
      const size_t tap = ((size_t)kh * wp + kw) * ci_n;
      const float* kt = k + (size_t)(kh * kw_n + kw) * ci_n * co_n;
      for (int ci = 0; ci < ci_n; ++ci) {
        const __m256 w0 = Load<kMasked>(kt + (size_t)ci * co_n, mask);
        const size_t at = tap + ci;
#define JP_PIXEL(P, A) A = _mm256_fmadd_ps(_mm256_broadcast_ss(P + at), w0, A);
        JP_PIXEL(p0, a0) JP_PIXEL(p1, a1) JP_PIXEL(p2, a2) JP_PIXEL(p3, a3)
        JP_PIXEL(p4, a4) JP_PIXEL(p5, a5) JP_PIXEL(p6, a6) JP_PIXEL(p7, a7)
        JP_PIXEL(p8, a8) JP_PIXEL(p9, a9) JP_PIXEL(p10, a10) JP_PIXEL(p11, a11)
#undef JP_PIXEL
      }
    }
  const __m256 as[kNarrowPixels] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
  for (int p = 0; p < kNarrowPixels; ++p) {
    if (p >= npix) break;
    if (p < full)
      _mm256_storeu_ps(o + (size_t)p * co_n, as[p]);
    else
      Store<kMasked>(o + (size_t)p * co_n, as[p], mask);
  }
}

// Sum of each of 8 vectors, as one vector: lane p = sum of a[p]'s lanes.
inline __m256 HorizontalSums(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4,
                             __m256 a5, __m256 a6, __m256 a7) {
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                       _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Whether `FwdImageRowDot` needs fewer FMAs than the channel-vector tiles,
// whose 8 lanes are mostly idle with few output channels: the input gradients
// of convs on 1- or 3-channel images (which the Jacobian analysis needs) and
// of LeNet-5's second conv (6 channels, every train step).
bool UseRowDot(const Geometry& g) {
  const int row_vectors = (g.kw * g.ci + 7) / 8;
  return g.co <= 8 && 5 * g.co * row_vectors < 4 * g.kw * g.ci;
}

// One image for few output channels: each output is a dot product of
// contiguous floats, since in the padded NHWC image a kernel row's taps x
// channels (kw * ci floats) follow one another. So the kernel rows are packed
// once per output channel (zero-padded to whole vectors: the over-read lanes
// meet zero weights and stay inside `padded()`'s slack), and 8 output pixels
// at a time keep one accumulator each over (kernel row, vector), summed across
// lanes at the end.
void FwdImageRowDot(const float* xp, const float* k, float* out, const Geometry& g) {
  const int wp = g.wp(), ow = g.ow(), ci = g.ci, co = g.co;
  const int len = g.kw * ci, nv = (len + 7) / 8;
  const int pixels = g.oh() * ow;
  float pack[8 * 8 * 8 * 8];  // Bigger kernels use `big`.
  std::vector<float> big;
  float* packed = pack;
  const size_t per_o = (size_t)g.kh * nv * 8;
  if (per_o * co > sizeof(pack) / sizeof(float)) {
    big.resize(per_o * co);
    packed = big.data();
  }
  for (int o = 0; o < co; ++o)
    for (int i = 0; i < g.kh; ++i)
      for (int l = 0; l < nv * 8; ++l)
        packed[o * per_o + (size_t)i * nv * 8 + l] =
            l < len ? k[((size_t)i * len + l) * co + o] : 0.f;
  const size_t row = (size_t)wp * ci;
  int64_t off[8];
  for (int p0 = 0; p0 < pixels; p0 += 8) {
    const int npix = std::min(8, pixels - p0);
    for (int q = 0; q < 8; ++q) {
      const int p = p0 + std::min(q, npix - 1);  // Past the end: repeat the last.
      off[q] = ((int64_t)(p / ow) * wp + p % ow) * ci;
    }
    for (int o = 0; o < co; ++o) {
      const float* w = packed + o * per_o;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      __m256 a4 = a0, a5 = a0, a6 = a0, a7 = a0;
      for (int i = 0; i < g.kh; ++i)
        for (int v = 0; v < nv; ++v) {
          const __m256 wv = _mm256_loadu_ps(w + ((size_t)i * nv + v) * 8);
          const size_t at = i * row + (size_t)v * 8;
#define JP_PIXEL(Q, A) A = _mm256_fmadd_ps(_mm256_loadu_ps(xp + off[Q] + at), wv, A);
          JP_PIXEL(0, a0) JP_PIXEL(1, a1) JP_PIXEL(2, a2) JP_PIXEL(3, a3)
          JP_PIXEL(4, a4) JP_PIXEL(5, a5) JP_PIXEL(6, a6) JP_PIXEL(7, a7)
#undef JP_PIXEL
        }
      alignas(32) float sums[8];
      _mm256_store_ps(sums, HorizontalSums(a0, a1, a2, a3, a4, a5, a6, a7));
      float* dst = out + (size_t)p0 * co + o;
      for (int q = 0; q < npix; ++q) dst[(size_t)q * co] = sums[q];
    }
  }
}

// One image: xp padded (PadImage), out [oh, ow, co]. Strips of kStrip output
// pixels, each swept once per block of output channels (the strip's input
// rows stay in cache while the weights change).
void FwdImage(const float* xp, const float* k, float* out, const Geometry& g) {
  if (UseRowDot(g)) return FwdImageRowDot(xp, k, out, g);
  const int wp = g.wp(), ow = g.ow(), ci = g.ci, co = g.co;
  const int pixels = g.oh() * ow;
  const __m256i tail = TailMask(co % 8);
  // The last pixel whose 8 lanes end inside the image (co < 8).
  const int last_full = pixels - (8 + co - 1) / co;
  int64_t off[kStrip + kNarrowPixels];
  for (int s0 = 0; s0 < pixels; s0 += kStrip) {
    const int n = std::min(kStrip, pixels - s0);
    for (int i = 0; i < n + kNarrowPixels; ++i) {
      const int p = s0 + std::min(i, n - 1);  // Past the end: repeat the last.
      off[i] = ((int64_t)(p / ow) * wp + p % ow) * ci;
    }
    for (int cb = 0; cb < co;) {
      const int left = co - cb;
      const int step = left >= 16 ? kPixels : kNarrowPixels;
      for (int t = 0; t < n; t += step) {
        const int npix = std::min(step, n - t);
        float* o = out + (size_t)(s0 + t) * co + cb;
        // With fewer than 8 channels in all, a pixel's 8-lane store spills
        // into the next pixels' channels, which their own stores (later in
        // this thread: pixels ascend) overwrite. Never past the image's end:
        // the next image may belong to another thread.
        const int full =
            co < 8 ? std::clamp(last_full - (s0 + t) + 1, 0, npix) : 0;
        if (left >= 16)
          FwdTile(xp, off + t, k + cb, o, wp, ci, co, g.kh, g.kw, npix);
        else if (left >= 8)
          FwdTileNarrow<false>(xp, off + t, k + cb, o, wp, ci, co, g.kh, g.kw, npix, 0,
                               tail);
        else
          FwdTileNarrow<true>(xp, off + t, k + cb, o, wp, ci, co, g.kh, g.kw, npix, full,
                              tail);
      }
      cb += left >= 16 ? 16 : 8;
    }
  }
}

// dk[ci0 + 0..kCi, cb + lanes] += sum over the image's pixels of
// xs[pixel, ci0 + i] * g[pixel, cb + lanes]; xs is the padded input shifted
// by the tap.
template <int kCi, bool kTwo, bool kMasked>
void DwTile(const float* xs, const float* g, float* dk, int h, int w, int wp, int ci_n,
            int co_n, __m256i mask) {
  __m256 a[kCi], b[kCi];
  for (int i = 0; i < kCi; ++i) {
    a[i] = kTwo ? _mm256_loadu_ps(dk + (size_t)i * co_n)
                : Load<kMasked>(dk + (size_t)i * co_n, mask);
    b[i] = kTwo ? _mm256_loadu_ps(dk + (size_t)i * co_n + 8) : a[i];
  }
  for (int y = 0; y < h; ++y) {
    const float* xr = xs + (size_t)y * wp * ci_n;
    const float* gr = g + (size_t)y * w * co_n;
    for (int x = 0; x < w; ++x) {
      const float* gp = gr + (size_t)x * co_n;
      const __m256 g0 = kTwo ? _mm256_loadu_ps(gp) : Load<kMasked>(gp, mask);
      const __m256 g1 = kTwo ? _mm256_loadu_ps(gp + 8) : g0;
      const float* xp = xr + (size_t)x * ci_n;
#pragma GCC unroll 8
      for (int i = 0; i < kCi; ++i) {
        const __m256 v = _mm256_broadcast_ss(xp + i);
        a[i] = _mm256_fmadd_ps(v, g0, a[i]);
        if (kTwo) b[i] = _mm256_fmadd_ps(v, g1, b[i]);
      }
    }
  }
  for (int i = 0; i < kCi; ++i) {
    if (kTwo) {
      _mm256_storeu_ps(dk + (size_t)i * co_n, a[i]);
      _mm256_storeu_ps(dk + (size_t)i * co_n + 8, b[i]);
    } else {
      Store<kMasked>(dk + (size_t)i * co_n, a[i], mask);
    }
  }
}

template <int kCi>
void DwTiles(const float* xs, const float* g, float* dk, int h, int w, int wp, int ci_n,
             int co_n, __m256i tail) {
  for (int cb = 0; cb < co_n;) {
    const int left = co_n - cb;
    if (left >= 16)
      DwTile<kCi, true, false>(xs, g + cb, dk + cb, h, w, wp, ci_n, co_n, tail);
    else if (left >= 8)
      DwTile<kCi, false, false>(xs, g + cb, dk + cb, h, w, wp, ci_n, co_n, tail);
    else
      DwTile<kCi, false, true>(xs, g + cb, dk + cb, h, w, wp, ci_n, co_n, tail);
    cb += left >= 16 ? 16 : 8;
  }
}

// DwTiles for a group of `n` (1..8) consecutive input floats of each pixel.
void DwGroup(int n, const float* xs, const float* g, float* dk, int h, int w, int wp,
             int ci_n, int co_n, __m256i tail) {
  switch (n) {
#define JP_CASE(N) \
  case N:          \
    return DwTiles<N>(xs, g, dk, h, w, wp, ci_n, co_n, tail);
    JP_CASE(1) JP_CASE(2) JP_CASE(3) JP_CASE(4)
    JP_CASE(5) JP_CASE(6) JP_CASE(7) JP_CASE(8)
#undef JP_CASE
  }
}

// dk [kh, kw, ci, co] += this image's part; xp padded (PadImage), g [oh, ow, co].
// Each tile sums one group of input channels for every pixel into registers:
// up to 4 channels when the output channels fill two vectors, up to 8 when
// they fill one, so every FMA chain has company while it waits on the last.
// With one input channel the group is the kernel row's taps instead: in the
// padded image a pixel's next tap is the next float, as a next channel would
// be, and in dk the next tap follows at the same stride.
void DwImage(const float* xp, const float* g, float* dk, const Geometry& geo) {
  const int wp = geo.wp(), oh = geo.oh(), ow = geo.ow(), ci_n = geo.ci, co = geo.co;
  const __m256i tail = TailMask(co % 8);
  const int most = co >= 16 ? 4 : 8;
  for (int kh = 0; kh < geo.kh; ++kh) {
    if (ci_n == 1) {
      for (int kw = 0; kw < geo.kw;) {
        const int n = std::min(most, geo.kw - kw);
        DwGroup(n, xp + (size_t)kh * wp + kw, g, dk + (size_t)(kh * geo.kw + kw) * co, oh,
                ow, wp, 1, co, tail);
        kw += n;
      }
      continue;
    }
    for (int kw = 0; kw < geo.kw; ++kw) {
      const float* xs = xp + ((size_t)kh * wp + kw) * ci_n;
      float* dkt = dk + (size_t)(kh * geo.kw + kw) * ci_n * co;
      for (int ci = 0; ci < ci_n;) {
        const int n = std::min(most, ci_n - ci);
        DwGroup(n, xs + ci, g, dkt + (size_t)ci * co, oh, ow, wp, ci_n, co, tail);
        ci += n;
      }
    }
  }
}

// Runs body(t) for t in [0, n): the chunks are claimed from a shared counter
// by this thread and by n - 1 tasks on XLA's intra-op pool. This thread can
// run every chunk itself, so it never waits for a task that has not started
// (XLA may run this call on a pool thread while the others are busy): it
// only waits for chunks another thread has claimed and is running. A task
// that starts after the last chunk was claimed touches only the shared
// counters, which it co-owns.
template <typename F>
void ParallelFor(ffi::ThreadPool pool, int n, const F& body) {
  struct Counters {
    std::atomic<int> next{0}, done{0};
  };
  auto counters = std::make_shared<Counters>();
  const F* fn = &body;
  auto work = [counters, fn, n] {
    for (int t; (t = counters->next.fetch_add(1, std::memory_order_relaxed)) < n;) {
      (*fn)(t);
      counters->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int t = 1; t < n; ++t) {
    auto task = work;  // Schedule takes ownership of a copy.
    pool.Schedule(std::move(task));
  }
  work();
  while (counters->done.load(std::memory_order_acquire) < n) std::this_thread::yield();
}

int Workers() { return std::max(1u, std::thread::hardware_concurrency()); }

// Leading (vmap) dims of an operand of rank 4 + L, and where operand `i`'s
// slice for output leading index `flat` starts (size-1 dims broadcast).
struct Leading {
  std::vector<int64_t> out;  // Broadcast leading shape.
  int64_t count = 1;
  void Init(const std::vector<ffi::Span<const int64_t>>& dims) {
    const size_t rank = dims[0].size() - 4;
    out.assign(rank, 1);
    for (const auto& d : dims)
      for (size_t i = 0; i < rank; ++i) out[i] = std::max(out[i], d[i]);
    for (int64_t v : out) count *= v;
  }
  // Offset (in slices) of the operand with leading dims `d` for output index `flat`.
  int64_t Slice(ffi::Span<const int64_t> d, int64_t flat) const {
    int64_t offset = 0, stride = 1;
    for (int64_t i = (int64_t)out.size() - 1; i >= 0; --i) {
      const int64_t idx = flat % out[i];
      flat /= out[i];
      if (d[i] != 1) offset += idx * stride;
      stride *= d[i];
    }
    return offset;
  }
};

ffi::Error CheckRank(ffi::Span<const int64_t> d, const char* what) {
  if (d.size() < 4)
    return ffi::Error::InvalidArgument(std::string(what) + " must have rank >= 4");
  return ffi::Error::Success();
}

ffi::Error ForwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                       ffi::Buffer<ffi::F32> k, ffi::ResultBuffer<ffi::F32> y,
                       int64_t top, int64_t bottom, int64_t left, int64_t right) {
  auto xd = x.dimensions(), kd = k.dimensions();
  if (auto e = CheckRank(xd, "x"); e.failure()) return e;
  if (xd.size() != kd.size())
    return ffi::Error::InvalidArgument("x and k must have the same leading dims");
  const size_t r = xd.size();
  const Geometry geo{(int)xd[r - 3], (int)xd[r - 2], (int)xd[r - 1], (int)kd[r - 1],
                     (int)kd[r - 4], (int)kd[r - 3], (int)top, (int)bottom,
                     (int)left, (int)right};
  const int n = xd[r - 4];
  if (kd[r - 2] != geo.ci)
    return ffi::Error::InvalidArgument("k must be [KH, KW, Cin, Cout]");
  if (geo.oh() < 1 || geo.ow() < 1)
    return ffi::Error::InvalidArgument("the kernel is larger than the padded input");
  Leading lead;
  lead.Init({xd, kd});
  const size_t x_img = (size_t)geo.h * geo.w * geo.ci;
  const size_t y_img = (size_t)geo.oh() * geo.ow() * geo.co;
  const size_t k_size = (size_t)geo.kh * geo.kw * geo.ci * geo.co;
  const int64_t images = lead.count * n;
  const int workers = (int)std::min<int64_t>(Workers(), images);
  ParallelFor(pool, workers, [&](int t) {
    std::vector<float> xp(geo.padded(), 0.f);
    for (int64_t j = images * t / workers; j < images * (t + 1) / workers; ++j) {
      const int64_t l = j / n, i = j % n;
      const float* xi = x.typed_data() + (lead.Slice(xd, l) * n + i) * x_img;
      const float* kl = k.typed_data() + lead.Slice(kd, l) * k_size;
      PadImage(xi, xp.data(), geo);
      FwdImage(xp.data(), kl, y->typed_data() + (size_t)j * y_img, geo);
    }
  });
  return ffi::Error::Success();
}

ffi::Error FilterGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::Buffer<ffi::F32> g, ffi::ResultBuffer<ffi::F32> dk,
                          int64_t top, int64_t bottom, int64_t left, int64_t right) {
  auto xd = x.dimensions(), gd = g.dimensions(), kd = dk->dimensions();
  if (auto e = CheckRank(xd, "x"); e.failure()) return e;
  if (xd.size() != gd.size())
    return ffi::Error::InvalidArgument("x and g must have the same leading dims");
  const size_t r = xd.size(), rk = kd.size();
  const Geometry geo{(int)xd[r - 3], (int)xd[r - 2], (int)xd[r - 1], (int)gd[r - 1],
                     (int)kd[rk - 4], (int)kd[rk - 3], (int)top, (int)bottom,
                     (int)left, (int)right};
  const int n = xd[r - 4];
  if (gd[r - 4] != n || gd[r - 3] != geo.oh() || gd[r - 2] != geo.ow())
    return ffi::Error::InvalidArgument("g must be [N, OH, OW, Cout] of this conv");
  Leading lead;
  lead.Init({xd, gd});
  const size_t x_img = (size_t)geo.h * geo.w * geo.ci;
  const size_t g_img = (size_t)geo.oh() * geo.ow() * geo.co;
  const size_t k_size = (size_t)geo.kh * geo.kw * geo.ci * geo.co;
  const int workers = (int)std::min<int64_t>(Workers(), n);
  std::vector<float> parts((size_t)workers * k_size);
  for (int64_t l = 0; l < lead.count; ++l) {
    const float* xl = x.typed_data() + lead.Slice(xd, l) * n * x_img;
    const float* gl = g.typed_data() + lead.Slice(gd, l) * n * g_img;
    std::fill(parts.begin(), parts.end(), 0.f);
    ParallelFor(pool, workers, [&](int t) {
      std::vector<float> xp(geo.padded(), 0.f);
      float* mine = parts.data() + (size_t)t * k_size;
      for (int i = n * t / workers; i < n * (t + 1) / workers; ++i) {
        PadImage(xl + (size_t)i * x_img, xp.data(), geo);
        DwImage(xp.data(), gl + (size_t)i * g_img, mine, geo);
      }
    });
    float* out = dk->typed_data() + (size_t)l * k_size;
    for (size_t i = 0; i < k_size; ++i) {
      float s = 0.f;
      for (int t = 0; t < workers; ++t) s += parts[(size_t)t * k_size + i];
      out[i] = s;
    }
  }
  return ffi::Error::Success();
}

}  // namespace

#define JP_BIND                                  \
  ffi::Ffi::Bind()                               \
      .Ctx<ffi::ThreadPool>()                    \
      .Arg<ffi::Buffer<ffi::F32>>()              \
      .Arg<ffi::Buffer<ffi::F32>>()              \
      .Ret<ffi::Buffer<ffi::F32>>()              \
      .Attr<int64_t>("pad_top")                  \
      .Attr<int64_t>("pad_bottom")               \
      .Attr<int64_t>("pad_left")                 \
      .Attr<int64_t>("pad_right")

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxpruneConvForward, ForwardImpl, JP_BIND);
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxpruneConvFilterGrad, FilterGradImpl, JP_BIND);
