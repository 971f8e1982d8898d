//! `tree` and `graph` (SPEC §12): the dependency graph from the unit files
//! (as `verify` reads them, without a daemon), with each unit's state when
//! a daemon runs (asked, never started). Rendering is pure: [`tree`],
//! [`mermaid`] and [`dot`] take a [`View`] and return text.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::graph::{DepInput, Graph, ServiceId};
use crate::protocol::{Request, Response};
use crate::unit;

use super::{client, render, verify_dir, Global};

/// How one unit depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    Requires,
    Wants,
    After,
    /// Not a dependency: the two may not run together (drawn, never followed).
    Conflicts,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Requires => "requires",
            EdgeKind::Wants => "wants",
            EdgeKind::After => "after",
            EdgeKind::Conflicts => "conflicts",
        }
    }
}

/// One unit file as the view reads it: name, Requires, Wants, After,
/// whether it loads, and Conflicts.
pub type Row = (
    String,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    bool,
    Vec<String>,
);

/// The units (by id, in name order), their states if known, and the edges.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub names: Vec<String>,
    /// The daemon's state of each unit; without a daemon, `invalid` for a
    /// file that does not load and None for the others.
    pub states: Vec<Option<String>>,
    pub graph: Graph,
}

impl View {
    /// Builds the view from (name, requires, wants, after, loads) rows.
    pub fn new(rows: &[Row]) -> View {
        let file = std::path::Path::new("");
        let inputs: Vec<DepInput<'_>> = rows
            .iter()
            .map(|(name, requires, wants, after, _, conflicts)| DepInput {
                name,
                file,
                requires,
                wants,
                after,
                conflicts,
            })
            .collect();
        let (graph, _) = Graph::build(&inputs);
        View {
            names: rows.iter().map(|r| r.0.clone()).collect(),
            states: rows
                .iter()
                .map(|r| (!r.4).then(|| "invalid".to_owned()))
                .collect(),
            graph,
        }
    }

    /// What `id` depends on, with the edge kind, in name order.
    pub fn deps(&self, id: ServiceId) -> Vec<(ServiceId, EdgeKind)> {
        let g = &self.graph;
        let mut out: Vec<(ServiceId, EdgeKind)> =
            g.after[id].iter().map(|&d| (d, self.kind(id, d))).collect();
        crate::order::by_str(&mut out, |a| &self.names[a.0]);
        out
    }

    /// What depends on `id`, with the edge kind, in name order.
    pub fn dependents(&self, id: ServiceId) -> Vec<(ServiceId, EdgeKind)> {
        let mut out: Vec<(ServiceId, EdgeKind)> = self.graph.before[id]
            .iter()
            .map(|&d| (d, self.kind(d, id)))
            .collect();
        crate::order::by_str(&mut out, |a| &self.names[a.0]);
        out
    }

    /// What may not run with `id` (either named the other), in name order.
    pub fn conflicts(&self, id: ServiceId) -> Vec<ServiceId> {
        let mut out = self.graph.conflicts.get(id).unwrap_or(&[]).to_vec();
        crate::order::by_str(&mut out, |a| &self.names[*a]);
        out
    }

    /// Each conflicting pair once (lower id first), in id order.
    fn conflict_pairs(&self, ids: &[ServiceId]) -> Vec<(ServiceId, ServiceId)> {
        let mut out = Vec::new();
        for &a in ids {
            for b in self.conflicts(a) {
                if a < b && ids.contains(&b) {
                    out.push((a, b));
                }
            }
        }
        out
    }

    fn kind(&self, from: ServiceId, to: ServiceId) -> EdgeKind {
        if self.graph.requires[from].contains(&to) {
            EdgeKind::Requires
        } else if self.graph.wants[from].contains(&to) {
            EdgeKind::Wants
        } else {
            EdgeKind::After
        }
    }

    pub fn id(&self, name: &str) -> Option<ServiceId> {
        self.names.iter().position(|n| n == name)
    }

    fn label(&self, id: ServiceId) -> String {
        match &self.states[id] {
            Some(s) => format!("{} [{s}]", self.names[id]),
            None => self.names[id].clone(),
        }
    }
}

