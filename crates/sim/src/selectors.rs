//! Label selectors and field selectors as the API server parses and evaluates them
//! (`?labelSelector=` and `?fieldSelector=` on list and watch).

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// A selector string the API server would reject with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector does not follow the grammar.
    #[error("unable to parse requirement: {0}")]
    ParseLabel(String),
    /// A label key is not a valid qualified name.
    #[error("unable to parse requirement: key: Invalid value: {key:?}: {reason}")]
    ValidateLabelKey { key: String, reason: &'static str },
    /// A label value is not valid.
    #[error("unable to parse requirement: values[0][{key}]: Invalid value: {value:?}: {reason}")]
    ValidateLabelValue {
        key: String,
        value: String,
        reason: &'static str,
    },
    /// A field selector term has no operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    ParseField { selector: String, term: String },
}

/// The operator of one label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelOp {
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

/// One `key op values` term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: LabelOp,
}

impl Requirement {
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .and_then(Value::as_str);
        match (&self.op, value) {
            (LabelOp::Exists, v) => v.is_some(),
            (LabelOp::DoesNotExist, v) => v.is_none(),
            (LabelOp::In(set), Some(v)) => set.contains(v),
            (LabelOp::In(_), None) => false,
            (LabelOp::NotIn(set), Some(v)) => !set.contains(v),
            (LabelOp::NotIn(_), None) => true,
            (LabelOp::Gt(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v > *n),
            (LabelOp::Lt(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v < *n),
            (LabelOp::Gt(_) | LabelOp::Lt(_), None) => false,
        }
    }
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the string form (`a=b,c in (x,y),!d`), as `labels.Parse` does.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let tokens = lex(s);
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        if parser.peek() == &Token::End {
            return Ok(Self { requirements });
        }
        // Each iteration consumes at least one token, so the loop ends with the input.
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                Token::End => break,
                Token::Comma => {
                    if matches!(parser.peek(), Token::End | Token::Comma) {
                        return Err(parse_error("found ',', expected: identifier or '!'"));
                    }
                }
                t => {
                    return Err(parse_error(&format!(
                        "found '{}', expected: ',' or 'end of string'",
                        t.text()
                    )));
                }
            }
        }
        Ok(Self { requirements })
    }

    /// Whether `labels` (an object's `metadata.labels`, absent when `None`) satisfies
    /// every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

fn parse_error(message: &str) -> SelectorError {
    SelectorError::ParseLabel(message.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    In,
    NotIn,
    Bang,
    NotEquals,
    Equals,
    DoubleEquals,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Ident(s) => s,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Bang => "!",
            Token::NotEquals => "!=",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
            Token::End => "end of string",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_special(c) {
            let two = chars.get(i + 1).copied();
            let (token, len) = match (c, two) {
                ('!', Some('=')) => (Token::NotEquals, 2),
                ('=', Some('=')) => (Token::DoubleEquals, 2),
                ('!', _) => (Token::Bang, 1),
                ('=', _) => (Token::Equals, 1),
                ('>', _) => (Token::Gt, 1),
                ('<', _) => (Token::Lt, 1),
                ('(', _) => (Token::Open, 1),
                (')', _) => (Token::Close, 1),
                _ => (Token::Comma, 1),
            };
            tokens.push(token);
            i += len;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(match word.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Ident(word),
            });
        }
    }
    tokens.push(Token::End);
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.pos = (self.pos + 1).min(self.tokens.len());
        t
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let negated = self.peek() == &Token::Bang;
        if negated {
            self.next();
        }
        let key = match self.next() {
            Token::Ident(k) => k,
            t => {
                return Err(parse_error(&format!(
                    "found '{}', expected: identifier",
                    t.text()
                )));
            }
        };
        validate_key(&key)?;
        if negated {
            return Ok(Requirement {
                key,
                op: LabelOp::DoesNotExist,
            });
        }
        if matches!(self.peek(), Token::Comma | Token::End) {
            return Ok(Requirement {
                key,
                op: LabelOp::Exists,
            });
        }
        let op = self.next();
        let op = match op {
            Token::Equals | Token::DoubleEquals => LabelOp::In(self.exact_value(&key)?),
            Token::NotEquals => LabelOp::NotIn(self.exact_value(&key)?),
            Token::In => LabelOp::In(self.values(&key)?),
            Token::NotIn => LabelOp::NotIn(self.values(&key)?),
            Token::Gt | Token::Lt => {
                let value = self
                    .exact_value(&key)?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                let n = value.parse::<i64>().map_err(|_| {
                    parse_error(&format!(
                        "for 'Gt', 'Lt' operators, the value must be an integer: {value:?}"
                    ))
                })?;
                if op == Token::Gt {
                    LabelOp::Gt(n)
                } else {
                    LabelOp::Lt(n)
                }
            }
            t => {
                return Err(parse_error(&format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.text()
                )));
            }
        };
        Ok(Requirement { key, op })
    }

    fn exact_value(&mut self, key: &str) -> Result<BTreeSet<String>, SelectorError> {
        let value = match self.peek() {
            Token::Comma | Token::End => String::new(),
            Token::Ident(v) => {
                let v = v.clone();
                self.next();
                v
            }
            t => {
                return Err(parse_error(&format!(
                    "found '{}', expected: identifier",
                    t.text()
                )));
            }
        };
        validate_value(key, &value)?;
        Ok(BTreeSet::from([value]))
    }

    fn values(&mut self, key: &str) -> Result<BTreeSet<String>, SelectorError> {
        if self.next() != Token::Open {
            return Err(parse_error("found token, expected: '('"));
        }
        let mut set = BTreeSet::new();
        if self.peek() == &Token::Close {
            self.next();
            set.insert(String::new());
            return Ok(set);
        }
        // Alternates value and comma; each iteration consumes at least one token.
        let mut expect_value = true;
        loop {
            match self.next() {
                Token::Ident(v) if expect_value => {
                    validate_value(key, &v)?;
                    set.insert(v);
                    expect_value = false;
                }
                Token::Comma => {
                    if expect_value {
                        set.insert(String::new());
                    }
                    expect_value = true;
                }
                Token::Close => {
                    if expect_value {
                        set.insert(String::new());
                    }
                    return Ok(set);
                }
                t => {
                    return Err(parse_error(&format!(
                        "found '{}', expected: ',', ')' or identifier",
                        t.text()
                    )));
                }
            }
        }
    }
}

