//! The dependency graph without a daemon: ordering, cycles named by their
//! path, missing and conflicting units.

use super::*;

/// A unit spec for tests: name, requires, wants, after.
struct Spec {
    name: String,
    file: std::path::PathBuf,
    requires: Vec<String>,
    wants: Vec<String>,
    after: Vec<String>,
}

fn spec(name: &str, requires: &[&str], wants: &[&str], after: &[&str]) -> Spec {
    let own = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect();
    Spec {
        name: name.to_string(),
        file: format!("/srv/units/{name}.service").into(),
        requires: own(requires),
        wants: own(wants),
        after: own(after),
    }
}

fn inputs(specs: &[Spec]) -> Vec<DepInput<'_>> {
    specs
        .iter()
        .map(|s| DepInput {
            name: &s.name,
            file: &s.file,
            requires: &s.requires,
            wants: &s.wants,
            after: &s.after,
            conflicts: &[],
        })
        .collect()
}

fn build(specs: &[Spec]) -> (Graph, Vec<DepProblem>) {
    Graph::build(&inputs(specs))
}

fn names(specs: &[Spec]) -> Vec<&str> {
    specs.iter().map(|s| s.name.as_str()).collect()
}

fn cycle_texts(specs: &[Spec], problems: &[DepProblem]) -> Vec<String> {
    let names = names(specs);
    problems
        .iter()
        .filter_map(|p| match p {
            DepProblem::Cycle { path } => Some(cycle_to_string(path, &names)),
            _ => None,
        })
        .collect()
}

/// A chain `u0 -> u1 -> .. -> u{n-1}` where each unit Requires the next.
fn chain(n: usize) -> Vec<Spec> {
    (0..n)
        .map(|i| {
            let next = format!("u{}", i + 1);
            let requires: Vec<&str> = if i + 1 < n { vec![&next] } else { vec![] };
            spec(&format!("u{i}"), &requires, &[], &[])
        })
        .collect()
}

#[test]
fn reverse_edges_mirror_forward_edges() {
    // `before` mirrors `after` and `required_by` mirrors `requires`, sorted by id.
    let specs = [
        spec("db", &[], &[], &[]),
        spec("api", &["db"], &[], &[]),
        spec("web", &["db"], &[], &["api"]),
    ];
    let (g, problems) = build(&specs);
    assert!(problems.is_empty());
    assert_eq!(g.before, vec![vec![1, 2], vec![2], vec![]].into());
    assert_eq!(g.required_by, vec![vec![1, 2], vec![], vec![]].into());
    assert_eq!(g.len(), 3);
    assert!(!g.is_empty());
}

#[test]
fn requires_and_wants_imply_after() {
    // Requires and Wants each add an ordering edge, deduplicated against After.
    let specs = [
        spec("a", &["b", "b"], &["c"], &["c", "d", "b"]),
        spec("b", &[], &[], &[]),
        spec("c", &[], &[], &[]),
        spec("d", &[], &[], &[]),
    ];
    let (g, problems) = build(&specs);
    assert!(problems.is_empty());
    assert_eq!(g.requires[0], [1]);
    assert_eq!(g.wants[0], [2]);
    assert_eq!(g.after[0], [1, 2, 3]);
    assert_eq!(g.before[1], [0]);
    assert_eq!(g.before[3], [0]);
}

#[test]
fn missing_requires_is_an_error_wants_a_warning_after_nothing() {
    // Each missing name is reported once per kind, a missing After not at all.
    let specs = [
        spec("a", &["gone", "gone"], &["maybe"], &["later"]),
        spec("b", &[], &["also-gone"], &[]),
    ];
    let (g, problems) = build(&specs);
    assert_eq!(
        problems,
        [
            DepProblem::MissingRequires {
                unit: 0,
                missing: "gone".into()
            },
            DepProblem::MissingWants {
                unit: 0,
                missing: "maybe".into()
            },
            DepProblem::MissingWants {
                unit: 1,
                missing: "also-gone".into()
            },
        ]
    );
    assert!(g.after.iter().all(<[_]>::is_empty));
}

