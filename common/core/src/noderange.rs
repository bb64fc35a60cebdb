//! xCAT-style noderanges: expand `rack[1-2]n[01-48],-rack1n07` into names and
//! fold a set of names back into the shortest such string.
//!
//! Grammar (one noderange = atoms separated by top-level commas):
//! - `name`: a literal node name (or, once a resolver knows it, a group);
//! - `pre[1-10]`, `pre[001-100]`, `pre[1,3,5-7]`, `pre[1:10]`: bracket ranges,
//!   any number of them (`rack[1-2]n[01-48]` is the cartesian product);
//!   a start with a leading zero fixes the width (`[08-12]` → `08`…`12`);
//! - `node01-node10`, `node01:node10`: a range between two names that differ
//!   only in one number;
//! - `/regex`: every known name the (unanchored) regex matches;
//! - `-atom`: exclusion (exclusion beats inclusion regardless of order);
//! - `a@b`: intersection of the atoms `a` and `b`.
//!
//! Expansion is pure: names and groups come from a [`Resolver`], so the same
//! code runs in the CLI (no universe) and in the API (the node table).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

/// Upper bound on the work one noderange may cost: every name it produces
/// (included, excluded, or intersected away) and every stored name a regex
/// is tried on counts one. Checked *before* allocating, so neither a typo
/// such as `node[1-100000000]` nor a crafted `n[1-999999,1-999999,...]`,
/// ten exclusions of a huge range or 2,000 regexes can take more than
/// about 200 MB or a second (the API's budget, `expand_within`, is sized to
/// the nodes a request may name and is smaller still).
pub const MAX_EXPANSION: usize = 1_000_000;

/// Regexes are compiled under this size, so a pathological pattern is an
/// error, not seconds of CPU.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// What expanding one noderange may still cost (at most [`MAX_EXPANSION`]),
/// and the known names in natural order, fetched and sorted once for all
/// of its regexes (sorting per regex made 2,000 regexes take seconds).
struct Budget {
    limit: usize,
    left: usize,
    sorted_names: Option<Vec<String>>,
}

impl Budget {
    fn new(limit: usize) -> Budget {
        Budget {
            limit,
            left: limit,
            sorted_names: None,
        }
    }

    fn take(&mut self, n: usize) -> Result<(), NodeRangeError> {
        self.left = self
            .left
            .checked_sub(n)
            .ok_or(NodeRangeError::TooLarge { limit: self.limit })?;
        Ok(())
    }

    fn sorted_names(&mut self, resolver: &dyn Resolver) -> &[String] {
        self.sorted_names.get_or_insert_with(|| {
            let mut all = resolver.all_names();
            all.sort_by_cached_key(|n| natural_key(n));
            all
        })
    }
}

/// Why a noderange could not be expanded. The message names the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeRangeError {
    #[error("noderange is empty")]
    Empty,
    #[error("noderange `{atom}`: {reason}")]
    Syntax { atom: String, reason: String },
    #[error("noderange `{atom}`: invalid regex: {reason}")]
    Regex { atom: String, reason: String },
    #[error(
        "noderange is too large: its ranges, exclusions and regexes together exceed {limit} names"
    )]
    TooLarge { limit: usize },
}