/// `tree`: from each root, what it depends on (or, `reverse`, what depends
/// on it), nested. Roots: the named unit, else every unit nothing depends
/// on (`reverse`: every unit that depends on nothing). A unit met again on
/// its own path is marked `(cycle)`; one already shown with its subtree is
/// marked `(see above)` and not repeated. What conflicts with a unit is
/// listed under it, marked `(conflicts)`, and not followed.
pub fn tree(view: &View, root: Option<ServiceId>, reverse: bool) -> String {
    let edges = |id: ServiceId| {
        let mut out = if reverse {
            view.dependents(id)
        } else {
            view.deps(id)
        };
        out.extend(
            view.conflicts(id)
                .into_iter()
                .map(|c| (c, EdgeKind::Conflicts)),
        );
        out
    };
    let roots: Vec<ServiceId> = match root {
        Some(id) => vec![id],
        None => (0..view.names.len())
            .filter(|&id| {
                if reverse {
                    view.graph.after[id].is_empty()
                } else {
                    view.graph.before[id].is_empty()
                }
            })
            .collect(),
    };
    let mut out = String::new();
    let mut shown = BTreeSet::new();
    // Then every unit no root reached (only on cycles, or under them), as a
    // root of its own: `tree` leaves no unit out.
    let unreached = (0..view.names.len()).filter(|id| root.is_none() && !roots.contains(id));
    for r in roots.iter().copied().chain(unreached) {
        if root.is_none() && shown.contains(&r) {
            continue;
        }
        out.push_str(&view.label(r));
        out.push('\n');
        let mut path = vec![r];
        shown.insert(r);
        walk(view, &edges, r, "", &mut path, &mut shown, &mut out);
    }
    out
}

fn walk(
    view: &View,
    edges: &dyn Fn(ServiceId) -> Vec<(ServiceId, EdgeKind)>,
    id: ServiceId,
    prefix: &str,
    path: &mut Vec<ServiceId>,
    shown: &mut BTreeSet<ServiceId>,
    out: &mut String,
) {
    let children = edges(id);
    let last = children.len().saturating_sub(1);
    for (i, (child, kind)) in children.into_iter().enumerate() {
        let (branch, more) = if i == last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let mark = match kind {
            EdgeKind::Requires => String::new(),
            k => format!(" ({})", k.as_str()),
        };
        let name = &view.names[child];
        let state = view.states[child]
            .as_ref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        let again = if kind == EdgeKind::Conflicts {
            ""
        } else if path.contains(&child) {
            " (cycle)"
        } else if shown.contains(&child) && !edges(child).is_empty() {
            " (see above)"
        } else {
            ""
        };
        out.push_str(&format!("{prefix}{branch}{name}{mark}{state}{again}\n"));
        if again.is_empty() && kind != EdgeKind::Conflicts {
            shown.insert(child);
            path.push(child);
            walk(
                view,
                edges,
                child,
                &format!("{prefix}{more}"),
                path,
                shown,
                out,
            );
            path.pop();
        }
    }
}

/// The named units and everything they depend on, transitively, and what
/// conflicts with those (not followed further); all units when none is
/// named. In id order.
pub fn closure(view: &View, roots: &[ServiceId]) -> Vec<ServiceId> {
    if roots.is_empty() {
        return (0..view.names.len()).collect();
    }
    let mut seen = BTreeSet::new();
    let mut stack: Vec<ServiceId> = roots.to_vec();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(view.graph.after[id].iter().copied());
        }
    }
    let partners: Vec<ServiceId> = seen.iter().flat_map(|&id| view.conflicts(id)).collect();
    seen.extend(partners);
    seen.into_iter().collect()
}

