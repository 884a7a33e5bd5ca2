#!/usr/bin/env bash
# specnet as users get it: the packaging checks of CI (.ci/run), on a build folder
# that is already built (CI's Release build).
#
#   packaging/ci.sh install BUILD   cmake --install into a temporary prefix; build
#                                   examples/external_project against it and run
#                                   its CTest suite; the same program through
#                                   pkg-config; the compiler component; every
#                                   installed header compiled on its own
#   packaging/ci.sh deb BUILD       cpack -G DEB; dpkg -c; apt-get install the
#                                   .deb (root); the installed command, man page,
#                                   completion and the example project built
#                                   against /usr; apt-get remove
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

mode=${1:-}
build=$(realpath "${2:-build}")
[ -f "$build/CMakeCache.txt" ] || {
  echo "ci.sh: $build is not a configured build folder" >&2
  exit 2
}
tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

step() { echo "--- $*"; }
version=$(sed -n 's/^#define SPECNET_VERSION_STRING "\(.*\)"$/\1/p' "$build/include/specnet/version.h")

# example_project PREFIX_PATH SRC SPECNET: configure, build and test the example
# project against an installed specnet (PREFIX_PATH empty: the system's), which
# must be the command SPECNET.
example_project() {
  local prefix_path=$1 example=$2 want=$3 dir=$tmp/example
  rm -rf "$dir"
  cmake -S "$example" -B "$dir" ${prefix_path:+-DCMAKE_PREFIX_PATH="$prefix_path"} \
    -DCMAKE_C_FLAGS="-Werror" >"$tmp/configure.log" || {
    cat "$tmp/configure.log"
    return 1
  }
  # The spec tests and the build steps must run the installed specnet.
  grep -x -- "-- specnet $version: $want" "$tmp/configure.log" || {
    echo "find_package(specnet) found another specnet:"
    grep -- "-- specnet" "$tmp/configure.log"
    return 1
  }
  cmake --build "$dir" -j"$(nproc)"
  ctest --test-dir "$dir" --output-on-failure
}

# blobs_eval_pkgconfig: examples/external_project/blobs_eval.c built with nothing
# but pkg-config, against the shared and the static runtime, and run on the
# checkpoint the example's build wrote.
blobs_eval_pkgconfig() {
  local libdir
  libdir=$(pkg-config --variable=libdir specnet-runtime)
  step "pkg-config: specnet-runtime $(pkg-config --modversion specnet-runtime) in $libdir"
  cc -std=c11 -Wall -Wextra -Werror -o "$tmp/be_shared" "$src/examples/external_project/blobs_eval.c" \
    $(pkg-config --cflags --libs specnet-runtime) -lm -Wl,-rpath,"$libdir"
  cc -std=c11 -Wall -Wextra -Werror -o "$tmp/be_static" "$src/examples/external_project/blobs_eval.c" \
    $(pkg-config --cflags specnet-runtime) "$libdir/libspecnet_rt.a" \
    $(pkg-config --static --libs-only-l specnet-runtime | sed 's/-lspecnet_rt//') -lm
  "$tmp/be_shared" "$tmp/example/run/model.safetensors" 0.97
  "$tmp/be_static" "$tmp/example/run/model.safetensors" 0.97 | tail -1
}