#[test]
fn self_references_and_duplicate_names_are_harmless() {
    // A unit naming itself adds no edge, and a duplicate name resolves to the first unit.
    let specs = [
        spec("a", &["a"], &["a"], &["a"]),
        spec("a", &[], &[], &[]),
        spec("b", &["a"], &[], &[]),
    ];
    let (g, problems) = build(&specs);
    assert!(problems.is_empty());
    assert!(g.after[0].is_empty());
    assert_eq!(g.requires[2], [0]);
    assert!(Graph::build(&[]).0.is_empty());
}

#[test]
fn two_cycle_is_reported_as_its_path() {
    // A Requires in each direction is one cycle, read in dependency direction.
    let specs = [spec("a", &["b"], &[], &[]), spec("b", &[], &[], &["a"])];
    let (_, problems) = build(&specs);
    assert_eq!(
        problems,
        [DepProblem::Cycle {
            path: vec![0, 1, 0]
        }]
    );
    assert_eq!(cycle_texts(&specs, &problems), ["a -> b -> a"]);
}

#[test]
fn three_cycle_is_reported_once_from_its_smallest_id() {
    // A three-unit cycle is found once however the search enters it.
    let specs = [
        spec("x", &["b"], &[], &[]),
        spec("b", &["c"], &[], &[]),
        spec("c", &[], &["a"], &[]),
        spec("a", &[], &[], &["b"]),
    ];
    let (_, problems) = build(&specs);
    assert_eq!(cycle_texts(&specs, &problems), ["b -> c -> a -> b"]);
    assert_eq!(Graph::cycle_members(&problems), [1, 2, 3]);
    let abc = [
        spec("a", &["b"], &[], &[]),
        spec("b", &["c"], &[], &[]),
        spec("c", &["a"], &[], &[]),
    ];
    assert_eq!(cycle_texts(&abc, &build(&abc).1), ["a -> b -> c -> a"]);
}

#[test]
fn disjoint_cycles_are_each_reported_once_in_id_order() {
    // Two separate cycles give two problems, sorted by their smallest member.
    let specs = [
        spec("p", &["q"], &[], &[]),
        spec("a", &["b"], &[], &[]),
        spec("q", &["p"], &["missing"], &[]),
        spec("b", &[], &[], &["a"]),
    ];
    let (_, problems) = build(&specs);
    assert_eq!(
        problems,
        [
            DepProblem::Cycle {
                path: vec![0, 2, 0]
            },
            DepProblem::Cycle {
                path: vec![1, 3, 1]
            },
            DepProblem::MissingWants {
                unit: 2,
                missing: "missing".into()
            },
        ]
    );
    assert_eq!(Graph::cycle_members(&problems), [0, 1, 2, 3]);
}

#[test]
fn removing_cycle_members_leaves_no_cycle() {
    // Cycles inside one component are cut until what is left is acyclic.
    let specs = [
        spec("a", &["b"], &[], &[]),
        spec("b", &["a"], &[], &["c"]),
        spec("c", &["d"], &[], &[]),
        spec("d", &["c"], &[], &["a"]),
    ];
    let (_, problems) = build(&specs);
    assert_eq!(
        cycle_texts(&specs, &problems),
        ["a -> b -> a", "c -> d -> c"]
    );
}

#[test]
fn pull_in_closes_over_requires_and_wants_dependencies_first() {
    // Requires and Wants pull units in, After only orders them, and dependencies come first.
    let specs = [
        spec("web", &["api"], &["cache"], &["metrics"]),
        spec("api", &["db"], &[], &[]),
        spec("cache", &[], &[], &["db"]),
        spec("db", &[], &[], &[]),
        spec("metrics", &[], &[], &[]),
    ];
    let (g, _) = build(&specs);
    let order = g.pull_in(&[0, 0, 99]);
    assert_eq!(order, [3, 1, 2, 0]);
    assert_eq!(g.pull_in(&[2]), [2]);
    assert!(g.pull_in(&[]).is_empty());
}

#[test]
fn pull_in_through_a_cycle_lists_each_unit_once() {
    // A cycle has no dependency order, but pull_in still terminates with every member once.
    let specs = [spec("a", &["b"], &[], &[]), spec("b", &["a"], &[], &[])];
    let (g, _) = build(&specs);
    let mut order = g.pull_in(&[0]);
    order.sort_unstable();
    assert_eq!(order, [0, 1]);
}

