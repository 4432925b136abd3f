#!/usr/bin/env bash
# Builds and runs examples/my_bijector the way a user's project would consume tapeflow:
#
#   consume.sh installed SOURCE BUILD    installs BUILD (already built, nothing recompiled) into a
#                                        staging directory, checks the installed tree, and builds the
#                                        example against it through pkg-config
#   consume.sh subproject SOURCE         builds the example with SOURCE as its subprojects/tapeflow
#                                        (a symlink), through dependency('tapeflow')'s fallback
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
installed)
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
    # Every header of the layers, in its layer folder, and nothing else (no sources, no meson.build).
    expected="$(cd "$source" && ls tensor/*.hpp autograd/*.hpp nn/*.hpp flows/*.hpp | sort)"
    installed="$(cd "$stage$includedir/tapeflow" && find . -type f | sed 's|^\./||' | sort)"
    if [ "$expected" != "$installed" ]; then
        diff <(echo "$expected") <(echo "$installed") >&2 || true
        fail "installed headers (>) differ from the layers' headers (<): reconfigure the build"
    fi
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