/// Knows which names exist; used for regexes, groups and unknown-name reports.
pub trait Resolver {
    /// Every known node name (only asked for when a regex is present).
    fn all_names(&self) -> Vec<String>;
    /// How many names [`Resolver::all_names`] would give: a regex's cost,
    /// checked before the names are copied.
    fn name_count(&self) -> usize {
        self.all_names().len()
    }
    /// Members of a group, or `None` if `name` is not a group.
    fn group(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
    /// True if `name` is a known node: a known name is taken literally even
    /// when it looks like a range (`n1-n2`).
    fn is_name(&self, _name: &str) -> bool {
        false
    }
}

/// A resolver that knows no names: for client-side expansion.
pub struct NoUniverse;

impl Resolver for NoUniverse {
    fn all_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Expands `range` into names, in first-seen order, without duplicates.
pub fn expand(range: &str, resolver: &dyn Resolver) -> Result<Vec<String>, NodeRangeError> {
    expand_within(range, resolver, MAX_EXPANSION)
}

/// [`expand`] with a smaller work budget than [`MAX_EXPANSION`] (the API
/// sizes it to the nodes one request may name).
pub fn expand_within(
    range: &str,
    resolver: &dyn Resolver,
    budget: usize,
) -> Result<Vec<String>, NodeRangeError> {
    let range = range.trim();
    if range.is_empty() {
        return Err(NodeRangeError::Empty);
    }
    let mut budget = Budget::new(budget.min(MAX_EXPANSION));
    let mut include: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut exclude: HashSet<String> = HashSet::new();
    for item in split_top_level(range, ',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if let Some(rest) = item.strip_prefix('-') {
            exclude.extend(expand_intersection(rest, resolver, &mut budget)?);
        } else {
            for name in expand_intersection(item, resolver, &mut budget)? {
                if seen.insert(name.clone()) {
                    include.push(name);
                    if include.len() > budget.limit {
                        return Err(NodeRangeError::TooLarge {
                            limit: budget.limit,
                        });
                    }
                }
            }
        }
    }
    include.retain(|n| !exclude.contains(n));
    Ok(include)
}

fn expand_intersection(
    item: &str,
    resolver: &dyn Resolver,
    budget: &mut Budget,
) -> Result<Vec<String>, NodeRangeError> {
    let mut parts = split_top_level(item, '@').into_iter();
    let first = parts.next().unwrap_or_default();
    let mut names = expand_atom(first.trim(), resolver, budget)?;
    for part in parts {
        let other: HashSet<String> = expand_atom(part.trim(), resolver, budget)?
            .into_iter()
            .collect();
        names.retain(|n| other.contains(n));
    }
    Ok(names)
}

fn expand_atom(
    atom: &str,
    resolver: &dyn Resolver,
    budget: &mut Budget,
) -> Result<Vec<String>, NodeRangeError> {
    let syntax = |reason: &str| NodeRangeError::Syntax {
        atom: atom.to_string(),
        reason: reason.to_string(),
    };
    if atom.is_empty() {
        return Err(syntax("empty item"));
    }
    if let Some(pattern) = atom.strip_prefix('/') {
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| NodeRangeError::Regex {
                atom: atom.to_string(),
                reason: e.to_string(),
            })?;
        budget.take(resolver.name_count().max(1))?;
        let names: Vec<String> = budget
            .sorted_names(resolver)
            .iter()
            .filter(|n| re.is_match(n))
            .cloned()
            .collect();
        return Ok(names);
    }
    if resolver.is_name(atom) {
        budget.take(1)?;
        return Ok(vec![atom.to_string()]);
    }
    if let Some(members) = resolver.group(atom) {
        budget.take(members.len())?;
        return Ok(members);
    }
    if atom.contains('[') || atom.contains(']') {
        return expand_brackets(atom, budget);
    }
    if let Some(names) = expand_dash_range(atom, budget)? {
        return Ok(names);
    }
    budget.take(1)?;
    Ok(vec![atom.to_string()])
}

