//! `completions bash|zsh|fish`: completion scripts made from the help table
//! ([`super::help::COMMANDS`]), so a new command completes once it has help.
//! Unit names come from `diakonos completions units`, which lists the
//! `*.service` files of the service directory (the running daemon's, asked
//! without starting one, else `--service-dir` / `$DIAKONOS_SERVICE_DIR` /
//! `./services`): completing never starts a daemon.

use super::help::COMMANDS;

const GLOBAL: &[&str] = &[
    "--service-dir",
    "--home",
    "--no-color",
    "--json",
    "--help",
    "--version",
];

fn command_words() -> String {
    COMMANDS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The options that take one of a few words, and those words.
const VALUES: &[(&str, &str)] = &[
    ("--for", "up running healthy exited inactive failed"),
    ("--format", "mermaid dot"),
    ("--restart", "always on-failure no"),
    ("--exit-when", "all-done never"),
];

fn options_of(name: &str) -> String {
    let mut words: Vec<&str> = GLOBAL.to_vec();
    if let Some(c) = super::help::find(name) {
        for (flag, _) in c.options {
            for part in flag.split(", ") {
                words.push(part.split(' ').next().unwrap_or(part));
            }
        }
    }
    words.join(" ")
}

pub fn bash() -> String {
    let mut cases = String::new();
    for c in COMMANDS {
        let args = match c.args {
            // The units of the --home/--service-dir given on the line.
            "units" => "$(diakonos \"${dirs[@]}\" completions units 2>/dev/null)".to_string(),
            "commands" => command_words(),
            words => words.to_string(),
        };
        cases.push_str(&format!(
            "        {}) words=\"{} {}\" ;;\n",
            c.name,
            args,
            options_of(c.name)
        ));
    }
    format!(
        r#"# bash completion for diakonos (diakonos completions bash)
_diakonos() {{
    local cur prev cmd words i dirs=()
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
        --service-dir|--home|--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
{values}    esac
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            # `--service-dir=DIR` comes as three words (`=` breaks words).
            --service-dir|--home)
                if [ "${{COMP_WORDS[i+1]}}" = "=" ]; then
                    dirs+=("${{COMP_WORDS[i]}}" "${{COMP_WORDS[i+2]}}"); ((i += 2))
                else
                    dirs+=("${{COMP_WORDS[i]}}" "${{COMP_WORDS[i+1]}}"); ((i++))
                fi ;;
            --dir|-n) ((i++)) ;;
            -*) ;;
            *) cmd="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "{commands} {global}" -- "$cur"))
        return
    fi
    case "$cmd" in
{cases}        *) words="{global}" ;;
    esac
    if [ "$cmd" = export ] && [ "$COMP_CWORD" -gt $((i + 1)) ]; then
        words="$(diakonos "${{dirs[@]}}" completions units 2>/dev/null) --dir --force"
    fi
    if [ "$cmd" = import ] && [ "$COMP_CWORD" -gt $((i + 1)) ]; then
        COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "--stdout --force" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -F _diakonos diakonos
"#,
        commands = command_words(),
        global = GLOBAL.join(" "),
        values = VALUES
            .iter()
            .map(|(opt, words)| format!(
                "        {opt}) COMPREPLY=($(compgen -W \"{words}\" -- \"$cur\")); return ;;\n"
            ))
            .collect::<String>(),
    )
}

