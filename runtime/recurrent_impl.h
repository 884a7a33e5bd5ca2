/* The bodies of recurrent.c's functions for one float type: included once per type
 * with REAL (float or double), SFX (f32 or f64) and GEMM (sn_par_sgemm or
 * sn_par_dgemm) defined. Shapes: N rows (samples), T steps, H units; every array
 * is row-major with the steps of a sample together: x[n, t, :] at (n T + t) width.
 * The step loop is serial (step t needs step t - 1); each step is one GEMM over all
 * samples and a loop over (n, j). Nothing is allocated: the backward passes carry
 * dh and dc from step t to step t - 1 in their own output's rows for t - 1, which
 * are written for good only when step t - 1 is reached. The loops over j have no
 * branches: what step 0 lacks (h_{-1}, c_{-1}, the carried dh) is loaded from some
 * valid place in the arrays and selected away (never multiplied: it may be NaN).
 *
 * mask [N, T] (NULL: every step holds data) marks the padded steps with 0: there
 * the state carries over unchanged (h_t = h_{t-1}, c_t = c_{t-1}; zeros before the
 * first step), as torch.nn.utils.rnn.pack_padded_sequence gives, and the step's
 * gate gradients are zero. A padded (n, t) runs the same loop as any other and is
 * then overwritten, so that the steps without padding pay one test per (n, t). */

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SFX)

static inline REAL FN(sigm)(REAL x) { return (REAL)1 / ((REAL)1 + EXP(-x)); }

/* LSTM (torch.nn.LSTM's gates i, f, g, o): xw [N, T, 4H] = x W_ih^T + b_ih + b_hh;
 * whh [4H, H]; out [N, T, 6H] = (h, c, i, f, g, o) of each step, gates activated. */
void FN(sn_lstm)(int64_t N, int64_t T, int64_t H, const REAL *xw, const REAL *whh, const REAL *mask, REAL *out) {
  int64_t W = 6 * H;
  for (int64_t t = 0; t < T; t++) {
    if (t > 0) /* gates (before activation) = h_{t-1} W_hh^T, then + xw */
      GEMM(CblasNoTrans, CblasTrans, (int)N, (int)(4 * H), (int)H, out + (t - 1) * W, (int)(T * W), whh,
           (int)H, out + t * W + 2 * H, (int)(T * W));
    bool first = t == 0;
    for (int64_t n = 0; n < N; n++) {
      REAL *o = out + (n * T + t) * W, *p = o + 2 * H;
      const REAL *x = xw + (n * T + t) * 4 * H, *prev = first ? o : o - W;
      for (int64_t j = 0; j < H; j++) {
        REAL hi = p[j], hf = p[H + j], hg = p[2 * H + j], ho = p[3 * H + j], cp = prev[H + j];
        REAL gi = x[j] + (first ? 0 : hi), gf = x[H + j] + (first ? 0 : hf);
        REAL gg = x[2 * H + j] + (first ? 0 : hg), go = x[3 * H + j] + (first ? 0 : ho);
        REAL i = FN(sigm)(gi), f = FN(sigm)(gf), g = TANH(gg), og = FN(sigm)(go);
        REAL c = i * g + f * (first ? 0 : cp);
        p[j] = i, p[H + j] = f, p[2 * H + j] = g, p[3 * H + j] = og;
        o[H + j] = c;
        o[j] = og * TANH(c);
      }
      if (mask && mask[n * T + t] == 0)
        for (int64_t j = 0; j < H; j++) o[j] = first ? 0 : prev[j], o[H + j] = first ? 0 : prev[H + j];
    }
  }
}

/* A padded step of the lstm's gradient: h_t = h_{t-1} and c_t = c_{t-1}, so dh
 * and dc go to step t - 1 whole (dh waits in its 3rd H slot, which step t - 1
 * writes only after the GEMM that fills its first H and the pass that adds the
 * waiting dh to it) and no gate has a gradient. */
