//! The arguments of `#[runnel::main(...)]` and `#[runnel::test(...)]`.
//!
//! Grammar: a comma-separated list of `name = value`, trailing comma allowed.
//!
//! | name             | value                                   | main default      | test default |
//! | ---------------- | --------------------------------------- | ----------------- | ------------ |
//! | `worker_threads` | integer literal ≥ 1                     | builder's (1/CPU) | 2            |
//! | `flavor`         | `"multi_thread"` or `"current_thread"`  | `"multi_thread"`  | `"multi_thread"` |
//! | `on_deadlock`    | `"panic"`, `"report"` or `"ignore"`      | builder's (panic) | `"panic"`    |
//! | `crate`          | string holding a path to the runnel crate | `::runnel`      | `::runnel`   |
//!
//! `flavor = "current_thread"` builds `Builder::new_current_thread()` (tasks run on the
//! thread in `block_on`); `worker_threads` is then an error (it would have no effect).
//!
//! Tests default to two workers so that every test exercises stealing, and to
//! `"panic"` so that a test that would hang fails at once with the deadlock report.
//!
//! Every mistake is reported at the token that is wrong, with a message that says
//! what to write instead. Errors in independent arguments are all reported at once
//! (combined), so the user fixes them in one round.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Lit, LitInt, LitStr, Token};

/// Which macro is being expanded; it decides the defaults and the wording of errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    /// The attribute as the user writes it, for error messages.
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Kind::Main => "#[runnel::main]",
            Kind::Test => "#[runnel::test]",
        }
    }
}

/// The facade's `OnDeadlock` variants, by the name the user spells in a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnDeadlock {
    Panic,
    Report,
    Ignore,
}

impl OnDeadlock {
    const ALL: [(&'static str, OnDeadlock); 3] = [
        ("panic", OnDeadlock::Panic),
        ("report", OnDeadlock::Report),
        ("ignore", OnDeadlock::Ignore),
    ];

    /// The variant name in `<crate>::OnDeadlock::<variant>`.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            OnDeadlock::Panic => "Panic",
            OnDeadlock::Report => "Report",
            OnDeadlock::Ignore => "Ignore",
        }
    }

    /// The exact spelling, or a case-insensitive match to suggest.
    fn lookup(name: &str) -> Result<OnDeadlock, Option<&'static str>> {
        if let Some((_, mode)) = Self::ALL.iter().find(|(s, _)| *s == name) {
            return Ok(*mode);
        }
        Err(Self::ALL
            .iter()
            .map(|(s, _)| *s)
            .find(|s| s.eq_ignore_ascii_case(name)))
    }
}

/// A value together with the span the user wrote it at, so the expansion can point
/// errors (say, a path that does not resolve) back at it.
#[derive(Clone, Debug)]
pub(crate) struct WithSpan<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// The parsed arguments, defaults applied.
#[derive(Clone)]
pub(crate) struct Config {
    /// `None`: leave it to the builder (one worker per CPU).
    pub(crate) worker_threads: Option<WithSpan<usize>>,
    /// `None`: leave it to the builder (panic).
    pub(crate) on_deadlock: Option<WithSpan<OnDeadlock>>,
    /// `flavor = "current_thread"`.
    pub(crate) current_thread: bool,
    /// The path through which runnel's items are named in the expansion.
    pub(crate) crate_path: syn::Path,
}

/// Workers of a `#[runnel::test]` runtime unless told otherwise: two, so that tests
/// exercise work stealing and cross-thread wakeups.
pub(crate) const TEST_WORKER_THREADS: usize = 2;

const VALID_NAMES: [&str; 4] = ["worker_threads", "flavor", "on_deadlock", "crate"];

impl Config {
    /// The configuration used when no argument is given.
    pub(crate) fn defaults(kind: Kind) -> Config {
        let call_site = Span::call_site();
        match kind {
            Kind::Main => Config {
                worker_threads: None,
                on_deadlock: None,
                current_thread: false,
                crate_path: default_crate_path(),
            },
            Kind::Test => Config {
                worker_threads: Some(WithSpan {
                    value: TEST_WORKER_THREADS,
                    span: call_site,
                }),
                on_deadlock: Some(WithSpan {
                    value: OnDeadlock::Panic,
                    span: call_site,
                }),
                current_thread: false,
                crate_path: default_crate_path(),
            },
        }
    }
}

