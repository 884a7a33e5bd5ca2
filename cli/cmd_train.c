/* specnet train, one run: --resume checked against the run's record, the run
 * folder, sn_train with its files, the record written after it (alone or as one
 * rank under mpirun). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "run_record.h"

/* ---------------------------------------------------------------------------
 * --resume: the spec given against the run's record */

/* n as one line of flow YAML, for a message (owned by the caller). */
static char *node_flow(const sn_node *n) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  if (n) sn_node_write_flow(n, f);
  fclose(f);
  return buf;
}

/* Prints each key where `given` differs from `run` (path = its dotted key, of
 * length len in a buffer of cap bytes); train.epochs may differ. Returns the count. */
static int spec_diff(const sn_node *run, const sn_node *given, char *path, size_t len, size_t cap,
                     FILE *out) {
  if (!strcmp(path, "train.epochs")) return 0;
  if (run && given && run->kind == given->kind) {
    if (run->kind == SN_NODE_SCALAR && !strcmp(run->text, given->text)) return 0;
    if (run->kind != SN_NODE_SCALAR) {
      int n = 0;
      int items = run->n > given->n ? run->n : given->n;
      for (int i = 0; i < items; i++) {
        if (run->kind == SN_NODE_SEQ) {
          snprintf(path + len, cap - len, "%s%d", len ? "." : "", i);
          n += spec_diff(i < run->n ? run->items[i] : NULL, i < given->n ? given->items[i] : NULL,
                         path, strlen(path), cap, out);
          continue;
        }
        /* a mapping: run's keys, then the keys only given has */
        const char *key = i < run->n ? run->keys[i]->text : NULL;
        if (key) {
          snprintf(path + len, cap - len, "%s%s", len ? "." : "", key);
          n += spec_diff(run->items[i], sn_node_get(given, key), path, strlen(path), cap, out);
        }
        if (i < given->n && !sn_node_get(run, given->keys[i]->text)) {
          snprintf(path + len, cap - len, "%s%s", len ? "." : "", given->keys[i]->text);
          n += spec_diff(NULL, given->items[i], path, strlen(path), cap, out);
        }
      }
      path[len] = 0;
      return n;
    }
  }
  char *a = node_flow(run), *b = node_flow(given);
  fprintf(out, "  %s: %s in the run, %s here\n", path, run && a ? a : "not set",
          given && b ? b : "not set");
  free(a);
  free(b);
  path[len] = 0;
  return 1;
}

/* --resume DIR: with no SPEC, o->spec becomes DIR/spec.resolved.yaml; with one, the
 * spec (after --set) must resolve to that file but for train.epochs. Returns 0 or
 * an exit code, the differences printed key by key. */
int resume_check(opts *o, char *record, size_t cap) {
  snprintf(record, cap, "%s/spec.resolved.yaml", o->resume);
  struct stat st;
  if (!o->spec) {
    if (stat(record, &st)) {
      fprintf(stderr, "%s: error: cannot read the run's spec: %s (is %s a run folder?)\n", record,
              strerror(errno), o->resume);
      return EXIT_SPEC;
    }
    o->spec = record;
    o->paths[0] = record;
    o->n_paths = 1;
    if (!o->n_sets) return 0;
  } else if (stat(record, &st)) {
    return 0; /* under mpirun a rank's host may lack it; train_state.safetensors still checks */
  }
  sn_diag d = {0};
  int rc = 0;
  sn_node *run = sn_yaml_parse_file(record, &d);
  sn_spec *s = run ? load_spec(o) : NULL;
  char *text = NULL;
  size_t len = 0;
  FILE *f = s ? open_memstream(&text, &len) : NULL;
  if (f) {
    sn_spec_write_resolved(s, f);
    fclose(f);
  }
  sn_node *given = text ? sn_yaml_parse_string(text, o->spec, &d) : NULL;
  print_diag(&d);
  sn_diag_free(&d);
  if (!given) {
    rc = EXIT_SPEC;
  } else {
    char path[1024] = "", *diffs = NULL;
    size_t dlen = 0;
    FILE *df = open_memstream(&diffs, &dlen);
    int n = df ? spec_diff(run, given, path, 0, sizeof path, df) : 0;
    if (df) fclose(df);
    if (n) {
      fprintf(
          stderr, "%s: error: the spec%s differs from the run being resumed (%s) in %d key%s:\n%s",
          o->spec, o->n_sets ? " with its --set options" : "", record, n, n == 1 ? "" : "s", diffs);
      fprintf(stderr,
              "hint: only train.epochs may change on --resume; 'specnet train --resume %s' "
              "resumes the run as it was recorded\n",
              o->resume);
      rc = EXIT_SPEC;
    }
    free(diffs);
  }
  free(text);
  sn_node_free(given);
  sn_node_free(run);
  sn_spec_free(s);
  return rc;
}

