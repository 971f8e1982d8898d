//! Per-command help: `diakonos help COMMAND` and `diakonos COMMAND --help`.
//! One row per command (usage, what it does, its options, an example); the
//! completion scripts read the same table, and a test checks every command
//! of the parser has a row.

/// One command's help.
pub struct CommandHelp {
    pub name: &'static str,
    /// The arguments after the name.
    pub usage: &'static str,
    pub about: &'static str,
    /// Options of this command: (flag, meaning).
    pub options: &'static [(&'static str, &'static str)],
    pub example: &'static str,
    /// What the arguments are, for completions: `units`, `files`, or a
    /// fixed list of words separated by spaces.
    pub args: &'static str,
}

const JSON: (&str, &str) = ("--json", "one JSON document on stdout");

pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp { name: "list", usage: "[--json] [--wide]", about: "Every unit of the service directory: name, state (and health), pid, uptime, restarts, description or status text.", options: &[JSON, ("--wide", "add CPU% and MEM (RSS of the main process) columns")], example: "diakonos list --wide", args: "" },
    CommandHelp { name: "start", usage: "NAME... | --all", about: "Starts the units and what they Require/Want, in dependency order; returns when all are up, or exits 1 with the reason at the first failed attempt (the restart policy goes on).", options: &[("--all", "every unit of the service directory")], example: "diakonos start web worker", args: "units" },
    CommandHelp { name: "stop", usage: "NAME... | --all", about: "Stops the units that Require it first, then the unit: ExecStop, KillSignal to its process group, SIGKILL after TimeoutStopSec.", options: &[("--all", "every unit but those with Protected = true")], example: "diakonos stop web", args: "units" },
    CommandHelp { name: "restart", usage: "NAME... | --all", about: "Stop, then start; resets restart counters and the start limit.", options: &[("--all", "every unit but those with Protected = true")], example: "diakonos restart web", args: "units" },
    CommandHelp { name: "status", usage: "NAME [--json]", about: "State, pid, uptime, restarts, last exit, failure reason, unit path, dependencies and the last log lines of one unit.", options: &[JSON], example: "diakonos status web", args: "units" },
    CommandHelp { name: "logs", usage: "[NAME] [-n N] [-f]", about: "The last N lines of a service's output, also those written while no daemon ran; without NAME, every unit's lines prefixed `NAME | `.", options: &[("-n, --lines N", "how many lines (default 20)"), ("-f, --follow", "keep printing lines as they arrive")], example: "diakonos logs web -n 50 -f", args: "units" },
    CommandHelp { name: "reload", usage: "", about: "Re-reads the service directory: new units appear, removed ones stop, changed running ones restart; prints what changed.", options: &[], example: "diakonos reload", args: "" },
    CommandHelp { name: "verify", usage: "[NAME...]", about: "Checks unit files without a daemon: syntax, values, the dependency graph and what start would fail on here; exit 1 on any error.", options: &[], example: "diakonos verify --service-dir ./services", args: "units" },
    CommandHelp { name: "enable", usage: "NAME...", about: "Starts these units whenever a daemon starts (an @reboot crontab line, a container).", options: &[], example: "diakonos enable web", args: "units" },
    CommandHelp { name: "disable", usage: "NAME...", about: "Undoes enable.", options: &[], example: "diakonos disable web", args: "units" },
    CommandHelp { name: "daemon-status", usage: "[--json]", about: "The daemon's pid, version, uptime, home, service directory, units by state and memory; \"not running\" and exit 3 without a daemon.", options: &[JSON], example: "diakonos daemon-status --json", args: "" },
    CommandHelp { name: "kill", usage: "", about: "Stops every service in reverse dependency order, then the daemon.", options: &[], example: "diakonos kill", args: "" },
    CommandHelp { name: "daemon-upgrade", usage: "", about: "Replaces the running daemon with one of this binary; every service keeps running.", options: &[], example: "diakonos daemon-upgrade", args: "" },
    CommandHelp { name: "daemon", usage: "[--detach] [--metrics-file PATH] [--init [NAME...] [--exit-with UNIT] [--exit-when all-done|never] [--file-logs]]", about: "Runs the daemon in the foreground (crontab @reboot lines, containers).", options: &[("--detach", "run it in the background and return"), ("--metrics-file PATH", "keep PATH current with `metrics` (node_exporter's textfile collector)"), ("--init", "container entrypoint (implied as PID 1): start NAME... and the enabled units, exit per policy"), ("--exit-with UNIT", "with --init: exit with that unit's code once it ended"), ("--exit-when all-done|never", "with --init: when to exit (default all-done)"), ("--file-logs", "with --init: services write HOME/logs/NAME.log, not the daemon's stdout/stderr")], example: "@reboot diakonos --service-dir /srv/services daemon", args: "" },
    CommandHelp { name: "run", usage: "[--name NAME] [--restart always|on-failure|no] [--env K=V]... [--cwd DIR] [--user U] [--requires X]... [--wants X]... [--enable] [--force] -- COMMAND [ARG...]", about: "Writes NAME.service for COMMAND into the service directory, loads and starts it, and prints the file's path (PM2's `pm2 start app.js --name api`, as a unit file you keep).", options: &[("--name NAME", "the unit's name (default: the program's base name)"), ("--restart POLICY", "always, on-failure or no"), ("--env K=V", "an Environment entry (repeatable)"), ("--cwd DIR", "WorkingDirectory (default: the current directory)"), ("--user U", "User"), ("--requires X", "a Requires entry (repeatable)"), ("--wants X", "a Wants entry (repeatable)"), ("--enable", "also start it whenever a daemon starts"), ("--force", "replace an existing unit of that name")], example: "diakonos run --name api -- node server.js --port 3000", args: "" },
    CommandHelp { name: "delete", usage: "NAME... [--purge-logs] [--force]", about: "Stops the units (what Requires them first), disables them and removes their unit files; logs are kept.", options: &[("--purge-logs", "also remove their logs"), ("--force", "accepted for scripts; units that Require them are stopped either way")], example: "diakonos delete api", args: "units" },
    CommandHelp { name: "startup", usage: "[--print]", about: "Installs what starts the daemon at boot: an @reboot crontab line, or a systemd unit / OpenRC script where those run.", options: &[("--print", "print it instead of installing it")], example: "diakonos --service-dir /srv/services startup --print", args: "" },
    CommandHelp { name: "why", usage: "NAME", about: "Why a unit is not up, one line per cause followed down to the root; exit 0 when it is up, 1 otherwise.", options: &[], example: "diakonos why worker", args: "units" },
    CommandHelp { name: "tree", usage: "[NAME] [--reverse]", about: "The dependency tree with each unit's state and the edge kinds.", options: &[("--reverse", "what depends on NAME instead")], example: "diakonos tree worker", args: "units" },
    CommandHelp { name: "graph", usage: "[NAME...] [--format mermaid|dot]", about: "The dependency graph from the unit files (with states when a daemon runs); never starts a daemon.", options: &[("--format FORMAT", "mermaid (default) or dot")], example: "diakonos graph --format dot | dot -Tsvg > units.svg", args: "units" },
    CommandHelp { name: "wait", usage: "NAME... [--for up|running|healthy|exited|inactive|failed] [--timeout SEC]", about: "Blocks until every unit is in that condition (default up); exit 1 on timeout or when one waited on for up fails.", options: &[("--for CONDITION", "what to wait for (default up)"), ("--timeout SEC", "give up after this long")], example: "diakonos wait database --timeout 30", args: "units" },
    CommandHelp { name: "stats", usage: "[NAME...] [--json] [--watch SEC]", about: "Per unit, its whole process group: processes, RSS of the main process and the group, CPU time and CPU%, threads, fds, uptime, restarts.", options: &[JSON, ("--watch SEC", "refresh every SEC seconds (q or Ctrl-C quits)")], example: "diakonos stats --watch 2", args: "units" },
    CommandHelp { name: "metrics", usage: "", about: "The units' state in the Prometheus text format.", options: &[], example: "diakonos metrics > /var/lib/node_exporter/textfile/diakonos.prom", args: "" },
    CommandHelp { name: "events", usage: "[NAME...] [--json]", about: "Stays connected and prints one line per state change (time, unit, from, to, reason, pid, exit).", options: &[("--json", "one JSON object per line (time, unit, from, to, reason, pid, last_exit)")], example: "diakonos events --json web", args: "units" },
    CommandHelp { name: "timers", usage: "[--json]", about: "The [timer] units: schedule, last run and result, next run, time left.", options: &[JSON], example: "diakonos timers", args: "" },
    CommandHelp { name: "import", usage: "systemd FILE... | pm2 FILE [--stdout] [--force]", about: "Turns systemd unit files or a PM2 ecosystem.config.json / `pm2 jlist` output into NAME.service files in the service directory; every key that has no equivalent is named on stderr with why.", options: &[("--stdout", "print the units instead of writing them"), ("--force", "overwrite existing unit files")], example: "diakonos import systemd /lib/systemd/system/nginx.service", args: "systemd pm2" },
    CommandHelp { name: "export", usage: "systemd NAME... [--dir DIR] [--force]", about: "Writes a systemd unit file for each unit (Requires/Wants/After, Restart, RestartSec, Environment, User, ...), to stdout or into DIR.", options: &[("--dir DIR", "write DIR/NAME.service files instead of printing"), ("--force", "overwrite existing files in DIR")], example: "diakonos export systemd web --dir /etc/systemd/system", args: "systemd" },
    CommandHelp { name: "completions", usage: "bash|zsh|fish", about: "Prints a completion script: commands, options, and unit names (the *.service files of the service directory).", options: &[], example: "diakonos completions bash > /etc/bash_completion.d/diakonos", args: "bash zsh fish" },
    CommandHelp { name: "help", usage: "[COMMAND]", about: "Help for every command, or for one.", options: &[], example: "diakonos help start", args: "commands" },
];

/// The help row of `name`.
pub fn find(name: &str) -> Option<&'static CommandHelp> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || (name == "ls" && c.name == "list"))
}

/// The text `help NAME` prints.
pub fn render(c: &CommandHelp) -> String {
    let mut out = format!(
        "diakonos {} - {}\n\nUsage: diakonos [OPTIONS] {} {}\n",
        c.name, c.about, c.name, c.usage
    );
    out.push_str("\nOptions:\n");
    for (flag, what) in c.options {
        out.push_str(&format!("  {flag:<18} {what}\n"));
    }
    out.push_str(
        "  --service-dir DIR  unit files (default: $DIAKONOS_SERVICE_DIR, else ./services)\n",
    );
    out.push_str(
        "  --home DIR         state, socket and logs (default: $DIAKONOS_HOME, else ~/.diakonos)\n",
    );
    out.push_str(&format!("\nExample:\n  {}\n", c.example));
    out
}
