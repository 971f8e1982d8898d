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
    CommandHelp { name: "list", usage: "[--json]", about: "Every unit of the service directory: name, state, pid, uptime, restarts, description.", options: &[JSON], example: "diakonos list", args: "" },
    CommandHelp { name: "start", usage: "NAME...", about: "Starts the units and what they Require/Want, in dependency order; returns when all are up, or exits 1 with the reason when one fails.", options: &[], example: "diakonos start web worker", args: "units" },
    CommandHelp { name: "stop", usage: "NAME...", about: "Stops the units that Require it first, then the unit: ExecStop, KillSignal to its process group, SIGKILL after TimeoutStopSec.", options: &[], example: "diakonos stop web", args: "units" },
    CommandHelp { name: "restart", usage: "NAME...", about: "Stop, then start; resets restart counters and the start limit.", options: &[], example: "diakonos restart web", args: "units" },
    CommandHelp { name: "status", usage: "NAME [--json]", about: "State, pid, uptime, restarts, last exit, failure reason, unit path, dependencies and the last log lines of one unit.", options: &[JSON], example: "diakonos status web", args: "units" },
    CommandHelp { name: "logs", usage: "NAME [-n N] [-f]", about: "The last N lines of a service's output, also those written while no daemon ran.", options: &[("-n, --lines N", "how many lines (default 20)"), ("-f, --follow", "keep printing lines as they arrive")], example: "diakonos logs web -n 50 -f", args: "units" },
    CommandHelp { name: "reload", usage: "", about: "Re-reads the service directory: new units appear, removed ones stop, changed running ones restart; prints what changed.", options: &[], example: "diakonos reload", args: "" },
    CommandHelp { name: "verify", usage: "[NAME...]", about: "Checks unit files without a daemon: syntax, values, the dependency graph and what start would fail on here; exit 1 on any error.", options: &[], example: "diakonos verify --service-dir ./services", args: "units" },
    CommandHelp { name: "enable", usage: "NAME...", about: "Starts these units whenever a daemon starts (an @reboot crontab line, a container).", options: &[], example: "diakonos enable web", args: "units" },
    CommandHelp { name: "disable", usage: "NAME...", about: "Undoes enable.", options: &[], example: "diakonos disable web", args: "units" },
    CommandHelp { name: "daemon-status", usage: "[--json]", about: "The daemon's pid, version, uptime, home, service directory, units by state and memory; \"not running\" and exit 3 without a daemon.", options: &[JSON], example: "diakonos daemon-status --json", args: "" },
    CommandHelp { name: "kill", usage: "", about: "Stops every service in reverse dependency order, then the daemon.", options: &[], example: "diakonos kill", args: "" },
    CommandHelp { name: "daemon-upgrade", usage: "", about: "Replaces the running daemon with one of this binary; every service keeps running.", options: &[], example: "diakonos daemon-upgrade", args: "" },
    CommandHelp { name: "daemon", usage: "[--detach]", about: "Runs the daemon in the foreground (crontab @reboot lines, containers).", options: &[("--detach", "run it in the background and return")], example: "@reboot diakonos --service-dir /srv/services daemon", args: "" },
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