fn default_crate_path() -> syn::Path {
    syn::parse_quote!(::runnel)
}

/// Parses the tokens between the attribute's parentheses.
pub(crate) fn parse(kind: Kind, args: TokenStream) -> syn::Result<Config> {
    let mut config = Config::defaults(kind);
    let mut errors = Errors::default();
    let parser = |input: ParseStream<'_>| parse_list(input, &mut config, &mut errors);
    // A syntax error (say, a missing `=`) stops the list there; what was already
    // found wrong before it is reported with it.
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    errors.finish().map(|()| config)
}

fn parse_list(input: ParseStream<'_>, config: &mut Config, errors: &mut Errors) -> syn::Result<()> {
    let mut seen: Vec<String> = Vec::new();
    // Where `worker_threads` was given, to reject it next to `flavor = "current_thread"`.
    let mut workers_span = None;
    while !input.is_empty() {
        // `crate` is a keyword; `parse_any` accepts it as a name.
        let name = input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected an argument name: one of {}", list_names()),
            )
        })?;
        let name_str = name.unraw().to_string();
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                if input.is_empty() || input.peek(Token![,]) {
                    name.span()
                } else {
                    input.span()
                },
                format!(
                    "expected `=` after `{name_str}`; write it as {}",
                    example(&name_str)
                ),
            ));
        }
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;

        if seen.contains(&name_str) {
            errors.push(syn::Error::new(
                name.span(),
                format!("`{name_str}` is given more than once; keep only one"),
            ));
        } else {
            seen.push(name_str.clone());
            let applied = match name_str.as_str() {
                "worker_threads" => parse_worker_threads(&value).map(|n| {
                    workers_span = Some(name.span());
                    config.worker_threads = Some(WithSpan {
                        value: n,
                        span: value.span(),
                    });
                }),
                "on_deadlock" => parse_on_deadlock(&value).map(|mode| {
                    config.on_deadlock = Some(WithSpan {
                        value: mode,
                        span: value.span(),
                    });
                }),
                "flavor" => parse_flavor(&value).map(|current| config.current_thread = current),
                "crate" => parse_crate_path(&value).map(|path| config.crate_path = path),
                _ => Err(unknown_name(&name, &name_str)),
            };
            if let Err(e) = applied {
                errors.push(e);
            }
        }

        if input.is_empty() {
            break;
        }
        input
            .parse::<Token![,]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `,` between arguments"))?;
    }
    if config.current_thread {
        if let Some(span) = workers_span {
            errors.push(syn::Error::new(
                span,
                "`worker_threads` has no effect with `flavor = \"current_thread\"` (tasks run \
                 on the thread in block_on); drop it, or use `flavor = \"multi_thread\"`",
            ));
        }
        config.worker_threads = None;
    }
    Ok(())
}

fn parse_flavor(value: &Expr) -> syn::Result<bool> {
    const HINT: &str = "`flavor` takes \"multi_thread\" or \"current_thread\"";
    match literal(value) {
        Some(Lit::Str(s)) => match s.value().as_str() {
            "current_thread" => Ok(true),
            "multi_thread" => Ok(false),
            other => Err(syn::Error::new(
                s.span(),
                format!("unknown `flavor` {other:?}; {HINT}"),
            )),
        },
        _ => Err(syn::Error::new_spanned(
            value,
            format!("{HINT} (a string literal, e.g. `flavor = \"current_thread\"`)"),
        )),
    }
}

fn parse_worker_threads(value: &Expr) -> syn::Result<usize> {
    const HINT: &str =
        "`worker_threads` takes a positive integer literal, e.g. `worker_threads = 4`";
    match literal(value) {
        Some(Lit::Int(int)) => parse_thread_count(int),
        Some(Lit::Str(s)) => Err(syn::Error::new(
            s.span(),
            match s.value().trim().parse::<usize>() {
                Ok(n) if n > 0 => format!(
                    "`worker_threads` takes an integer, not a string: write `worker_threads = {n}`"
                ),
                _ => HINT.to_owned(),
            },
        )),
        _ => Err(syn::Error::new_spanned(value, HINT)),
    }
}

