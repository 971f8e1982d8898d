//! Shape checks on the parsed document against the key table: sections,
//! keys and value types, each problem placed at its key or value, with
//! "did you mean" for near misses. What passes is handed to `build` as
//! [`Values`], keyed by the table's key names.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diag::{esc, suggest, Ctx};
use super::schema::{self, number_fits, Key, Kind, Section, SYSTEMD_ONLY};

/// The accepted entries of a document, each of the type its key's row in
/// the table asks for, and what `build` must know about `[service]`.
#[derive(Debug, Default)]
pub(super) struct Values<'a> {
    pub(super) entries: BTreeMap<&'static str, &'a Spanned<DeValue<'a>>>,
    /// Whether one `[service]` table was accepted.
    pub(super) has_service: bool,
    /// Where `[service]` is, when it is a table.
    pub(super) service_span: Option<Range<usize>>,
    /// Whether `[service]` has an ExecStart key at all (even a bad one).
    pub(super) has_exec_start: bool,
    /// Where `[health]` is, when it is a table.
    pub(super) health_span: Option<Range<usize>>,
    /// Whether an error already pointed at a misspelled, misplaced or
    /// repeated [service] (then "missing [service]" would only repeat it).
    pub(super) service_reported: bool,
}

pub(super) fn check_shape<'a>(cx: &mut Ctx<'_>, root: &'a DeTable<'a>) -> Values<'a> {
    let mut values = Values::default();
    let mut seen: Vec<(&str, Section)> = Vec::new();
    let section_names: Vec<&str> = Section::ALL.iter().map(|s| s.name()).collect();
    // In file order, so a repeated section is reported where it repeats.
    let mut entries: Vec<_> = root.iter().collect();
    crate::order::by_num(&mut entries, |(key, _)| key.span().start as u64);
    for (key, value) in entries {
        let header: &str = key.get_ref();
        let Some(section) = Section::from_header(header) else {
            if value.get_ref().is_table() {
                values.service_reported |= suggest(header, &section_names) == Some("service");
                unknown_section(cx, header, key.span());
            } else {
                let home = schema::find(header).map(|k| k.section);
                values.service_reported |= home == Some(Section::Service);
                let home = home.map(|s| format!("put it under [{}]", s.name()));
                cx.at(
                    key.span(),
                    format!(
                        "key `{}` is outside any section; expected it under one of {}",
                        esc(header),
                        section_list()
                    ),
                    home,
                );
            }
            continue;
        };
        let is_service = section == Section::Service;
        let table = match value.get_ref() {
            DeValue::Table(table) => table,
            DeValue::Array(array) if array.iter().all(|v| v.get_ref().is_table()) => {
                values.service_reported |= is_service;
                cx.at(
                    key.span(),
                    format!("[[{header}]] makes a list of sections; expected one [{header}]"),
                    Some(format!("write [{header}] with single brackets")),
                );
                continue;
            }
            other => {
                values.service_reported |= is_service;
                cx.at(
                    key.span(),
                    format!(
                        "`{header}` must be a section ([{header}]), not {}",
                        article(other.type_str())
                    ),
                    None,
                );
                continue;
            }
        };
        if let Some((first, _)) = seen.iter().find(|(_, s)| *s == section) {
            values.service_reported |= is_service;
            cx.at(
                key.span(),
                format!(
                    "section [{}] repeats [{first}]; expected each section once",
                    esc(header)
                ),
                Some(format!(
                    "merge the two into one [{first}] (the case of the name does not matter)"
                )),
            );
            continue;
        }
        seen.push((header, section));
        if is_service {
            values.has_service = true;
            values.service_span = Some(key.span());
            values.has_exec_start = table.get("ExecStart").is_some();
        }
        if section == Section::Health {
            values.health_span = Some(key.span());
        }
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let Some(row) = schema::find(name).filter(|k| k.section == section) else {
                unknown_key(cx, header, section, name, key.span());
                continue;
            };
            if check_value(cx, header, row, value) {
                values.entries.insert(row.name, value);
            }
        }
    }
    values
}

/// Whether `value` has the type `row` asks for; if not, says so at the value.
fn check_value(cx: &mut Ctx<'_>, header: &str, row: &Key, value: &Spanned<DeValue<'_>>) -> bool {
    let (name, kind) = (row.name, row.kind);
    // Only a value that is wrong needs its label.
    let label = || format!("`{name}` in [{header}]");
    if !kind.accepts(value.get_ref()) {
        cx.at(
            value.span(),
            format!(
                "{} must be {}, not {}",
                label(),
                kind.expected(),
                article(value.get_ref().type_str())
            ),
            (kind == Kind::StrList && value.get_ref().is_str())
                .then(|| "write a one-element array: [\"...\"]".to_string()),
        );
        return false;
    }
    if !number_fits(value.get_ref()) {
        let literal = cx.literal(value.span(), "a number out of range");
        let message = format!("`{name}` is {literal}; expected {}", kind.range());
        cx.at(value.span(), message, None);
        return false;
    }
    let mut ok = true;
    if let (Kind::StrList | Kind::StrOrList, Some(items)) = (kind, value.get_ref().as_array()) {
        for (i, item) in items.iter().enumerate() {
            if !item.get_ref().is_str() {
                ok = false;
                cx.at(
                    item.span(),
                    format!(
                        "{} must be an array of strings; element {} is {}",
                        label(),
                        i + 1,
                        article(item.get_ref().type_str())
                    ),
                    None,
                );
            }
        }
    }
    ok
}

fn unknown_section(cx: &mut Ctx<'_>, section: &str, span: Range<usize>) {
    let names: Vec<&str> = Section::ALL.iter().map(|s| s.name()).collect();
    let hint = if section.eq_ignore_ascii_case("install") {
        Some("diakonos has no [install] section; use `diakonos enable NAME`".to_string())
    } else {
        suggest(section, &names).map(|s| format!("did you mean [{s}]?"))
    };
    cx.at(
        span,
        format!(
            "unknown section [{}]; expected one of {}",
            esc(section),
            section_list()
        ),
        hint,
    );
}

/// `[unit], [service], [socket], [timer], [health]`: every section there is.
fn section_list() -> String {
    let names: Vec<String> = Section::ALL
        .iter()
        .map(|s| format!("[{}]", s.name()))
        .collect();
    names.join(", ")
}

fn unknown_key(cx: &mut Ctx<'_>, header: &str, section: Section, name: &str, span: Range<usize>) {
    let header = esc(header);
    let names: Vec<&str> = schema::keys_of(section).map(|k| k.name).collect();
    let elsewhere = schema::find(name)
        .filter(|k| k.section != section)
        .map(|k| format!("`{name}` belongs in [{}]", k.section.name()));
    // A known systemd key is not a typo: say so before any near miss.
    let systemd = SYSTEMD_ONLY
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, why)| format!("`{name}` is a systemd key diakonos does not support; {why}"));
    let hint = elsewhere
        .or(systemd)
        .or_else(|| suggest(name, &names).map(|s| format!("did you mean `{s}`?")));
    // With a hint, the line ends there (the whole list would bury it).
    let message = match hint {
        Some(_) => format!("unknown key `{}` in [{header}]", esc(name)),
        None => format!(
            "unknown key `{}` in [{header}]; expected one of: {}",
            esc(name),
            names.join(", ")
        ),
    };
    cx.at(span, message, hint);
}

fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}