/// Splits on `sep` outside of brackets.
fn split_top_level(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// One bracket's worth of numbers as (low, high, width) spans, checked but
/// not yet rendered, so their total can be bounded before any allocation.
fn parse_bracket(atom: &str, body: &str) -> Result<Vec<(u64, u64, usize)>, NodeRangeError> {
    let syntax = |reason: String| NodeRangeError::Syntax {
        atom: atom.to_string(),
        reason,
    };
    let mut out = Vec::new();
    for part in body.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once(['-', ':']) {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !is_num(lo) || !is_num(hi) {
            return Err(syntax(format!(
                "`[{body}]` must hold numbers like 1-10 or 01-10"
            )));
        }
        let width = pad_width(lo);
        let (a, b) = (parse_u64(atom, lo)?, parse_u64(atom, hi)?);
        if a > b {
            return Err(syntax(format!("range {lo}-{hi} runs backwards")));
        }
        out.push((a, b, width));
    }
    Ok(out)
}

/// How many numbers the spans hold (saturating: only compared to limits).
fn span_count(spans: &[(u64, u64, usize)]) -> usize {
    spans.iter().fold(0usize, |n, (a, b, _)| {
        n.saturating_add((b - a) as usize + 1)
    })
}

fn parse_u64(atom: &str, s: &str) -> Result<u64, NodeRangeError> {
    s.parse().map_err(|_| NodeRangeError::Syntax {
        atom: atom.to_string(),
        reason: format!("number {s} is too large"),
    })
}

/// A leading zero fixes the width; otherwise numbers are not padded.
fn pad_width(start: &str) -> usize {
    if start.len() > 1 && start.starts_with('0') {
        start.len()
    } else {
        0
    }
}

fn expand_brackets(atom: &str, budget: &mut Budget) -> Result<Vec<String>, NodeRangeError> {
    let syntax = |reason: &str| NodeRangeError::Syntax {
        atom: atom.to_string(),
        reason: reason.to_string(),
    };
    // Segments alternate: literal, bracket, literal, bracket, ..., literal.
    let mut names = vec![String::new()];
    let mut rest = atom;
    while !rest.is_empty() {
        match rest.find(['[', ']']) {
            Some(i) if rest.as_bytes()[i] == b']' => return Err(syntax("unmatched `]`")),
            Some(i) => {
                let literal = &rest[..i];
                let close = rest[i..].find(']').ok_or_else(|| syntax("unmatched `[`"))? + i;
                let body = &rest[i + 1..close];
                if body.contains('[') {
                    return Err(syntax("nested `[`"));
                }
                let spans = parse_bracket(atom, body)?;
                let count = names.len().saturating_mul(span_count(&spans));
                budget.take(count)?;
                let mut next = Vec::with_capacity(count);
                for n in &names {
                    for &(a, b, width) in &spans {
                        next.extend((a..=b).map(|v| format!("{n}{literal}{v:0width$}")));
                    }
                }
                names = next;
                rest = &rest[close + 1..];
            }
            None => {
                for n in &mut names {
                    n.push_str(rest);
                }
                rest = "";
            }
        }
    }
    Ok(names)
}

/// `node01-node10` / `node01:node10`. Returns `None` when the atom is not a
/// range (a plain name that happens to hold a dash, such as `my-node1`).
fn expand_dash_range(
    atom: &str,
    budget: &mut Budget,
) -> Result<Option<Vec<String>>, NodeRangeError> {
    for (i, c) in atom.char_indices() {
        if c != '-' && c != ':' {
            continue;
        }
        let (left, right) = (&atom[..i], &atom[i + 1..]);
        let (Some(l), Some(r)) = (Tokens::parse(left), Tokens::parse(right)) else {
            continue;
        };
        let Some(dim) = l.single_difference(&r) else {
            continue;
        };
        let (Token::Num(lo), Token::Num(hi)) = (&l.0[dim], &r.0[dim]) else {
            continue;
        };
        let (a, b) = (parse_u64(atom, lo)?, parse_u64(atom, hi)?);
        if a > b {
            continue;
        }
        budget.take(
            usize::try_from(b - a)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        )?;
        let width = pad_width(lo);
        let names = (a..=b)
            .map(|v| l.render_with(dim, &format!("{v:0width$}")))
            .collect();
        return Ok(Some(names));
    }
    Ok(None)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Token {
    Text(String),
    Num(String),
}

/// A name split into alternating text and digit runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tokens(Vec<Token>);

impl Tokens {
    fn parse(s: &str) -> Option<Tokens> {
        if s.is_empty() {
            return None;
        }
        let mut out: Vec<Token> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some(Token::Num(n)) if digit => n.push(c),
                Some(Token::Text(t)) if !digit => t.push(c),
                _ if digit => out.push(Token::Num(c.to_string())),
                _ => out.push(Token::Text(c.to_string())),
            }
        }
        Some(Tokens(out))
    }

    /// Index of the only numeric token in which `self` and `other` differ.
    fn single_difference(&self, other: &Tokens) -> Option<usize> {
        if self.0.len() != other.0.len() {
            return None;
        }
        let mut diff = None;
        for (i, (a, b)) in self.0.iter().zip(&other.0).enumerate() {
            match (a, b) {
                (Token::Text(x), Token::Text(y)) if x == y => {}
                (Token::Num(x), Token::Num(y)) if x == y => {}
                (Token::Num(_), Token::Num(_)) if diff.is_none() => diff = Some(i),
                _ => return None,
            }
        }
        diff
    }

    fn render_with(&self, dim: usize, value: &str) -> String {
        let mut s = String::new();
        for (i, t) in self.0.iter().enumerate() {
            match t {
                _ if i == dim => s.push_str(value),
                Token::Text(x) | Token::Num(x) => s.push_str(x),
            }
        }
        s
    }
}

