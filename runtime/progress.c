/* The terminal's view of a training run (sn_terminal_reporter): a progress line
 * redrawn on stderr, a summary line per epoch and sn_train's notes on stdout. Not
 * part of libspecnet_rt, which prints nothing: compiled into the programs that
 * print (`specnet train`, training binaries); a library user passes their own
 * reporter or none. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "specnet/terminal.h"

/* Short names for the progress line, where width matters. */
static const char *short_name(const char *metric) {
  return strcmp(metric, "accuracy") == 0 ? "acc" : metric;
}

static void format_eta(char *buf, size_t size, double seconds) {
  if (!isfinite(seconds) || seconds < 0) seconds = 0;
  long s = lround(seconds);
  if (s < 60)
    snprintf(buf, size, "%lds", s);
  else if (s < 3600)
    snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
  else
    snprintf(buf, size, "%ldh%02ldm", s / 3600, (s / 60) % 60);
}

/* Redraws the progress line:
 *   epoch 3/10 [=====>    ] 1200/1875 loss 0.3121 acc 0.8862 41230 samples/s ETA 4s
 * loss is the mean of the batch means so far, metrics are per sample so far. */
static void draw_progress(void *ctx, const sn_model *m, const sn_batch_progress *p) {
  (void)ctx;
  enum { WIDTH = 20 };
  char bar[WIDTH + 1];
  int64_t filled = p->batches > 0 ? p->batch * WIDTH / p->batches : WIDTH;
  for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '=' : ' ';
  if (filled > 0 && filled < WIDTH) bar[filled - 1] = '>';
  bar[WIDTH] = 0;
  fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld loss %.4f", p->epoch, p->epochs, bar, (long long)p->batch,
          (long long)p->batches, p->loss_mean);
  for (int k = 0; k < m->n_metrics; k++)
    fprintf(stderr, " %s %.4f", short_name(m->metric_names[k]),
            sn_metric_value(m->metric_names[k], p->metric_total[k] / (double)p->samples));
  char eta[32];
  format_eta(eta, sizeof eta, p->elapsed / (double)p->batch * (double)(p->batches - p->batch));
  fprintf(stderr, " %.0f samples/s ETA %s\x1b[K", p->elapsed > 0 ? (double)p->samples / p->elapsed : 0.0, eta);
  fflush(stderr);
}

static void clear_progress(void *ctx) {
  (void)ctx;
  fputs("\r\x1b[K", stderr);
  fflush(stderr);
}

/*   epoch 3/10  loss 0.3121  accuracy 0.8862  test_loss 0.3510  ...  1.42s (42100 samples/s) */
static void print_summary(void *ctx, const sn_model *m, int epochs, const sn_epoch_record *rec, bool show_lr) {
  (void)ctx;
  printf("epoch %d/%d  loss %.4f", rec->epoch, epochs, rec->loss);
  for (int k = 0; k < m->n_metrics; k++) printf("  %s %.4f", m->metric_names[k], rec->metrics[k]);
  const struct {
    bool has;
    const char *prefix;
    const sn_eval_result *r;
  } sets[] = {
      {rec->has_val, "val_", &rec->val},
      {rec->has_test, "test_", &rec->test},
  };
  for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
    if (!sets[s].has) continue;
    printf("  %sloss %.4f", sets[s].prefix, sets[s].r->loss);
    for (int k = 0; k < m->n_metrics; k++)
      printf("  %s%s %.4f", sets[s].prefix, m->metric_names[k], sets[s].r->metrics[k]);
  }
  if (show_lr) printf("  lr %.3g", rec->lr);
  printf("  %.2fs (%.0f samples/s)\n", rec->seconds, rec->samples_per_second);
  fflush(stdout);
}

static void print_note(void *ctx, const char *line) {
  (void)ctx;
  printf("%s\n", line);
  fflush(stdout);
}

const sn_reporter *sn_terminal_reporter(void) {
  static const sn_reporter r = {draw_progress, clear_progress, print_summary, print_note, NULL};
  return &r;
}