/* Under mpirun, after a step where any rank can fail alone (a collective): 0 when
 * none failed; else this rank's exit code (its own rc, or EXIT_SPEC when another rank
 * failed: rank 0 says which, that rank printed its error). */
static int ranks_failed(const sn_comm *comm, int rc) {
  if (!comm) return rc;
  int first = sn_comm_first_failed(comm, rc != 0);
  if (first == -1) return 0;
  if (rc) return rc;
  if (comm->rank == 0)
    fprintf(stderr, "specnet: error: stopped because rank %d of %d failed%s\n", first, comm->size,
            first >= 0 ? " (its error is above)" : ": communication between ranks failed");
  return EXIT_SPEC;
}

/* Under mpirun: whether this rank prints an error sn_train returned. Rank 0 prints
 * every one; the others only their own, not those every rank gets alike (a loss that
 * is not finite, ranks that disagree, the notice that another rank failed). */
static bool prints_error(const sn_comm *comm, const char *msg) {
  if (!comm || comm->rank == 0) return true;
  return strncmp(msg, "stopped because rank ", 21) && strncmp(msg, "loss is ", 8) &&
         !strstr(msg, " ranks disagree on ") && strcmp(msg, "communication between ranks failed");
}

/* True when the folder exists and holds nothing. */
static bool empty_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return false;
  bool empty = true;
  for (struct dirent *e; empty && (e = readdir(d));)
    empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
  closedir(d);
  return empty;
}

int new_run_dir(const char *name, char *dir, size_t cap) {
  if (sn_mkdirs("runs")) {
    snprintf(dir, cap, "runs");
    return -1;
  }
  for (int k = 1; k < 100000; k++) {
    if (k == 1)
      snprintf(dir, cap, "runs/%s", name);
    else
      snprintf(dir, cap, "runs/%s-%d", name, k);
    if (!mkdir(dir, 0777) || (errno == EEXIST && empty_dir(dir))) return 0;
    if (errno != EEXIST) return -1;
  }
  errno = EEXIST;
  return -1;
}

/* DIR/NAME opened for writing when this run has it, else removed (an older run's
 * must not outlive it) and NULL. */
static FILE *run_file(const char *dir, const char *name, bool has) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!has) {
    unlink(path);
    return NULL;
  }
  return fopen(path, "w");
}

/* classes.json: the class names of a training set whose labels were names, as a
 * JSON array (class k is item k), for predict to print them back. Without names,
 * an older classes.json in dir is removed. */
static void write_classes(const sn_dataset *train, const char *dir) {
  FILE *f = run_file(dir, "classes.json", train->class_names != NULL);
  if (!f) return;
  fputc('[', f);
  for (int k = 0; k < train->n_class_names; k++) {
    fputs(k ? ", " : "", f);
    sn_json_string(f, train->class_names[k]);
  }
  fputs("]\n", f);
  fclose(f);
}

