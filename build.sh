#!/usr/bin/env bash
# specnet's one set-up entry point: installs the Debian packages that are missing,
# configures and builds, then runs what was asked for.
#
#   ./build.sh train [ARGS...]  build, then train the seed model (specs/mnist_mlp.yaml);
#                               ARGS go to `specnet train` (e.g. --set train.epochs=1)
#   ./build.sh test             build, then run the test suite (ctest)
#   ./build.sh sanitize         build in build-asan with ASan+UBSan, run the test suite
#   ./build.sh valgrind         build in build-valgrind, run the tests labelled valgrind
#   ./build.sh fuzz [SECONDS]   build the libFuzzer targets (clang) in build-fuzz, run
#                               each for SECONDS (default 60; tests/fuzz/run.sh)
#   ./build.sh build            build only
#
# Environment: SPECNET_CMAKE_ARGS adds arguments to the cmake configure step
# (e.g. SPECNET_CMAKE_ARGS=-DSPECNET_WERROR=ON, as CI does).
set -euo pipefail
cd "$(dirname "$0")"

# make and libc6-dev are what cmake and gcc only recommend; we install without
# recommends, so they are named here.
PACKAGES=(cmake make pkg-config gcc libc6-dev libyaml-dev llvm-19-dev libopenblas-dev
          zlib1g-dev libhdf5-dev python3-h5py dataset-fashion-mnist fortunes libopenmpi-dev
          openmpi-bin chromium)

usage() {
  sed -n '2,15s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

install_missing() {
  if ! command -v dpkg-query >/dev/null; then
    echo "build.sh: not a Debian system; install these yourself: ${PACKAGES[*]}" >&2
    return
  fi
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "build.sh: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# configure_and_build DIR [CMAKE ARGS...]
configure_and_build() {
  local dir=$1
  shift
  local extra=()
  # Word-split on purpose: several -D arguments may be given in one variable.
  read -r -a extra <<<"${SPECNET_CMAKE_ARGS:-}"
  cmake -S . -B "$dir" "$@" "${extra[@]}"
  cmake --build "$dir" -j"$(nproc)"
}

mode=${1:-}
[ -n "$mode" ] || usage
shift

case "$mode" in
  train)
    install_missing
    configure_and_build build -DCMAKE_BUILD_TYPE=Release
    exec ./build/cli/specnet train specs/mnist_mlp.yaml "$@"
    ;;
  test)
    install_missing
    configure_and_build build -DCMAKE_BUILD_TYPE=Release
    ctest --test-dir build --output-on-failure -j"$(nproc)"
    ;;
  sanitize)
    install_missing
    configure_and_build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECNET_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -j"$(nproc)"
    ;;
  valgrind)
    PACKAGES+=(valgrind)
    install_missing
    configure_and_build build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECNET_VALGRIND=ON
    ctest --test-dir build-valgrind -L valgrind --output-on-failure -j"$(nproc)"
    ;;
  fuzz)
    PACKAGES+=(clang libclang-rt-14-dev)
    install_missing
    read -r -a extra <<<"${SPECNET_CMAKE_ARGS:-}"
    cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECNET_FUZZ=ON \
      "${extra[@]}"
    cmake --build build-fuzz --target specnet_fuzzers -j"$(nproc)"
    tests/fuzz/run.sh "${1:-60}" build-fuzz
    ;;
  build)
    install_missing
    configure_and_build build -DCMAKE_BUILD_TYPE=Release
    ;;
  -h | --help | help) usage ;;
  *)
    echo "build.sh: unknown mode '$mode'" >&2
    usage
    ;;
esac
