/* The help and version text of the specnet command. Help is data: one entry per
 * command with its usage line, a paragraph, every option (argument, default,
 * meaning) and examples, printed by one function, so `specnet --help`, `specnet
 * COMMAND --help`, the man page (packaging/specnet.1.in) and the bash completion
 * (packaging/specnet.bash-completion) can be checked against each other
 * (packaging/check_help.sh, the `cli_help` test). Not here: parsing options
 * (main.c) or deciding exit codes. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <llvm/Config/llvm-config.h>

#include "help.h"
#include "specnet/compiler.h"
#include "specnet/runtime.h"
#include "specnet/version.h"

/* ---------------------------------------------------------------------------
 * Help as data */

typedef struct opt_help {
  const char *flag;    /* "--out DIR" */
  const char *dflt;    /* "runs/NAME", or "required", or "none" */
  const char *meaning; /* one or two lines; '\n' continues under the meaning column */
} opt_help;

typedef struct cmd_help {
  const char *name;
  const char *usage;   /* after "specnet " */
  const char *brief;   /* the usage in the overview: the command and what it needs */
  const char *summary; /* one line for the overview */
  const char *about;   /* a paragraph, lines already broken */
  opt_help opts[16];   /* ends at the first entry without a flag */
  const char *examples[4];
} cmd_help;

#define OPT_SET                                                                                    \
  {                                                                                                \
    "--set KEY=VALUE", "none",                                                                     \
        "override a spec key by its dotted path; VALUE is read as YAML;\n"                         \
        "repeatable (--set train.epochs=1 --set 'data.validation={split: 0.2}')"                   \
  }
#define OPT_DTYPE(what)                                                                            \
  { "--dtype f32|f64", "f32", "precision of the compiled program" what }
#define OPT_THREADS                                                                                \
  {                                                                                                \
    "--threads N", "one per CPU",                                                                  \
        "threads, 1 to 1024, that share the matrix products and the\n"                            \
        "optimizer update (OpenBLAS runs one thread inside each);\n"                               \
        "SPECNET_NUM_THREADS or OPENBLAS_NUM_THREADS sets the default"                             \
  }

#define OPT_PROFILE                                                                                \
  {                                                                                                \
    "--profile", "off (SPECNET_PROFILE=1 turns it on)",                                            \
        "time each generated kernel; the profile is printed at the end"                            \
  }
#define OPT_NO_CACHE                                                                               \
  { "--no-cache", "off", "always run LLVM, without the compile cache (SPECNET_CACHE_DIR)" }
#define OPT_WEIGHTS                                                                                \
  { "--weights FILE", "required", "the safetensors weights of the trained model" }
/* What every command that runs a compiled model takes: --set, --threads, --dtype. */
#define OPT_MODEL OPT_SET, OPT_THREADS, OPT_DTYPE("")