/* targets.json: standardize_targets' statistics, {"mean": [...], "std": [...]} per
 * target column: a prediction y of the model is y * std + mean in the data's units.
 * Without them, an older targets.json in dir is removed. */
static void write_targets(const sn_data *d, const char *dir) {
  FILE *f = run_file(dir, "targets.json", d->tgt_mean != NULL);
  if (!f) return;
  for (int w = 0; w < 2; w++) {
    const double *v = w ? d->tgt_std : d->tgt_mean;
    fputs(w ? ", \"std\": [" : "{\"mean\": [", f);
    for (int64_t k = 0; k < d->tgt_n; k++) fprintf(f, "%s%.17g", k ? ", " : "", v[k]);
    fputc(']', f);
  }
  fputs("}\n", f);
  fclose(f);
}

static void write_resolved(const sn_spec *s, const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/spec.resolved.yaml", dir);
  FILE *f = fopen(path, "w");
  if (f) {
    sn_spec_write_resolved(s, f);
    fclose(f);
  }
}

/* Ctrl-C during training: say how to continue, then die of SIGINT (its default action). The
 * run folder holds the checkpoint and state of the last finished epoch. */
static char interrupt_note[4400];
static size_t interrupt_len;

static void on_interrupt(int sig) {
  if (interrupt_len && write(STDERR_FILENO, interrupt_note, interrupt_len) < 0) interrupt_len = 0;
  signal(sig, SIG_DFL);
  raise(sig);
}

static void note_interrupts(const char *dir) {
  int n = snprintf(interrupt_note, sizeof interrupt_note,
                   "\nspecnet: interrupted; `specnet train --resume %s` continues after the last finished "
                   "epoch, with the same results as an uninterrupted run\n",
                   dir);
  interrupt_len = n > 0 && (size_t)n < sizeof interrupt_note ? (size_t)n : 0;
  signal(SIGINT, on_interrupt);
}

/* What the report needs besides the training record (run_outputs.c): predictions on
 * the test set (else validation), run.json, profile.txt; then report.html with
 * --report. A failure here is reported but does not fail the trained run. */
static int finish_record(const opts *o, session *S, const char *dir, double t0) {
  const sn_dataset *ds = S->ds.has_test ? &S->ds.test : S->ds.has_val ? &S->ds.val : NULL;
  const char *split = S->ds.has_test ? "test" : S->ds.has_val ? "validation" : NULL;
  sn_error err = {0};
  char path[4200];
  snprintf(path, sizeof path, "%s/predictions.csv", dir);
  if (!ds) unlink(path); /* an older run's */
  if (ds && run_write_predictions(S->spec, S->m, ds, &S->ds, dir, &err))
    fprintf(stderr, "specnet: warning: %s\n", err.msg);
  if (S->profile) run_write_profile(S->c, dir);
  else {
    snprintf(path, sizeof path, "%s/profile.txt", dir);
    unlink(path);
  }
  if (write_generations(S->spec, S->m, &S->ds.train, dir))
    fprintf(stderr, "specnet: warning: cannot write %s/generations.txt\n", dir);
  run_write_info(dir, S->spec, S->c, split, sn_now() - t0);
  if (!o->report) return 0;
  return report_write(dir, NULL);
}

/* One training run, alone (comm NULL) or as one rank of a data-parallel job: every
 * rank compiles the same program and loads the same data; rank 0 alone writes the
 * run folder and prints. */
