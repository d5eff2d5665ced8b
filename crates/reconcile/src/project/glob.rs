//! The glob matcher behind AppProject rules: Argo CD's two dialects, gobwas/glob (source
//! repositories and destinations: `*`, `**`, `?`, `[...]`, `{a,b}`, `\` escapes, with an
//! optional separator that `*` and `?` do not cross) and Go's `path/filepath.Match`
//! (resource group/kind lists: no alternatives, `/` is the separator).
//!
//! A pattern that does not parse matches nothing, as in Argo CD (which logs the compile
//! error and returns false). Matching simulates the pattern as an automaton, so it is
//! linear in `pattern × value` whatever the number of stars.

/// At most this many alternatives after expanding `{a,b}` groups; more makes the
/// pattern invalid (no match) instead of allocating without bound.
const MAX_ALTERNATIVES: usize = 256;

/// Which syntax to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// gobwas/glob: `{a,b}` alternatives and `**`.
    Gobwas,
    /// Go `filepath.Match`: no alternatives; `**` is just two stars.
    Filepath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character other than the separator.
    Any,
    /// `*`: any run of characters other than the separator.
    Star,
    /// `**` (gobwas): any run of characters.
    SuperStar,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Whether `value` matches `pattern` in `dialect`; `separator` is the character `*` and
/// `?` do not match (none: they match anything).
pub(crate) fn glob_match(
    pattern: &str,
    value: &str,
    dialect: Dialect,
    separator: Option<char>,
) -> bool {
    let Some(alternatives) = parse(pattern, dialect) else {
        return false;
    };
    alternatives
        .iter()
        .any(|tokens| run(tokens, value, separator))
}

fn parse(pattern: &str, dialect: Dialect) -> Option<Vec<Vec<Token>>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let alternatives = parse_sequence(&chars, &mut pos, dialect, false)?;
    (pos == chars.len()).then_some(alternatives)
}

/// Parses until the end of input, or (inside braces) until an unconsumed `,` or `}`.
/// Returns every expansion of the sequence.
fn parse_sequence(
    chars: &[char],
    pos: &mut usize,
    dialect: Dialect,
    in_braces: bool,
) -> Option<Vec<Vec<Token>>> {
    let mut expansions: Vec<Vec<Token>> = vec![Vec::new()];
    while let Some(&c) = chars.get(*pos) {
        if in_braces && (c == ',' || c == '}') {
            break;
        }
        *pos += 1;
        let token = match c {
            '\\' => {
                let escaped = *chars.get(*pos)?;
                *pos += 1;
                Token::Literal(escaped)
            }
            '?' => Token::Any,
            '*' if dialect == Dialect::Gobwas && chars.get(*pos) == Some(&'*') => {
                *pos += 1;
                Token::SuperStar
            }
            '*' => Token::Star,
            '[' => parse_class(chars, pos)?,
            '{' if dialect == Dialect::Gobwas => {
                let options = parse_braces(chars, pos, dialect)?;
                let mut next = Vec::new();
                for prefix in &expansions {
                    for option in &options {
                        next.push(prefix.iter().chain(option).cloned().collect());
                    }
                }
                if next.len() > MAX_ALTERNATIVES {
                    return None;
                }
                expansions = next;
                continue;
            }
            other => Token::Literal(other),
        };
        for expansion in &mut expansions {
            expansion.push(token.clone());
        }
    }
    Some(expansions)
}

/// Parses `a,b,c}` (the `{` already consumed) into the union of the options' expansions.
fn parse_braces(chars: &[char], pos: &mut usize, dialect: Dialect) -> Option<Vec<Vec<Token>>> {
    let mut options = Vec::new();
    loop {
        options.extend(parse_sequence(chars, pos, dialect, true)?);
        if options.len() > MAX_ALTERNATIVES {
            return None;
        }
        match chars.get(*pos) {
            Some(',') => *pos += 1,
            Some('}') => {
                *pos += 1;
                return Some(options);
            }
            _ => return None,
        }
    }
}

/// Parses `...]` (the `[` already consumed): `!` or `^` negates, `a-z` ranges, `\`
/// escapes. An empty or unterminated class is invalid.
fn parse_class(chars: &[char], pos: &mut usize) -> Option<Token> {
    let mut negated = false;
    if matches!(chars.get(*pos), Some('!' | '^')) {
        negated = true;
        *pos += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let mut low = *chars.get(*pos)?;
        *pos += 1;
        if low == ']' && !ranges.is_empty() {
            return Some(Token::Class { negated, ranges });
        }
        if low == ']' {
            return None;
        }
        if low == '\\' {
            low = *chars.get(*pos)?;
            *pos += 1;
        }
        let mut high = low;
        if chars.get(*pos) == Some(&'-') && chars.get(*pos + 1).is_some_and(|&c| c != ']') {
            high = chars[*pos + 1];
            *pos += 2;
            if high == '\\' {
                high = *chars.get(*pos)?;
                *pos += 1;
            }
            if high < low {
                return None;
            }
        }
        ranges.push((low, high));
    }
}