static const cmd_help commands[] = {
    {"check",
     "check SPEC [--set KEY=VALUE]... [--dtype f32|f64]",
     "check SPEC",
     "validate; print the layer table and parameter counts",
     "Reads SPEC, reports every problem in it at once (file:LINE:COL: error: ...),\n"
     "builds the layer graph (shape errors name the layer and its line) and prints\n"
     "the layer table: name, op, output shape, parameters, and the total.\n"
     "Nothing is compiled to machine code and no data is read.",
     {OPT_SET, OPT_DTYPE(" shown in the table")},
     {"specnet check specs/mnist_mlp.yaml",
      "specnet check specs/mnist_mlp.yaml --set seed=7 --dtype f64"}},
    {"train",
     "train SPEC [--out DIR] [--set KEY=VALUE]... [--weights FILE] [--threads N]\n"
     "                     [--dtype f32|f64] [--jobs N] [--profile] [--no-cache] [--quiet]\n"
     "                     [--epochs N] [--batch-size N] [--lr X] [--resume DIR] [--report]\n"
     "  specnet train --resume DIR [--set train.epochs=N]",
     "train SPEC",
     "compile and train; writes runs/NAME/ (or --out DIR)",
     "Compiles SPEC (the compile time is printed, by stage), loads its data,\n"
     "initializes the parameters from the spec's seed (or reads --weights), trains,\n"
     "and writes metrics.jsonl, metrics.csv, curves.svg, model.safetensors,\n"
     "spec.resolved.yaml, predictions.csv and run.json into the run folder. On a\n"
     "terminal a progress line is redrawn per epoch; each epoch prints a summary\n"
     "line. train.epochs: 0 writes the initial weights and stops. A spec with a\n"
     "sweep: section trains once per setting (grid, random draws, successive\n"
     "halving), into sweep-1, sweep-2, ... of the run folder, and prints the trials\n"
     "sorted by the sweep's metric (also written to sweep.csv and sweep.jsonl, with\n"
     "the best trial's spec and compare.html). Under mpirun the ranks train one\n"
     "model together, each on its shard of every batch, or share a sweep's trials\n"
     "(docs/distributed.md).",
     {{"--out DIR", "runs/NAME", "the run folder, created if missing (NAME is the spec's name:)"},
      OPT_SET,
      {"--weights FILE", "none (init from seed)",
       "start from these safetensors weights; names and shapes must match"},
      OPT_THREADS,
      OPT_DTYPE(""),
      {"--jobs N", "one per CPU",
       "a sweep: train N trials at once, 1 to 1024 (each with its share\n"
       "of the CPUs' threads unless --threads says otherwise)"},
      OPT_PROFILE,
      OPT_NO_CACHE,
      {"--quiet", "off", "no compile times, progress line or epoch summaries"},
      {"--epochs N", "the spec's", "shorthand of --set train.epochs=N"},
      {"--batch-size N", "the spec's", "shorthand of --set train.batch_size=N"},
      {"--lr X", "the spec's", "shorthand of --set train.optimizer.NAME.learning_rate=X\n(NAME: the spec's optimizer)"},
      {"--resume DIR", "none",
       "continue the run in DIR from its last finished epoch (the checkpoint\n"
       "and train_state.safetensors it writes after each epoch); without SPEC\n"
       "it trains DIR/spec.resolved.yaml; a SPEC given must agree with it but\n"
       "for train.epochs"},
      {"--report", "off",
       "also write report.html into the run folder at the end\n(as specnet report DIR)"}},
     {"specnet train specs/mnist_mlp.yaml",
      "specnet train specs/mnist_mlp.yaml --set train.epochs=2 --out /tmp/run1",
      "specnet train specs/mnist_mlp.yaml --weights runs/mnist_mlp/model.safetensors",
      "specnet train specs/sweep_blobs.yaml --jobs 2"}},
    {"eval",
     "eval SPEC --weights FILE [--split test|validation|train] [--set KEY=VALUE]...\n"
     "                    [--threads N] [--dtype f32|f64] [--profile] [--no-cache]",
     "eval SPEC --weights FILE",
     "evaluate saved weights on a split",
     "Compiles SPEC, reads the weights, loads the chosen split and prints its mean\n"
     "loss and every metric of the spec, with the sample count and time.",
     {{"--weights FILE", "required", "the safetensors weights to evaluate"},
      {"--split SPLIT", "test", "test, validation or train"},
      OPT_MODEL,
      OPT_PROFILE,
      OPT_NO_CACHE},
     {"specnet eval specs/mnist_mlp.yaml --weights runs/mnist_mlp/model.safetensors",
      "specnet eval specs/mnist_mlp.yaml --weights model.safetensors --split validation"}},
    {"predict",
     "predict SPEC --weights FILE --input FILE [--output FILE] [--probs]\n"
     "                       [--set KEY=VALUE]... [--threads N] [--dtype f32|f64] [--profile]\n"
     "                       [--no-cache] [--quiet]",
     "predict SPEC --weights FILE --input FILE",
     "the model's answer for every sample of a file, as CSV",
     "Compiles SPEC, reads the weights and writes one line per sample of --input,\n"
     "no header: the class index for a categorical loss, 0/1 for a binary one,\n"
     "otherwise the output values. The input gets the spec's preprocessing (scale,\n"
     "normalize, standardize with the training set's statistics). Input by file\n"
     "name: *.npy, *.csv (a label column like the spec's CSV source is dropped),\n"
     "*.h5 or *.hdf5 (FILE.h5:/DATASET, or the training source's x dataset), or\n"
     "else an IDX images file (raw or .gz).",
     {OPT_WEIGHTS,
      {"--input FILE", "required", "the samples: .npy, .csv, .h5[:/DATASET] or IDX"},
      {"--output FILE", "standard output", "where to write the CSV"},
      {"--probs", "off", "write the whole output vector (probabilities after a softmax)"},
      OPT_MODEL,
      OPT_PROFILE,
      OPT_NO_CACHE,
      {"--quiet", "off", "no compile times, no \"wrote N predictions\" line"}},
     {"specnet predict specs/mnist_mlp.yaml --weights runs/mnist_mlp/model.safetensors \\\n"
      "      --input /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --output "
      "labels.csv",
      "specnet predict spec.yaml --weights model.safetensors --input x.npy --probs"}},
    {"generate",
     "generate SPEC --weights FILE [--prompt TEXT] [--tokens N] [--temperature F]\n"
     "                       [--top-k K] [--seed S] [--set KEY=VALUE]... [--threads N]\n"
     "                       [--dtype f32|f64] [--no-cache] [--no-kv-cache]",
     "generate SPEC --weights FILE",
     "text from a trained language model, token by token",
     "Compiles SPEC (a language model: data.train a text source with mode: lm),\n"
     "reads the weights and continues --prompt: each step runs the model on the\n"
     "last `context` tokens and draws the next one, printed as soon as it is drawn.\n"
     "The prompt is tokenized as the training text was (bytes, or the run's\n"
     "vocab.json beside --weights for chars); a character the model does not know\n"
     "is an error. Temperature 0 always takes the likeliest token. A transformer\n"
     "(embedding, position_embedding, layer_norm, dense, causal attention, joins,\n"
     "activations; f32) runs one position per token, with each attention layer's\n"
     "keys and values cached, until the text passes the window; the text is the\n"
     "same as with a full forward pass per token (--no-kv-cache).",
     {OPT_WEIGHTS,
      {"--prompt TEXT", "a line break", "the text to continue (printed first)"},
      {"--tokens N", "200", "tokens to generate, 0 to 100000000"},
      {"--temperature F", "1", "divides the log-probabilities; 0: the likeliest token"},
      {"--top-k K", "0 (all)", "draw among the K likeliest tokens only"},
      {"--seed S", "the spec's seed", "the sampler's seed: the same seed, the same text"},
      OPT_MODEL,
      OPT_NO_CACHE,
      {"--no-kv-cache", "off", "a full forward pass over the window per token"}},
     {"specnet generate specs/char_transformer.yaml --weights runs/char_transformer/model.safetensors \\\n"
      "      --prompt 'The ' --tokens 300 --temperature 0.8 --top-k 20",
      "specnet generate spec.yaml --weights model.safetensors --temperature 0"}},
    {"emit",
     "emit SPEC --what spec|ir|grad|plan|llvm|asm [--set KEY=VALUE]... [--dtype f32|f64]",
     "emit SPEC --what STAGE",
     "print the program after a compiler stage",
     "Prints what the compiler made of SPEC after one stage: spec (the spec after\n"
     "--set with every default filled in, as spec.resolved.yaml), ir (the forward\n"
     "graph), grad (with the backward graph), plan\n"
     "(fused kernels, GEMMs and memory per step function), llvm (optimized LLVM IR),\n"
     "asm (host assembly).",
     {{"--what STAGE", "required", "spec, ir, grad, plan, llvm or asm"}, OPT_SET, OPT_DTYPE("")},
     {"specnet emit specs/mnist_mlp.yaml --what plan",
      "specnet emit specs/mnist_mlp.yaml --what llvm --dtype f64"}},
    {"test",
     "test PATH... [--set KEY=VALUE]... [--jobs N] [--junit FILE] [--verbose] [--threads N]",
     "test PATH...",
     "run the specs with expect: blocks (files or folders)",
     "Runs every spec with an expect: block under the given files and folders\n"
     "(recursively, *.yaml and *.yml, sorted): metric bounds after training,\n"
     "gradient checks in f64, or an expected error. Prints one line per spec and\n"
     "ends with \"N passed, N failed\". Exits 0 when none failed, 3 otherwise.",
     {{"--set KEY=VALUE", "none", "override a key in every spec (as for train); repeatable"},
      {"--jobs N", "1",
       "run up to N specs at once, 1 to 1024, each in its own process;\n"
       "lines are still printed in path order"},
      {"--junit FILE", "none", "also write the results as JUnit XML (for CI dashboards)"},
      {"--verbose", "off", "show each spec's diagnostics and training output"},
      OPT_THREADS},
     {"specnet test tests/specs", "specnet test tests/specs --jobs 4 --junit results.xml",
      "specnet test specs/mnist_mlp.yaml --set train.epochs=1"}},
    {"build",
     "build SPEC --weights FILE -o PATH [--lib [--weights-file]] [--cpu CPU]\n"
     "                     [--set KEY=VALUE]... [--dtype f32|f64] [--no-cache] [--quiet]\n"
     "  specnet build SPEC --train -o PATH [--cpu CPU] [--set KEY=VALUE]...",
     "build SPEC --weights FILE -o PATH",
     "a trained model as an executable or a C library",
     "Compiles the trained model for one CPU, with its weights inside, into a\n"
     "standalone executable PATH (run it as: PATH --input FILE [--output FILE]\n"
     "[--probs], like specnet predict), or with --lib into PATH/NAME.h and\n"
     "PATH/libNAME.a: one function NAME_predict for a C program, which needs only\n"
     "OpenBLAS and libm (no LLVM, no YAML). NAME is the spec's name. The spec's\n"
     "preprocessing is folded into the model: it takes raw samples. The executable\n"
     "is linked by $CC (default cc) with libspecnet_rt and OpenBLAS, found beside\n"
     "the specnet command or in $SPECNET_RUNTIME_DIR. With --train, PATH is a\n"
     "training binary instead: it trains as specnet train does (same metrics, same\n"
     "weights) on the spec's data or on files given to it (PATH --help).",
     {{"--weights FILE", "required", "the trained safetensors weights to build in"},
      {"-o PATH", "required", "the executable to write, or with --lib the folder"},
      {"--lib", "off", "write NAME.h and libNAME.a instead of an executable"},
      {"--train", "off",
       "write a training binary (no --weights): PATH [--out DIR] [--epochs N]\n"
       "[--train FILES] [--test FILES] writes a run folder as specnet train does"},
      {"--weights-file", "off",
       "with --lib: the weights go to PATH/NAME.weights, read at run time by\n"
       "NAME_load_weights, instead of into the library"},
      {"--cpu CPU", "$SPECNET_CPU, else native (this machine's CPU)",
       "the CPU to compile for: x86-64-v4 (AVX-512), x86-64-v3 (any\n"
       "AVX2 machine), x86-64-v2, x86-64; native is the fastest here"},
      OPT_SET,
      OPT_DTYPE(" (--lib: f32 only)"),
      OPT_NO_CACHE,
      {"--quiet", "off", "no compile times and no \"wrote ...\" line"}},
     {"specnet build specs/mnist_mlp.yaml --weights runs/mnist_mlp/model.safetensors -o mnist",
      "specnet build specs/mnist_mlp.yaml --weights model.safetensors --lib -o lib/ --cpu "
      "x86-64-v3",
      "specnet build specs/regression.yaml --train -o trainer"}},
    {"report",
     "report RUN_DIR [-o FILE]",
     "report RUN_DIR",
     "one HTML page about a finished run",
     "Reads the run folder that specnet train wrote and writes one self-contained\n"
     "HTML page (no network, no script; charts are inline SVG): the final figures,\n"
     "learning curves and the learning rate, the predictions on the test set (a\n"
     "confusion matrix and per-class precision, recall and F1 with the most\n"
     "confidently wrong images, or predicted vs true and the residuals), the layer\n"
     "table, the timing with the --profile table, and both specs. A folder without\n"
     "metrics.jsonl is an error.",
     {{"-o FILE", "RUN_DIR/report.html", "the page to write"}},
     {"specnet report runs/mnist_mlp", "specnet report runs/mnist_mlp -o /tmp/mnist.html"}},
    {"compare",
     "compare RUN_DIR RUN_DIR... [-o FILE]",
     "compare RUN_DIR...",
     "runs side by side: spec differences, final and best figures",
     "Prints a table of the runs: epochs, each figure's final and best value, the\n"
     "training time, then every spec key whose value differs between them\n"
     "(key: run = value, ...). Figures that only some runs have are named, not\n"
     "compared. With -o also an HTML page with the curves of all runs overlaid.",
     {{"-o FILE", "none (text only)", "also write the comparison as an HTML page"}},
     {"specnet compare runs/mnist_mlp runs/mnist_mlp-2",
      "specnet compare runs/sweep_blobs/sweep-* -o compare.html"}},
    {"data",
     "data SOURCE... [--set KEY=VALUE]",
     "data SOURCE...",
     "what a data source holds, without training",
     "For each SOURCE: a spec (*.yaml, *.yml) describes its data.train,\n"
     "data.validation and data.test; a data file is read by its name (*.npy,\n"
     "*.csv, FILE.h5:/DATASET, anything else an IDX images file, raw or .gz),\n"
     "a quoted glob pattern as one source of shards. Prints the samples, the\n"
     "per-sample shape, the stored element type, the files (shards) and bytes\n"
     "on disk, the label range and count per class (or each target's mean and\n"
     "std), and the first samples as stored: their first values, min, max and\n"
     "mean.\n"
     "Only the first samples are read: memory stays small for any file size.",
     {OPT_SET},
     {"specnet data specs/mnist_mlp.yaml", "specnet data x.npy 'shards/x-*.npy' train.h5:/images",
      "specnet data spec.yaml --set data.train.limit=1000"}},
};

