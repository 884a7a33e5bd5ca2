#!/usr/bin/env bash
# The help, the man page and the bash completion describe the same command line.
#   check_help.sh SPECNET MANPAGE COMPLETION
# Every command and option the parser in cli/main.c knows is in `specnet --help`.
# For every command `specnet --help` lists: `specnet CMD --help` exits 0 and shows
# defaults and an example; each option it names is accepted by the parser, is in
# the man page and is what the completion offers for CMD. Also: --version's first
# line, and exit code 2 with a did-you-mean hint for unknown commands and options.
# Run from the source root (CTest does).
set -uo pipefail
specnet=$1 man=$2 completion=$3
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

help=$("$specnet" --help) || fail "specnet --help exits non-zero"
# The command names: the lines of the "commands:" section (not continuations).
commands=$(sed -n '/^commands:/,/^$/p' <<<"$help" | awk 'NR > 1 && /^  [^ ]/ {print $1}')
[ -n "$commands" ] || fail "specnet --help lists no commands"
completion_commands=$(sed -n 's/^ *local commands="\(.*\)"$/\1/p' "$completion")
[ "$(echo $commands)" = "$completion_commands" ] ||
  fail "commands: --help has '$(echo $commands)', the completion '$completion_commands'"

# What the parser in cli/main.c knows must be in the help: its command table and
# its list of options (skipped, with a note, if main.c no longer has them).
if [ -f cli/main.c ]; then
  parsed_cmds=$(sed -n 's/.*const cmds\[\] = {\(.*\)};.*/\1/p' cli/main.c | grep -o '"[a-z]*"' | tr -d '"')
  parsed_opts=$(sed -n '/known_options\[\] = {/,/};/p' cli/main.c | grep -o '"--[a-z-]*"' | tr -d '"')
  [ -n "$parsed_cmds" ] || echo "note: no cmds[] table found in cli/main.c; not compared"
  [ -n "$parsed_opts" ] || echo "note: no known_options[] found in cli/main.c; not compared"
  for c in $parsed_cmds; do
    grep -qx "$c" <<<"$commands" ||
      fail "cli/main.c runs '$c' but specnet --help does not list it: add it to cli/help.c," \
        "packaging/specnet.1.in and packaging/specnet.bash-completion"
  done
  for o in $parsed_opts; do
    grep -q -- "^  $o[ ,]" <<<"$help" ||
      fail "cli/main.c accepts $o but specnet --help does not mention it: add it to cli/help.c" \
        "(the overview and each command that takes it), packaging/specnet.1.in and" \
        "packaging/specnet.bash-completion"
  done
fi

value_for() {
  case $1 in
    --dtype) echo f32 ;;
    --split) echo test ;;
    --what) echo ir ;;
    --threads | --jobs) echo 1 ;;
    --input | --output | --weights | --junit | --out | -o) echo /nonexistent/x ;;
    --cpu) echo x86-64 ;;
    --set) echo seed=1 ;;
    *) echo x ;;
  esac
}

for cmd in $commands; do
  grep -q "^\.B $cmd\$" "$man" || fail "man page: no synopsis for '$cmd'"
  text=$("$specnet" "$cmd" --help) || fail "specnet $cmd --help exits non-zero"
  grep -q "^usage: specnet $cmd" <<<"$text" || fail "$cmd --help: no usage line"
  grep -q "default:" <<<"$text" || fail "$cmd --help: no defaults"
  grep -q "^example" <<<"$text" || fail "$cmd --help: no example"
  optlines=$(sed -n '/^options:/,/^$/p' <<<"$text" | grep -E '^  -[-a-z]')
  opts=$(awk '{print $1}' <<<"$optlines" | tr -d ',')
  want=$(echo $opts | tr ' ' '\n' | sort | tr '\n' ' ')
  have=$(sed -n "s/^ *$cmd) opts=\"\(.*\)\" ;;\$/\1/p" "$completion" | tr ' ' '\n' | sort | tr '\n' ' ')
  [ "$want" = "$have" ] || fail "$cmd: --help has options '$want', the completion '$have'"
  for o in $opts; do
    [ "$o" = --help ] && continue
    grep -q -- "${o//-/\\\\-}" "$man" || fail "man page: no $o"
    args=("$o")
    # An option takes a value when its help line names one (FILE, N, f32|f64).
    arg=$(awk -v o="$o" '$1 == o {print $2}' <<<"$optlines")
    [[ $arg =~ ^[A-Z] || $arg == *"|"* ]] && args+=("$(value_for "$o")")
    err=$("$specnet" "$cmd" /nonexistent/spec.yaml "${args[@]}" 2>&1 >/dev/null)
    grep -q "unknown option" <<<"$err" && fail "$cmd: --help names $o but the parser rejects it"
  done
done

version=$("$specnet" --version) || fail "specnet --version exits non-zero"
head -1 <<<"$version" | grep -Eq '^specnet [0-9]+\.[0-9]+\.[0-9]+$' ||
  fail "--version: first line is '$(head -1 <<<"$version")'"
for part in LLVM OpenBLAS JIT features; do
  grep -q "$part" <<<"$version" || fail "--version: no $part line"
done

out=$("$specnet" trian x.yaml 2>&1)
[ $? -eq 2 ] || fail "an unknown command does not exit 2"
grep -q "did you mean 'train'" <<<"$out" || fail "no hint for 'trian'"
for args in "x.yaml --qiet" "--qiet x.yaml"; do
  out=$("$specnet" train $args 2>&1)
  [ $? -eq 2 ] || fail "train $args: an unknown option does not exit 2"
  grep -q "did you mean '--quiet'" <<<"$out" || fail "train $args: no hint for '--qiet'"
done

[ $failed -eq 0 ] && echo "help, man page and completion agree ($(echo $commands))"
exit $failed
