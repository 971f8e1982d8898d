#!/bin/sh
# Regenerates benches/layout/daemon.ld: the list of the functions the daemon runs,
# which build.rs has the linker put first and together in static musl
# builds (see "Daemon RSS and the binary's layout" in benches/README.md).
#
# It builds the static musl binary with symbols (in target/layout), runs its
# daemon under callgrind through a typical session (300 units: start, list,
# status, a crash and its restart, restart, stop, start, reload, why, kill)
# and writes one section pattern per function that ran. Needs valgrind and
# python3. Run it after changes that move much code between functions (a new
# dependency, another opt-level); a stale list costs memory, not correctness.
set -eu
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "layout.sh: needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
T=x86_64-unknown-linux-musl
CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR=target/layout \
    cargo build --release --target $T
BIN=$PWD/target/layout/$T/release/diakonos
# The client is a copy, so the daemon's own pages are all the profile sees.
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cp "$BIN" "$W/client"
mkdir -p "$W/units"
i=1
while [ $i -le 300 ]; do
    printf '[unit]\nStartLimitBurst = 0\n\n[service]\nExecStart = "sleep 100000"\nRestart = "always"\nRestartSec = 0\n' >"$W/units/u$i.service"
    i=$((i + 1))
done
env -u DIAKONOS_HOME valgrind --tool=callgrind --demangle=no --callgrind-out-file="$W/cg.out" \
    "$BIN" --home "$W/home" --service-dir "$W/units" daemon >/dev/null 2>"$W/valgrind.log" &
DAEMON=$!
n=0
until [ -S "$W/home/diakonos.sock" ]; do
    n=$((n + 1))
    [ $n -lt 3000 ] || { echo "layout.sh: the daemon did not start" >&2; kill $DAEMON; exit 1; }
    sleep 0.01
done
C="$W/client --home $W/home"
$C start $(seq -f 'u%g' 1 300) >/dev/null
$C list >/dev/null
$C list --json >/dev/null
$C status u1 >/dev/null
PID=$($C list --json | python3 -c 'import json,sys; print([u["pid"] for u in json.load(sys.stdin) if u["name"]=="u3"][0])')
kill -9 "$PID"
n=0
until $C list --json | python3 -c 'import json,sys; sys.exit(0 if [u for u in json.load(sys.stdin) if u["name"]=="u3" and u["state"]=="running" and u["pid"]!='"$PID"'] else 1)'; do
    n=$((n + 1))
    [ $n -lt 500 ] || break
    sleep 0.02
done
$C restart u1 >/dev/null
$C stop u2 >/dev/null
$C start u2 >/dev/null
$C reload >/dev/null 2>&1 || true
$C daemon-status >/dev/null 2>&1 || true
$C why u2 >/dev/null 2>&1 || true
$C kill >/dev/null 2>&1 || true
wait $DAEMON || true
python3 - "$W/cg.out" benches/layout/daemon.ld <<'PY'
import re, sys
names = set()
for line in open(sys.argv[1]):
    m = re.match(r"c?fn=\(\d+\) (\S+)", line)
    if m:
        names.add(re.sub(r"'\d+$", "", m.group(1)))
pats = set()
for n in names:
    if n.startswith(("0x", "OUTLINED_FUNCTION_")) or not re.fullmatch(r"[A-Za-z0-9_.$]+", n):
        continue
    # The hashes change with the toolchain and the build settings.
    n = re.sub(r"17h[0-9a-f]{16}E$", "17h*", n)
    n = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", n)
    # So do the numbers LTO appends to local copies (`push.685`).
    n = re.sub(r"\.\d+$", "*", n)
    pats.add(n)
out = ["""/* The code the daemon runs, first and together (see build.rs). Made by
   benches/layout.sh from a callgrind run of the daemon (start, list,
   status, a crash and restart, stop, reload); each line matches one
   function's section, whatever its hash. musl's libc.a has no function
   sections: all of its code goes here, and so do all the machine
   outliner's small functions (53 KiB; their numbers change per build).
   So do `_start` (crt1.o) and `.init`/`.fini`, which every process runs:
   left at the two ends of `.text`, each made 64 KiB of it resident. */
SECTIONS
{
  .init : { KEEP(*(.init)) }
  .fini : { KEEP(*(.fini)) }
  .text.daemon : {
    *crt1.o(.text .text.*)
    *libc.a:*(.text .text.*)
    *(.text.OUTLINED_FUNCTION_*)"""]
for p in sorted(pats):
    out.append("    *(.text.%s .text.unlikely.%s)" % (p, p))
out.append("  }\n}\nINSERT BEFORE .text;\n")
open(sys.argv[2], "w").write("\n".join(out))
print("layout.sh: %d functions -> %s" % (len(pats), sys.argv[2]))
PY