/// The sort key of [`natural_cmp`].
type NaturalKey = (Vec<(u8, u128, String)>, String);

fn natural_key(name: &str) -> NaturalKey {
    let parts = Tokens::parse(name)
        .map(|t| {
            t.0.iter()
                .map(|tok| match tok {
                    Token::Text(s) => (1, 0, s.clone()),
                    Token::Num(s) => (0, s.parse().unwrap_or(u128::MAX), s.clone()),
                })
                .collect()
        })
        .unwrap_or_default();
    (parts, name.to_string())
}

/// Compares names so that `n2` sorts before `n10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    natural_key(a).cmp(&natural_key(b))
}

/// Folds names into a compact noderange: `node[1-3,7],rack[1-2]n[01-02]`.
///
/// `expand(fold(names))` yields exactly the same set of names.
pub fn fold<S: AsRef<str>>(names: &[S]) -> String {
    // Pass 1: fold the last numeric run of every name.
    // Key: the tokens with the last number replaced by a placeholder, plus the
    // number's pad width (0 = natural).
    let mut groups: BTreeMap<(Vec<Token>, usize), BTreeSet<u64>> = BTreeMap::new();
    let mut literals: BTreeSet<String> = BTreeSet::new();
    for name in names {
        let name = name.as_ref();
        let Some(tokens) = Tokens::parse(name) else {
            continue;
        };
        let last_num = tokens.0.iter().rposition(|t| matches!(t, Token::Num(_)));
        let folded = last_num.and_then(|i| {
            let Token::Num(digits) = &tokens.0[i] else {
                return None;
            };
            let value: u64 = digits.parse().ok()?;
            // A name must not already hold range syntax, or folding would
            // produce a string that expands differently.
            if name.contains(['[', ']', ',', '@', '/', ':']) || name.starts_with('-') {
                return None;
            }
            let mut key = tokens.0.clone();
            key[i] = Token::Num(String::new());
            Some(((key, pad_width(digits)), value))
        });
        match folded {
            Some((key, value)) => {
                groups.entry(key).or_default().insert(value);
            }
            None => {
                literals.insert(name.to_string());
            }
        }
    }
    // Natural numbers whose length equals a padded group's width belong in it
    // (`node01`..`node09` and `node10` fold to `node[01-10]`).
    let padded: Vec<(Vec<Token>, usize)> = groups.keys().filter(|(_, w)| *w > 0).cloned().collect();
    for (key, width) in padded {
        if let Some(natural) = groups.get_mut(&(key.clone(), 0)) {
            let moved: Vec<u64> = natural
                .iter()
                .copied()
                .filter(|v| v.to_string().len() == width)
                .collect();
            for v in &moved {
                natural.remove(v);
            }
            if natural.is_empty() {
                groups.remove(&(key.clone(), 0));
            }
            groups.entry((key, width)).or_default().extend(moved);
        }
    }

    // Pass 2: merge groups that differ only in an earlier number but share the
    // same set for the last one (`rack1n[01-48]` + `rack2n[01-48]`).
    let mut items: Vec<(String, String)> = Vec::new(); // (sort key, text)
    let mut by_outer: BTreeMap<OuterKey, BTreeSet<u64>> = BTreeMap::new();
    for ((key, width), values) in &groups {
        let bracket = render_set(values, *width);
        let outer = key
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, Token::Num(s) if !s.is_empty()))
            .map(|(i, _)| i)
            .next_back();
        let merged = outer.and_then(|i| {
            let Token::Num(digits) = &key[i] else {
                return None;
            };
            let v: u64 = digits.parse().ok()?;
            let mut k = key.clone();
            k[i] = Token::Num(String::new());
            Some(((k, *width, i, bracket.clone(), pad_width(digits)), v))
        });
        match merged {
            Some((k, v)) if values.len() > 1 => {
                by_outer.entry(k).or_default().insert(v);
            }
            _ => items.push(render_item(key, None, &bracket, values.len() == 1)),
        }
    }
    for ((key, _width, outer_idx, bracket, outer_width), outer_values) in &by_outer {
        let outer_bracket = render_set(outer_values, *outer_width);
        items.push(render_item(
            key,
            Some((*outer_idx, &outer_bracket, outer_values.len() == 1)),
            bracket,
            false,
        ));
    }
    for l in literals {
        items.push((l.clone(), l));
    }
    items.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    let mut out = String::new();
    for (i, (_, text)) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(text);
    }
    out
}

