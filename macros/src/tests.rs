//! The contract between the expansion and `flowtrace::__private` stays
//! narrow: every option combination together names at most 12 items.

use std::collections::BTreeSet;

use proc_macro2::{TokenStream, TokenTree};

/// `(options, function)`: every option, on every shape, plain and `Result`.
const FIXTURES: &[(&str, &str)] = &[
    ("", "async fn f(x: u32) -> u32 { x }"),
    ("", "async fn f(x: u32) -> Result<u32, E> { Ok(x) }"),
    ("", "fn f(x: u32) -> u32 { x }"),
    ("", "fn f(x: u32) -> Result<u32, E> { Ok(x) }"),
    (
        "",
        "fn f(x: u32) -> impl Future<Output = u32> { async move { x } }",
    ),
    (
        "",
        "fn f<'a>(&'a self) -> Pin<Box<dyn Future<Output = Result<u8, E>> + Send + 'a>> { Box::pin(async move { Ok(1) }) }",
    ),
    (
        "name = \"n\", kind = server, skip(y), fields(a = 1, b = %x, c = ?x), capture = debug, redact(x.pin), parent = cx, ret",
        "async fn f(x: u32, y: u8) -> u32 { x }",
    ),
    (
        "follows_from = [a, b], new_trace, skip_all, ret(Debug), crate = ::my::ft",
        "async fn f(x: u32) -> u32 { x }",
    ),
    (
        "ret(Display), err(Debug)",
        "async fn f(x: u32) -> Result<u32, E> { Ok(x) }",
    ),
    (
        "ret, err(Display)",
        "fn f(x: u32) -> Result<u32, E> { Ok(x) }",
    ),
    ("ret, err", "fn f(x: u32) -> MyResult<u32> { Ok(x) }"),
    (
        "kind = client, ret(Debug), fields(a = ?x)",
        "fn f(x: u32) -> u32 { x }",
    ),
    (
        "retries = 3, backoff = fixed, retry_delay = \"5ms\", max_delay = \"1s\", jitter = false, new_trace_after = \"10m\", timeout = \"30s\", cache = x, ret",
        "async fn f(x: u32) -> Result<u32, E> { Ok(x) }",
    ),
    (
        "retries = 3",
        "async fn f(mut x: u32) -> Result<u32, E> { Ok(x) }",
    ),
    (
        "retries = 2, backoff = exponential",
        "fn f(x: u32) -> impl Future<Output = Result<u32, E>> { async move { Ok(x) } }",
    ),
    (
        "timeout = \"1s\"",
        "async fn f(x: u32) -> Result<u32, E> { Ok(x) }",
    ),
    ("cache = x", "async fn f(x: u32) -> u32 { x }"),
    (
        "cache = x, ret",
        "async fn f(x: u32) -> Result<u32, E> { Ok(x) }",
    ),
    (
        "cache = x, err",
        "async fn f(x: u32) -> MyResult<u32> { Ok(x) }",
    ),
    (
        "retries = 1, err(Debug), ret(Display), fields(s = %*s)",
        "async fn f(s: &str) -> Result<u32, E> { Ok(1) }",
    ),
];

/// The names that follow `__private ::`, one by one or in a `use` group.
fn private_items(tokens: TokenStream, found: &mut BTreeSet<String>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Group(group) => private_items(group.stream(), found),
            TokenTree::Ident(ident) if ident == "__private" => {
                let colons = matches!(
                    (tokens.get(i + 1), tokens.get(i + 2)),
                    (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                        if a.as_char() == ':' && b.as_char() == ':'
                );
                match tokens.get(i + 3) {
                    Some(TokenTree::Ident(name)) if colons => {
                        found.insert(name.to_string());
                    }
                    Some(TokenTree::Group(group)) if colons => {
                        let mut expect_name = true;
                        for tree in group.stream() {
                            match tree {
                                TokenTree::Ident(name) if expect_name => {
                                    found.insert(name.to_string());
                                    expect_name = false;
                                }
                                TokenTree::Punct(p) if p.as_char() == ',' => expect_name = true,
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[test]
fn the_expansion_names_at_most_twelve_private_items() {
    let mut found = BTreeSet::new();
    for (args, item) in FIXTURES {
        let tokens: TokenStream = args.parse().expect("options");
        let function: TokenStream = item.parse().expect("function");
        let out = crate::traced2(tokens, function);
        assert!(!out.to_string().contains("compile_error"), "{item}: {out}");
        syn::parse2::<syn::File>(out.clone()).expect("the expansion is an item");
        private_items(out, &mut found);
    }
    assert!(
        found.len() <= 12,
        "{} `__private` items named: {found:?}",
        found.len()
    );
}

#[test]
fn the_counter_sees_single_paths_and_use_groups() {
    let mut found = BTreeSet::new();
    let tokens: TokenStream = "{ ::k::__private::A::new(); use ::k::__private::{B as _, C as _}; }"
        .parse()
        .expect("tokens");
    private_items(tokens, &mut found);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["A", "B", "C"],
        "a guard that counted nothing could not fail"
    );
}

/// The option names in a text: the identifier at the start of each
/// backticked form (`name = "..."` → `name`).
fn option_names(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|form| {
            let name: String = form
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

#[test]
fn the_docs_have_a_row_for_every_option_the_parser_accepts() {
    let parser = include_str!("attr.rs");
    let keywords: BTreeSet<String> = parser
        .split("syn::custom_keyword!(")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(str::to_owned)
        .chain(["crate".to_owned()])
        .collect();
    assert_eq!(
        option_names(crate::attr::ACCEPTED),
        keywords,
        "the error message lists what the parser accepts"
    );
    let documented: BTreeSet<String> = include_str!("lib.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("/// | "))
        .filter_map(|row| row.split(" | ").next())
        .flat_map(option_names)
        .collect();
    let missing: Vec<_> = keywords.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "no row in the options tables of `#[traced]` for {missing:?}"
    );
}