static void FN(lstm_grad_padded)(int64_t H, REAL *d, const REAL *dy, REAL *dprev, bool carry, bool first) {
  for (int64_t j = 0; !first && j < H; j++) {
    dprev[2 * H + j] = dy[j] + (carry ? d[j] : 0);
    dprev[H + j] = carry ? d[H + j] : 0;
  }
  for (int64_t j = 0; j < 4 * H; j++) d[j] = 0;
}

/* Its gradient: dout [N, T, D] whose first H of a row are the gradient of h (D is
 * 6H, or H: nothing else of out is a layer's output), out the forward's; dxw
 * [N, T, 4H], the gradient of the gates before activation, which is also the
 * gradient of xw. */
void FN(sn_lstm_grad)(int64_t N, int64_t T, int64_t H, int64_t D, const REAL *dout, const REAL *out,
                      const REAL *whh, const REAL *mask, REAL *dxw) {
  int64_t W = 6 * H, G = 4 * H;
  for (int64_t t = T - 1; t >= 0; t--) {
    bool carry = t < T - 1, first = t == 0; /* dh, dc of step t + 1 wait in d[j], d[H + j] */
    for (int64_t n = 0; n < N; n++) {
      const REAL *o = out + (n * T + t) * W, *p = o + 2 * H, *dy = dout + (n * T + t) * D;
      const REAL *oprev = first ? o : o - W;
      REAL *d = dxw + (n * T + t) * G, *dprev = first ? d : d - G; /* step 0: a slot read already */
      if (mask && mask[n * T + t] == 0) {
        FN(lstm_grad_padded)(H, d, dy, dprev, carry, first);
        continue;
      }
      for (int64_t j = 0; j < H; j++) {
        REAL dhc = d[j], dcc = d[H + j], cp = oprev[H + j];
        REAL dh = dy[j] + (carry ? dhc : 0), dcn = carry ? dcc : 0;
        REAL i = p[j], f = p[H + j], g = p[2 * H + j], og = p[3 * H + j];
        REAL tc = TANH(o[H + j]), cprev = first ? 0 : cp;
        REAL dc = dcn + dh * og * (1 - tc * tc);
        dprev[H + j] = dc * f;
        d[j] = dc * g * i * (1 - i);
        d[H + j] = dc * cprev * f * (1 - f);
        d[2 * H + j] = dc * i * (1 - g * g);
        d[3 * H + j] = dh * tc * og * (1 - og);
      }
    }
    if (t > 0) /* dh of step t - 1 = dgates_t W_hh, into its rows' first H */
      GEMM(CblasNoTrans, CblasNoTrans, (int)N, (int)H, (int)G, dxw + t * G, (int)(T * G), whh, (int)H,
           dxw + (t - 1) * G, (int)(T * G));
    for (int64_t n = 0; t > 0 && mask && n < N; n++) /* a padded step passes dh through */
      if (mask[n * T + t] == 0) {
        REAL *dprev = dxw + (n * T + t - 1) * G;
        for (int64_t j = 0; j < H; j++) dprev[j] += dprev[2 * H + j];
      }
  }
}

/* GRU (torch.nn.GRU's gates r, z, n): xw [N, T, 3H] = x W_ih^T + b_ih; whh [3H, H];
 * bhh [3H]; out [N, T, 5H] = (h, r, z, n, hn) of each step, hn = W_hn h_{t-1} + b_hn,
 * n = tanh(xw_n + r hn), h = (1 - z) n + z h_{t-1}. */