/// Groups folded names that differ only in their next-to-last number: the
/// tokens (both numbers blanked), inner width, outer token index, the inner
/// bracket text and the outer width.
type OuterKey = (Vec<Token>, usize, usize, String, usize);

/// Renders a key whose last empty `Num` is the inner bracket and, optionally,
/// whose `outer` index is an outer bracket.
fn render_item(
    key: &[Token],
    outer: Option<(usize, &str, bool)>,
    inner: &str,
    inner_single: bool,
) -> (String, String) {
    let inner_idx = key
        .iter()
        .rposition(|t| matches!(t, Token::Num(s) if s.is_empty()));
    let mut text = String::new();
    let mut sort = String::new();
    for (i, t) in key.iter().enumerate() {
        if Some(i) == inner_idx {
            let plain = inner.trim_start_matches('[').trim_end_matches(']');
            if inner_single {
                text.push_str(plain);
            } else {
                text.push_str(inner);
            }
            sort.push_str(plain.split(['-', ',']).next().unwrap_or(""));
        } else if let Some((oi, ob, single)) = outer.filter(|(oi, _, _)| *oi == i) {
            let _ = oi;
            let plain = ob.trim_start_matches('[').trim_end_matches(']');
            text.push_str(if single { plain } else { ob });
            sort.push_str(plain.split(['-', ',']).next().unwrap_or(""));
        } else {
            let (Token::Text(s) | Token::Num(s)) = t;
            text.push_str(s);
            sort.push_str(s);
        }
    }
    (sort, text)
}