/// Mermaid `flowchart` text (renders on GitHub inside a ```mermaid block):
/// nodes `uN` labelled with the name (and state), edges from a unit to what
/// it depends on, labelled with the kind; wants and after dashed; a
/// conflict a red dotted line without arrows, labelled `conflicts`.
pub fn mermaid(view: &View, ids: &[ServiceId]) -> String {
    let mut out = String::from("flowchart LR\n");
    // Links are numbered in order of appearance (for `linkStyle`).
    let mut links = 0usize;
    let esc = |s: &str| s.replace('"', "#quot;");
    for &id in ids {
        let label = match &view.states[id] {
            Some(s) => format!("{}<br/>{s}", esc(&view.names[id])),
            None => esc(&view.names[id]),
        };
        out.push_str(&format!("  u{id}[\"{label}\"]\n"));
    }
    for &id in ids {
        for (d, kind) in view.deps(id) {
            let arrow = match kind {
                EdgeKind::Requires => "-->",
                _ => "-.->",
            };
            out.push_str(&format!("  u{id} {arrow}|{}| u{d}\n", kind.as_str()));
            links += 1;
        }
    }
    for (a, b) in view.conflict_pairs(ids) {
        out.push_str(&format!("  u{a} -.-|conflicts| u{b}\n"));
        out.push_str(&format!(
            "  linkStyle {links} stroke:#a22,stroke-dasharray:2 4\n"
        ));
        links += 1;
    }
    let mut by_state: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for &id in ids {
        if let Some(s) = &view.states[id] {
            by_state.entry(s).or_default().push(format!("u{id}"));
        }
    }
    for (state, nodes) in &by_state {
        if let Some(style) = mermaid_style(state) {
            out.push_str(&format!("  classDef {state} {style}\n"));
            out.push_str(&format!("  class {} {state}\n", nodes.join(",")));
        }
    }
    out
}

fn mermaid_style(state: &str) -> Option<&'static str> {
    match state {
        "running" | "exited" => Some("fill:#d4f7d4,stroke:#2a2"),
        "failed" | "invalid" => Some("fill:#f7d4d4,stroke:#a22"),
        "waiting" | "starting" | "restarting" | "stopping" => Some("fill:#f7f0d4,stroke:#aa2"),
        _ => None,
    }
}

/// Graphviz `dot` text (`dot -Tsvg` draws it).
pub fn dot(view: &View, ids: &[ServiceId]) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph diakonos {\n  rankdir=LR;\n  node [shape=box];\n");
    for &id in ids {
        let name = &view.names[id];
        let label = match &view.states[id] {
            Some(s) => format!("{name}\n{s}"),
            None => name.clone(),
        };
        let color = match view.states[id].as_deref() {
            Some("running" | "exited") => ", color=darkgreen",
            Some("failed" | "invalid") => ", color=red",
            _ => "",
        };
        out.push_str(&format!(
            "  {} [label={}{color}];\n",
            q(name),
            q(&label).replace('\n', "\\n")
        ));
    }
    for &id in ids {
        for (d, kind) in view.deps(id) {
            let style = match kind {
                EdgeKind::Requires => "",
                _ => ", style=dashed",
            };
            out.push_str(&format!(
                "  {} -> {} [label={}{style}];\n",
                q(&view.names[id]),
                q(&view.names[d]),
                q(kind.as_str())
            ));
        }
    }
    for (a, b) in view.conflict_pairs(ids) {
        out.push_str(&format!(
            "  {} -> {} [label=\"conflicts\", style=dotted, dir=none, color=red, fontcolor=red, constraint=false];\n",
            q(&view.names[a]),
            q(&view.names[b])
        ));
    }
    out.push_str("}\n");
    out
}