static int train_session(const opts *o, sn_spec *spec, const sn_comm *comm) {
  const bool lead = !comm || comm->rank == 0;
  const double t0 = sn_now();
  session S;
  int rc = session_open_with(&S, o, o->quiet || !lead, true, spec);
  if ((rc = ranks_failed(comm, rc))) {
    session_free(&S);
    return rc;
  }
  const sn_spec *s = S.spec;
  const char *name = sn_spec_name(s);
  char dir[4096], path[4200], spath_state[4200];
  bool fresh = !o->resume && !o->out; /* runs/NAME, or runs/NAME-2, ... beside earlier runs */
  if (o->resume) snprintf(dir, sizeof dir, "%s", o->resume);
  else if (o->out) snprintf(dir, sizeof dir, "%s", o->out);
  else snprintf(dir, sizeof dir, "runs/%s", name);
  if (lead && fresh && new_run_dir(name, dir, sizeof dir)) {
    fprintf(stderr, "specnet: error: cannot create output folder %s: %s\n", dir, strerror(errno));
    rc = EXIT_SPEC;
  } else if (lead && fresh && !o->quiet && strcmp(dir + 5, name)) {
    printf("runs/%s holds an earlier run: this one goes to %s\n", name, dir);
  }
  snprintf(spath_state, sizeof spath_state, "%s/train_state.safetensors", dir);
  if (!rc && lead && sn_mkdirs(dir)) {
    fprintf(stderr, "specnet: error: cannot create output folder %s: %s\n", dir, strerror(errno));
    rc = EXIT_SPEC;
  } else if (!rc && lead && !o->resume) { /* a resumed run's record changes only once it trained */
    write_resolved(s, dir);
    write_classes(&S.ds.train, dir);
    write_targets(&S.ds, dir);
    run_copy_spec(o->spec, dir);
    write_vocab(&S.ds.train, dir);
    unlink(spath_state); /* an older run's; this run writes its own */
  }
  if ((rc = ranks_failed(comm, rc))) {
    session_free(&S);
    return rc;
  }
  sn_error err = {0};
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  if (sn_spec_epochs(s) > 0 || o->resume) {
    char mpath[4200], cpath[4200], spath[4200];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", dir);
    snprintf(cpath, sizeof cpath, "%s/metrics.csv", dir);
    snprintf(spath, sizeof spath, "%s/curves.svg", dir);
    sn_train_opts to;
    train_opts_from_spec(s, &to);
    to.metrics_path = mpath;
    to.csv_path = cpath;
    to.curves_path = spath;
    to.progress = lead && !o->quiet && isatty(STDERR_FILENO);
    to.quiet = o->quiet || !lead;
    to.comm = comm;
    to.checkpoint_path = path; /* after every epoch: --resume continues from there */
    to.state_path = spath_state;
    to.resume = o->resume != NULL;
    if (lead) note_interrupts(dir);
    if (sn_train(S.m, &S.ds.train, S.ds.has_val ? &S.ds.val : NULL, S.ds.has_test ? &S.ds.test : NULL,
                 &to, &err)) {
      if (prints_error(comm, err.msg)) fprintf(stderr, "%s: error: %s\n", sn_spec_path(s), err.msg);
      session_free(&S);
      return EXIT_SPEC;
    }
  }
  if (lead && o->resume) write_resolved(s, dir); /* train.epochs may have been raised */
  if (lead && sn_safetensors_write(path, S.m, &err)) {
    fprintf(stderr, "specnet: error: %s\n", err.msg);
    rc = EXIT_SPEC;
  }
  if ((rc = ranks_failed(comm, rc))) {
    session_free(&S);
    return rc;
  }
  if (!o->quiet && lead) printf("wrote %s\n", path);
  if (lead) rc = finish_record(o, &S, dir, t0);
  session_free(&S);
  return rc;
}

int train_run(const opts *o, sn_spec *spec) {
  if (o->resume && (o->weights || (o->out && strcmp(o->out, o->resume)))) {
    if (spec) sn_spec_free(spec);
    return usage_error("--resume DIR continues the run in DIR: it takes no --weights, and --out, "
                       "if given, must be DIR");
  }
  int rc = 0;
  const sn_comm *comm = dist_start(o->threads, &rc); /* NULL: alone */
  if (rc) {
    if (spec) sn_spec_free(spec);
  } else {
    rc = train_session(o, spec, comm);
  }
  dist_finish();
  return rc;
}