#[test]
fn requirers_of_follows_requires_but_not_wants() {
    // Stopping db takes down what Requires it, transitively, but not what only Wants it.
    let specs = [
        spec("db", &[], &[], &[]),
        spec("api", &["db"], &[], &[]),
        spec("web", &["api"], &[], &[]),
        spec("report", &[], &["db"], &[]),
        spec("batch", &[], &["api"], &[]),
    ];
    let (g, _) = build(&specs);
    assert_eq!(g.requirers_of(&[0]), [2, 1, 0]);
    assert_eq!(g.requirers_of(&[3, 99]), [3]);
}

#[test]
fn diamond_orders_the_shared_dependency_first_once() {
    // A unit reached along two paths appears once, before both of its dependents.
    let specs = [
        spec("top", &["left", "right"], &[], &[]),
        spec("left", &["bottom"], &[], &[]),
        spec("right", &["bottom"], &[], &[]),
        spec("bottom", &[], &[], &[]),
    ];
    let (g, problems) = build(&specs);
    assert!(problems.is_empty());
    assert_eq!(g.pull_in(&[0]), [3, 1, 2, 0]);
    assert_eq!(g.requirers_of(&[3]), [0, 1, 2, 3]);
}

#[test]
fn ten_thousand_deep_chain_needs_no_recursion() {
    // A 10 000-deep Requires chain builds, pulls in and stops without overflowing the stack.
    let specs = chain(10_000);
    let (g, problems) = build(&specs);
    assert!(problems.is_empty());
    let order = g.pull_in(&[0]);
    assert_eq!(order.len(), 10_000);
    assert_eq!(order.first(), Some(&9_999));
    assert_eq!(order.last(), Some(&0));
    let down = g.requirers_of(&[9_999]);
    assert_eq!(down.len(), 10_000);
    assert_eq!(down.first(), Some(&0));
}

#[test]
fn ten_thousand_long_cycle_is_one_problem() {
    // Closing the deep chain into a ring gives a single cycle path through every unit.
    let mut specs = chain(10_000);
    specs[9_999].requires.push("u0".into());
    let (g, problems) = build(&specs);
    assert_eq!(problems.len(), 1);
    assert_eq!(Graph::cycle_members(&problems).len(), 10_000);
    assert_eq!(g.pull_in(&[5_000]).len(), 10_000);
}

#[test]
fn cycle_to_string_names_unknown_ids() {
    // An id without a name still renders instead of panicking.
    assert_eq!(cycle_to_string(&[0, 7, 0], &["a"]), "a -> #7 -> a");
    assert_eq!(cycle_to_string(&[], &[]), "");
}

#[test]
fn hand_built_graph_with_bad_ids_does_not_panic() {
    // Queries on an inconsistent graph skip ids that are out of range.
    let g = Graph {
        requires: vec![vec![5]].into(),
        wants: Edges::default(),
        after: vec![vec![5]].into(),
        before: Edges::default(),
        required_by: vec![vec![9]].into(),
        conflicts: Edges::default(),
    };
    assert_eq!(g.pull_in(&[0]), [0]);
    assert_eq!(g.requirers_of(&[0]), [0]);
}

#[test]
fn check_words_missing_requires_and_wants() {
    // A missing Requires is an error naming the file and the directory; a missing Wants a warning naming the unit.
    let specs = [
        spec("web", &["db", "db"], &["cache"], &["nowhere"]),
        spec("ok", &[], &[], &[]),
    ];
    let (_, f) = check(&inputs(&specs), Path::new("/srv/units"));
    assert_eq!(
        f.errors,
        [
            Some(
                "/srv/units/web.service: Requires `db`, but there is no db.service in /srv/units"
                    .to_string()
            ),
            None
        ]
    );
    assert_eq!(
        f.warnings,
        [(
            0,
            "web: Wants `cache`, which does not exist (ignored)".to_string()
        )]
    );
}