fn parse_thread_count(int: &LitInt) -> syn::Result<usize> {
    if !matches!(int.suffix(), "" | "usize") {
        return Err(syn::Error::new(
            int.span(),
            format!(
                "`worker_threads` is a `usize`; drop the `{}` suffix",
                int.suffix()
            ),
        ));
    }
    match int.base10_parse::<usize>() {
        Ok(0) => Err(syn::Error::new(
            int.span(),
            "`worker_threads` must be at least 1: a runtime needs a worker to run tasks",
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(syn::Error::new(
            int.span(),
            "`worker_threads` is too large for a `usize`",
        )),
    }
}

fn parse_on_deadlock(value: &Expr) -> syn::Result<OnDeadlock> {
    let expected = "expected one of \"panic\", \"report\", \"ignore\"";
    match literal(value) {
        Some(Lit::Str(s)) => OnDeadlock::lookup(&s.value()).map_err(|suggestion| {
            let mut msg = format!("unknown `on_deadlock` value {:?}; {expected}", s.value());
            if let Some(good) = suggestion {
                msg = format!("{msg} (did you mean {good:?}?)");
            }
            syn::Error::new(s.span(), msg)
        }),
        _ => {
            // `on_deadlock = Panic` or `on_deadlock = runnel::OnDeadlock::Report`:
            // name the string that means the same.
            let mode = match value {
                Expr::Path(p) => p
                    .path
                    .segments
                    .last()
                    .and_then(|s| OnDeadlock::lookup(&s.ident.to_string()).err().flatten()),
                _ => None,
            };
            let msg = match mode {
                Some(good) => {
                    format!("`on_deadlock` takes a string: write `on_deadlock = {good:?}`")
                }
                None => format!("`on_deadlock` takes a string literal; {expected}"),
            };
            Err(syn::Error::new_spanned(value, msg))
        }
    }
}

fn parse_crate_path(value: &Expr) -> syn::Result<syn::Path> {
    match literal(value) {
        Some(Lit::Str(s)) => parse_path_str(s),
        _ => {
            let msg = match value {
                Expr::Path(p) => format!(
                    "`crate` takes the path as a string: write `crate = \"{}\"`",
                    quote::ToTokens::to_token_stream(&p.path)
                        .to_string()
                        .replace(' ', "")
                ),
                _ => "`crate` takes the path to the runnel crate as a string, e.g. `crate = \"my_crate::runnel\"`".to_owned(),
            };
            Err(syn::Error::new_spanned(value, msg))
        }
    }
}

fn parse_path_str(s: &LitStr) -> syn::Result<syn::Path> {
    // `LitStr::parse` gives every token of the path the literal's span, so a path
    // that does not resolve is reported at the string the user wrote.
    s.parse_with(syn::Path::parse_mod_style).map_err(|_| {
        syn::Error::new(
            s.span(),
            format!(
                "{:?} is not a path; `crate` takes the path to the runnel crate, e.g. `crate = \"my_crate::runnel\"`",
                s.value()
            ),
        )
    })
}

/// The literal inside `value`, looking through parentheses and `None`-delimited
/// groups (what a `macro_rules!` `$x:expr` or `$x:lit` fragment arrives as).
fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(lit) => Some(&lit.lit),
        Expr::Group(g) => literal(&g.expr),
        Expr::Paren(p) => literal(&p.expr),
        _ => None,
    }
}

fn unknown_name(name: &Ident, name_str: &str) -> syn::Error {
    let mut msg = format!(
        "unknown argument `{name_str}`; expected one of {}",
        list_names()
    );
    if let Some(near) = VALID_NAMES
        .iter()
        .find(|valid| edit_distance(valid, name_str) <= 2)
    {
        msg = format!("{msg} (did you mean `{near}`?)");
    } else if name_str == "core_threads" {
        msg = format!("{msg} (did you mean `worker_threads`?)");
    }
    syn::Error::new(name.span(), msg)
}

fn list_names() -> String {
    VALID_NAMES
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn example(name: &str) -> &'static str {
    match name {
        "worker_threads" => "`worker_threads = 4`",
        "on_deadlock" => "`on_deadlock = \"report\"`",
        "flavor" => "`flavor = \"current_thread\"`",
        "crate" => "`crate = \"my_crate::runnel\"`",
        _ => "`name = value`",
    }
}

