//! Operator insight (SPEC §12), figures: `stats`, `list --wide`, `metrics` and the metrics file.

use crate::util::{stdout, Background, Home, WAIT};
use std::process::Stdio;

/// The pids whose process group is `pgid`, from /proc.
fn group_members(pgid: i32) -> Vec<i32> {
    crate::util::all_pids()
        .into_iter()
        .filter(|&p| crate::util::Stat::of(p).is_some_and(|s| s.pgrp == pgid && s.state != 'Z'))
        .collect()
}

/// A field of /proc/PID/status, as its first number.
fn status_field(pid: i32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = &text[text.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// `busy`: a shell spinning in a loop with a `sleep` child in its group.
fn busy_unit(h: &Home) -> i32 {
    h.unit(
        "busy",
        "[service]\nExecStart = \"sh -c 'sleep 1000 & while :; do :; done'\"\n",
    );
    h.unit("idle", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "busy"]);
    let pid = h.pid("busy");
    // The child is `sleep` asleep, not the shell's fork before its exec
    // (whose RSS is the shell's and then changes).
    h.wait_until("the sleep child in busy's group, asleep", WAIT, || {
        let members = group_members(pid);
        members.len() == 2
            && members.iter().filter(|&&p| p != pid).all(|p| {
                std::fs::read_to_string(format!("/proc/{p}/wchan"))
                    .is_ok_and(|w| w.contains("nanosleep"))
            })
    });
    h.wait_until("busy to use some CPU", WAIT, || cpu_ticks(pid) >= 5);
    pid
}

#[test]
fn stats_measures_the_whole_group_and_a_busy_loop() {
    // Group-wide numbers checked against /proc; a real CPU% for a busy
    // loop; nulls for a unit that runs nothing.
    let h = Home::new("stats_measures_the_whole_group_and_a_busy_loop");
    let pid = busy_unit(&h);
    // RSS still grows while the shell faults pages in: /proc is read before
    // and after `stats`, and its figure must lie between (give or take).
    let group_rss = |members: &[i32]| -> u64 {
        members
            .iter()
            .map(|&p| status_field(p, "VmRSS:") * 1024)
            .sum()
    };
    let rss_before = status_field(pid, "VmRSS:") * 1024;
    let group_before = group_rss(&group_members(pid));
    let text = h.ok(&["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("stats --json is JSON");
    let rows = v.as_array().expect("an array");
    let busy = rows.iter().find(|r| r["name"] == "busy").expect("busy row");
    let idle = rows.iter().find(|r| r["name"] == "idle").expect("idle row");
    let members = group_members(pid);
    assert_eq!(busy["pid"], pid);
    assert_eq!(busy["processes"], members.len() as u64, "{busy}");
    let threads: u64 = members.iter().map(|&p| status_field(p, "Threads:")).sum();
    assert_eq!(busy["threads"], threads, "{busy}");
    let fds: u64 = members
        .iter()
        .map(|&p| crate::util::fds_of(p).len() as u64)
        .sum();
    assert_eq!(busy["fds"], fds, "{busy}");
    let near = |got: &serde_json::Value, before: u64, after: u64, what: &str| {
        let got = got.as_u64().unwrap_or_else(|| panic!("{what}: {busy}"));
        let (lo, hi) = (before.min(after), before.max(after));
        // `stats` reads /proc/PID/stat, whose RSS is the kernel's per-CPU
        // counters without their pending batches (up to 32 pages per CPU);
        // VmRSS in /proc/PID/status sums them exactly.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let slack = hi / 10 + 32 * 4096 * cpus + 64 * 1024;
        assert!(
            got + slack >= lo && got <= hi + slack,
            "{what}: {got} vs /proc {before} before and {after} after"
        );
    };
    near(
        &busy["rss_bytes"],
        rss_before,
        status_field(pid, "VmRSS:") * 1024,
        "rss_bytes",
    );
    near(
        &busy["group_rss_bytes"],
        group_before,
        group_rss(&members),
        "group_rss_bytes",
    );
    let cpu = busy["cpu_percent"].as_f64().expect("cpu_percent");
    assert!(cpu > 5.0, "a busy loop uses CPU: {cpu}%\n{busy}");
    assert!(
        busy["cpu_seconds"].as_f64().expect("cpu_seconds") > 0.0,
        "{busy}"
    );
    assert_eq!(busy["restarts"], 0);
    assert!(busy["uptime_secs"].is_u64(), "{busy}");
    for key in [
        "pid",
        "processes",
        "rss_bytes",
        "group_rss_bytes",
        "cpu_seconds",
        "cpu_percent",
        "threads",
        "fds",
        "uptime_secs",
    ] {
        assert!(idle[key].is_null(), "idle {key}: {idle}");
    }
    // One unit by name, human table.
    let table = h.ok(&["stats", "busy"]);
    assert!(table.starts_with("NAME "), "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");
    let err = h.fails(1, &["stats", "nosuch"]);
    assert!(err.contains("no unit named `nosuch`"), "{err}");
}

#[test]
fn metrics_carry_the_last_timer_trigger() {
    // diakonos_timer_last_trigger_seconds: absent before the timer fired,
    // the Unix time of its last start after; the parser takes it.
    let h = Home::new("metrics_carry_the_last_timer_trigger");
    h.unit(
        "tick",
        "[service]\nType = \"oneshot\"\nExecStart = \"true\"\n[timer]\nOnUnitActiveSec = 1\n",
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(!h
        .ok(&["metrics"])
        .contains("diakonos_timer_last_trigger_seconds{"));
    h.ok(&["enable", "tick"]);
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("diakonos_timer_last_trigger_seconds{unit=\"tick\"} "))
            .map(str::to_owned)
    };
    h.wait_until("the timer to fire", WAIT, || {
        line(&h.ok(&["metrics"])).is_some()
    });
    let text = h.ok(&["metrics"]);
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let at: u64 = line(&text)
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("a Unix time:\n{text}"));
    // `timers` rounds the time to the second: one either way.
    assert!(
        before <= at + 1 && at <= after + 1,
        "{before} <= {at} <= {after}"
    );
    let samples = prometheus_parse(&text, &h.root);
    assert!(
        samples
            .iter()
            .any(|s| s.starts_with("diakonos_timer_last_trigger_seconds{unit=tick} ")),
        "{samples:#?}"
    );
}

/// The `at` times (boot clock, ns) of the samples `stats` kept in the home.
fn kept_sample_times(h: &Home) -> Vec<u64> {
    std::fs::read_to_string(h.home.join("stats.samples"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("at ")?.parse().ok())
        .collect()
}

#[test]
fn a_second_stats_measures_from_the_sample_the_first_kept() {
    // SPEC §9 (stats over 100 units <= 10 ms): a one-shot `stats` keeps its
    // sample in the home; the next one measures CPU% from it (no second
    // look at /proc after a wait), and the figure is still a real one.
    let h = Home::new("a_second_stats_measures_from_the_sample_the_first_kept");
    let pid = busy_unit(&h);
    h.ok(&["stats", "--json"]);
    let first = kept_sample_times(&h);
    assert_eq!(first.len(), 2, "two samples kept after a fresh measurement");
    assert!(first[0] < first[1], "{first:?}");
    let ticks_before = cpu_ticks(pid);
    let text = h.ok(&["stats", "--json"]);
    let ticks_after = cpu_ticks(pid);
    let second = kept_sample_times(&h);
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(
        first.contains(&second[0]),
        "measured from a kept sample ({first:?}), not a fresh one ({second:?})"
    );
    assert!(second[1] >= first[1], "{first:?} then {second:?}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("stats --json is JSON");
    let busy = v
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "busy"))
        .expect("busy row")
        .clone();
    let cpu = busy["cpu_percent"].as_f64().expect("cpu_percent");
    assert!(cpu > 5.0, "a busy loop uses CPU: {cpu}%\n{busy}");
    assert!(
        cpu <= 100.0 * 2.0 + 10.0,
        "{cpu}%: more than the machine has"
    );
    // The CPU time it reports is the group's, as /proc counts it then.
    let secs = busy["cpu_seconds"].as_f64().expect("cpu_seconds");
    assert!(
        secs + 0.05 >= ticks_before as f64 / 100.0 && secs <= ticks_after as f64 / 100.0 + 0.5,
        "{secs} s vs /proc {ticks_before}..{ticks_after} ticks"
    );
    // A damaged file costs a fresh measurement, not an error.
    std::fs::write(h.home.join("stats.samples"), "garbage").expect("write");
    h.ok(&["stats", "busy"]);
    assert_eq!(kept_sample_times(&h).len(), 2);
}

#[test]
fn list_wide_adds_cpu_and_memory() {
    // `list --wide`: CPU% and MEM columns, numbers for a running unit and
    // `-` for one that runs nothing.
    let h = Home::new("list_wide_adds_cpu_and_memory");
    busy_unit(&h);
    let out = h.ok(&["list", "--wide"]);
    let header = out.lines().next().unwrap_or_default();
    assert!(header.contains("CPU%") && header.contains("MEM"), "{out}");
    let busy = out
        .lines()
        .find(|l| l.starts_with("busy "))
        .expect("busy row");
    let cols: Vec<&str> = busy.split_whitespace().collect();
    let cpu: f64 = cols[5].parse().unwrap_or_else(|_| panic!("CPU% of {busy}"));
    assert!(cpu > 5.0, "{out}");
    assert!(busy.contains("KiB") || busy.contains("MiB"), "{out}");
    let idle = out
        .lines()
        .find(|l| l.starts_with("idle "))
        .expect("idle row");
    assert_eq!(idle.split_whitespace().nth(5), Some("-"), "{out}");
    // Plain `list` keeps its columns.
    assert!(!h.ok(&["list"]).contains("CPU%"));
}

/// A home with `web` running and `stats --watch 0.2` writing into
/// `watch.out` (its path), killed by pid when dropped.
fn watching_web(test: &str) -> (Home, std::path::PathBuf, Background) {
    let h = Home::new(test);
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let out_path = h.root.join("watch.out");
    let file = std::fs::File::create(&out_path).expect("create watch.out");
    let mut cmd = h.command(&["stats", "--watch", "0.2"]);
    cmd.stdout(file).stderr(Stdio::null());
    let watch = Background(cmd.spawn().expect("spawn stats --watch"));
    (h, out_path, watch)
}

#[test]
fn stats_watch_prints_plain_tables_when_not_on_a_terminal() {
    // Not a terminal: each refresh prints the table again (no escapes).
    let (h, out_path, _watch) =
        watching_web("stats_watch_prints_plain_tables_when_not_on_a_terminal");
    h.wait_until("two refreshes", WAIT, || {
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        text.lines().filter(|l| l.starts_with("web ")).count() >= 2
    });
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(!text.contains('\x1b'), "no escapes off a terminal:\n{text}");
}

#[test]
fn stats_watch_ends_when_the_daemon_is_killed_and_starts_no_other() {
    // `stats --watch` running when `kill` stops the daemon: it ends (exit 3, not running) instead of starting a new daemon at its next look.
    let (h, out_path, mut watch) = watching_web("stats_watch_ends_at_kill");
    h.wait_until("a first table", WAIT, || {
        std::fs::read_to_string(&out_path).is_ok_and(|t| t.lines().any(|l| l.starts_with("web ")))
    });
    h.ok(&["kill"]);
    let mut status = None;
    h.wait_until("stats --watch to end", WAIT, || {
        status = watch.0.try_wait().expect("try_wait");
        status.is_some()
    });
    // 3: the daemon is not running (SPEC §5).
    assert_eq!(status.and_then(|s| s.code()), Some(3));
    assert!(
        h.daemons().is_empty(),
        "a daemon was started: {:?}",
        h.daemons()
    );
}

/// Parses Prometheus text with the `prometheus_client` parser (Debian's
/// python3-prometheus-client, installed by .ci/run); returns one line per
/// sample: `name{labels} value`, labels sorted.
pub(crate) fn prometheus_parse(text: &str, dir: &std::path::Path) -> Vec<String> {
    let file = dir.join("metrics.prom");
    std::fs::write(&file, text).expect("write metrics.prom");
    let script = [
        "import sys",
        "from prometheus_client.parser import text_string_to_metric_families as parse",
        "for fam in parse(open(sys.argv[1]).read()):",
        "    for s in fam.samples:",
        "        labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))",
        "        print('%s{%s} %g' % (s.name, labels, s.value))",
    ]
    .join("\n");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        out.status.success(),
        "the Prometheus parser refused it (python3-prometheus-client is installed by .ci/run):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn metrics_prints_the_series_in_prometheus_text() {
    // `metrics`: HELP and TYPE lines, one state series per state, restarts,
    // the last exit code and the daemon's version; a real parser takes it.
    let h = Home::new("metrics_prints_the_series_in_prometheus_text");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.unit(
        "job",
        "[service]\nExecStart = \"sh -c 'exit 4'\"\nRestart = \"no\"\n",
    );
    h.ok(&["start", "web"]);
    let _ = h.cmd(&["start", "job"]);
    h.wait_state("job", "failed");
    let text = h.ok(&["metrics"]);
    for name in [
        "diakonos_unit_state",
        "diakonos_service_restart_total",
        "diakonos_unit_last_exit_code",
        "diakonos_unit_health",
        "diakonos_timer_last_trigger_seconds",
        "diakonos_daemon_info",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
    }
    let samples = prometheus_parse(&text, &h.root);
    for want in [
        "diakonos_unit_state{state=running,unit=web} 1",
        "diakonos_unit_state{state=inactive,unit=web} 0",
        "diakonos_unit_state{state=failed,unit=job} 1",
        "diakonos_unit_last_exit_code{unit=job} 4",
        "diakonos_service_restart_total{unit=web} 0",
        &format!(
            "diakonos_daemon_info{{version={}}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(
            samples.iter().any(|s| s == want),
            "{want} missing:\n{samples:#?}"
        );
    }
}

#[test]
fn metrics_file_follows_start_and_stop() {
    // An auto-started daemon with DIAKONOS_METRICS_FILE keeps the file
    // current: it shows web running after `start`, inactive after `stop`,
    // and parses each time.
    let h = Home::new("metrics_file_follows_start_and_stop");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let path = h.root.join("diakonos.prom");
    let mut start = h.command(&["start", "web"]);
    start.env("DIAKONOS_METRICS_FILE", &path);
    let out = h.run(start);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    let running = "diakonos_unit_state{unit=\"web\",state=\"running\"} 1\n";
    h.wait_until("the metrics file to show web running", WAIT, || {
        read().contains(running)
    });
    assert!(prometheus_parse(&read(), &h.root)
        .iter()
        .any(|s| s == "diakonos_unit_state{state=running,unit=web} 1"));
    h.ok(&["stop", "web"]);
    let inactive = "diakonos_unit_state{unit=\"web\",state=\"inactive\"} 1\n";
    h.wait_until("the metrics file to show web inactive", WAIT, || {
        read().contains(inactive)
    });
    prometheus_parse(&read(), &h.root);
    // No temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(&h.root)
        .expect("read the test root")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_idle_daemon_with_a_metrics_file_does_not_wake_up() {
    // Once a start has settled (state synced, metrics written), the daemon
    // makes no context switch for a while: nothing polls the file.
    let h = Home::new("an_idle_daemon_with_a_metrics_file_does_not_wake_up");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    let path = h.root.join("diakonos.prom");
    let mut start = h.command(&["start", "web"]);
    start.env("DIAKONOS_METRICS_FILE", &path);
    assert!(h.run(start).status.success());
    let daemon = h.daemon_pid().expect("a daemon runs");
    let switches = || {
        status_field(daemon, "voluntary_ctxt_switches:")
            + status_field(daemon, "nonvoluntary_ctxt_switches:")
    };
    let modified = || std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    // Quiet for two seconds in a row, within a generous deadline (the state
    // file's sync comes a second after the last change).
    h.wait_until("the daemon to stay asleep for 2s", WAIT * 3, || {
        let (c0, m0) = (switches(), modified());
        std::thread::sleep(std::time::Duration::from_secs(2));
        m0.is_some() && switches() == c0 && modified() == m0
    });
}

#[test]
fn list_wide_shows_no_cpu_for_a_unit_that_no_longer_runs() {
    // A stopped unit has no processes: CPU% is `-` (null in JSON), never a made-up 0.
    let h = Home::new("list_wide_shows_no_cpu_for_a_unit_that_no_longer_runs");
    h.unit("a", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "a"]);
    h.ok(&["stop", "a"]);
    let v: serde_json::Value =
        serde_json::from_str(&h.ok(&["list", "--wide", "--json"])).expect("JSON");
    assert!(v[0]["cpu_percent"].is_null(), "{v}");
    let table = h.ok(&["list", "--wide"]);
    let row = table.lines().nth(1).expect("a row");
    assert!(!row.contains("0.0"), "{table}");
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_refused_at_once() {
    // `daemon --detach --metrics-file` into a missing directory: exit 1 naming it, and no daemon started.
    let h = Home::new("a_metrics_file_that_cannot_be_written");
    let missing = h.root.join("no-such-dir").join("diakonos.prom");
    let err = h.fails(
        1,
        &[
            "daemon",
            "--detach",
            "--metrics-file",
            missing.to_str().expect("utf-8"),
        ],
    );
    assert!(
        err.contains("no-such-dir") && err.contains("metrics file"),
        "{err}"
    );
    assert!(h.daemon_pid().is_none_or(|p| !crate::util::alive(p)));
}

#[test]
fn stats_counts_the_processes_that_left_the_group_with_setsid() {
    // As each postgres backend does: a service's child in a session of its own is still the service's (its processes and memory), an unrelated process is not.
    let h = Home::new("stats_counts_the_processes_that_left_the_group");
    h.unit(
        "pg",
        &format!(
            "[service]\nExecStart = {}\n",
            crate::util::sh("setsid sleep 1000 & echo $! > child; exec sleep 1000")
        ),
    );
    h.ok(&["start", "pg"]);
    let child = h.written_pid("child");
    h.wait_until("the child in a session of its own", WAIT, || {
        crate::util::Stat::of(child).is_some_and(|s| s.session == child)
    });
    let v: serde_json::Value =
        serde_json::from_str(&h.ok(&["stats", "--json", "pg"])).expect("stats --json");
    assert_eq!(v[0]["processes"], 2, "{v}");
}

#[test]
fn stats_of_a_name_given_twice_is_one_row() {
    // `stats web web` shows web once, as `start web web` starts it once.
    let h = Home::new("stats_of_a_name_given_twice_is_one_row");
    h.unit("web", "[service]\nExecStart = \"sleep 1000\"\n");
    h.ok(&["start", "web"]);
    let out = h.ok(&["stats", "web", "web", "web"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("web ")).count(),
        1,
        "{out}"
    );
}
