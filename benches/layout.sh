#!/bin/sh
# Regenerates benches/layout/daemon.ld: the list of the functions the daemon runs,
# which build.rs has the linker put first and together in static musl
# builds (see "Daemon RSS and the binary's layout" in benches/README.md).
#
# It builds the static musl binary with symbols (in target/layout), runs its
# daemon under callgrind through a typical session (300 units: start, list,
# status, a crash and its restart, restart, stop, start, reload, why, kill)
# and writes one section pattern per function that ran: those of the
# start-up, `start` and `list` first, the rest of the session after them. Needs valgrind and
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
# Valgrind cannot run the daemon's usual spawn (a clone that shares memory
# without being a thread): the daemon vforks instead.
env -u DIAKONOS_HOME DIAKONOS_SPAWN_VFORK=1 valgrind --tool=callgrind --demangle=no --callgrind-out-file="$W/cg.out" \
    "$BIN" --home "$W/home" --service-dir "$W/units" daemon >/dev/null 2>"$W/valgrind.log" &
DAEMON=$!
# wait_for WHAT TEST...: polls TEST every 10 ms, for at most 30 s.
wait_for() {
    what=$1
    shift
    n=0
    until "$@"; do
        n=$((n + 1))
        [ $n -lt 3000 ] || { echo "layout.sh: $what" >&2; kill $DAEMON; exit 1; }
        sleep 0.01
    done
}
wait_for "the daemon did not start" test -S "$W/home/diakonos.sock"
C="$W/client --home $W/home"
$C start $(seq -f 'u%g' 1 300) >/dev/null
$C list >/dev/null
$C list --json >/dev/null
# What every daemon runs (start-up, a start, a list, the state written
# after it) is dumped apart: it goes first, the rest of the session after
# it, so a daemon that only starts and lists touches fewer pages.
wait_for "the daemon wrote no state" grep -qs '"u300"' "$W/home/state"
callgrind_control --dump=start $DAEMON >/dev/null 2>&1
wait_for "callgrind wrote no dump" test -s "$W/cg.out.1"
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
# The client's common commands, each under callgrind: its code goes first
# and what it shares with the daemon next to it, so a client process (a
# `list` is a whole process) touches few pages too.
i=0
for args in "-V" "list" "list --json" "status u1" "stop u2" "start u2" "restart u1" "logs u1" "why u1" "--help"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    env -u DIAKONOS_HOME valgrind --tool=callgrind --demangle=no --callgrind-out-file="$W/client.$i" \
        "$W/client" --home "$W/home" $args >/dev/null 2>&1 || true
done
$C kill >/dev/null 2>&1 || true
wait $DAEMON || true
nm "$BIN" >"$W/nm"
python3 - "$W/cg.out.1" "$W/cg.out" benches/layout/daemon.ld "$W/nm" "$W" <<'PY'
import glob, re, sys
# Identical functions are folded (--icf=all): the one kept may be listed
# under another of its names, so every name at a function's address goes in.
at, names_at = {}, {}
for line in open(sys.argv[4]):
    f = line.split()
    if len(f) == 3 and f[1] in "tT":
        at[f[2]] = f[0]
        names_at.setdefault(f[0], []).append(f[2])
def patterns(path):
    pats = set()
    seen = set()
    for line in open(path):
        m = re.match(r"c?fn=\(\d+\) (\S+)", line)
        if m:
            seen.add(re.sub(r"'\d+$", "", m.group(1)))
    for n in list(seen):
        seen.update(names_at.get(at.get(n), []))
    for n in seen:
        if n.startswith(("0x", "OUTLINED_FUNCTION_")) or not re.fullmatch(r"[A-Za-z0-9_.$]+", n):
            continue
        # The hashes change with the toolchain and the build settings.
        n = re.sub(r"17h[0-9a-f]{16}E$", "17h*", n)
        n = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", n)
        # So do the numbers LTO appends to local copies (`push.685`).
        n = re.sub(r"\.\d+$", "*", n)
        pats.add(n)
    return pats
# The child of a spawn (a vfork) runs these until its exec, in the daemon's
# memory; callgrind does not see them (the exec ends the child's profile).
first = patterns(sys.argv[1]) | {
    # All of spawn/child.rs: the child runs in the daemon's memory, so what
    # it touches (the gate, closing the daemon's descriptors) is the
    # daemon's resident code too.
    "_ZN8diakonos6daemon5spawn5child*",
    # A vforking daemon holds no child at a gate, so it never waits for a
    # client to go (drain.rs): the control socket's code is added whole,
    # and the timer queue's (its deadline is armed with `arm_if_idle`).
    "_ZN8diakonos6daemon7control*",
    "_ZN8diakonos6daemon6timers*",
    # Under valgrind the daemon vforks (DIAKONOS_SPAWN_VFORK), so an exec's
    # outcome is in before the next spawn: the exec pipes' driver, which a
    # daemon that clones runs whenever execs are under way, is added too.
    "_ZN8diakonos6daemon6driver5execs*",
    "_ZN8diakonos6daemon5spawn11PendingExec*",
    "_ZN4core3ptr*PendingExec*",
    "_ZN8diakonos6daemon10supervisor*exec_done*",
}
rest = patterns(sys.argv[2]) - first
client = set()
for path in sorted(glob.glob(sys.argv[5] + "/client.*")):
    client |= patterns(path)
out = ["""/* The code the daemon runs, first and together (see build.rs). Made by
   benches/layout.sh from a callgrind run of the daemon: first what it ran
   to start, start 300 units, list them and write its state, then what the
   rest of the session (status, a crash and restart, stop, reload) added;
   each line matches one function's section, whatever its hash, and every
   name of a folded (--icf) function is listed. The spawn child's
   functions are added by name (callgrind does not see the child).
   The daemon's first part ends with what the client shares with it,
   followed by what the client shares with the rest of the session and
   the client's own code, then the daemon's rest: a client process (each
   command is one) touches one run, and the daemon's first part keeps
   its place and size.
   musl's libc.a has no function sections: all of its code goes here,
   and so do all the machine outliner's small functions (53 KiB; their numbers change per build)
   and diakonos's memcpy and memmove (src/mem.rs).
   So do `_start` (crt1.o) and `.init`/`.fini`, which every process runs:
   left at the two ends of `.text`, each made 64 KiB of it resident. */
SECTIONS
{
  .init : { KEEP(*(.init)) }
  .fini : { KEEP(*(.fini)) }
  .text.daemon : {
    *crt1.o(.text .text.*)
    *libc.a:*(.text .text.*)
    *(.text.OUTLINED_FUNCTION_*)
    *(.text.diakonos_mem)"""]
line = "    *(.text.%s .text.unlikely.%s)"
for tier in (first - client, first & client, client & rest, client - first - rest, rest - client):
    out.extend(line % (p, p) for p in sorted(tier))
out.append("  }\n}\nINSERT BEFORE .text;\n")
open(sys.argv[3], "w").write("\n".join(out))
print("layout.sh: %d + %d functions, client %d -> %s" % (len(first), len(rest), len(client), sys.argv[3]))
PY
