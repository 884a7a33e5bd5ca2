#!/usr/bin/env bash
# The command lines in README.md and docs/*.md (the ```sh blocks) are what specnet
# accepts, so the docs cannot drift from the program:
#   - every `specnet CMD ...` line names a command `specnet --help` lists, and each
#     --option on it is one `specnet CMD --help` shows (synopsis lines included);
#   - a spec file a concrete line names (specs/..., examples/...) exists;
#   - the concrete `specnet check` and `specnet emit` lines run and exit 0, and every
#     concrete `specnet train` line on a repository spec is accepted up to training
#     (run with --set train.epochs=0 into a scratch folder);
#   - README's `./build.sh` lines name modes build.sh has.
# Run from the source root (CTest does).  test_docs.sh SPECNET
set -uo pipefail
specnet=$(realpath "$1")
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: no /usr/bin/python3"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" - "$specnet" "$tmp" <<'EOF'
import glob, os, re, shlex, subprocess, sys
specnet, tmp = sys.argv[1], sys.argv[2]
failed = 0

def fail(msg):
    global failed
    failed = 1
    print("FAIL: " + msg)

def lines():
    for doc in ["README.md"] + sorted(glob.glob("docs/*.md")):
        text = open(doc).read()
        for block in re.finditer(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S):
            joined = block.group(1).replace("\\\n", " ")
            for line in joined.splitlines():
                line = line.split(" #")[0].strip()
                if re.match(r"(mpirun .*?)?specnet |\./build\.sh ", line):
                    yield doc, line

top = subprocess.run([specnet, "--help"], capture_output=True, text=True).stdout
commands = set(re.findall(r"^  ([a-z]+) ", top.split("commands:")[1].split("\n\n")[0], re.M))
helps = {}
checked = ran = 0
for doc, line in lines():
    if line.startswith("./build.sh"):
        mode = line.split()[1]
        if f"{mode})" not in open("build.sh").read():
            fail(f"{doc}: `{line}`: build.sh has no mode {mode}")
        continue
    words = line[line.index("specnet "):].split()
    if len(words) < 2 or not re.match(r"[a-z]+$", words[1]):
        continue  # specnet --help, --version, or its output (specnet 0.1.0)
    cmd = words[1]
    if cmd not in commands:
        fail(f"{doc}: `{line}`: specnet has no command {cmd}")
        continue
    if cmd not in helps:
        helps[cmd] = subprocess.run([specnet, cmd, "--help"], capture_output=True, text=True).stdout
    for opt in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line):
        if not re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", helps[cmd]):
            fail(f"{doc}: `{line}`: {opt} is not an option of specnet {cmd}")
    checked += 1
    concrete = not re.search(r"[\[\]|]|\b(SPEC|FILE|DIR|PATH|KEY)\b", line)
    if not concrete or line.startswith("mpirun"):
        continue
    try:
        args = shlex.split(line[line.index("specnet "):])[1:]
    except ValueError:
        continue
    specs = [a for a in args if a.endswith(".yaml")]
    local = [s for s in specs if s.startswith(("specs/", "examples/"))]
    for s in local:
        if not os.path.exists(s):
            fail(f"{doc}: `{line}`: {s} does not exist")
    if cmd in ("check", "emit") and local:
        r = subprocess.run([specnet] + args, capture_output=True, text=True)
        ran += 1
        if r.returncode != 0:
            fail(f"{doc}: `{line}` exits {r.returncode}: {r.stderr.strip()[:300]}")
    elif cmd == "train" and local:
        out = os.path.join(tmp, "run%d" % ran)
        a = [x for x in args]
        if "--out" in a:  # the documented folder may be anywhere: use a scratch one
            i = a.index("--out")
            del a[i:i + 2]
        r = subprocess.run([specnet] + a + ["--set", "train.epochs=0", "--out", out, "--quiet"],
                           capture_output=True, text=True)
        ran += 1
        if r.returncode != 0:
            fail(f"{doc}: `{line}` (with train.epochs=0) exits {r.returncode}: {r.stderr.strip()[:300]}")
print(f"{checked} documented specnet command lines checked, {ran} run")
if checked < 20:
    fail("fewer than 20 command lines found: has the docs' format changed?")
sys.exit(failed)
EOF