enum { N_COMMANDS = sizeof commands / sizeof *commands };

/* ---------------------------------------------------------------------------
 * Printing */

/* Prints text with every line after the first indented by `indent` spaces. */
static void put_indented(const char *text, int indent, FILE *out) {
  for (const char *p = text; *p; p++) {
    fputc(*p, out);
    if (*p == '\n') fprintf(out, "%*s", indent, "");
  }
}

void print_help(FILE *out) {
  fprintf(out, "usage: specnet COMMAND SPEC [OPTIONS]\n"
               "       specnet COMMAND --help   that command's options, defaults, examples\n"
               "       specnet --version        versions of specnet, LLVM, OpenBLAS; CPU features\n"
               "\n"
               "specnet compiles a YAML model spec into fused, JIT-compiled kernels and\n"
               "trains, evaluates or tests it.\n"
               "\ncommands:\n");
  for (int i = 0; i < N_COMMANDS; i++) {
    const char *brief = commands[i].brief;
    if (strlen(brief) > 26) fprintf(out, "  %s\n", brief), brief = "";
    fprintf(out, "  %-26s %s\n", brief, commands[i].summary);
  }
  fprintf(out, "\noptions (specnet COMMAND --help says which command takes which):\n"
               "  --out DIR          run folder for train (default runs/NAME)\n"
               "  --set KEY=VALUE    override a spec key by its dotted path; VALUE is YAML\n"
               "  --weights FILE     safetensors weights to start from (train) or use\n"
               "  --input FILE       predict: the samples (.npy, .csv or IDX)\n"
               "  --output FILE      predict: the CSV to write (default standard output)\n"
               "  --probs            predict: the whole output vector, not the class\n"
               "  --prompt TEXT      generate: the text to continue\n"
               "  --tokens N         generate: tokens to draw (default 200)\n"
               "  --temperature F    generate: 0 the likeliest token, else sampling (default 1)\n"
               "  --top-k K          generate: draw among the K likeliest tokens\n"
               "  --seed S           generate: the sampler's seed (default the spec's)\n"
               "  --no-kv-cache      generate: a full forward pass per token (no key/value cache)\n"
               "  -o PATH            build: the executable, or with --lib the folder;\n"
               "                     report, compare: the HTML page to write\n"
               "  --lib              build: a header and a static library, not an executable\n"
               "  --weights-file     build --lib: the weights in a file beside the library\n"
               "  --train            build: a training binary (trains as specnet train)\n"
               "  --cpu CPU          the CPU to compile for: native (default), x86-64-v4 (AVX-512),\n"
               "                     x86-64-v3 (AVX2), x86-64-v2, x86-64\n"
               "  --split SPLIT      eval: test (default), validation or train\n"
               "  --what STAGE       emit: spec, ir, grad, plan, llvm or asm\n"
               "  --threads N        threads for the matrix products and the update (default: one per CPU)\n"
               "  --dtype f32|f64    precision of the compiled program (default f32)\n"
               "  --profile          train, eval, predict: time each kernel, printed at the end\n"
               "  --no-cache         train, eval, predict, build: always run LLVM (no compile cache)\n"
               "  --quiet            train, predict, build: print only results and errors\n"
               "  --jobs N           test: N specs at once (default 1); a train sweep: N trials\n"
               "                     at once (default one per CPU)\n"
               "  --epochs N         train: shorthand of --set train.epochs=N\n"
               "  --batch-size N     train: shorthand of --set train.batch_size=N\n"
               "  --lr X             train: shorthand of --set for the optimizer's learning_rate\n"
               "  --resume DIR       train: continue the run in DIR after its last epoch\n"
               "  --report           train: also write report.html (as specnet report)\n"
               "  --junit FILE       test: also write the results as JUnit XML\n"
               "  --verbose          test: show each spec's diagnostics and training output\n"
               "  --help, -h         this text, or after a command that command's help\n"
               "  --version          versions and the CPU features the JIT uses\n"
               "\nexit status: 0 success, 1 spec or data error, 2 usage error,\n"
               "             3 an expectation failed\n"
               "environment: SPECNET_DATA  folder searched first for built-in data sets\n"
               "             SPECNET_NUM_THREADS, OPENBLAS_NUM_THREADS  default for --threads\n"
               "             SPECNET_PREFETCH=0  stage batches on the training thread\n"
               "             SPECNET_PROFILE=1  as --profile\n"
               "             SPECNET_CPU=CPU  as --cpu (train, eval, predict, emit, test, build)\n"
               "             SPECNET_MPI=0|1  never / always join an MPI job (default:\n"
               "                              when mpirun started specnet)\n"
               "             SPECNET_CACHE_DIR  the compile cache (default\n"
               "                                $XDG_CACHE_HOME/specnet, else ~/.cache/specnet)\n"
               "             SPECNET_RUNTIME_DIR  where build finds libspecnet_rt.a\n"
               "             CC  the C compiler build links executables with (default cc)\n"
               "\nexamples:\n"
               "  specnet check specs/mnist_mlp.yaml\n"
               "  specnet train specs/mnist_mlp.yaml --set train.epochs=2\n"
               "  specnet train --help\n"
               "\nMore: man specnet, and the docs in share/doc/specnet of the install.\n");
}

