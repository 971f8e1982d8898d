//! The Requires / Wants / After graph between loaded units: resolving names
//! to ids, reporting missing units and cycles (as paths), and answering
//! "who is pulled in" and "who must go down first".
//!
//! PURE: no I/O, no clock, no processes. Shared by the daemon and the client:
//! [`check`] puts the problems into words, the same for `verify` and for the
//! daemon's `list`/`status`. In the daemon, the graph decides *who* hears
//! about a change; `service` decides *what* the change does.

use std::path::Path;

/// Index of a unit in the daemon's table (and in [`Graph`]'s vectors).
pub type ServiceId = usize;

/// One unit as the graph sees it.
#[derive(Debug, Clone, Copy)]
pub struct DepInput<'a> {
    pub name: &'a str,
    /// The unit file, named in the messages of [`check`].
    pub file: &'a Path,
    pub requires: &'a [String],
    pub wants: &'a [String],
    pub after: &'a [String],
    /// Units that may not run with this one (SPEC §18), either direction.
    pub conflicts: &'a [String],
}

/// A problem found while building the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepProblem {
    /// `unit` Requires a unit that does not exist: an error for `unit`.
    MissingRequires { unit: ServiceId, missing: String },
    /// `unit` Wants a unit that does not exist: a warning only.
    MissingWants { unit: ServiceId, missing: String },
    /// A cycle through ordering edges, as a path whose last element repeats
    /// the first: `[a, b, c, a]`. Each cycle is reported once.
    Cycle { path: Vec<ServiceId> },
}

/// Edges between existing units, by id. Names that do not resolve are left
/// out of the lists (and reported as [`DepProblem`]s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    pub requires: Edges,
    pub wants: Edges,
    /// Units this one is ordered after: After ∪ Requires ∪ Wants, deduplicated.
    pub after: Edges,
    /// Reverse of `after`: units ordered after this one.
    pub before: Edges,
    /// Reverse of `requires`.
    pub required_by: Edges,
    /// Conflicts, made symmetric: `b` is in `a`'s list when either names
    /// the other. Missing names are left out (nothing to stop).
    pub conflicts: Edges,
}

/// One kind of edge for every unit: the lists of all units one after the
/// other in one array, and where each unit's list ends. A unit without
/// edges costs one offset, not an empty `Vec` (24 bytes each, six kinds, a
/// thousand units: 144 KB of daemon memory before). A kind no unit has
/// (most directories have no Conflicts, many no dependencies at all)
/// costs nothing per unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edges {
    /// `ends[i]`: one past the last edge of unit `i` in `to` (`u32`: 4
    /// bytes a unit and kind, 24 KB at a thousand units; the edges of a
    /// service directory are far fewer than 2^32). Empty when `to` is.
    ends: Vec<u32>,
    to: Vec<ServiceId>,
    /// How many units it covers.
    units: usize,
}

impl Edges {
    /// The edges of unit `id`, or None when there is no such unit.
    pub fn get(&self, id: ServiceId) -> Option<&[ServiceId]> {
        if id >= self.units {
            return None;
        }
        if self.to.is_empty() {
            return Some(&[]);
        }
        let end = *self.ends.get(id)? as usize;
        let start = match id {
            0 => 0,
            _ => self.ends[id - 1] as usize,
        };
        self.to.get(start..end)
    }

    /// How many units it covers.
    pub fn len(&self) -> usize {
        self.units
    }

    pub fn is_empty(&self) -> bool {
        self.units == 0
    }

    /// Each unit's edges, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &[ServiceId]> {
        (0..self.len()).map(|id| &self[id])
    }
}

impl From<Vec<Vec<ServiceId>>> for Edges {
    fn from(lists: Vec<Vec<ServiceId>>) -> Edges {
        let units = lists.len();
        let total = lists.iter().map(Vec::len).sum();
        if total == 0 {
            return Edges {
                units,
                ..Edges::default()
            };
        }
        let mut to = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(units);
        for list in lists {
            to.extend(list);
            ends.push(u32::try_from(to.len()).unwrap_or(u32::MAX));
        }
        Edges { ends, to, units }
    }
}

impl std::ops::Index<ServiceId> for Edges {
    type Output = [ServiceId];

