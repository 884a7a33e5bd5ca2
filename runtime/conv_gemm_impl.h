/* The implicit-GEMM convolutions for one float type (conv_gemm.c includes it once
 * per type with REAL, SFX, SMALL_TYPE: the small-GEMM kernels take it, and
 * CBLAS_GEMM). No include guard. */

#define FN_(base, sfx) NAME(base, sfx)
#define FN(base) FN_(base, SFX)

/* C [M, N] = op(A) B (+ C where accumulate), op(A) = A or A^T: the small kernels
 * where they take the type, else OpenBLAS on the tile. */
static void FN(tile_gemm)(bool ta, int64_t M, int64_t N, int64_t K, const REAL *A, int64_t lda,
                          const REAL *B, bool accumulate, REAL *C) {
#if SMALL_TYPE
  if (SMALL_OK()) {
    if (accumulate)
      sn_small_gemm_acc(ta, (int)M, 0, (int)N, (int)K, A, (int)lda, B, (int)N, C, (int)N);
    else
      sn_small_gemm(ta, false, false, (int)M, 0, (int)N, (int)K, A, (int)lda, B, (int)N, C, (int)N);
    return;
  }
#endif
  CBLAS_GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1,
             A, (int)lda, B, (int)N, accumulate ? 1 : 0, C, (int)N);
}

typedef struct FN(job) {
  geom q;
  const REAL *x, *w, *dy; /* w: forward (w), input gradient (w^T); dy: the gradients */
  REAL *y;                /* forward: y; input gradient: dx */
  int64_t parts;          /* weight gradient: parts, their slices at scratch */
  REAL *scratch;
} FN(job);

/* forward: tiles lo..hi */
static void FN(fwd_part)(void *ctx, int64_t lo, int64_t hi) {
  const FN(job) *j = ctx;
  const geom *q = &j->q;
  _Alignas(64) REAL buf[TILE_BYTES / sizeof(REAL)];
  for (int64_t t = lo; t < hi; t++) {
    int64_t r0 = t * q->mt, mt = q->M - r0 < q->mt ? q->M - r0 : q->mt;
    gather(q, (const char *)j->x, sizeof(REAL), r0, mt, (char *)buf);
    FN(tile_gemm)(false, mt, q->F, q->K, buf, q->K, j->w, false, j->y + r0 * q->F);
  }
}

/* y [N, OH, OW, F] = patches(x) w; geo: n, H, W, C, KH, KW, SH, SW, PT, PL, DH,
 * DW, OH, OW, F */
void FN(conv_gemm)(const int64_t *geo, const REAL *x, const REAL *w, REAL *y) {
  FN(job) j = {.q = geom_of(geo, sizeof(REAL)), .x = x, .w = w, .y = y};
  if (j.q.M <= 0 || j.q.F <= 0) return;
  PAR_FOR(FN(fwd_part), &j, (j.q.M + j.q.mt - 1) / j.q.mt);
}

/* weight gradient: parts lo..hi, each accumulating into its slice */
static void FN(wgrad_part)(void *ctx, int64_t lo, int64_t hi) {
  const FN(job) *j = ctx;
  const geom *q = &j->q;
  int64_t KF = q->K * q->F;
  _Alignas(64) REAL buf[TILE_BYTES / sizeof(REAL)];
  for (int64_t p = lo; p < hi; p++) {
    int64_t r_lo = q->M * p / j->parts, r_hi = q->M * (p + 1) / j->parts;
    REAL *acc = j->scratch + p * KF;
    if (r_lo == r_hi) memset(acc, 0, sizeof(REAL) * (size_t)KF);
    for (int64_t r0 = r_lo; r0 < r_hi; r0 += q->mt) {
      int64_t mt = r_hi - r0 < q->mt ? r_hi - r0 : q->mt;
      gather(q, (const char *)j->x, sizeof(REAL), r0, mt, (char *)buf);
      FN(tile_gemm)(true, q->K, q->F, mt, buf, q->K, j->dy + r0 * q->F, r0 != r_lo, acc);
    }
  }
}

/* dw [K, F] = patches(x)^T dy, in `parts` fixed parts of the rows summed in order;
 * scratch: parts K F elements */
void FN(conv_gemm_wgrad)(const int64_t *geo, const REAL *dy, const REAL *x, int64_t parts,
                         REAL *scratch, REAL *dw) {
  FN(job)
  j = {.q = geom_of(geo, sizeof(REAL)), .x = x, .dy = dy, .parts = parts, .scratch = scratch};
  int64_t KF = j.q.K * j.q.F;
  if (KF <= 0) return;
  if (j.q.M <= 0 || parts < 1) {
    memset(dw, 0, sizeof(REAL) * (size_t)KF);
    return;
  }
  PAR_FOR(FN(wgrad_part), &j, parts);
  /* part by part over dw (vector adds), each element summed in the parts' order */
  memcpy(dw, scratch, sizeof(REAL) * (size_t)KF);
  for (int64_t p = 1; p < parts; p++) {
    const REAL *sp = scratch + p * KF;
    for (int64_t i = 0; i < KF; i++) dw[i] += sp[i];
  }
}

/* input gradient: samples lo..hi */
static void FN(dgrad_part)(void *ctx, int64_t lo, int64_t hi) {
  const FN(job) *j = ctx;
  const geom *q = &j->q;
  int64_t rows = q->OH * q->OW, pixels = q->H * q->W * q->C;
  _Alignas(64) REAL buf[TILE_BYTES / sizeof(REAL)];
  for (int64_t n = lo; n < hi; n++) {
    REAL *dxn = j->y + n * pixels;
    memset(dxn, 0, sizeof(REAL) * (size_t)pixels);
    for (int64_t r0 = 0; r0 < rows; r0 += q->mt) {
      int64_t mt = rows - r0 < q->mt ? rows - r0 : q->mt;
      FN(tile_gemm)(false, mt, q->K, q->F, j->dy + (n * rows + r0) * q->F, q->F, j->w, false, buf);
      SCATTER_FN(REAL)(q, buf, r0, mt, dxn);
    }
  }
}

/* dx [n, H, W, C] = col2im(dy wt), wt [F, K] (w transposed) */
void FN(conv_gemm_dgrad)(const int64_t *geo, const REAL *dy, const REAL *wt, REAL *dx) {
  FN(job) j = {.q = geom_of(geo, sizeof(REAL)), .dy = dy, .w = wt, .y = dx};
  if (j.q.n <= 0 || j.q.H * j.q.W * j.q.C <= 0) return;
  PAR_FOR(FN(dgrad_part), &j, j.q.n);
}

#undef FN
#undef FN_