int print_command_help(const char *cmd, FILE *out) {
  const cmd_help *c = NULL;
  for (int i = 0; i < N_COMMANDS && !c; i++)
    if (!strcmp(commands[i].name, cmd)) c = &commands[i];
  if (!c) return -1;
  fprintf(out, "usage: specnet %s\n\n%s\n\noptions:\n", c->usage, c->about);
  for (int i = 0; i < (int)(sizeof c->opts / sizeof *c->opts) && c->opts[i].flag; i++) {
    const opt_help *o = &c->opts[i];
    fprintf(out, "  %-18s ", o->flag);
    if ((int)strlen(o->flag) > 18) fprintf(out, "\n  %-18s ", "");
    put_indented(o->meaning, 21, out);
    fprintf(out, "\n  %-18s default: %s\n", "", o->dflt);
  }
  fprintf(out, "  %-18s this text\n", "--help, -h");
  fprintf(out, "\nexample%s:\n", c->examples[1] ? "s" : "");
  for (int i = 0; i < (int)(sizeof c->examples / sizeof *c->examples) && c->examples[i]; i++)
    fprintf(out, "  %s\n", c->examples[i]);
  return 0;
}

/* ---------------------------------------------------------------------------
 * Version */

/* Of the host's features, the ones that change the code the JIT emits (vector
 * width, FMA contraction, AVX-512 forms); the rest would only be noise. */
