//! Stable sorts by a text or a number key, all through two shared sorts.
//!
//! Every `sort_by` of a new element type brings the standard library's
//! whole stable sort along again (about 4 KiB of machine code each), and a
//! static binary of at most 2 MiB (SPEC §9) cannot carry many of them. Here
//! the keys are sorted with their positions, `(key, position)` pairs of
//! two types only, and the elements are then moved into that order: the
//! part that depends on the element type is a few dozen instructions.
//! Equal keys keep their order (the position breaks the tie), as in a
//! stable sort.

/// Sorts `v` by the text `key` gives for each element; stable. (The text
/// outlives the call, so it may borrow from elsewhere: a names table.)
pub fn by_str<'k, T>(v: &mut Vec<T>, key: impl Fn(&T) -> &'k str) {
    let mut keyed: Vec<(&str, usize)> = v.iter().enumerate().map(|(i, t)| (key(t), i)).collect();
    keyed.sort_unstable();
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    permute(v, &order);
}

/// Sorts `v` by the number `key` gives for each element; stable.
pub fn by_num<T>(v: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    let mut keyed: Vec<(u64, usize)> = v.iter().enumerate().map(|(i, t)| (key(t), i)).collect();
    keyed.sort_unstable();
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    permute(v, &order);
}

/// Puts the elements of `v` in `order` (positions in `v`, each once).
fn permute<T>(v: &mut Vec<T>, order: &[usize]) {
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(
        order
            .iter()
            .filter_map(|&i| slots.get_mut(i).and_then(Option::take)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_text_and_keeps_the_order_of_equal_keys() {
        let mut v = vec![("b", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)];
        by_str(&mut v, |t| t.0);
        assert_eq!(v, [("a", 2), ("a", 4), ("b", 1), ("b", 3), ("c", 5)]);
    }

    #[test]
    fn sorts_by_number_and_keeps_the_order_of_equal_keys() {
        let mut v: Vec<(u64, char)> = vec![(3, 'x'), (1, 'y'), (3, 'z'), (0, 'w'), (u64::MAX, 'm')];
        by_num(&mut v, |t| t.0);
        assert_eq!(v, [(0, 'w'), (1, 'y'), (3, 'x'), (3, 'z'), (u64::MAX, 'm')]);
        let mut empty: Vec<String> = Vec::new();
        by_num(&mut empty, |s| s.len() as u64);
        assert!(empty.is_empty());
    }

    #[test]
    fn matches_the_standard_stable_sort() {
        // A fixed pseudo-random sequence with many ties.
        let mut x = 12345u64;
        let v: Vec<(u64, usize)> = (0..500)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 60) % 7, i)
            })
            .collect();
        let mut ours = v.clone();
        by_num(&mut ours, |t| t.0);
        let mut std = v;
        std.sort_by_key(|t| t.0);
        assert_eq!(ours, std);
    }
}