fn is_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.first()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.last()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// Validates a label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters.
fn validate_key(key: &str) -> Result<(), SelectorError> {
    let err = |reason| {
        Err(SelectorError::ValidateLabelKey {
            key: key.to_owned(),
            reason,
        })
    };
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if !is_dns_subdomain(prefix) {
                return err("prefix part must be a lowercase RFC 1123 subdomain");
            }
            name
        }
        None => key,
    };
    if name.len() > 63 {
        return err("name part must be no more than 63 characters");
    }
    if !is_name_part(name) {
        return err(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

fn validate_value(key: &str, value: &str) -> Result<(), SelectorError> {
    let reason = if value.len() > 63 {
        "must be no more than 63 characters"
    } else if !value.is_empty() && !is_name_part(value) {
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    } else {
        return Ok(());
    };
    Err(SelectorError::ValidateLabelValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    })
}

/// One `path op value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    path: String,
    value: String,
    equal: bool,
}

/// A parsed field selector: all terms must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses `path=value,path!=value` (`==` is `=`; `\,`, `\=` and `\\` escape), as
    /// `fields.ParseSelector` does.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.is_empty() {
                continue;
            }
            let Some((path, op, value)) = split_term(&term) else {
                return Err(SelectorError::ParseField {
                    selector: s.to_owned(),
                    term,
                });
            };
            terms.push(FieldTerm {
                path: unescape(path),
                value: unescape(value),
                equal: op != "!=",
            });
        }
        Ok(Self { terms })
    }

    /// Whether `obj` satisfies every term. A missing field reads as the empty string
    /// (booleans the server always serializes read as `false`, counters as `0`).
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (field_value(obj, &t.path) == t.value) == t.equal)
    }

    /// The field paths the selector uses, so callers can reject unsupported ones.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.path.as_str())
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Whether the real API server supports field selection on `field` for the built-in
/// kind (custom resources support `metadata.name` and `metadata.namespace`).
pub fn field_label_supported(group: &str, kind: &str, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match (group, kind) {
        ("", "Pod") => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.podIPs"
                | "status.nominatedNodeName"
        ),
        ("", "Event") => {
            field.starts_with("involvedObject.")
                || matches!(field, "reason" | "reportingComponent" | "source" | "type")
        }
        ("", "Secret") => field == "type",
        ("", "Namespace") => field == "status.phase",
        ("", "Node") => field == "spec.unschedulable",
        ("", "ReplicationController") | ("apps", "ReplicaSet") => field == "status.replicas",
        ("batch", "Job") => field == "status.successful",
        ("certificates.k8s.io", "CertificateSigningRequest") => field == "spec.signerName",
        _ => false,
    }
}