/// Runs the token list as an automaton over `value`: the state set holds every pattern
/// position reachable after the characters read so far.
fn run(tokens: &[Token], value: &str, separator: Option<char>) -> bool {
    let mut current = vec![false; tokens.len() + 1];
    current[0] = true;
    close_over_stars(tokens, &mut current);
    for c in value.chars() {
        let mut next = vec![false; tokens.len() + 1];
        let plain = Some(c) != separator;
        for (index, token) in tokens.iter().enumerate() {
            if !current[index] {
                continue;
            }
            match token {
                Token::Literal(l) if *l == c => next[index + 1] = true,
                Token::Any if plain => next[index + 1] = true,
                Token::Star if plain => next[index] = true,
                Token::SuperStar => next[index] = true,
                Token::Class { negated, ranges } => {
                    let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                    if inside != *negated {
                        next[index + 1] = true;
                    }
                }
                _ => {}
            }
        }
        close_over_stars(tokens, &mut next);
        if !next.contains(&true) {
            return false;
        }
        current = next;
    }
    current[tokens.len()]
}

/// A star may match nothing: every state before a star also reaches the state after it.
fn close_over_stars(tokens: &[Token], states: &mut [bool]) {
    for (index, token) in tokens.iter().enumerate() {
        if states[index] && matches!(token, Token::Star | Token::SuperStar) {
            states[index + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gobwas(pattern: &str, value: &str) -> bool {
        glob_match(pattern, value, Dialect::Gobwas, Some('/'))
    }

    #[test]
    fn star_stays_within_a_segment_and_double_star_crosses() {
        assert!(gobwas(
            "https://github.com/argoproj/*",
            "https://github.com/argoproj/cd"
        ));
        assert!(!gobwas(
            "https://gitlab.com/group/*",
            "https://gitlab.com/group/repo/owner"
        ));
        assert!(gobwas(
            "https://gitlab.com/group/*/*",
            "https://gitlab.com/group/repo/owner"
        ));
        assert!(gobwas(
            "https://gitlab.com/group/**",
            "https://gitlab.com/group/a/b/c"
        ));
        assert!(!gobwas("a*b*c*d", "aXbYYc/d"));
        assert!(glob_match("team-*", "team-a/b", Dialect::Gobwas, None));
    }

    #[test]
    fn classes_alternatives_and_escapes() {
        assert!(gobwas("ns-[a-c]", "ns-b"));
        assert!(!gobwas("ns-[!a-c]", "ns-b"));
        assert!(gobwas("ns-[^a-c]", "ns-d"));
        assert!(gobwas("{prod,stage}-*", "stage-eu"));
        assert!(!gobwas("{prod,stage}-*", "dev-eu"));
        assert!(gobwas("a{b,{c,d}}e", "ade"));
        assert!(gobwas(r"literal\*", "literal*"));
        assert!(!gobwas(r"literal\*", "literalx"));
        assert!(gobwas("a?c", "abc") && !gobwas("a?c", "a/c"));
    }

    #[test]
    fn invalid_patterns_match_nothing() {
        assert!(!gobwas("[abc", "a"));
        assert!(!gobwas("{a,b", "a"));
        assert!(!gobwas("trailing\\", "trailing"));
        assert!(!gobwas("[]", "]"));
        assert!(!gobwas("[z-a]", "m"));
        let many = "{a,b}".repeat(9);
        assert!(!gobwas(&many, &"a".repeat(9)));
    }

    #[test]
    fn filepath_dialect_takes_braces_literally() {
        assert!(glob_match("{a,b}", "{a,b}", Dialect::Filepath, Some('/')));
        assert!(!glob_match("{a,b}", "a", Dialect::Filepath, Some('/')));
        assert!(glob_match("*", "Deployment", Dialect::Filepath, Some('/')));
        assert!(glob_match("", "", Dialect::Filepath, Some('/')));
        assert!(!glob_match("", "apps", Dialect::Filepath, Some('/')));
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(40) + "b";
        let value = "a".repeat(4000);
        assert!(!gobwas(&pattern, &value));
    }
}
