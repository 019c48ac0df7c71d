// The loop of the Slice-and-Scale CPU fast paths over one thread's blocks, generic in the chunk
// kernel K (slicescale_simd.h: K::kElems elements a chunk, whole bytes in and out, an element bit
// mask of NaN/Inf codes, and the report flags: a bit per block of the chunk where K::kBlockFlags,
// else per element). No include guard on purpose:
// slicescale_cpu.cpp includes it twice, in its plain namespace and in one compiled with
// `#pragma GCC target("avx512vbmi")`, so that the VBMI chunk kernel inlines into its own copy of
// the loop (a function without that target may not inline one that has it).
//
// Per row, the full blocks go through drive_row in groups of up to 64 blocks: the scale bytes first
// (K::scales: byte + delta, and a bit for every block whose byte is NaN or clamps at 254), then the data
// chunk by chunk (a block holding a NaN/Inf code gets its bit too), then every block with a bit
// again through convert_block, which writes its bytes and scale over the chunk's. A partial last
// block of a row always goes through convert_block.

// Element bit mask m of one chunk of E elements -> one bit per block of BS elements (BS >= E: one bit).
template <int E, int BS>
static inline uint64_t block_bits(uint64_t m) {
  if (BS >= E) return m != 0;
  constexpr uint64_t one = BS >= 64 ? ~0ull : (1ull << (BS & 63)) - 1;
  uint64_t r = 0;
  for (int j = 0; j < E / BS; ++j) r |= (uint64_t)(((m >> (j * BS)) & one) != 0) << j;
  return r;
}

// A group's report bits, one per block.
template <class K, int BS>
static inline uint64_t block_flags(const uint64_t* w) {
  if constexpr (K::kBlockFlags)
    return w[0];
  else
    return K::template group_bits<BS>(w);
}

template <int SRC, int DST, bool REPORT, int BS, class K>
static inline void drive_row(const K& kern, const uint8_t* in_row, uint8_t* out_row, const uint8_t* scales,
                             uint8_t* out_scales, int64_t k0, int64_t k1, bool truncate, Tally* tally) {
  constexpr Format s = format_of(SRC), d = format_of(DST);
  constexpr int E = K::kElems;
  // The report's bits of a group: per block (kBlockFlags), or per element (64 * BS bits each, reduced
  // per block by K::group_bits).
  constexpr int kWords = REPORT && !K::kBlockFlags ? BS : 1;
  alignas(64) uint64_t w_in[kWords], w_sat[kWords], w_ftz[kWords];
  for (int64_t g = k0; g < k1; g += 64) {
    const int nb = (int)(k1 - g < 64 ? k1 - g : 64);
    uint64_t bad = K::scales(scales + g, out_scales + g, nb);
    const uint8_t* src = in_row + g * BS * s.bits / 8;
    uint8_t* dst = out_row + g * BS * d.bits / 8;
    const int ne = nb * BS;
    if (REPORT && (K::kBlockFlags || nb < 64)) {
      memset(w_in, 0, sizeof(w_in));
      memset(w_sat, 0, sizeof(w_sat));
      memset(w_ftz, 0, sizeof(w_ftz));
    }
    for (int e = 0; e < ne; e += E) {
      Masks m;
      if (ne - e >= E) {
        kern.template run<BS>(src + e * s.bits / 8, dst + e * d.bits / 8, ne - e >= 2 * E, m);  // more: one follows
      } else {  // a short last chunk (whole blocks of 16 or 32): zero-padded (code 0 -> code 0, no flags)
        alignas(64) uint8_t ib[64] = {};
        alignas(64) uint8_t ob[64];
        memcpy(ib, src + e * s.bits / 8, (size_t)(ne - e) * s.bits / 8);
        kern.template run<BS>(ib, ob, false, m);
        memcpy(dst + e * d.bits / 8, ob, (size_t)(ne - e) * d.bits / 8);
      }
      if (m.special) bad |= block_bits<E, BS>(m.special) << (e / BS);
      if constexpr (REPORT && K::kBlockFlags) {
        w_in[0] |= m.inexact << (e / BS);
        w_sat[0] |= m.saturated << (e / BS);
        w_ftz[0] |= m.flushed << (e / BS);
      } else if constexpr (REPORT) {
        memcpy((uint8_t*)w_in + e / 8, &m.inexact, E / 8);
        memcpy((uint8_t*)w_sat + e / 8, &m.saturated, E / 8);
        memcpy((uint8_t*)w_ftz + e / 8, &m.flushed, E / 8);
      }
    }
    for (uint64_t r = bad; r; r &= r - 1) {
      const int i = __builtin_ctzll(r);
      out_scales[g + i] = (uint8_t)convert_block<SRC, DST>(src + (int64_t)i * BS * s.bits / 8,
                                                           dst + (int64_t)i * BS * d.bits / 8, BS, BS, scales[g + i],
                                                           truncate, REPORT ? tally : nullptr);
    }
    if (REPORT) {
      const uint64_t good = (nb == 64 ? ~0ull : (1ull << nb) - 1) & ~bad;
      tally->n[kLossless] += __builtin_popcountll(good & ~block_flags<K, BS>(w_in));
      tally->n[kSaturatedBlocks] += __builtin_popcountll(good & block_flags<K, BS>(w_sat));
      tally->n[kFlushedBlocks] += __builtin_popcountll(good & block_flags<K, BS>(w_ftz));
    }
  }
}

// Blocks [b0, b1) of the whole (rows x nblocks) grid: the full blocks of each row through drive_row,
// the partial last block through convert_block.
template <int SRC, int DST, bool REPORT, class K>
static inline void drive_range(const K& kern, const ConvertArgs& a, int64_t b0, int64_t b1, Tally* tally) {
  constexpr Format s = format_of(SRC), d = format_of(DST);
  const int64_t L = a.length, bs = a.block_size;
  const int64_t nblocks = (L + bs - 1) / bs, nfull = L / bs;
  const int64_t src_row = packed_bytes(s.bits, L), dst_row = packed_bytes(d.bits, L);
  int64_t row = b0 / nblocks, k = b0 - row * nblocks;
  for (int64_t b = b0; b < b1;) {
    const int64_t k1 = nblocks - k < b1 - b ? nblocks : k + (b1 - b);  // end of this row's part of the range
    const uint8_t* in_row = a.data + row * src_row;
    uint8_t* out_row = a.out_data + row * dst_row;
    const int64_t kf = k1 < nfull ? k1 : nfull;
    if (kf > k) {
      const uint8_t* sc = a.scales + row * nblocks;
      uint8_t* osc = a.out_scales + row * nblocks;
      if (bs == 16)
        drive_row<SRC, DST, REPORT, 16>(kern, in_row, out_row, sc, osc, k, kf, a.truncate, tally);
      else if (bs == 32)
        drive_row<SRC, DST, REPORT, 32>(kern, in_row, out_row, sc, osc, k, kf, a.truncate, tally);
      else
        drive_row<SRC, DST, REPORT, 64>(kern, in_row, out_row, sc, osc, k, kf, a.truncate, tally);
    }
    for (int64_t j = kf > k ? kf : k; j < k1; ++j)  // the partial block
      a.out_scales[row * nblocks + j] = (uint8_t)convert_block<SRC, DST>(
          in_row + j * bs * s.bits / 8, out_row + j * bs * d.bits / 8, (int)(L - j * bs), (int)bs,
          a.scales[row * nblocks + j], a.truncate, REPORT ? tally : nullptr);
    b += k1 - k;
    k = 0;
    ++row;
  }
}