    /// The edges of unit `id`; panics when there is no such unit (as a
    /// `Vec` index does).
    fn index(&self, id: ServiceId) -> &[ServiceId] {
        match self.get(id) {
            Some(list) => list,
            None => panic!("no unit {id} in a graph of {}", self.len()),
        }
    }
}

use crate::hash::{HashMap, HashSet};

/// Marks a slot in the stamp vectors of [`Graph::build`] as "not yet seen".
const UNSEEN: usize = usize::MAX;

impl Graph {
    /// Builds the graph over `units` (index = [`ServiceId`]).
    ///
    /// Names resolve by exact match against [`DepInput::name`]; when two units
    /// share a name, the first one wins. A Requires/Wants/After entry naming
    /// the unit itself is ignored here, because `unit.rs` already rejects it.
    /// A missing Requires is a [`DepProblem::MissingRequires`], a missing Wants
    /// a [`DepProblem::MissingWants`], a missing After is silently ignored (it
    /// only orders against a unit that may appear later). Requires and Wants
    /// imply After. Edges are deduplicated and keep their first position.
    ///
    /// Cycles are searched over the `after` edges and reported as paths
    /// `[a, b, .., a]` in dependency direction (`a` is ordered after `b`),
    /// rotated to start at their smallest id. See `find_cycles` for which
    /// cycles are reported. Problems come out sorted by unit id (for a cycle,
    /// its smallest member), and for one unit: missing Requires, missing Wants,
    /// then cycles.
    pub fn build(units: &[DepInput<'_>]) -> (Graph, Vec<DepProblem>) {
        let n = units.len();
        let mut by_name: HashMap<&str, ServiceId> =
            HashMap::with_capacity_and_hasher(n, Default::default());
        for (id, unit) in units.iter().enumerate() {
            by_name.entry(unit.name).or_insert(id);
        }

        let mut graph = Lists {
            requires: vec![Vec::new(); n],
            wants: vec![Vec::new(); n],
            after: vec![Vec::new(); n],
            before: vec![Vec::new(); n],
            required_by: vec![Vec::new(); n],
            conflicts: vec![Vec::new(); n],
        };
        let mut problems = Vec::new();
        // `seen_x[j] == i` means j is already in unit i's list x. Stamping with
        // the unit id instead of clearing a set keeps the deduplication linear.
        let mut seen_requires = vec![UNSEEN; n];
        let mut seen_wants = vec![UNSEEN; n];
        let mut seen_after = vec![UNSEEN; n];
        let mut reported: HashSet<&str> = HashSet::default();

        for (id, unit) in units.iter().enumerate() {
            reported.clear();
            for name in unit.requires {
                match resolve(&by_name, unit.name, name) {
                    Resolved::Unit(dep) => {
                        push_once(&mut graph.requires[id], &mut seen_requires, id, dep);
                        push_once(&mut graph.after[id], &mut seen_after, id, dep);
                    }
                    Resolved::Missing => {
                        if reported.insert(name) {
                            problems.push(DepProblem::MissingRequires {
                                unit: id,
                                missing: name.clone(),
                            });
                        }
                    }
                    Resolved::Itself => {}
                }
            }
            reported.clear();
            for name in unit.wants {
                match resolve(&by_name, unit.name, name) {
                    Resolved::Unit(dep) => {
                        push_once(&mut graph.wants[id], &mut seen_wants, id, dep);
                        push_once(&mut graph.after[id], &mut seen_after, id, dep);
                    }
                    Resolved::Missing => {
                        if reported.insert(name) {
                            problems.push(DepProblem::MissingWants {
                                unit: id,
                                missing: name.clone(),
                            });
                        }
                    }
                    Resolved::Itself => {}
                }
            }
            for name in unit.after {
                if let Resolved::Unit(dep) = resolve(&by_name, unit.name, name) {
                    push_once(&mut graph.after[id], &mut seen_after, id, dep);
                }
            }
            for name in unit.conflicts {
                if let Resolved::Unit(other) = resolve(&by_name, unit.name, name) {
                    for (a, b) in [(id, other), (other, id)] {
                        if !graph.conflicts[a].contains(&b) {
                            graph.conflicts[a].push(b);
                        }
                    }
                }
            }
        }

        // Filling the reverse lists in unit order leaves each of them sorted.
        for id in 0..n {
            for &dep in &graph.after[id] {
                graph.before[dep].push(id);
            }
            for &dep in &graph.requires[id] {
                graph.required_by[dep].push(id);
            }
        }

        let graph = Graph {
            requires: graph.requires.into(),
            wants: graph.wants.into(),
            after: graph.after.into(),
            before: graph.before.into(),
            required_by: graph.required_by.into(),
            conflicts: graph.conflicts.into(),
        };
        for path in find_cycles(&graph.after) {
            problems.push(DepProblem::Cycle { path });
        }
        // A stable sort keeps the declaration order among one unit's problems.
        crate::order::by_num(&mut problems, |p| {
            let (unit, kind) = match p {
                DepProblem::MissingRequires { unit, .. } => (*unit, 0),
                DepProblem::MissingWants { unit, .. } => (*unit, 1),
                DepProblem::Cycle { path } => (path.first().copied().unwrap_or(UNSEEN), 2),
            };
            (unit as u64).saturating_mul(4).saturating_add(kind)
        });
        (graph, problems)
    }

    /// `roots` plus everything they transitively Require or Want, each id once,
    /// dependencies before dependents (a topological order over `after`
    /// restricted to the set). Inside a cycle no such order exists; every
    /// member still appears exactly once. Ids out of range are ignored.
    pub fn pull_in(&self, roots: &[ServiceId]) -> Vec<ServiceId> {
        let members = self.closure(roots, |v| {
            let requires = edges(&self.requires, v);
            requires.iter().chain(edges(&self.wants, v))
        });
        self.post_order(&members, &self.after)
    }

    /// `roots` plus every unit that transitively Requires one of them, each id
    /// once (the set that must go down when the roots stop). Wants does not
    /// propagate a stop. The order is a stop order: a unit comes before the
    /// units it is ordered after, where possible. Ids out of range are ignored.
    pub fn requirers_of(&self, roots: &[ServiceId]) -> Vec<ServiceId> {
        let members = self.closure(roots, |v| edges(&self.required_by, v).iter());
        self.post_order(&members, &self.before)
    }

    /// All ids that are members of some reported cycle, ascending, each once
    /// (so the daemon can mark them invalid).
    #[cfg(test)]
    pub fn cycle_members(problems: &[DepProblem]) -> Vec<ServiceId> {
        let mut ids: Vec<ServiceId> = problems
            .iter()
            .filter_map(|p| match p {
                DepProblem::Cycle { path } => Some(path.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.after.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `roots` and everything reachable from them through `next`, each once,
    /// in discovery order (roots first, in the order given).
    fn closure<'g, I>(
        &'g self,
        roots: &[ServiceId],
        next: impl Fn(ServiceId) -> I,
    ) -> Vec<ServiceId>
    where
        I: Iterator<Item = &'g ServiceId>,
    {
        let n = self.len();
        let mut in_set = vec![false; n];
        let mut members = Vec::new();
        let mut stack = Vec::new();
        for &root in roots {
            if root >= n || in_set[root] {
                continue;
            }
            in_set[root] = true;
            members.push(root);
            stack.push(root);
            while let Some(v) = stack.pop() {
                for &w in next(v) {
                    if w < n && !in_set[w] {
                        in_set[w] = true;
                        members.push(w);
                        stack.push(w);
                    }
                }
            }
        }
        members
    }

    /// `members` in depth-first post-order over `edges` restricted to
    /// `members`: whatever a unit points at comes before it, unless a cycle
    /// makes that impossible. Iterative, so a deep chain cannot overflow.
    fn post_order(&self, members: &[ServiceId], edges_of: &Edges) -> Vec<ServiceId> {
        const OUTSIDE: u8 = 0;
        const NEW: u8 = 1;
        const OPEN: u8 = 2;
        const DONE: u8 = 3;
        let n = self.len();
        let mut mark = vec![OUTSIDE; n];
        for &v in members {
            mark[v] = NEW;
        }
        let mut order = Vec::with_capacity(members.len());
        let mut frames: Vec<(ServiceId, usize)> = Vec::new();
        for &start in members {
            if mark[start] != NEW {
                continue;
            }
            mark[start] = OPEN;
            frames.push((start, 0));
            while let Some(frame) = frames.last_mut() {
                let (v, pos) = *frame;
                if let Some(&w) = edges(edges_of, v).get(pos) {
                    frame.1 += 1;
                    if w < n && mark[w] == NEW {
                        mark[w] = OPEN;
                        frames.push((w, 0));
                    }
                } else {
                    mark[v] = DONE;
                    order.push(v);
                    frames.pop();
                }
            }
        }
        order
    }
}

/// The dependency problems of a set of units, in words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Per unit (index = [`ServiceId`]): its dependency errors (missing
    /// Requires, cycles through it), one per line; None when it has none.
    /// A unit with an error here must not start.
    pub errors: Vec<Option<String>>,
    /// Missing Wants, one line each with the unit it is about: nothing
    /// stops for them.
    pub warnings: Vec<(ServiceId, String)>,
}

/// Builds the graph over `units` (see [`Graph::build`]) and words its
/// problems: `FILE: Requires `x`, but there is no x.service in DIR` for a
/// missing Requires, `dependency cycle: a -> b -> a` on every member of a
/// cycle, `NAME: Wants `x`, which does not exist (ignored)` as a warning.
/// `service_dir` is the directory the units were loaded from.
pub fn check(units: &[DepInput<'_>], service_dir: &Path) -> (Graph, Findings) {
    let (graph, problems) = Graph::build(units);
    let mut findings = Findings {
        errors: vec![None; units.len()],
        warnings: Vec::new(),
    };
    let names: Vec<&str> = units.iter().map(|u| u.name).collect();
    for problem in problems {
        match problem {
            DepProblem::MissingRequires { unit, missing } => {
                let file = units.get(unit).map_or(Path::new(""), |u| u.file);
                let msg = format!(
                    "{}: Requires `{missing}`, but there is no {missing}.service in {}",
                    file.display(),
                    service_dir.display()
                );
                add_error(&mut findings.errors, unit, &msg);
            }
            DepProblem::MissingWants { unit, missing } => {
                let msg = format!(
                    "{}: Wants `{missing}`, which does not exist (ignored)",
                    names.get(unit).copied().unwrap_or_default()
                );
                findings.warnings.push((unit, msg));
            }
            DepProblem::Cycle { path } => {
                let msg = format!("dependency cycle: {}", cycle_to_string(&path, &names));
                for &id in &path {
                    add_error(&mut findings.errors, id, &msg);
                }
            }
        }
    }
    for (id, path) in graph.conflicting_needs() {
        let file = units.get(id).map_or(Path::new(""), |u| u.file);
        let other = path.last().copied().unwrap_or(id);
        let msg = format!(
            "{}: conflicts with `{}`, which it needs: {}",
            file.display(),
            names.get(other).copied().unwrap_or_default(),
            cycle_to_string(&path, &names)
        );
        add_error(&mut findings.errors, id, &msg);
    }
    (graph, findings)
}

impl Graph {
    /// Units that conflict with something they Require or Want (directly
    /// or through others): each such unit with the dependency path from it
    /// to the first conflicting unit found (breadth first: a shortest path).
    pub fn conflicting_needs(&self) -> Vec<(ServiceId, Vec<ServiceId>)> {
        let mut out = Vec::new();
        let n = self.requires.len();
        let mut parent = vec![UNSEEN; n];
        for id in 0..n {
            if self.conflicts.get(id).is_none_or(<[_]>::is_empty) {
                continue;
            }
            parent.iter_mut().for_each(|p| *p = UNSEEN);
            parent[id] = id;
            let mut queue = std::collections::VecDeque::from([id]);
            let mut hit = None;
            while let Some(v) = queue.pop_front() {
                if v != id && self.conflicts[id].contains(&v) {
                    hit = Some(v);
                    break;
                }
                for &d in edges(&self.requires, v).iter().chain(edges(&self.wants, v)) {
                    if d < n && parent[d] == UNSEEN {
                        parent[d] = v;
                        queue.push_back(d);
                    }
                }
            }
            if let Some(mut v) = hit {
                let mut path = vec![v];
                while v != id {
                    v = parent[v];
                    path.push(v);
                }
                path.reverse();
                out.push((id, path));
            }
        }
        out
    }
}

/// Adds `msg` as a line of unit `id`'s errors, unless it is there already
/// (the closing id of a cycle path repeats its first).
fn add_error(errors: &mut [Option<String>], id: ServiceId, msg: &str) {
    match errors.get_mut(id) {
        Some(Some(existing)) if existing.lines().any(|l| l == msg) => {}
        Some(Some(existing)) => {
            existing.push('\n');
            existing.push_str(msg);
        }
        Some(slot) => *slot = Some(msg.to_string()),
        None => {}
    }
}

/// Renders a cycle path with names: `"a -> b -> c -> a"`. An id without a
/// name is shown as `#id`.
pub fn cycle_to_string(path: &[ServiceId], names: &[&str]) -> String {
    path.iter()
        .map(|&id| match names.get(id) {
            Some(name) => (*name).to_string(),
            None => format!("#{id}"),
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// What a dependency name in a unit refers to.
enum Resolved {
    Unit(ServiceId),
    /// The unit names itself; `unit.rs` reports that, the graph skips it.
    Itself,
    Missing,
}

fn resolve(by_name: &HashMap<&str, ServiceId>, own: &str, name: &str) -> Resolved {
    if name == own {
        return Resolved::Itself;
    }
    match by_name.get(name) {
        Some(&id) => Resolved::Unit(id),
        None => Resolved::Missing,
    }
}

/// Appends `dep` to unit `id`'s `list` unless `seen` says it is there already.
fn push_once(list: &mut Vec<ServiceId>, seen: &mut [ServiceId], id: ServiceId, dep: ServiceId) {
    if seen[dep] != id {
        seen[dep] = id;
        list.push(dep);
    }
}

/// The edge list of `v`, empty when `v` is out of range (a hand-built graph
/// must not make the daemon panic).
fn edges(lists: &Edges, v: ServiceId) -> &[ServiceId] {
    lists.get(v).unwrap_or_default()
}

/// The edge lists of [`Graph::build`] while it fills them.
struct Lists {
    requires: Vec<Vec<ServiceId>>,
    wants: Vec<Vec<ServiceId>>,
    after: Vec<Vec<ServiceId>>,
    before: Vec<Vec<ServiceId>>,
    required_by: Vec<Vec<ServiceId>>,
    conflicts: Vec<Vec<ServiceId>>,
}

/// Finds cycles over `after` in O(units + edges) with an iterative DFS.
///
/// Listing every cycle can take exponential time, and even one cycle per
/// member of a strongly connected component can be quadratic in output size.
/// Instead, whenever the DFS meets a back edge `u -> w`, the stack segment
/// `w .. u` plus that edge is a simple cycle: it is reported, its members are
/// removed from the graph and popped off the stack, and the search goes on.
/// Reported cycles are therefore disjoint, every strongly connected component
/// with a cycle yields at least one of them, and the graph without
/// [`Graph::cycle_members`] is acyclic: no remaining unit can wait on itself.
/// A component holding several cycles may show only some of them; the next
/// check after a fix shows the rest.
fn find_cycles(after: &Edges) -> Vec<Vec<ServiceId>> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    const REMOVED: u8 = 3;
    let n = after.len();
    let mut mark = vec![NEW; n];
    // Position of each open unit in `frames`, to cut a cycle out of it.
    let mut depth = vec![0usize; n];
    let mut frames: Vec<(ServiceId, usize)> = Vec::new();
    let mut cycles = Vec::new();

    for start in 0..n {
        if mark[start] != NEW {
            continue;
        }
        mark[start] = OPEN;
        depth[start] = 0;
        frames.push((start, 0));
        while let Some(frame) = frames.last_mut() {
            let (v, pos) = *frame;
            let Some(&w) = edges(after, v).get(pos) else {
                mark[v] = DONE;
                frames.pop();
                continue;
            };
            frame.1 += 1;
            if w >= n {
                continue;
            }
            match mark[w] {
                NEW => {
                    mark[w] = OPEN;
                    depth[w] = frames.len();
                    frames.push((w, 0));
                }
                OPEN => {
                    let cut = depth[w];
                    let mut path: Vec<ServiceId> =
                        frames[cut..].iter().map(|&(id, _)| id).collect();
                    for &id in &path {
                        mark[id] = REMOVED;
                    }
                    frames.truncate(cut);
                    // Rotate so the smallest id leads: the same cycle always
                    // reads the same, and problems sort by it.
                    let lead = path
                        .iter()
                        .enumerate()
                        .min_by_key(|&(_, id)| *id)
                        .map_or(0, |(i, _)| i);
                    path.rotate_left(lead);
                    path.push(path[0]);
                    cycles.push(path);
                }
                _ => {}
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests;
