#!/usr/bin/env bash
# Checks every way a C user links agrad, as the README describes them, each with a small
# program compiled with strict warnings and run:
#
#   system      installed to /usr/local (loader cache updated), cc prog.c $(pkg-config ...)
#   prefix      installed to a prefix of one's own, with the run path from pkg-config
#   static      the same prefix, linked statically (pkg-config --static); with cJSON and no
#               libcjson.a (Debian's case), libagrad.a with a shared cJSON (and libcsv)
#   staged      installed with --destdir, built against the staged tree
#   cmake       find_package(agrad) and target_link_libraries(... agrad::agrad)
#   subproject  agrad as a meson subproject: dependency('agrad')
#   cxx         the header from C++ (the factories' _with functions)
#
#   tools/check_install.sh [check ...]     (from the repo root; default: all of them)
#
# AGRAD_MESON_OPTIONS adds options to agrad's meson setup in each check, e.g. the release
# build with LTO: AGRAD_MESON_OPTIONS="--buildtype=release -Db_lto=true".
#
# The system check installs into /usr/local and removes it again: it needs root. Prints
# one TAP line per check; exits 1 if any failed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(system prefix static staged cmake subproject cxx)
CFLAGS="-std=c11 -Wall -Wextra -Wpedantic -Werror"

# The program: x ** 2 summed and backpropagated, with the generic forms on const tensors
# and a factory that takes requires_grad by name; then x saved in the safetensors format
# (nn/agrad_nn.h), which links cJSON when agrad was built with it, and a column read from
# CSV text (data/agrad_data.h), which links libcsv likewise.
cat > "$work/prog.c" <<'EOF'
#include <agrad_data.h>
#include <agrad_nn.h>

#include <string.h>

static ag_tensor *square_sum(const ag_tensor *x) { return ag_sum(ag_pow(x, 2)); }

int main(void)
{
    ag_tensor *x = ag_full(AG_SHAPE(3), 1.5, .requires_grad = true);
    ag_backward(square_sum(x));
    int ok = x->grad && x->grad->data[2] == 3.0f;
    printf("d sum(x^2) / dx = %g: %s\n", x->grad ? (double)x->grad->data[2] : -1.0,
           ok ? "ok" : "WRONG");
    size_t size = 0;
    ag_set_error_handler(NULL, NULL);
    void *bytes = ag_safetensors_save_bytes((const char *const[]){"x"}, &x, 1, &size);
    int saved = bytes ? size == 76 : strstr(ag_last_error(), "without cJSON") != NULL;
    printf("safetensors: %s\n", bytes ? "76 bytes, as save_file writes" : ag_last_error());
    ag_free(bytes);
    ag_clear_error();
    ag_tensor *y = ag_read_csv_bytes("x,y\n1.5,2\n", 10, .columns = AG_COLUMNS("y"));
    int read = y ? y->numel == 1 && y->data[0] == 2.0f
                 : strstr(ag_last_error(), "without libcsv") != NULL;
    printf("csv: %s\n", y ? (read ? "y = 2, as written" : "WRONG") : ag_last_error());
    ag_shutdown();
    return !(ok && saved && read);
}
EOF

n=0
failed=0
report() { # name, status
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi
}
setup() { # builddir, meson options...
    local dir=$1
    shift
    # shellcheck disable=SC2086 # AGRAD_MESON_OPTIONS is a list of words
    meson setup "$dir" "$root" -Dtests=disabled ${AGRAD_MESON_OPTIONS:-} "$@" >"$work/log" 2>&1 &&
        meson compile -C "$dir" >>"$work/log" 2>&1 || { cat "$work/log" >&2; return 1; }
}

system() {
    setup "$work/sys" || return 1
    meson install -C "$work/sys" --quiet >/dev/null && ldconfig || return 1
    local status=0
    cc $CFLAGS "$work/prog.c" $(pkg-config --cflags --libs agrad) -o "$work/prog-sys" &&
        "$work/prog-sys" || status=1
    ninja -C "$work/sys" uninstall >/dev/null && ldconfig
    return $status
}

prefix() {
    setup "$work/pre" --prefix="$work/prefix" && meson install -C "$work/pre" --quiet >/dev/null ||
        return 1
    local pc
    pc=$(dirname "$(find "$work/prefix" -name agrad.pc)")
    PKG_CONFIG_PATH=$pc cc $CFLAGS "$work/prog.c" $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs agrad) \
        -Wl,-rpath,"$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir agrad)" -o "$work/prog-pre" &&
        "$work/prog-pre"
}