/// Loads the view of the service dir `verify` would check, with the states
/// of a running daemon of that dir (never started).
pub fn load(g: &Global, out: &render::Output) -> Result<View, Error> {
    let dir = verify_dir(g, out);
    let loaded = unit::load_dir(&dir, &unit::hostname()).map_err(|e| {
        Error::failed_hint(
            format!("cannot read the service directory {}: {e}", dir.display()),
            "pass --service-dir DIR or set DIAKONOS_SERVICE_DIR",
        )
    })?;
    let rows: Vec<Row> = loaded
        .units
        .iter()
        .map(|(name, result)| match result {
            Ok(u) => (
                name.clone(),
                u.requires.to_vec(),
                u.wants.to_vec(),
                u.after.to_vec(),
                true,
                u.conflicts.to_vec(),
            ),
            Err(_) => (
                name.clone(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                false,
                Vec::new(),
            ),
        })
        .collect();
    let mut view = View::new(&rows);
    // A daemon of another directory refuses; no daemon: no states.
    let mut g = g.clone();
    g.service_dir = Some(dir);
    if let Ok(Response::Units(units)) = client::request(&g, Request::List, false) {
        for u in units {
            if let Some(id) = view.id(&u.name) {
                view.states[id] = Some(u.state.as_str().to_owned());
            }
        }
    }
    Ok(view)
}

/// The ids of `names`, or an error naming the first unknown one.
pub fn ids(view: &View, names: &[String]) -> Result<Vec<ServiceId>, Error> {
    names
        .iter()
        .map(|n| {
            view.id(n).ok_or_else(|| {
                Error::failed_hint(
                    format!("no unit named `{n}`"),
                    "`diakonos list` (or `diakonos verify`) shows the units",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, req: &[&str], wants: &[&str], after: &[&str]) -> Row {
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        (
            name.to_owned(),
            v(req),
            v(wants),
            v(after),
            true,
            Vec::new(),
        )
    }

    fn sample() -> View {
        View::new(&[
            row("cache", &[], &[], &[]),
            row("db", &[], &[], &[]),
            row("migrate", &["db"], &[], &[]),
            row("web", &["db"], &["cache"], &["migrate"]),
        ])
    }

    #[test]
    fn tree_nests_dependencies_and_marks_edge_kinds() {
        let v = sample();
        assert_eq!(
            tree(&v, None, false),
            "web\n├── cache (wants)\n├── db\n└── migrate (after)\n    └── db\n"
        );
        assert_eq!(
            tree(&v, v.id("db"), true),
            "db\n├── migrate\n│   └── web (after)\n└── web\n"
        );
    }

    #[test]
    fn tree_marks_a_cycle_once() {
        let v = View::new(&[row("a", &["b"], &[], &[]), row("b", &[], &[], &["a"])]);
        assert_eq!(
            tree(&v, v.id("a"), false),
            "a\n└── b\n    └── a (after) (cycle)\n"
        );
    }

    #[test]
    fn tree_shows_units_that_only_sit_on_a_cycle() {
        // a -> b -> a, c -> a: no unit is free of dependents, yet all show.
        let v = View::new(&[
            row("a", &["b"], &[], &[]),
            row("b", &["a"], &[], &[]),
            row("c", &["a"], &[], &[]),
        ]);
        assert_eq!(
            tree(&v, None, false),
            "c\n└── a\n    └── b\n        └── a (cycle)\n"
        );
        let cycle = View::new(&[row("a", &["b"], &[], &[]), row("b", &["a"], &[], &[])]);
        assert_eq!(tree(&cycle, None, false), "a\n└── b\n    └── a (cycle)\n");
        assert_eq!(tree(&cycle, None, true), "a\n└── b\n    └── a (cycle)\n");
    }

    #[test]
    fn graph_closure_and_formats() {
        let mut v = sample();
        v.states[3] = Some("running".into());
        let ids = closure(&v, &[v.id("migrate").unwrap()]);
        assert_eq!(ids, [1, 2]);
        let m = mermaid(&v, &closure(&v, &[]));
        assert!(m.starts_with("flowchart LR\n"), "{m}");
        assert!(m.contains("  u3[\"web<br/>running\"]\n"), "{m}");
        assert!(m.contains("  u3 -.->|wants| u0\n"), "{m}");
        assert!(m.contains("  u3 -->|requires| u1\n"), "{m}");
        let d = dot(&v, &ids);
        assert!(
            d.contains("  \"migrate\" -> \"db\" [label=\"requires\"];\n"),
            "{d}"
        );
        assert!(d.ends_with("}\n"));
    }

    #[test]
    fn conflicts_are_drawn_apart_from_dependencies() {
        // web Conflicts legacy: a leaf under each in `tree`, one red dotted
        // undirected edge in both graph formats, and `graph web` shows it.
        let mut rows = vec![
            row("db", &[], &[], &[]),
            row("legacy", &[], &[], &[]),
            row("web", &["db"], &[], &[]),
        ];
        rows[2].5 = vec!["legacy".to_owned()];
        let v = View::new(&rows);
        assert_eq!(
            tree(&v, None, false),
            "legacy\n└── web (conflicts)\nweb\n├── db\n└── legacy (conflicts)\n"
        );
        let ids = closure(&v, &[v.id("web").unwrap()]);
        assert_eq!(ids, [0, 1, 2]);
        let m = mermaid(&v, &ids);
        assert!(m.contains("  u1 -.-|conflicts| u2\n  linkStyle 1 "), "{m}");
        let d = dot(&v, &ids);
        assert!(
            d.contains("  \"legacy\" -> \"web\" [label=\"conflicts\", style=dotted, dir=none"),
            "{d}"
        );
        assert_eq!(d.matches("conflicts").count(), 1, "{d}");
    }
}