static const char *const interesting_features[] = {
    "sse4.2",   "avx",      "avx2",       "fma",        "f16c",       "avx512f",  "avx512bw",
    "avx512dq", "avx512vl", "avx512vnni", "avx512bf16", "avx512fp16", "amx-tile", "neon",
    "fullfp16", "dotprod",  "bf16",       "sve",        "sve2",
};
/* Printed as "no X" when the host lacks them: they are the ones a user asks about. */
static const char *const headline_features[] = {"avx2", "fma", "avx512f"};

/* Whether the LLVM feature string ("+avx2,-avx512f,...") has +name. Returns 1 when
 * on, 0 when off, -1 when not listed (another architecture). */
static int feature(const char *features, const char *name) {
  size_t n = strlen(name);
  for (const char *p = features; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n + 1 && !strncmp(p + 1, name, n)) return p[0] == '+';
    p = end ? end + 1 : NULL;
  }
  return -1;
}

/* OpenBLAS's threading, by openblas_get_parallel()'s number. */
static const char *blas_parallel(int mode) {
  static const char *const names[] = {"sequential", "pthreads", "OpenMP"};
  return mode >= 0 && mode < 3 ? names[mode] : "unknown threading";
}

void print_version(FILE *out) {
  unsigned major = 0, minor = 0, patch = 0;
  LLVMGetVersion(&major, &minor, &patch);
  fprintf(out, "specnet %s\n", SPECNET_VERSION_STRING);
  fprintf(out, "  LLVM       %u.%u.%u (built against %s)\n", major, minor, patch,
          LLVM_VERSION_STRING);
  const char *config = openblas_get_config(); /* "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." */
  if (!strncmp(config, "OpenBLAS ", 9)) config += 9;
  fprintf(out, "  OpenBLAS   %s\n", config);
  fprintf(out, "             core %s, %s build, %d processors; specnet runs it on %d threads\n",
          openblas_get_corename(), blas_parallel(openblas_get_parallel()), openblas_get_num_procs(),
          sn_threads());
  fprintf(out, "             small-batch kernels %s (SPECNET_GEMM_KERNELS, SPECNET_CPU)\n", sn_small_gemm_variant());

  char *triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  if (strcmp(sn_cpu_default(), "native"))
    fprintf(out, "  JIT        %s, CPU %s (SPECNET_CPU; this machine: %s)\n", triple, sn_cpu_default(), cpu);
  else
    fprintf(out, "  JIT        %s, CPU %s\n", triple, cpu);
  fprintf(out, "             features ");
  bool any = false;
  for (size_t i = 0; i < sizeof interesting_features / sizeof *interesting_features; i++)
    if (feature(features, interesting_features[i]) == 1) {
      fprintf(out, "%s%s", any ? " " : "", interesting_features[i]);
      any = true;
    }
  if (!any) fputs("(none of the vector extensions specnet looks for)", out);
  for (size_t i = 0; i < sizeof headline_features / sizeof *headline_features; i++)
    if (feature(features, headline_features[i]) == 0) fprintf(out, "; no %s", headline_features[i]);
  fputc('\n', out);
  LLVMDisposeMessage(features);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(triple);
#if defined(__clang__)
  fprintf(out, "  built with %s\n", __VERSION__);
#elif defined(__GNUC__)
  fprintf(out, "  built with gcc %s\n", __VERSION__);
#endif
}