static() {
    [ -d "$work/prefix" ] || prefix >/dev/null || return 1
    local pc flags
    pc=$(dirname "$(find "$work/prefix" -name agrad.pc)")
    flags=$(PKG_CONFIG_PATH=$pc pkg-config --static --cflags --libs agrad)
    if [[ " $flags " == *" -lcjson "* && $(cc -print-file-name=libcjson.a) == libcjson.a ]]; then
        # Debian ships cJSON as a shared library only: libagrad.a linked in, cJSON (which
        # pkg-config --static names, from Requires.private) and libc shared.
        echo "static: no libcjson.a, so libagrad.a with a shared cJSON (not cc -static)" >&2
        cc $CFLAGS "$work/prog.c" ${flags/-lagrad/-Wl,-Bstatic -lagrad -Wl,-Bdynamic} \
            -o "$work/prog-static" && "$work/prog-static"
        return
    fi
    cc $CFLAGS -static "$work/prog.c" $flags -o "$work/prog-static" && "$work/prog-static"
}

staged() {
    setup "$work/stg" && meson install -C "$work/stg" --destdir "$work/stage" --quiet >/dev/null ||
        return 1
    local pc flags
    pc=$(dirname "$(find "$work/stage" -name agrad.pc)")
    flags=$(PKG_CONFIG_SYSROOT_DIR="$work/stage" PKG_CONFIG_PATH=$pc pkg-config --cflags --libs agrad)
    cc $CFLAGS "$work/prog.c" $flags -o "$work/prog-stg" &&
        LD_LIBRARY_PATH=$(PKG_CONFIG_SYSROOT_DIR="$work/stage" PKG_CONFIG_PATH=$pc \
            pkg-config --variable=libdir agrad) "$work/prog-stg"
}

cmake_check() {
    [ -d "$work/prefix" ] || prefix >/dev/null || return 1
    mkdir -p "$work/cm"
    cp "$work/prog.c" "$work/cm/"
    cat > "$work/cm/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(use_agrad C)
find_package(agrad 0.1 REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog PRIVATE agrad::agrad)
EOF
    cmake -S "$work/cm" -B "$work/cm/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
        -DCMAKE_C_FLAGS="$CFLAGS" >"$work/log" 2>&1 &&
        cmake --build "$work/cm/build" >>"$work/log" 2>&1 || { cat "$work/log" >&2; return 1; }
    "$work/cm/build/prog"
}

cxx() {
    [ -d "$work/prefix" ] || prefix >/dev/null || return 1
    cat > "$work/prog.cpp" <<'EOF'
#include <agrad.h>
#include <cstdio>

int main()
{
    ag_tensor *x = ag_full_with({ag_shape{1, {3}}, 1.5, true, 0});
    ag_backward(ag_sum(ag_mul_tt(x, x)));
    bool ok = x->grad && x->grad->data[2] == 3.0f;
    std::printf("C++: d sum(x^2) / dx = %g: %s\n", x->grad ? double(x->grad->data[2]) : -1.0,
                ok ? "ok" : "WRONG");
    ag_shutdown();
    return !ok;
}
EOF
    local pc
    pc=$(dirname "$(find "$work/prefix" -name agrad.pc)")
    c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror "$work/prog.cpp" \
        $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs agrad) \
        -Wl,-rpath,"$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir agrad)" -o "$work/prog-cxx" &&
        "$work/prog-cxx"
}

subproject() {
    mkdir -p "$work/sp/subprojects"
    cp "$work/prog.c" "$work/sp/"
    ln -s "$root" "$work/sp/subprojects/agrad"
    cat > "$work/sp/meson.build" <<'EOF'
project('use_agrad', 'c', default_options: ['c_std=c11', 'warning_level=3', 'werror=true'])
subproject('agrad')
executable('prog', 'prog.c', dependencies: dependency('agrad'))
EOF
    # shellcheck disable=SC2086
    (cd "$work/sp" && meson setup build ${AGRAD_MESON_OPTIONS:-} >"$work/log" 2>&1 &&
        meson compile -C build >>"$work/log" 2>&1) ||
        { cat "$work/log" >&2; return 1; }
    "$work/sp/build/prog"
}

for c in "${checks[@]}"; do
    case $c in
    cmake) cmake_check >&2; report "cmake: find_package(agrad), agrad::agrad" $? ;;
    system) system >&2; report "system: /usr/local, cc prog.c \$(pkg-config --cflags --libs agrad)" $? ;;
    prefix) prefix >&2; report "prefix: pkg-config with the run path from its libdir" $? ;;
    static) static >&2; report "static: pkg-config --static, libagrad.a (cc -static if every library has an archive)" $? ;;
    staged) staged >&2; report "staged: --destdir, PKG_CONFIG_SYSROOT_DIR" $? ;;
    subproject) subproject >&2; report "subproject: dependency('agrad')" $? ;;
    cxx) cxx >&2; report "cxx: the header from C++ (-Wall -Wextra -Wpedantic -Werror)" $? ;;
    *) echo "check_install: no check $c" >&2; exit 2 ;;
    esac
done
echo "1..$n"
exit $failed
