//! What may be shown of a secret: header values (`OTEL_EXPORTER_OTLP_HEADERS`,
//! `flowtrace replay --header`) never appear in a warning, an error or a
//! `Debug` output. A problem names the header and says what is wrong with it;
//! a list member whose name cannot be told apart from its value is described
//! by its position.

use std::fmt;

use super::parse;

/// In place of a value that is not shown.
pub(crate) const HIDDEN: &str = "<not shown>";

/// What is wrong with header `name` = `value`, naming only the header; `None`
/// when it is valid (`grpc`: `-bin` names are refused, as the value would
/// have to be base64).
pub(crate) fn header_problem(name: &str, value: &str, grpc: bool) -> Option<String> {
    let Some(token) = parse::header_name(name) else {
        return Some(format!(
            "header {}: the name is not a token (letters, digits and !#$%&'*+-.^_`|~)",
            shown_name(name)
        ));
    };
    if grpc && token.ends_with("-bin") {
        return Some(format!(
            "header {token:?}: binary (-bin) metadata is not supported over gRPC"
        ));
    }
    if !parse::header_value(value) {
        return Some(format!(
            "header {token:?}: the value (not shown) has characters other than visible \
             ASCII, spaces and tabs"
        ));
    }
    None
}

/// A malformed member of a `k=v` header list (`position` counts from 1),
/// described without its value: the name when there is an `=`.
pub(crate) fn member_problem(member: &str, position: usize) -> String {
    match member.split_once('=') {
        Some((name, _)) if name.trim().is_empty() => {
            format!("member {position}: the header name is empty")
        }
        Some((name, _)) => match parse::percent_decode(name.trim()) {
            Some(decoded) => format!(
                "header {}: the value (not shown) has a broken percent escape or is not UTF-8",
                shown_name(&decoded)
            ),
            None => format!(
                "member {position}: the header name has a broken percent escape or is not UTF-8"
            ),
        },
        None => format!("member {position} (not shown) has no `=` between name and value"),
    }
}

/// A header name as shown in a problem: quoted, and cut short when long (a
/// value pasted where the name belongs must not be shown whole).
fn shown_name(name: &str) -> String {
    const MAX: usize = 40;
    match name.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}… ({} characters)", &name[..cut], name.chars().count()),
        None => format!("{name:?}"),
    }
}

/// `Debug` for a list of headers: names, values hidden.
pub(crate) struct Headers<'a>(pub(crate) &'a [(String, String)]);

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, _)| (name, HIDDEN)))
            .finish()
    }
}

/// An endpoint URL as shown in errors and `Debug`: credentials in it
/// (`https://user:token@host`) and its query (`?api_key=…`) hidden.
pub(crate) fn url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{HIDDEN}@{host}"),
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?{HIDDEN}"),
        None => tail.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

/// Whether an environment variable holds secrets (its value is not shown).
pub(crate) fn secret_var(name: &str) -> bool {
    name.to_ascii_uppercase().contains("HEADERS")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "sk-CANARY123";

    #[test]
    fn problems_name_the_header_never_the_value() {
        let cases = [
            (CANARY.to_owned(), "member 1 (not shown) has no `=`"),
            (
                format!("=%zz{CANARY}"),
                "member 1: the header name is empty",
            ),
            (
                format!("authorization=%zz{CANARY}"),
                "header \"authorization\": the value (not shown) has a broken percent escape",
            ),
            (
                format!("%zz{CANARY}=v"),
                "member 1: the header name has a broken",
            ),
        ];
        for (member, expected) in cases {
            let problem = member_problem(&member, 1);
            assert!(problem.starts_with(expected), "{member}: {problem}");
            assert!(!problem.contains(CANARY), "{problem}");
        }
        let problem = header_problem("authorization", &format!("Bearer {CANARY}\u{1}"), false);
        let problem = problem.unwrap();
        assert!(problem.starts_with("header \"authorization\": the value (not shown)"));
        assert!(!problem.contains(CANARY), "{problem}");
        let problem = header_problem("x bad", CANARY, false).unwrap();
        assert!(problem.starts_with("header \"x bad\": the name is not a token"));
        assert!(!problem.contains(CANARY), "{problem}");
        assert_eq!(header_problem("x-api-key", CANARY, true), None);
        assert!(
            header_problem("x-bin", CANARY, true)
                .unwrap()
                .contains("-bin")
        );
    }

    #[test]
    fn a_long_name_is_cut() {
        let pasted = format!("Bearer {CANARY}{}", "x".repeat(60));
        let problem = header_problem(&pasted, "v", false).unwrap();
        assert!(problem.contains("characters)"), "{problem}");
        assert!(!problem.contains(&"x".repeat(60)), "{problem}");
    }

    #[test]
    fn urls_lose_their_credentials_and_query() {
        let cases = [
            (
                "http://localhost:4318/v1/traces",
                "http://localhost:4318/v1/traces",
            ),
            (
                "https://ada:sk-CANARY123@collector:4318/v1/traces",
                "https://<not shown>@collector:4318/v1/traces",
            ),
            (
                "https://collector/v1/traces?api_key=sk-CANARY123",
                "https://collector/v1/traces?<not shown>",
            ),
            (
                "http://sk-CANARY123@[::1]:4317",
                "http://<not shown>@[::1]:4317",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(url(input), expected);
        }
    }

    #[test]
    fn debug_shows_names_only() {
        let headers = vec![("authorization".to_owned(), CANARY.to_owned())];
        let debug = format!("{:?}", Headers(&headers));
        assert_eq!(debug, "{\"authorization\": \"<not shown>\"}");
    }
}
