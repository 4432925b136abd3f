#!/usr/bin/env bash
# Builds and runs examples/my_bijector the way a user's project would consume tapeflow:
#
#   consume.sh installed SOURCE BUILD    installs BUILD (already built, nothing recompiled) into a
#                                        staging directory, checks the installed tree, and builds the
#                                        example against it through pkg-config
#   consume.sh subproject SOURCE         builds the example with SOURCE as its subprojects/tapeflow
#                                        (a symlink), through dependency('tapeflow')'s fallback
#   consume.sh cmake SOURCE BUILD HOW    installs as `installed` does, then builds the example with
#                                        CMake (its CMakeLists.txt) against the staged install, HOW
#                                        = package (find_package(tapeflow), tapeflowConfig.cmake) or
#                                        pkg-config (pkg_check_modules)
#
# Either way the example's own tests then run: its conformance/gradcheck test and its training run.
set -euo pipefail

route="$1" source="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "consume.sh ($route): $*" >&2; exit 1; }
step() { echo "== $*"; }

# A copy of the example outside the source tree: it must not see anything but what it declares.
cp -r "$source/examples/my_bijector" "$tmp/my_bijector"
rm -rf "$tmp/my_bijector/build" "$tmp/my_bijector/subprojects"

case "$route" in
installed|cmake)
    build="$3"
    stage="$tmp/stage"
    step "meson install --destdir $stage"
    meson install -C "$build" --no-rebuild --quiet --destdir "$stage" >"$tmp/install.log" 2>&1 \
        || { cat "$tmp/install.log" >&2; fail "meson install failed"; }
    # Where the build was configured to install: $stage + prefix + libdir/includedir.
    read -r prefix libdir includedir sanitize < <(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
print(opts["prefix"], opts["libdir"], opts["includedir"], opts["b_sanitize"])')
    case "$libdir" in /*) ;; *) libdir="$prefix/$libdir" ;; esac
    case "$includedir" in /*) ;; *) includedir="$prefix/$includedir" ;; esac

    step "the installed tree"
    [ -f "$stage$libdir/libtapeflow.a" ] || fail "no $libdir/libtapeflow.a"
    pc="$stage$libdir/pkgconfig/tapeflow.pc"
    [ -f "$pc" ] || fail "no $libdir/pkgconfig/tapeflow.pc"
    # Every public header of the layers, in its layer folder, and nothing else (no sources, no
    # meson.build, no header marked internal).
    marker="// Internal header: not installed."
    expected="$(cd "$source" && grep -L -x "$marker" tensor/*.hpp autograd/*.hpp nn/*.hpp flows/*.hpp | sort)"
    installed="$(cd "$stage$includedir/tapeflow" && find . -type f | sed 's|^\./||' | sort)"
    if [ "$expected" != "$installed" ]; then
        diff <(echo "$expected") <(echo "$installed") >&2 || true
        fail "installed headers (>) differ from the layers' public headers (<): reconfigure the build"
    fi
    # Only the public API: not the gemm kernels' internals, not the test-only fault injection.
    for internal in tensor/micro_kernel.hpp tensor/gemm_panels.hpp tensor/testing/save_faults.hpp; do
        [ ! -e "$stage$includedir/tapeflow/$internal" ] || fail "the internal header $internal is installed"
    done
    if grep -l -x -F "$marker" -r "$stage$includedir/tapeflow" >&2 || grep -l -w SaveFaultInjection -r "$stage$includedir/tapeflow" >&2; then
        fail "an internal header (marked, or with the test-only SaveFaultInjection) is installed (above)"
    fi
    # Self-contained: whatever an installed header includes from tapeflow is installed too.
    while read -r header included; do
        [ -f "$stage$includedir/tapeflow/$included" ] || fail "installed $header includes $included, which is not installed"
    done < <(cd "$stage$includedir/tapeflow" && grep -o '^#include "[^"]*"' -r . | sed 's|^\./||; s|:#include "\(.*\)"$| \1|')
    # The library holds every layer: one symbol from each.
    nm -C --defined-only "$stage$libdir/libtapeflow.a" >"$tmp/symbols" 2>/dev/null
    for symbol in tapeflow::Tensor::zeros tapeflow::Tape::backward tapeflow::nn::Adam:: tapeflow::flows::Flow::log_prob; do
        grep -q " T $symbol" "$tmp/symbols" || fail "libtapeflow.a defines no $symbol"
    done
    grep -q '^Requires:.*fmt' "$pc" && grep -q '^Requires:.*zlib' "$pc" || fail "tapeflow.pc lacks Requires: fmt, zlib"

    # pkg-config's sysroot maps the .pc file's $prefix/... into the staging directory, as it does for
    # any DESTDIR-staged install; an install with --prefix=DIR needs only PKG_CONFIG_PATH.
    export PKG_CONFIG_PATH="$stage$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export PKG_CONFIG_SYSROOT_DIR="$stage"
    pkg-config --cflags tapeflow | grep -q -- "-I$stage$includedir/tapeflow" \
        || fail "pkg-config --cflags tapeflow does not point into the install: $(pkg-config --cflags tapeflow)"
    # A sanitized library (./tapeflow test --sanitize) links only into a program built the same way.
    setup_args=()
    [ "$sanitize" = none ] || setup_args+=("-Db_sanitize=$sanitize")
    # The CMake package (installed when cmake was found at configure time) comes whole or not at all.
    if [ -d "$stage$libdir/cmake/tapeflow" ]; then
        for f in tapeflowConfig.cmake tapeflowConfigVersion.cmake; do
            [ -f "$stage$libdir/cmake/tapeflow/$f" ] || fail "no $libdir/cmake/tapeflow/$f beside the rest of the CMake package"
        done
    fi
    ;;
subproject)
    mkdir -p "$tmp/my_bijector/subprojects"
    ln -s "$source" "$tmp/my_bijector/subprojects/tapeflow"
    # Take tapeflow from the subproject even if an installed one is visible to pkg-config. A debug
    # build: the library compiles about twice as fast, and the example runs fast enough either way.
    setup_args=(--force-fallback-for=tapeflow --buildtype=debug)
    ;;
*) fail "unknown route '$route' (installed or subproject)" ;;
esac

if [ "$route" = cmake ]; then
    how="$4"
    cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release "-DMY_BIJECTOR_TAPEFLOW=$how")
    case "$how" in
    package)
        [ -f "$stage$libdir/cmake/tapeflow/tapeflowConfig.cmake" ] || fail "no $libdir/cmake/tapeflow/tapeflowConfig.cmake"
        # Only the package may be found: pkg-config must not rescue a broken one.
        unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
        cmake_args+=("-DCMAKE_PREFIX_PATH=$stage$prefix")
        expect_found="found its CMake package in $stage$libdir/cmake/tapeflow" ;;
    pkg-config)
        # CMake turns every -I of the flags into a path that must exist, so pkg-config's sysroot
        # (which would also move fmt's and zlib's /usr/include into the stage) does not work here;
        # instead the staged tapeflow.pc gets the staged prefix, as an install with --prefix has.
        unset PKG_CONFIG_SYSROOT_DIR
        mkdir -p "$tmp/pkgconfig"
        sed "s|^prefix=.*|prefix=$stage$prefix|" "$pc" >"$tmp/pkgconfig/tapeflow.pc"
        export PKG_CONFIG_PATH="$tmp/pkgconfig"
        expect_found="found through pkg-config" ;;
    *) fail "unknown way to find tapeflow '$how' (package or pkg-config)" ;;
    esac
    [ "$sanitize" = none ] || cmake_args+=("-DCMAKE_CXX_FLAGS=-fsanitize=$sanitize -fno-omit-frame-pointer")
    step "cmake ${cmake_args[*]}"
    cmake -S "$tmp/my_bijector" -B "$tmp/build" "${cmake_args[@]}" >"$tmp/setup.log" 2>&1 \
        || { cat "$tmp/setup.log" >&2; fail "cmake configure of the example failed"; }
    grep -qF "$expect_found" "$tmp/setup.log" || { cat "$tmp/setup.log" >&2; fail "tapeflow was not $expect_found"; }
    step "cmake --build"
    cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; fail "the example did not build"; }
    step "ctest (the example's conformance test and training run)"
    ctest --test-dir "$tmp/build" --output-on-failure -V >"$tmp/test.log" 2>&1 || { cat "$tmp/test.log" >&2; fail "the example's tests failed"; }
    grep -E 'held-out NLL|test cases:|tests passed' "$tmp/test.log" || true
    exit 0
fi

step "meson setup ${setup_args[*]}"
meson setup "$tmp/build" "$tmp/my_bijector" "${setup_args[@]}" >"$tmp/setup.log" 2>&1 \
    || { cat "$tmp/setup.log" >&2; fail "meson setup of the example failed"; }
if [ "$route" = installed ]; then
    grep -q 'Run-time dependency tapeflow found: YES' "$tmp/setup.log" \
        || { cat "$tmp/setup.log" >&2; fail "tapeflow was not found through pkg-config"; }
else
    grep -q 'Executing subproject tapeflow' "$tmp/setup.log" \
        || { cat "$tmp/setup.log" >&2; fail "tapeflow was not taken from subprojects/"; }
fi
step "ninja"
ninja -C "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; fail "the example did not build"; }
step "meson test (the example's conformance test and training run)"
meson test -C "$tmp/build" --no-rebuild --print-errorlogs --num-processes 2 || fail "the example's tests failed"
cat "$tmp/build/meson-logs/testlog.txt" | grep -E 'held-out NLL|test cases:' || true