install_check() {
  local prefix=$tmp/prefix
  step "cmake --install $build --prefix $prefix"
  cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
  local f missing=0
  for f in bin/specnet include/specnet/runtime.h include/specnet/compiler.h \
    include/specnet/version.h lib/libspecnet_rt.a lib/libspecnet_rt.so \
    lib/libspecnet_compiler.a lib/libspecnet_aot_main.a lib/cmake/specnet/specnetConfig.cmake \
    lib/cmake/specnet/specnetConfigVersion.cmake lib/cmake/specnet/SpecnetSpecTests.cmake \
    lib/pkgconfig/specnet-runtime.pc share/man/man1/specnet.1.gz \
    share/bash-completion/completions/specnet share/doc/specnet/README.md \
    share/doc/specnet/CHANGELOG.md share/doc/specnet/docs/install.md \
    share/doc/specnet/examples/specs/mnist_mlp.yaml \
    share/doc/specnet/examples/external_project/CMakeLists.txt; do
    [ -e "$prefix/$f" ] || {
      echo "missing from the install: $f"
      missing=1
    }
  done
  [ $missing -eq 0 ]
  echo "$(grep -c '^-- Installing' "$tmp/install.log") files installed"
  "$prefix/bin/specnet" --version

  step "public headers compile on their own (gcc, clang)"
  local cc h
  for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    for h in "$prefix"/include/specnet/*.h; do
      printf '#include <specnet/%s>\nint header_check;\n' "$(basename "$h")" |
        $cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$prefix/include" -x c -
    done
  done

  step "examples/external_project against $prefix"
  example_project "$prefix" "$src/examples/external_project" "$prefix/bin/specnet"

  PKG_CONFIG_PATH=$prefix/lib/pkgconfig blobs_eval_pkgconfig

  step "find_package(specnet COMPONENTS compiler): specnet::compiler links"
  mkdir -p "$tmp/compiler"
  cat >"$tmp/compiler/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(compiler_check LANGUAGES C)
find_package(specnet REQUIRED COMPONENTS compiler)
add_executable(compiler_check main.c)
target_link_libraries(compiler_check PRIVATE specnet::compiler)
EOF
  printf '#include <specnet/compiler.h>\nint main(void) { return sn_compile == 0; }\n' \
    >"$tmp/compiler/main.c"
  cmake -S "$tmp/compiler" -B "$tmp/compiler/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$tmp/compiler/build" >/dev/null
  "$tmp/compiler/build/compiler_check" && echo "specnet::compiler: linked and ran"
}

deb_check() {
  [ "$(id -u)" -eq 0 ] || {
    echo "ci.sh deb: apt-get install needs root" >&2
    return 2
  }
  # CPack reads the binaries' dependencies with dpkg-shlibdeps and file; without
  # them it would fall back to a fixed Depends list (cmake/SpecnetPackage.cmake).
  if ! command -v dpkg-shlibdeps >/dev/null || ! command -v file >/dev/null; then
    step "installing dpkg-dev and file for dpkg-shlibdeps"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dpkg-dev file >/dev/null
    cmake "$build" >/dev/null # find them
  fi
  step "cpack -G DEB"
  rm -f "$build"/specnet_*.deb
  (cd "$build" && cpack -G DEB >"$tmp/cpack.log") || {
    cat "$tmp/cpack.log"
    return 1
  }
  local deb
  deb=$(ls "$build"/specnet_"$version"_*.deb)
  echo "$deb: $(stat -c %s "$deb") bytes"
  dpkg-deb -f "$deb" Package Version Architecture Depends Recommends Installed-Size
  local dep
  for dep in libc6 libllvm19 libopenblas0 libyaml-0-2 zlib1g libhdf5-103; do
    dpkg-deb -f "$deb" Depends | grep -q "$dep" || {
      echo "Depends lacks $dep"
      return 1
    }
  done

  # metadata a user reads (apt show): plain text, no placeholder Homepage, and
  # bash-completion, which the completion file needs, at least recommended
  if dpkg-deb -f "$deb" Description | grep -q '&[a-z]*;'; then
    echo "Description has HTML entities: $(dpkg-deb -f "$deb" Description | grep '&[a-z]*;')"
    return 1
  fi
  if dpkg-deb -f "$deb" Homepage | grep -q example; then
    echo "Homepage is a placeholder: $(dpkg-deb -f "$deb" Homepage)"
    return 1
  fi
  dpkg-deb -f "$deb" Recommends | grep -q bash-completion || {
    echo "Recommends lacks bash-completion"
    return 1
  }

  step "dpkg -c"
  dpkg -c "$deb" >"$tmp/contents"
  # files per folder (the documentation as one)
  awk '$1 !~ /^d/ {print $6}' "$tmp/contents" | sed -e 's#^\./##' -e 's#/[^/]*$##' \
    -e 's#^\(usr/share/doc/specnet\)/.*#\1#' | sort | uniq -c | awk '{printf "  %-42s %3d\n", $2, $1}'
  echo "  $(grep -vc '^d' "$tmp/contents") files and links"

  step "apt-get install ./$(basename "$deb")"
  local was_installed=0
  dpkg-query -W -f='${Status}' specnet 2>/dev/null | grep -q 'install ok installed' && was_installed=1
  (cd "$build" && DEBIAN_FRONTEND=noninteractive apt-get install -y "./$(basename "$deb")" >"$tmp/apt.log") || {
    cat "$tmp/apt.log"
    return 1
  }
  [ $was_installed -eq 1 ] || trap 'dpkg --purge specnet >/dev/null 2>&1; cleanup' EXIT

  step "the installed specnet"
  [ "$(command -v specnet)" = /usr/bin/specnet ] || echo "note: specnet on PATH is $(command -v specnet)"
  /usr/bin/specnet --version
  /usr/bin/specnet check /usr/share/doc/specnet/examples/specs/mnist_mlp.yaml
  local spec
  for spec in /usr/share/doc/specnet/examples/specs/*.yaml; do
    /usr/bin/specnet check "$spec" >/dev/null || {
      echo "specnet check $spec failed"
      return 1
    }
  done
  /usr/bin/specnet test /usr/share/doc/specnet/examples/external_project/specs
  /usr/bin/specnet train --help >/dev/null
  gzip -t /usr/share/man/man1/specnet.1.gz
  if command -v man >/dev/null; then man -w specnet; fi
  bash -n /usr/share/bash-completion/completions/specnet
  # grep without -q: under pipefail an early exit would SIGPIPE ldconfig on a big cache
  ldconfig -p | grep 'libspecnet_rt.so.' >/dev/null || {
    echo "libspecnet_rt is not in the ld.so cache"
    return 1
  }

  step "the installed example project against /usr"
  example_project "" /usr/share/doc/specnet/examples/external_project /usr/bin/specnet
  blobs_eval_pkgconfig

  step "apt-get remove specnet"
  DEBIAN_FRONTEND=noninteractive apt-get remove -y specnet >/dev/null
  dpkg --purge specnet >/dev/null # the "rc" entry remove leaves (postrm runs ldconfig)
  trap cleanup EXIT
  [ ! -e /usr/bin/specnet ] || {
    echo "/usr/bin/specnet is still there after apt-get remove"
    return 1
  }
  echo "removed"
  if [ $was_installed -eq 1 ]; then echo "note: a specnet package was installed before; it is removed now"; fi
}

case $mode in
  install) install_check ;;
  deb) deb_check ;;
  *)
    sed -n '2,13s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
