//! Diagnostics: errors with file:line:column, user text made safe for a
//! one-line message, and "did you mean" by edit distance.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::UnitError;

/// Collects the errors of one file and turns byte spans into line:column.
pub(super) struct Ctx<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    pub(super) errors: Vec<UnitError>,
}

impl Ctx<'_> {
    pub(super) fn at(&mut self, span: Range<usize>, message: String, hint: Option<String>) {
        self.errors.push(UnitError {
            path: self.path.to_path_buf(),
            pos: Some(line_col(self.text, span.start)),
            message,
            hint,
        });
    }

    /// A TOML syntax error: toml's Display draws a multi-line caret picture,
    /// so only its one-line message is kept and the position is ours.
    pub(super) fn syntax(&mut self, err: &toml::de::Error) {
        let mut message = one_line(err.message());
        let span = err.span().unwrap_or(0..0);
        let mut hint = None;
        if message == "duplicate key" {
            let key = self
                .text
                .get(span.clone())
                .unwrap_or_default()
                .trim_matches(|c: char| {
                    c == '[' || c == ']' || c == '"' || c == '\'' || c.is_whitespace()
                });
            if !key.is_empty() {
                message = format!("duplicate key `{}`", esc(key));
            }
            hint = Some("each key and each section may appear only once".to_string());
        }
        self.at(span, format!("invalid TOML: {message}"), hint);
    }

    /// The source text of a value, for messages; `fallback` if the span is
    /// somehow not in the text.
    pub(super) fn literal(&self, span: Range<usize>, fallback: impl fmt::Display) -> String {
        match self.text.get(span) {
            Some(text) if !text.trim().is_empty() => esc(text.trim()),
            _ => fallback.to_string(),
        }
    }

    /// The errors in file order (errors without a position last).
    pub(super) fn finish(mut self) -> Vec<UnitError> {
        crate::order::by_num(&mut self.errors, UnitError::file_order);
        self.errors
    }
}

/// User text for a one-line message: control characters (a newline in a
/// quoted key, say) are shown escaped.
/// Quotes a value from the file for a message: control characters escaped,
/// and clipped, so a huge bad value makes a short error.
pub(super) fn esc(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    if text.chars().count() > MAX_CHARS {
        let head: String = text.chars().take(MAX_CHARS).collect();
        return format!("{}…", esc(&head));
    }
    esc_all(text)
}

/// Like `esc` but never clipped: for paths, which must be shown whole (and
/// for any text shown on one line).
pub fn esc_all(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

pub(super) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    // A byte-order mark is invisible in editors; do not count it as a column.
    let col = before[line_start..]
        .trim_start_matches('\u{feff}')
        .chars()
        .count()
        + 1;
    (line, col)
}

/// The closest candidate to `word`, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        // The distance is at least the difference in length: a long word
        // (a value pasted where a key goes) skips the table for every key.
        .filter(|c| c.chars().count().abs_diff(word.chars().count()) <= limit)
        .map(|c| (edit_distance(&word_lower, &c.to_lowercase()), *c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours each cost 1 (`Restrat` is 1 from `Restart`).
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}