/// `{1,2,3,7}` with width 0 → `[1-3,7]`; a single value → `[7]`.
fn render_set(values: &BTreeSet<u64>, width: usize) -> String {
    let mut out = String::from("[");
    let mut iter = values.iter().copied().peekable();
    let mut first = true;
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        if !first {
            out.push(',');
        }
        first = false;
        if start == end {
            let _ = write!(out, "{start:0width$}");
        } else {
            let _ = write!(out, "{start:0width$}-{end:0width$}");
        }
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names(Vec<&'static str>);
    impl Resolver for Names {
        fn all_names(&self) -> Vec<String> {
            self.0.iter().map(|s| s.to_string()).collect()
        }
        fn group(&self, name: &str) -> Option<Vec<String>> {
            (name == "compute").then(|| vec!["n1".into(), "n3".into()])
        }
    }

    fn check(range: &str, expected: &[&str]) {
        let got = expand(range, &Names(vec!["n1", "n2", "n3", "n10", "gpu1"])).unwrap();
        assert_eq!(got, expected, "expanding {range}");
    }

    #[test]
    fn expands_the_documented_forms() {
        check("node[1-3]", &["node1", "node2", "node3"]);
        check("node[08-11]", &["node08", "node09", "node10", "node11"]);
        check("node[1:2]", &["node1", "node2"]);
        check("node[1,3,5-6]", &["node1", "node3", "node5", "node6"]);
        check("node01-node03", &["node01", "node02", "node03"]);
        check("node1:node2", &["node1", "node2"]);
        check(
            "rack[1-2]n[01-02]",
            &["rack1n01", "rack1n02", "rack2n01", "rack2n02"],
        );
        check("a,b,a", &["a", "b"]);
        check("node[1-5],-node[2-3]", &["node1", "node4", "node5"]);
        check("-node2,node[1-3]", &["node1", "node3"]);
        check("node[1-5]@node[4-9]", &["node4", "node5"]);
        check("/^n\\d$", &["n1", "n2", "n3"]);
        check("compute", &["n1", "n3"]);
        check("compute@/n[12]", &["n1"]);
        check("my-node1", &["my-node1"]);
        check("n[1-2]-suffix", &["n1-suffix", "n2-suffix"]);
        check("x[1-2]y", &["x1y", "x2y"]);
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "",
            "node[1-",
            "node]1[",
            "node[a-b]",
            "node[5-1]",
            "/(",
            "a,,@",
        ] {
            assert!(expand(bad, &NoUniverse).is_err(), "{bad} should fail");
        }
        assert_eq!(
            expand("n[1-99999999]", &NoUniverse),
            Err(NodeRangeError::TooLarge {
                limit: MAX_EXPANSION
            })
        );
    }

    /// The review's shapes: every part small, the whole huge. Each is
    /// refused before its names are made.
    #[test]
    fn the_total_is_bounded_not_each_part() {
        let parts = ["1-999999"; 10].join(",");
        assert_eq!(
            expand(&format!("n[{parts}]"), &NoUniverse),
            Err(NodeRangeError::TooLarge {
                limit: MAX_EXPANSION
            })
        );
        let mut range = "a[1-999999]".to_string();
        for _ in 0..10 {
            range.push_str(",-a[1-999999]");
        }
        assert_eq!(
            expand(&range, &NoUniverse),
            Err(NodeRangeError::TooLarge {
                limit: MAX_EXPANSION
            })
        );
        assert_eq!(
            expand("n[1-999]@n[1-999999],m[1-999]@m[1-999999]", &NoUniverse),
            Err(NodeRangeError::TooLarge {
                limit: MAX_EXPANSION
            })
        );
        struct Many(Vec<String>);
        impl Resolver for Many {
            fn all_names(&self) -> Vec<String> {
                self.0.clone()
            }
        }
        let universe = Many((0..5000).map(|i| format!("n{i}")).collect());
        let regexes = ["/n1"; 2000].join(",");
        assert_eq!(
            expand(&regexes, &universe),
            Err(NodeRangeError::TooLarge {
                limit: MAX_EXPANSION
            })
        );
        // Within the budget, the same shapes still work.
        assert_eq!(expand("n[1-1000,1-1000]", &NoUniverse).unwrap().len(), 1000);
        assert_eq!(
            expand(&["/n1"; 20].join(","), &universe).unwrap().len(),
            1111
        );
    }

    #[test]
    fn folds_compactly() {
        let names: Vec<String> = expand("node[1-10],node15", &NoUniverse).unwrap();
        assert_eq!(fold(&names), "node[1-10,15]");
        let names = expand("rack[1-2]n[01-48]", &NoUniverse).unwrap();
        assert_eq!(fold(&names), "rack[1-2]n[01-48]");
        assert_eq!(fold(&["node01", "node02", "node10"]), "node[01-02,10]");
        assert_eq!(fold(&["a", "node1", "b"]), "a,b,node1");
        assert_eq!(fold(&["node7"]), "node7");
        assert_eq!(fold(&["node1", "node01"]), "node01,node1");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            (
                prop::sample::select(vec!["node", "rack", "r", "gpu-", "cn"]),
                0u32..120,
                prop::sample::select(vec![0usize, 2, 3]),
                prop::option::of((prop::sample::select(vec!["n", "s", "-x"]), 0u32..20)),
            )
                .prop_map(|(p, n, w, inner)| {
                    let mut s = format!("{p}{n:0w$}");
                    if let Some((sep, m)) = inner {
                        s.push_str(&format!("{sep}{m:02}"));
                    }
                    s
                })
        }

        proptest! {
            /// Any text at all: a value or an error, never a panic, and
            /// never an unbounded expansion.
            #[test]
            fn arbitrary_input_never_panics(text in "\\PC{0,40}|[a-z0-9\\[\\]\\-,:@/^+.!]{0,40}") {
                if let Ok(names) = expand(&text, &NoUniverse) {
                    prop_assert!(names.len() <= 1_000_000);
                }
            }

            #[test]
            fn expand_of_fold_is_identity(names in prop::collection::btree_set(name(), 0..200)) {
                let folded = fold(&names.iter().collect::<Vec<_>>());
                if names.is_empty() {
                    prop_assert_eq!(folded, "");
                } else {
                    let back: BTreeSet<String> =
                        expand(&folded, &NoUniverse).unwrap().into_iter().collect();
                    prop_assert_eq!(back, names, "folded: {}", folded);
                }
            }
        }
    }
}
