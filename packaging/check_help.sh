#!/usr/bin/env bash
# The help, the man page and the bash completion describe the same command line.
#   check_help.sh SPECNET MANPAGE COMPLETION
# For every command `specnet --help` lists: `specnet CMD --help` exits 0 and shows
# defaults and an example; each option it names is accepted by the parser, is in
# the man page and is what the completion offers for CMD. Also: --version's first
# line, and exit code 2 with a did-you-mean hint for unknown commands and options.
set -uo pipefail
specnet=$1 man=$2 completion=$3
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

help=$("$specnet" --help) || fail "specnet --help exits non-zero"
# The command names: the lines of the "commands:" section.
commands=$(sed -n '/^commands:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF {print $1}')
[ -n "$commands" ] || fail "specnet --help lists no commands"
completion_commands=$(sed -n 's/^ *local commands="\(.*\)"$/\1/p' "$completion")
[ "$(echo $commands)" = "$completion_commands" ] ||
  fail "commands: --help has '$(echo $commands)', the completion '$completion_commands'"

value_for() {
  case $1 in
    --dtype) echo f32 ;;
    --split) echo test ;;
    --what) echo ir ;;
    --threads | --jobs) echo 1 ;;
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
  opts=$(sed -n '/^options:/,/^$/p' <<<"$text" | grep -o '^  --[a-z-]*' | tr -d ' ')
  want=$(echo $opts | tr ' ' '\n' | sort | tr '\n' ' ')
  have=$(sed -n "s/^ *$cmd) opts=\"\(.*\)\" ;;\$/\1/p" "$completion" | tr ' ' '\n' | sort | tr '\n' ' ')
  [ "$want" = "$have" ] || fail "$cmd: --help has options '$want', the completion '$have'"
  for o in $opts; do
    [ "$o" = --help ] && continue
    grep -q -- "${o//-/\\\\-}" "$man" || fail "man page: no $o"
    args=("$o")
    case $o in --quiet | --verbose) ;; *) args+=("$(value_for "$o")") ;; esac
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

"$specnet" trian x.yaml >/dev/null 2>&1
[ $? -eq 2 ] || fail "an unknown command does not exit 2"
"$specnet" trian x.yaml 2>&1 | grep -q "did you mean 'train'" || fail "no hint for 'trian'"
"$specnet" train x.yaml --qiet >/dev/null 2>&1
[ $? -eq 2 ] || fail "an unknown option does not exit 2"
"$specnet" train x.yaml --qiet 2>&1 | grep -q "did you mean '--quiet'" || fail "no hint for '--qiet'"

[ $failed -eq 0 ] && echo "help, man page and completion agree ($(echo $commands))"
exit $failed