/// Levenshtein distance, for "did you mean" on misspelled names. The inputs are
/// argument names, a few bytes long.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Errors of independent arguments, reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn ok(kind: Kind, args: TokenStream) -> Config {
        parse(kind, args).unwrap_or_else(|e| panic!("unexpected error: {e}"))
    }

    /// All messages of a (possibly combined) error.
    fn errs(kind: Kind, args: TokenStream) -> Vec<String> {
        match parse(kind, args.clone()) {
            Ok(_) => panic!("expected an error for `{args}`"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn path_str(p: &syn::Path) -> String {
        quote!(#p).to_string()
    }

    #[test]
    fn empty_main_leaves_the_builder_defaults() {
        let c = ok(Kind::Main, quote!());
        assert!(c.worker_threads.is_none());
        assert!(c.on_deadlock.is_none());
        assert_eq!(path_str(&c.crate_path), ":: runnel");
    }

    #[test]
    fn empty_test_uses_two_workers_and_panics_on_deadlock() {
        let c = ok(Kind::Test, quote!());
        assert_eq!(c.worker_threads.map(|w| w.value), Some(2));
        assert_eq!(c.on_deadlock.map(|d| d.value), Some(OnDeadlock::Panic));
    }

    #[test]
    fn all_arguments_trailing_comma() {
        let c = ok(
            Kind::Main,
            quote!(worker_threads = 4, on_deadlock = "report", crate = "my::rt",),
        );
        assert_eq!(c.worker_threads.map(|w| w.value), Some(4));
        assert_eq!(c.on_deadlock.map(|d| d.value), Some(OnDeadlock::Report));
        assert_eq!(path_str(&c.crate_path), "my :: rt");
    }

    #[test]
    fn each_on_deadlock_mode() {
        for (s, mode) in OnDeadlock::ALL {
            let c = ok(Kind::Test, quote!(on_deadlock = #s));
            assert_eq!(c.on_deadlock.map(|d| d.value), Some(mode));
        }
    }

    #[test]
    fn test_overrides_its_defaults() {
        let c = ok(
            Kind::Test,
            quote!(worker_threads = 1usize, on_deadlock = "ignore"),
        );
        assert_eq!(c.worker_threads.map(|w| w.value), Some(1));
        assert_eq!(c.on_deadlock.map(|d| d.value), Some(OnDeadlock::Ignore));
    }

    #[test]
    fn crate_path_absolute() {
        let c = ok(Kind::Main, quote!(crate = "::my_rt::runnel"));
        assert_eq!(path_str(&c.crate_path), ":: my_rt :: runnel");
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let e = errs(Kind::Main, quote!(threads = 4));
        assert_eq!(
            e,
            ["unknown argument `threads`; expected one of `worker_threads`, `flavor`, `on_deadlock`, `crate`"]
        );
    }

    #[test]
    fn misspelled_name_suggests() {
        let e = errs(Kind::Main, quote!(worker_thread = 4));
        assert!(e[0].ends_with("(did you mean `worker_threads`?)"), "{e:?}");
        let e = errs(Kind::Main, quote!(flavr = "current_thread"));
        assert!(e[0].ends_with("(did you mean `flavor`?)"), "{e:?}");
    }

    #[test]
    fn flavor_current_thread_rejects_worker_threads() {
        let e = errs(
            Kind::Test,
            quote!(flavor = "current_thread", worker_threads = 2),
        );
        assert!(e[0].contains("has no effect"), "{e:?}");
        let e = errs(Kind::Main, quote!(flavor = "single"));
        assert!(e[0].contains("unknown `flavor`"), "{e:?}");
        let config = parse(Kind::Test, quote!(flavor = "current_thread")).unwrap();
        assert!(config.current_thread && config.worker_threads.is_none());
    }

    #[test]
    fn worker_threads_as_string() {
        let e = errs(Kind::Main, quote!(worker_threads = "4"));
        assert_eq!(
            e,
            ["`worker_threads` takes an integer, not a string: write `worker_threads = 4`"]
        );
    }

    #[test]
    fn worker_threads_not_a_literal() {
        let e = errs(Kind::Main, quote!(worker_threads = num_cpus()));
        assert!(e[0].contains("positive integer literal"), "{e:?}");
        let e = errs(Kind::Main, quote!(worker_threads = -1));
        assert!(e[0].contains("positive integer literal"), "{e:?}");
    }

    #[test]
    fn worker_threads_zero_too_large_and_suffix() {
        let e = errs(Kind::Test, quote!(worker_threads = 0));
        assert!(
            e[0].starts_with("`worker_threads` must be at least 1"),
            "{e:?}"
        );
        let e = errs(Kind::Main, quote!(worker_threads = 99999999999999999999999));
        assert!(e[0].contains("too large"), "{e:?}");
        let e = errs(Kind::Main, quote!(worker_threads = 4u8));
        assert!(e[0].contains("drop the `u8` suffix"), "{e:?}");
    }

    #[test]
    fn on_deadlock_unknown_and_case() {
        let e = errs(Kind::Main, quote!(on_deadlock = "explode"));
        assert_eq!(
            e,
            ["unknown `on_deadlock` value \"explode\"; expected one of \"panic\", \"report\", \"ignore\""]
        );
        let e = errs(Kind::Main, quote!(on_deadlock = "Report"));
        assert!(e[0].ends_with("(did you mean \"report\"?)"), "{e:?}");
    }

    #[test]
    fn on_deadlock_as_path_names_the_string() {
        let e = errs(Kind::Main, quote!(on_deadlock = runnel::OnDeadlock::Ignore));
        assert_eq!(
            e,
            ["`on_deadlock` takes a string: write `on_deadlock = \"ignore\"`"]
        );
        let e = errs(Kind::Main, quote!(on_deadlock = 1));
        assert!(
            e[0].starts_with("`on_deadlock` takes a string literal"),
            "{e:?}"
        );
    }

    #[test]
    fn crate_not_a_string_or_not_a_path() {
        let e = errs(Kind::Main, quote!(crate = my::runnel));
        assert_eq!(
            e,
            ["`crate` takes the path as a string: write `crate = \"my::runnel\"`"]
        );
        let e = errs(Kind::Main, quote!(crate = "not a path"));
        assert!(e[0].starts_with("\"not a path\" is not a path"), "{e:?}");
    }

    #[test]
    fn duplicate_argument() {
        let e = errs(Kind::Main, quote!(worker_threads = 2, worker_threads = 3));
        assert_eq!(
            e,
            ["`worker_threads` is given more than once; keep only one"]
        );
    }

    #[test]
    fn missing_value() {
        let e = errs(Kind::Main, quote!(worker_threads));
        assert_eq!(
            e,
            ["expected `=` after `worker_threads`; write it as `worker_threads = 4`"]
        );
        let e = errs(Kind::Main, quote!(on_deadlock, crate = "x"));
        assert!(
            e[0].starts_with("expected `=` after `on_deadlock`"),
            "{e:?}"
        );
    }

    #[test]
    fn missing_comma_and_bad_name() {
        let e = errs(Kind::Main, quote!(worker_threads = 2 on_deadlock = "panic"));
        assert_eq!(e, ["expected `,` between arguments"]);
        let e = errs(Kind::Main, quote!("panic"));
        assert!(e[0].starts_with("expected an argument name"), "{e:?}");
    }

    #[test]
    fn independent_errors_are_all_reported() {
        let e = errs(
            Kind::Main,
            quote!(worker_threads = 0, on_deadlock = "explode", bogus = 1),
        );
        assert_eq!(e.len(), 3, "{e:?}");
    }

    #[test]
    fn argument_through_a_macro_rules_fragment() {
        // `$n:expr` arrives as a `None`-delimited group around the literal.
        let group = proc_macro2::Group::new(proc_macro2::Delimiter::None, quote!(3));
        let c = ok(Kind::Main, quote!(worker_threads = #group));
        assert_eq!(c.worker_threads.map(|w| w.value), Some(3));
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("crate", "crate"), 0);
        assert_eq!(edit_distance("krate", "crate"), 1);
        assert_eq!(edit_distance("on_deadlok", "on_deadlock"), 1);
    }
}