void FN(sn_gru)(int64_t N, int64_t T, int64_t H, const REAL *xw, const REAL *whh, const REAL *bhh, const REAL *mask,
                REAL *out) {
  int64_t W = 5 * H;
  for (int64_t t = 0; t < T; t++) {
    if (t > 0) /* h_{t-1} W_hh^T into the r, z, n slots */
      GEMM(CblasNoTrans, CblasTrans, (int)N, (int)(3 * H), (int)H, out + (t - 1) * W, (int)(T * W), whh,
           (int)H, out + t * W + H, (int)(T * W));
    bool first = t == 0;
    for (int64_t n = 0; n < N; n++) {
      REAL *o = out + (n * T + t) * W, *p = o + H;
      const REAL *x = xw + (n * T + t) * 3 * H, *prev = first ? o : o - W;
      for (int64_t j = 0; j < H; j++) {
        REAL pr = p[j], pz = p[H + j], pn = p[2 * H + j], hp = prev[j];
        REAL hr = bhh[j] + (first ? 0 : pr), hz = bhh[H + j] + (first ? 0 : pz);
        REAL hn = bhh[2 * H + j] + (first ? 0 : pn);
        REAL r = FN(sigm)(x[j] + hr), z = FN(sigm)(x[H + j] + hz), nn = TANH(x[2 * H + j] + r * hn);
        p[j] = r, p[H + j] = z, p[2 * H + j] = nn, p[3 * H + j] = hn;
        o[j] = (1 - z) * nn + z * (first ? 0 : hp);
      }
      if (mask && mask[n * T + t] == 0)
        for (int64_t j = 0; j < H; j++) o[j] = first ? 0 : prev[j];
    }
  }
}

/* Its gradient: dout [N, T, D] (the h part read, as for lstm; D is 5H or H); dx
 * [N, T, 6H] = the gradient of xw (r, z, n before activation) then of the hidden
 * product W_hh h + b_hh (the same for r and z; r times it for n). */
void FN(sn_gru_grad)(int64_t N, int64_t T, int64_t H, int64_t D, const REAL *dout, const REAL *out,
                     const REAL *whh, const REAL *mask, REAL *dx) {
  int64_t W = 5 * H, G = 6 * H;
  for (int64_t t = T - 1; t >= 0; t--) {
    bool carry = t < T - 1, first = t == 0; /* dh of step t + 1 waits in d[j] */
    for (int64_t n = 0; n < N; n++) {
      const REAL *o = out + (n * T + t) * W, *p = o + H, *dy = dout + (n * T + t) * D;
      const REAL *oprev = first ? o : o - W;
      REAL *d = dx + (n * T + t) * G, *dprev = first ? d : d - G; /* step 0: a slot read already */
      if (mask && mask[n * T + t] == 0) { /* padded: h_t = h_{t-1}, dh goes by the direct path */
        for (int64_t j = 0; !first && j < H; j++) dprev[H + j] = dy[j] + (carry ? d[j] : 0);
        for (int64_t j = 0; j < G; j++) d[j] = 0;
        continue;
      }
      for (int64_t j = 0; j < H; j++) {
        REAL dhc = d[j], hp = oprev[j];
        REAL dh = dy[j] + (carry ? dhc : 0);
        REAL r = p[j], z = p[H + j], nn = p[2 * H + j], hn = p[3 * H + j], hprev = first ? 0 : hp;
        REAL dn = dh * (1 - z) * (1 - nn * nn);
        REAL dr = dn * hn * r * (1 - r), dz = dh * (hprev - nn) * z * (1 - z);
        dprev[H + j] = dh * z; /* the direct path, added after the GEMM */
        d[j] = d[3 * H + j] = dr;
        d[H + j] = d[4 * H + j] = dz;
        d[2 * H + j] = dn;
        d[5 * H + j] = dn * r;
      }
    }
    if (t > 0) {
      REAL *dprev = dx + (t - 1) * G;
      GEMM(CblasNoTrans, CblasNoTrans, (int)N, (int)H, (int)(3 * H), dx + t * G + 3 * H, (int)(T * G), whh,
           (int)H, dprev, (int)(T * G));
      for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < H; j++) dprev[n * T * G + j] += dprev[n * T * G + H + j];
    }
  }
}

#undef FN
#undef CAT
#undef CAT2
