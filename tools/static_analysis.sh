#!/usr/bin/env bash
# Static analysis of the agrad library: cppcheck and clang-tidy over the library's sources (and,
# through them, the headers in autograd/). Prints each finding once and a summary, and
# exits 1 on any finding (2 when a tool is missing or fails to run).
#
#   tools/static_analysis.sh [builddir]        (from the repo root; builddir: build)
#
# Needs cppcheck (>= 2.10) and clang-tidy (>= 14): apt-get install cppcheck clang-tidy.
# clang-tidy reads <builddir>/compile_commands.json (meson setup <builddir> writes it);
# without one it is given the flags meson would use. Checks: .clang-tidy (clang-tidy),
# tools/cppcheck-suppressions.txt (cppcheck). CPPCHECK, CLANG_TIDY override the tools;
# JOBS the parallelism; VERBOSE=1 also prints the tools' full output.
set -uo pipefail

builddir=${1:-build}
[[ $builddir == /* ]] || builddir=$PWD/$builddir
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2

CPPCHECK=${CPPCHECK:-cppcheck}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
for tool in "$CPPCHECK" "$CLANG_TIDY"; do
    if ! command -v "$tool" >/dev/null; then
        echo "static_analysis: '$tool' not found (apt-get install cppcheck clang-tidy)" >&2
        exit 2
    fi
done

shopt -s nullglob
sources=(autograd/*.c nn/*.c optim/*.c data/*.c)
if ((${#sources[@]} == 0)); then
    echo "static_analysis: no autograd/*.c (run from the agrad repository)" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# Findings as "path:line:col: severity: message [check]", path relative to the repo root,
# each once (a header's finding is reported by every file that includes it).
normalize() {
    local re='^(.+):([0-9]+):([0-9]+): (warning|error|style|performance|portability|information): (.*)$'
    local line
    while IFS= read -r line; do
        if [[ $line =~ $re ]]; then
            local f=${BASH_REMATCH[1]}
            # clang-tidy names a file as the compile database does: relative to builddir.
            [[ $f != /* && ! -e $f && -e $builddir/$f ]] && f=$builddir/$f
            f=$(realpath -m --relative-to="$root" "$f" 2>/dev/null || echo "$f")
            echo "$f:${BASH_REMATCH[2]}:${BASH_REMATCH[3]}: ${BASH_REMATCH[4]}: ${BASH_REMATCH[5]}"
        fi
    done | sed 's/,-warnings-as-errors\]$/]/' | sort -t: -k1,1 -k2,2n -k3,3n -u
}

# ---- cppcheck -----------------------------------------------------------------------
echo "== cppcheck $("$CPPCHECK" --version | sed 's/^Cppcheck //') (${#sources[@]} files)"
"$CPPCHECK" --std=c11 --language=c -I autograd -I nn -I optim -I data \
    --enable=warning,style,performance,portability \
    --inline-suppr --suppressions-list=tools/cppcheck-suppressions.txt \
    --error-exitcode=1 --quiet -j "$JOBS" \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
    "${sources[@]}" >"$tmp/cppcheck.out" 2>"$tmp/cppcheck.err"
cppcheck_rc=$?
[[ ${VERBOSE:-0} == 1 ]] && cat "$tmp/cppcheck.out" "$tmp/cppcheck.err"
normalize <"$tmp/cppcheck.err" >"$tmp/cppcheck.found"
cppcheck_n=$(wc -l <"$tmp/cppcheck.found")
cat "$tmp/cppcheck.found"
if ((cppcheck_rc != 0 && cppcheck_n == 0)); then
    echo "static_analysis: cppcheck failed (exit $cppcheck_rc):" >&2
    cat "$tmp/cppcheck.out" "$tmp/cppcheck.err" >&2
    status=2
fi

# ---- clang-tidy ---------------------------------------------------------------------
db=() flags=()
if [[ -f $builddir/compile_commands.json ]]; then
    db=(-p "$builddir")
    dbnote="compile commands from ${builddir#"$root"/}"
else
    flags=(-- -std=gnu11 -Iautograd -Inn -Ioptim -Idata -D_FILE_OFFSET_BITS=64 -DAGRAD_BUILDING
           -DAG_CHECKED_DEFAULT=0 -Wall -Wextra -Wpedantic)
    dbnote="no $builddir/compile_commands.json: default flags"
fi
echo "== $("$CLANG_TIDY" --version | grep -io 'llvm version [0-9.]*' | head -1 |
    sed 's/.*version/clang-tidy/') (${#sources[@]} files, $dbnote)"

tidy_one() {
    local log
    log=$tmp/tidy.$(basename "$1").log
    # -Wno-unknown-warning-option: the database may come from a gcc build, whose
    # gcc-only -W flags clang would otherwise report (as errors, with WarningsAsErrors).
    "$CLANG_TIDY" --quiet --use-color=false --config-file="$root/.clang-tidy" \
        --extra-arg=-Wno-unknown-warning-option "${db[@]}" "$1" "${flags[@]}" \
        >"$log" 2>&1
    echo $? >"$log.rc"
}
running=0
for f in "${sources[@]}"; do
    tidy_one "$f" &
    if ((++running >= JOBS)); then
        wait -n
        ((running--))
    fi
done
wait

cat "$tmp"/tidy.*.log >"$tmp/tidy.all"
[[ ${VERBOSE:-0} == 1 ]] && cat "$tmp/tidy.all"
normalize <"$tmp/tidy.all" >"$tmp/tidy.found"
tidy_n=$(wc -l <"$tmp/tidy.found")
cat "$tmp/tidy.found"
for rc in "$tmp"/tidy.*.log.rc; do
    log=${rc%.rc}
    if [[ $(cat "$rc") != 0 ]] && ! normalize <"$log" | grep -q .; then
        echo "static_analysis: clang-tidy failed on ${log#"$tmp"/tidy.} (exit $(cat "$rc")):" >&2
        cat "$log" >&2
        status=2
    fi
done

# ---- summary ------------------------------------------------------------------------
echo "== summary"
if ((cppcheck_n + tidy_n > 0)); then
    cat "$tmp/cppcheck.found" "$tmp/tidy.found" | sed -n 's/.*\[\([^]]*\)\]$/\1/p' |
        sort | uniq -c | sort -rn
fi
echo "cppcheck: $cppcheck_n finding(s); clang-tidy: $tidy_n finding(s)"
if ((status == 0 && cppcheck_n + tidy_n > 0)); then status=1; fi
if ((status == 0)); then echo "static analysis: clean"; else echo "static analysis: FAILED"; fi
exit "$status"