fn field_value(obj: &Value, path: &str) -> String {
    let lookup = if path == "source" {
        "source.component"
    } else {
        path
    };
    let mut node = obj;
    for part in lookup.split('.') {
        match node.get(part) {
            Some(next) => node = next,
            None => {
                return match path {
                    "spec.hostNetwork" | "spec.unschedulable" => "false".to_owned(),
                    "status.replicas" | "status.successful" => "0".to_owned(),
                    _ => String::new(),
                };
            }
        }
    }
    match node {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Splits at `sep` not preceded by a backslash escape, keeping the escapes.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            current.push(c);
            if let Some(next) = chars.next() {
                current.push(next);
            }
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

/// Finds the first unescaped operator (`!=`, `==`, `=`) in a term.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    #[test]
    fn equality_and_inequality() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        assert!(sel("app=web").matches(Some(&l)));
        assert!(sel("app==web").matches(Some(&l)));
        assert!(sel(" app = web , tier=front ").matches(Some(&l)));
        assert!(!sel("app=db").matches(Some(&l)));
        assert!(sel("app!=db").matches(Some(&l)));
        assert!(!sel("app!=web").matches(Some(&l)));
        // `!=` matches objects without the label.
        assert!(sel("env!=prod").matches(Some(&l)));
        assert!(sel("env!=prod").matches(None));
        assert!(!sel("app=web").matches(None));
    }

    #[test]
    fn set_based_requirements() {
        let l = labels(json!({"app": "web", "env": "prod"}));
        assert!(sel("env in (prod, staging)").matches(Some(&l)));
        assert!(!sel("env in (dev)").matches(Some(&l)));
        assert!(sel("env notin (dev,qa)").matches(Some(&l)));
        assert!(sel("zone notin (a)").matches(Some(&l)));
        assert!(sel("app,env in (prod,dev),!zone").matches(Some(&l)));
        assert!(!sel("!app").matches(Some(&l)));
        assert!(!sel("zone").matches(Some(&l)));
        assert_eq!(sel("a in (x,y),b").requirements.len(), 2);
    }

    #[test]
    fn empty_values_and_empty_selector() {
        let l = labels(json!({"a": ""}));
        assert!(sel("a=").matches(Some(&l)));
        assert!(sel("a in ()").matches(Some(&l)));
        assert!(sel("").is_empty());
        assert!(sel("   ").matches(None));
        assert!(!sel("a").is_empty());
    }

    #[test]
    fn numeric_comparisons() {
        let l = labels(json!({"size": "10"}));
        assert!(sel("size>5").matches(Some(&l)));
        assert!(!sel("size<5").matches(Some(&l)));
        assert!(LabelSelector::parse("size>x").is_err());
    }

    #[test]
    fn invalid_selectors_are_rejected() {
        for bad in [
            "a=b=c",
            "a in x",
            "a in (x",
            "!",
            "a,",
            ",a",
            "a b",
            "-a=b",
            "a=-b",
            "a/b/c=d",
            "UPPER.example.com/x=y",
            "in=x",
        ] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
        let long = "x".repeat(64);
        assert!(LabelSelector::parse(&format!("{long}=a")).is_err());
        assert!(LabelSelector::parse(&format!("a={long}")).is_err());
        assert!(LabelSelector::parse("app.kubernetes.io/name=web").is_ok());
    }

    #[test]
    fn field_selectors_match_object_paths() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let f = |s| FieldSelector::parse(s).unwrap();
        assert!(f("metadata.name=p").matches(&pod));
        assert!(f("metadata.name==p,metadata.namespace=ns").matches(&pod));
        assert!(f("status.phase!=Pending").matches(&pod));
        assert!(!f("spec.nodeName=n2").matches(&pod));
        assert!(f("spec.schedulerName=").matches(&pod));
        assert!(f("spec.hostNetwork=false").matches(&pod));
        assert!(f("").matches(&pod));
        assert!(f("").is_empty());
        assert_eq!(f("a=b,c!=d").fields().collect::<Vec<_>>(), ["a", "c"]);
        let event = json!({"involvedObject": {"name": "x"}, "source": {"component": "kubelet"}});
        assert!(f("involvedObject.name=x,source=kubelet").matches(&event));
        let rs = json!({"status": {"replicas": 3}});
        assert!(f("status.replicas=3").matches(&rs));
        assert!(f("status.replicas!=0").matches(&rs));
    }

    #[test]
    fn field_selector_escapes_and_errors() {
        let obj = json!({"metadata": {"name": "a,b=c"}});
        assert!(
            FieldSelector::parse(r"metadata.name=a\,b\=c")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(field_label_supported("", "Secret", "type"));
        assert!(field_label_supported("apps", "Deployment", "metadata.name"));
        assert!(!field_label_supported(
            "apps",
            "Deployment",
            "spec.replicas"
        ));
    }

    proptest::proptest! {
        #[test]
        fn equality_selector_round_trips(k in "k[a-z0-9]{0,10}", v in "[a-z0-9]{1,10}") {
            let l = labels(json!({k.clone(): v.clone()}));
            let (eq, ne, set) = (format!("{k}={v}"), format!("{k}!={v}"), format!("{k} in ({v},other)"));
            proptest::prop_assert!(sel(&eq).matches(Some(&l)));
            proptest::prop_assert!(!sel(&ne).matches(Some(&l)));
            proptest::prop_assert!(sel(&set).matches(Some(&l)));
        }
    }
}