#[test]
fn check_puts_a_cycle_on_each_member_once() {
    // Every member of a cycle gets the cycle as a path; a unit outside it gets nothing.
    let specs = [
        spec("a", &["b"], &[], &[]),
        spec("b", &[], &[], &["c"]),
        spec("c", &[], &["a"], &[]),
        spec("d", &["a"], &[], &[]),
    ];
    let (_, f) = check(&inputs(&specs), Path::new("/srv/units"));
    let cycle = Some("dependency cycle: a -> b -> c -> a".to_string());
    assert_eq!(f.errors, [cycle.clone(), cycle.clone(), cycle, None]);
    assert!(f.warnings.is_empty());
}

#[test]
fn check_joins_several_problems_of_one_unit_by_lines() {
    // A unit with a missing Requires that is also in a cycle has both, one per line, in that order.
    let specs = [
        spec("a", &["b", "gone"], &[], &[]),
        spec("b", &["a"], &[], &[]),
    ];
    let (_, f) = check(&inputs(&specs), Path::new("/d"));
    assert_eq!(
        f.errors[0].as_deref(),
        Some(
            "/srv/units/a.service: Requires `gone`, but there is no gone.service in /d\n\
             dependency cycle: a -> b -> a"
        )
    );
    assert_eq!(
        f.errors[1].as_deref(),
        Some("dependency cycle: a -> b -> a")
    );
}

#[test]
fn conflicting_with_a_dependency_is_an_error_naming_the_path() {
    // a -> b -> c with a Conflicts c: an error on a with the path; a
    // conflict named by the dependency counts too (both directions).
    let specs = [
        spec("a", &["b"], &[], &[]),
        spec("b", &[], &["c"], &[]),
        spec("c", &[], &[], &[]),
        spec("d", &["e"], &[], &[]),
        spec("e", &[], &[], &[]),
        spec("f", &[], &[], &[]),
    ];
    let a_conf = vec!["c".to_string()];
    let e_conf = vec!["d".to_string(), "f".to_string()];
    let mut ins = inputs(&specs);
    ins[0].conflicts = &a_conf;
    ins[4].conflicts = &e_conf;
    let (g, f) = check(&ins, Path::new("/srv/units"));
    assert_eq!(g.conflicts[2], [0]);
    assert_eq!(g.conflicts[5], [4]);
    assert_eq!(
        f.errors[0].as_deref(),
        Some("/srv/units/a.service: conflicts with `c`, which it needs: a -> b -> c")
    );
    assert_eq!(
        f.errors[3].as_deref(),
        Some("/srv/units/d.service: conflicts with `e`, which it needs: d -> e")
    );
    for i in [1, 2, 4, 5] {
        assert_eq!(f.errors[i], None, "{i}");
    }
}

#[test]
fn check_of_nothing_finds_nothing() {
    // No units, no problems (and no panic on empty input).
    let (g, f) = check(&[], Path::new("/d"));
    assert!(g.is_empty());
    assert_eq!(f, Findings::default());
}

#[test]
fn edges_keep_each_units_list_in_one_array() {
    let e: Edges = vec![vec![2, 1], vec![], vec![0], vec![]].into();
    assert_eq!(e.len(), 4);
    assert_eq!(&e[0], [2, 1]);
    assert!(e[1].is_empty());
    assert_eq!(e.get(2), Some(&[0][..]));
    assert_eq!(e.get(3), Some(&[][..]));
    assert_eq!(e.get(4), None);
    let all: Vec<&[ServiceId]> = e.iter().collect();
    assert_eq!(all, [&[2, 1][..], &[], &[0], &[]]);
    assert!(Edges::default().is_empty());
    assert_eq!(edges(&e, 9), &[] as &[ServiceId]);
}

#[test]
fn a_kind_no_unit_has_keeps_no_offsets() {
    // Three units, none with an edge of this kind: each has an empty list,
    // and nothing per unit is kept.
    let e: Edges = vec![vec![], vec![], vec![]].into();
    assert_eq!(e.len(), 3);
    assert!(!e.is_empty());
    assert_eq!(e.get(2), Some(&[][..]));
    assert_eq!(e.get(3), None);
    assert_eq!(e.iter().count(), 3);
    assert_eq!(e.ends.capacity(), 0);
}