pub fn zsh() -> String {
    let mut described = String::new();
    let mut cases = String::new();
    for c in COMMANDS {
        let about = c
            .about
            .split(". ")
            .next()
            .unwrap_or(c.about)
            .replace('\'', "'\\''")
            .replace(':', "\\:");
        described.push_str(&format!("        '{}:{}'\n", c.name, about));
        let args = match c.args {
            // The units of the --home/--service-dir given on the line.
            "units" => "_values 'unit' ${(f)\"$(__diakonos_units $line_words)\"}".to_string(),
            "commands" => "_describe 'command' cmds".to_string(),
            "" => String::new(),
            words if c.name == "import" => {
                format!("if (( CURRENT == 2 )); then _values 'from' {words}; else _files; fi")
            }
            words if c.name == "export" => format!(
                "if (( CURRENT == 2 )); then _values 'to' {words}; else _values 'unit' ${{(f)\"$(__diakonos_units $line_words)\"}}; fi"
            ),
            words => format!("_values 'word' {words}"),
        };
        cases.push_str(&format!(
            "        {}) {} ;;\n",
            c.name,
            if args.is_empty() {
                ":".to_string()
            } else {
                args
            }
        ));
    }
    let values: String = VALUES
        .iter()
        .map(|(opt, words)| format!("        '{opt}[one of]:value:({words})' \\\n"))
        .collect();
    format!(
        r#"#compdef diakonos
# zsh completion for diakonos (diakonos completions zsh)
# The unit names for the --service-dir / --home on the line (its words).
__diakonos_units() {{
    local -a w dirs
    local i
    w=("$@")
    for (( i = 1; i < $#w; i++ )); do
        case $w[i] in
            --service-dir|--home) dirs+=($w[i] $w[i+1]); (( i++ )) ;;
        esac
    done
    diakonos $dirs completions units 2>/dev/null
}}
_diakonos() {{
    local -a cmds line_words
    local context state state_descr line
    typeset -A opt_args
    line_words=("${{words[@]}}")
    cmds=(
{described}    )
    _arguments -C \
        '--service-dir[unit files]:directory:_files -/' \
        '--home[state, socket and logs]:directory:_files -/' \
        '--no-color[no colours]' \
        '--json[machine-readable output]' \
        '--force[overwrite existing files]' \
        '--stdout[print instead of writing]' \
        '--dir[directory to write into]:directory:_files -/' \
{values}        '(-n --lines)'{{-n,--lines}}'[how many lines]:lines:' \
        '(-f --follow)'{{-f,--follow}}'[follow]' \
        '(- *)'{{-h,--help}}'[help]' \
        '(- *)'{{-V,--version}}'[version]' \
        '1:command:->cmd' \
        '*::arg:->args'
    case $state in
        cmd) _describe 'command' cmds ;;
        args)
            case $words[1] in
{cases}            esac ;;
    esac
}}
# Autoloaded from $fpath: this first call completes too (else only the
# second Tab would). Sourced: register it.
if [ "$funcstack[1]" = "_diakonos" ]; then
    _diakonos "$@"
else
    compdef _diakonos diakonos
fi
"#
    )
}

pub fn fish() -> String {
    let mut out = String::from(
        "# fish completion for diakonos (diakonos completions fish)\n\
         # The unit names for the --service-dir / --home on the line.\n\
         function __diakonos_units\n\
         \x20   set -l w (commandline -opc)\n\
         \x20   set -l dirs\n\
         \x20   set -l i 1\n\
         \x20   while test $i -lt (count $w)\n\
         \x20       switch $w[$i]\n\
         \x20           case --service-dir --home\n\
         \x20               set dirs $dirs $w[$i] $w[(math $i + 1)]\n\
         \x20               set i (math $i + 1)\n\
         \x20       end\n\
         \x20       set i (math $i + 1)\n\
         \x20   end\n\
         \x20   diakonos $dirs completions units 2>/dev/null\n\
         end\n\
         complete -c diakonos -f\n\
         complete -c diakonos -l service-dir -r -a '(__fish_complete_directories)' -d 'unit files'\n\
         complete -c diakonos -l home -r -a '(__fish_complete_directories)' -d 'state, socket and logs'\n\
         complete -c diakonos -l no-color -d 'no colours'\n\
         complete -c diakonos -s h -l help -d help\n\
         complete -c diakonos -s V -l version -d version\n",
    );
    let all = command_words();
    for c in COMMANDS {
        let about = c
            .about
            .split(". ")
            .next()
            .unwrap_or(c.about)
            .replace('\'', "\\'");
        out.push_str(&format!(
            "complete -c diakonos -n 'not __fish_seen_subcommand_from {all}' -a {} -d '{about}'\n",
            c.name
        ));
        let cond = format!("__fish_seen_subcommand_from {}", c.name);
        match c.args {
            "units" => out.push_str(&format!(
                "complete -c diakonos -n '{cond}' -a '(__diakonos_units)'\n"
            )),
            "commands" => out.push_str(&format!("complete -c diakonos -n '{cond}' -a '{all}'\n")),
            "" => {}
            // `export systemd` is said once, then unit names come.
            words if c.name == "export" => out.push_str(&format!(
                "complete -c diakonos -n '{cond}; and not __fish_seen_subcommand_from {words}' -a '{words}'\n"
            )),
            words => out.push_str(&format!("complete -c diakonos -n '{cond}' -a '{words}'\n")),
        }
        if c.name == "import" {
            out.push_str(&format!("complete -c diakonos -n '{cond}' -F\n"));
        }
        if c.name == "export" {
            out.push_str(&format!(
                "complete -c diakonos -n '{cond}; and __fish_seen_subcommand_from systemd' -a '(__diakonos_units)'\n"
            ));
        }
        for (flag, what) in c.options {
            for part in flag.split(", ") {
                let word = part.split(' ').next().unwrap_or(part);
                let opt = match word.strip_prefix("--") {
                    Some(long) => format!("-l {long}"),
                    None => format!("-s {}", word.trim_start_matches('-')),
                };
                let takes = VALUES
                    .iter()
                    .find(|(o, _)| *o == word)
                    .map(|(_, words)| format!(" -xa '{words}'"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "complete -c diakonos -n '{cond}' {opt}{takes} -d '{}'\n",
                    what.replace('\'', "\\'")
                ));
            }
        }
    }
    out
}
