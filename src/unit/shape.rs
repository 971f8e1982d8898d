//! Shape checks on the parsed document against the key table: sections,
//! keys and value types, each problem placed at its key or value, with
//! "did you mean" for near misses.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::diag::{esc, suggest, Ctx};
use super::schema::{number_fits, Kind, SECTIONS, SYSTEMD_ONLY};

/// What [`check_shape`] learned about the document.
#[derive(Debug, Default)]
pub(super) struct Shape {
    /// Top-level entries to remove before deserializing.
    pub(super) dropped_sections: Vec<String>,
    /// (section, key) entries to remove before deserializing.
    pub(super) dropped_keys: Vec<(String, String)>,
    /// Spans of accepted values with a label, to place any later serde error.
    pub(super) values: Vec<(String, Range<usize>)>,
    /// Where `[service]` is, when it is a table.
    pub(super) service_span: Option<Range<usize>>,
    /// Whether `[service]` has an ExecStart key at all (even a bad one).
    pub(super) has_exec_start: bool,
    /// Whether an error already pointed at a misspelled or misplaced
    /// [service] (then "missing [service]" would only repeat it).
    pub(super) service_reported: bool,
}

pub(super) fn check_shape(cx: &mut Ctx<'_>, root: &DeTable<'_>) -> Shape {
    let mut shape = Shape::default();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    // In file order, so a repeated section is reported where it repeats.
    let mut entries: Vec<_> = root.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    for (key, value) in entries {
        let section: &str = key.get_ref();
        let shown = esc(section);
        let found = canonical_section(section)
            .and_then(|canon| SECTIONS.iter().find(|(name, _)| *name == canon));
        let Some(&(canon, keys)) = found else {
            shape.dropped_sections.push(section.to_string());
            if value.get_ref().is_table() {
                let names: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
                shape.service_reported |= suggest(section, &names) == Some("service");
                unknown_section(cx, section, key.span());
            } else {
                let home = SECTIONS
                    .iter()
                    .find(|(_, keys)| keys.iter().any(|(k, _)| *k == section))
                    .map(|(name, _)| *name);
                shape.service_reported |= home == Some("service");
                let home = home.map(|name| format!("put it under [{name}]"));
                cx.at(
                    key.span(),
                    format!("key `{shown}` is outside any section; expected [unit] or [service]"),
                    home,
                );
            }
            continue;
        };
        let table = match value.get_ref() {
            DeValue::Table(table) => table,
            DeValue::Array(array) if array.iter().all(|v| v.get_ref().is_table()) => {
                shape.dropped_sections.push(section.to_string());
                cx.at(
                    key.span(),
                    format!("[[{section}]] makes a list of sections; expected one [{section}]"),
                    Some(format!("write [{section}] with single brackets")),
                );
                continue;
            }
            other => {
                shape.dropped_sections.push(section.to_string());
                cx.at(
                    key.span(),
                    format!(
                        "`{section}` must be a section ([{section}]), not {}",
                        article(other.type_str())
                    ),
                    None,
                );
                continue;
            }
        };
        if let Some((first, _)) = seen.iter().find(|(_, c)| *c == canon) {
            shape.dropped_sections.push(section.to_string());
            shape.service_reported |= canon == "service";
            cx.at(
                key.span(),
                format!("section [{shown}] repeats [{first}]; expected each section once"),
                Some(format!(
                    "merge the two into one [{first}] (the case of the name does not matter)"
                )),
            );
            continue;
        }
        seen.push((section, canon));
        if canon == "service" {
            shape.service_span = Some(key.span());
            shape.has_exec_start = table.get("ExecStart").is_some();
        }
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let Some(&(_, kind)) = keys.iter().find(|(k, _)| *k == name) else {
                shape
                    .dropped_keys
                    .push((section.to_string(), name.to_string()));
                unknown_key(cx, section, canon, keys, name, key.span());
                continue;
            };
            let label = format!("`{name}` in [{section}]");
            if !kind.accepts(value.get_ref()) {
                shape
                    .dropped_keys
                    .push((section.to_string(), name.to_string()));
                cx.at(
                    value.span(),
                    format!(
                        "{label} must be {}, not {}",
                        kind.expected(),
                        article(value.get_ref().type_str())
                    ),
                    (kind == Kind::StrList && value.get_ref().is_str())
                        .then(|| "write a one-element array: [\"...\"]".to_string()),
                );
                continue;
            }
            if !number_fits(value.get_ref()) {
                shape
                    .dropped_keys
                    .push((section.to_string(), name.to_string()));
                let literal = cx.literal(value.span(), "a number out of range");
                let message = format!("`{name}` is {literal}; expected {}", kind.range());
                cx.at(value.span(), message, None);
                continue;
            }
            if let (Kind::StrList, Some(items)) = (kind, value.get_ref().as_array()) {
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    if !item.get_ref().is_str() {
                        ok = false;
                        cx.at(
                            item.span(),
                            format!(
                                "{label} must be an array of strings; element {} is {}",
                                i + 1,
                                article(item.get_ref().type_str())
                            ),
                            None,
                        );
                    }
                }
                if !ok {
                    shape
                        .dropped_keys
                        .push((section.to_string(), name.to_string()));
                    continue;
                }
            }
            shape.values.push((label, value.span()));
        }
    }
    shape
}

pub(super) fn unknown_section(cx: &mut Ctx<'_>, section: &str, span: Range<usize>) {
    let names: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    let hint = if section.eq_ignore_ascii_case("install") {
        Some("diakonos has no [install] section; use `diakonos enable NAME`".to_string())
    } else {
        suggest(section, &names).map(|s| format!("did you mean [{s}]?"))
    };
    cx.at(
        span,
        format!(
            "unknown section [{}]; expected [unit] or [service]",
            esc(section)
        ),
        hint,
    );
}

/// `[unit]`/`[Unit]` and `[service]`/`[Service]` (systemd's spelling).
pub(super) fn canonical_section(section: &str) -> Option<&'static str> {
    match section {
        "unit" | "Unit" => Some("unit"),
        "service" | "Service" => Some("service"),
        _ => None,
    }
}

pub(super) fn unknown_key(
    cx: &mut Ctx<'_>,
    section: &str,
    canon: &str,
    keys: &[(&str, Kind)],
    name: &str,
    span: Range<usize>,
) {
    let section = esc(section);
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    let elsewhere = SECTIONS
        .iter()
        .find(|(other, keys)| *other != canon && keys.iter().any(|(k, _)| *k == name))
        .map(|(other, _)| format!("`{name}` belongs in [{other}]"));
    // A known systemd key is not a typo: say so before any near miss.
    let systemd = SYSTEMD_ONLY
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, why)| format!("`{name}` is a systemd key diakonos does not support; {why}"));
    let hint = elsewhere
        .or(systemd)
        .or_else(|| suggest(name, &names).map(|s| format!("did you mean `{s}`?")));
    cx.at(
        span,
        format!(
            "unknown key `{}` in [{section}]; expected one of: {}",
            esc(name),
            names.join(", ")
        ),
        hint,
    );
}

pub(super) fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}
