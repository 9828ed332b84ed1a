//! From `async fn` to a plain `fn` that builds a runtime and blocks on the body.
//!
//! For `#[runnel::test(worker_threads = 4)] async fn t() -> R { BODY }` the output is
//!
//! ```text
//! #[::core::prelude::v1::test]
//! <the user's attributes, doc comments included>
//! <vis> fn t() -> R {
//!     let body = ::core::pin::pin!(async move {
//!         #[allow(unreachable_code, clippy::diverging_sub_expression)]
//!         if false { let output: R = ::core::unreachable!(); return output; }
//!         BODY
//!     });
//!     let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = R>> = body;
//!     #[allow(clippy::expect_used)]
//!     let runtime = <crate>::Builder::new()
//!         .worker_threads(4)
//!         .on_deadlock(<crate>::OnDeadlock::Panic)
//!         .on_partial_deadlock(<crate>::OnDeadlock::Panic)
//!         .build()
//!         .expect("failed to build the runnel runtime");
//!     runtime.block_on(body)
//! }
//! ```
//!
//! `#[runnel::main]` is the same without the test attribute, without the pinning, and
//! without `on_partial_deadlock` (a program keeps the runtime's default, `Report`; a test
//! fails with the report instead of hanging, in the mode `on_deadlock` names).
//!
//! Why each piece is there:
//!
//! - **The `if false { return output; }` anchor.** An async block has no syntax for
//!   its return type; rustc infers it from the first `return` or the tail it checks.
//!   Without the anchor, `return Err(Box::new(e))` in a body returning
//!   `Result<(), Box<dyn Error>>` would fix the type to `Box<E>` and then fail, and
//!   `?` would have no error type to convert into until the end. With the anchor
//!   first, the body is checked against the declared type exactly as in a plain
//!   `fn`. It is skipped when the type cannot be named in a `let` (`impl Trait`, `!`).
//! - **`Pin<&mut dyn Future>` in tests.** `block_on` is then compiled once per output
//!   type instead of once per test, which keeps large test suites quick to build.
//!   `main` exists once, so it blocks on the future directly.
//! - **Paths.** Everything from outside is named by an absolute path (`::core::...`)
//!   or through the `crate` argument, so the user's own `Result`, `Ok`, `Builder`,
//!   `Runtime`, `std` or `core` cannot capture them. The locals (`body`, `runtime`,
//!   `output`) have mixed-site hygiene: the user's body cannot see them, nor shadow them.
//! - **Spans.** The body is passed through untouched, so errors in it point at the
//!   user's code; the async block around it has the body's span too. Other generated
//!   tokens carry the attribute's span; values the user gave (`worker_threads = 4`,
//!   `crate = "..."`) carry theirs.
//!
//! When the input is wrong the errors are emitted next to the expansion of the same
//! function with default arguments, not instead of it: the function still exists (no
//! "`main` function not found" on top of the real error), its body is still type
//! checked, and an IDE keeps completing inside it while the attribute is being typed.
//! In that case a test gets no test attribute, neither ours nor one the user wrote
//! (reported as a duplicate), so nothing expands or runs it a second time.

use proc_macro2::{Delimiter, Group, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, FnArg, ReturnType, Signature, Type, Visibility};

use crate::args::{self, Config, Kind};

/// A function item whose body is kept as raw tokens: the body is never parsed by
/// this crate, so any syntax rustc accepts there passes through, and big bodies cost
/// nothing to expand.
pub(crate) struct ItemFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: Group,
}

impl Parse for ItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body: Group = input.parse()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(
                body.span(),
                "expected the function body `{ ... }`",
            ));
        }
        Ok(ItemFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

/// The whole macro: attribute arguments and item in, item out (with errors if any).
pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            let msg = format!(
                "{e}; {} can only be used on an `async fn`",
                kind.attribute()
            );
            let error = syn::Error::new(e.span(), msg).into_compile_error();
            // Give the item back unchanged so that only this error is reported.
            return quote!(#error #item);
        }
    };
    let config = args::parse(kind, args);
    let checked = check_signature(kind, &func);
    match (config, checked) {
        (Ok(config), Ok(())) => generate(kind, &func, &config, true),
        (config, checked) => {
            let mut errors: Option<syn::Error> = None;
            for e in [config.as_ref().err(), checked.as_ref().err()]
                .into_iter()
                .flatten()
            {
                match &mut errors {
                    Some(all) => all.combine(e.clone()),
                    None => errors = Some(e.clone()),
                }
            }
            let errors = errors.map(syn::Error::into_compile_error);
            let config = config.unwrap_or_else(|_| Config::defaults(kind));
            let fallback = generate(kind, &func, &config, false);
            quote!(#errors #fallback)
        }
    }
}

/// Everything about the signature that the macro cannot turn into a working
/// function, all reported at once.
fn check_signature(kind: Kind, func: &ItemFn) -> syn::Result<()> {
    let attr = kind.attribute();
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();

    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "the `async` keyword is missing from the function declaration\n\
                 help: write `async fn {}`: {attr} runs the body as a future on a new runtime",
                sig.ident
            ),
        ));
    }

    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "{attr} cannot be used on a generic function: the runtime needs one \
                 concrete future; remove the generic parameters"
            ),
        ));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            where_clause,
            format!("{attr} cannot be used on a function with a `where` clause; remove it"),
        ));
    }

    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        errors.push(syn::Error::new_spanned(
            receiver,
            format!(
                "{attr} cannot be used on a method (it takes `self`); put it on a free \
                 `async fn` that calls the method"
            ),
        ));
    } else if !sig.inputs.is_empty() {
        let inputs = &sig.inputs;
        match kind {
            Kind::Main if sig.ident == "main" => errors.push(syn::Error::new_spanned(
                inputs,
                "the `main` function cannot take arguments; read them inside it with \
                 `std::env::args()`",
            )),
            Kind::Test => errors.push(syn::Error::new_spanned(
                inputs,
                "test functions cannot take arguments; build the values inside the test",
            )),
            Kind::Main => {}
        }
    }

    if kind == Kind::Test {
        for a in func.attrs.iter().filter(|a| is_test_attribute(a)) {
            errors.push(syn::Error::new_spanned(
                a,
                "this function already has a test attribute; #[runnel::test] adds \
                 `#[test]` itself, so remove this one",
            ));
        }
    }

    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            first.extend(errors);
            Err(first)
        }
    }
}

/// `#[test]`, `#[core::prelude::v1::test]`, `#[tokio::test]`, a second
/// `#[runnel::test]`: any attribute whose last path segment is `test`. Running such a
/// function as two tests, or under two runtimes, is never what was meant.
fn is_test_attribute(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "test")
}

/// The output item. `emit_test_attr` is false when expanding next to an error.
fn generate(kind: Kind, func: &ItemFn, config: &Config, emit_test_attr: bool) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        body,
    } = func;
    // Next to the "already has a test attribute" error, drop that attribute: left in,
    // it would expand this output again and report errors about it.
    let attrs = attrs
        .iter()
        .filter(|a| emit_test_attr || kind == Kind::Main || !is_test_attribute(a));
    let mut sig = sig.clone();
    sig.asyncness = None;

    let krate = &config.crate_path;
    let body_var = Ident::new("body", Span::mixed_site());
    let runtime_var = Ident::new("runtime", Span::mixed_site());
    let output_var = Ident::new("output", Span::mixed_site());

    // The output type, if it can be written in a `let` and a `dyn Future<Output = _>`.
    let output: Option<TokenStream> = match &sig.output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) if is_nameable(ty) => Some(ty.to_token_stream()),
        ReturnType::Type(..) => None,
    };

    let anchor = match (&sig.output, &output) {
        // `()`: a bare `return;` already gives the block that type.
        (ReturnType::Default, _) | (_, None) => TokenStream::new(),
        (ReturnType::Type(..), Some(ty)) => quote! {
            #[allow(unreachable_code, clippy::diverging_sub_expression)]
            if false {
                let #output_var: #ty = ::core::unreachable!();
                return #output_var;
            }
        },
    };
    // The async block gets the span of the user's body, so that errors about the
    // block as a whole ("`?` in an async block that returns `()`") point at the body,
    // not at the attribute.
    let future = quote_spanned! {body.span()=>
        async move {
            #anchor
            #body
        }
    };
    let future = match (kind, &output) {
        (Kind::Test, Some(ty)) => quote! {
            let #body_var = ::core::pin::pin!(#future);
            let #body_var: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #ty>> =
                #body_var;
        },
        _ => quote! {
            let #body_var = #future;
        },
    };

    let worker_threads = config.worker_threads.as_ref().map(|n| {
        let mut lit = Literal::usize_unsuffixed(n.value);
        lit.set_span(n.span);
        quote!(.worker_threads(#lit))
    });
    let on_deadlock = config.on_deadlock.as_ref().map(|mode| {
        let variant = Ident::new(mode.value.variant(), mode.span);
        quote!(.on_deadlock(#krate::OnDeadlock::#variant))
    });
    // Tests: a partial deadlock or a leak fails the test the way a deadlock does.
    let on_partial_deadlock = config
        .on_deadlock
        .as_ref()
        .filter(|_| kind == Kind::Test)
        .map(|mode| {
            let variant = Ident::new(mode.value.variant(), mode.span);
            quote!(.on_partial_deadlock(#krate::OnDeadlock::#variant))
        });

    let constructor = Ident::new(
        if config.current_thread {
            "new_current_thread"
        } else {
            "new"
        },
        Span::call_site(),
    );
    let test_attr =
        (kind == Kind::Test && emit_test_attr).then(|| quote!(#[::core::prelude::v1::test]));
    // A test function left without `#[test]` next to an error would also warn.
    let allow_dead = (kind == Kind::Test && !emit_test_attr).then(|| quote!(#[allow(dead_code)]));

    let block = quote! {
        #future
        #[allow(clippy::expect_used)]
        let #runtime_var = #krate::Builder::#constructor()
            #worker_threads
            #on_deadlock
            #on_partial_deadlock
            .build()
            .expect("failed to build the runnel runtime");
        #runtime_var.block_on(#body_var)
    };

    quote! {
        #test_attr
        #allow_dead
        #(#attrs)*
        #vis #sig {
            #block
        }
    }
}

/// Whether `ty` can be named in `let _: ty` and in `dyn Future<Output = ty>`:
/// not `!` (unstable there) and no `impl Trait` anywhere inside.
fn is_nameable(ty: &Type) -> bool {
    fn has_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => has_impl(group.stream()),
            _ => false,
        })
    }
    !matches!(ty, Type::Never(_)) && !has_impl(ty.to_token_stream())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(kind: Kind, args: TokenStream, item: TokenStream) -> String {
        expand(kind, args, item).to_string()
    }

    /// The messages of the `compile_error!`s in an expansion.
    fn errors_of(expansion: &str) -> Vec<String> {
        expansion
            .match_indices(":: core :: compile_error ! {")
            .map(|(at, pat)| {
                let rest = &expansion[at + pat.len()..];
                rest[..rest.find('}').unwrap()].trim().to_owned()
            })
            .collect()
    }

    #[test]
    fn main_with_defaults() {
        let out = expand_str(
            Kind::Main,
            quote!(),
            quote!(
                async fn main() {
                    work().await;
                }
            ),
        );
        assert!(errors_of(&out).is_empty(), "{out}");
        assert!(out.starts_with("fn main ()"), "{out}");
        assert!(
            out.contains(":: runnel :: Builder :: new () . build ()"),
            "{out}"
        );
        assert!(!out.contains("worker_threads"), "{out}");
        assert!(!out.contains("on_deadlock"), "{out}");
        assert!(!out.contains("test"), "{out}");
        assert!(out.contains("{ work () . await ; }"), "{out}");
        // The output parses as a function.
        syn::parse2::<syn::ItemFn>(expand(
            Kind::Main,
            quote!(),
            quote!(
                async fn main() {}
            ),
        ))
        .unwrap();
    }

    #[test]
    fn main_with_arguments() {
        let out = expand_str(
            Kind::Main,
            quote!(
                worker_threads = 3,
                on_deadlock = "report",
                crate = "rt::runnel"
            ),
            quote!(
                async fn main() {}
            ),
        );
        assert!(
            out.contains(
                "rt :: runnel :: Builder :: new () . worker_threads (3) \
                 . on_deadlock (rt :: runnel :: OnDeadlock :: Report) . build ()"
            ),
            "{out}"
        );
    }

    #[test]
    fn test_defaults_and_pinning() {
        let out = expand_str(
            Kind::Test,
            quote!(),
            quote!(
                async fn t() {}
            ),
        );
        assert!(
            out.starts_with("# [:: core :: prelude :: v1 :: test] fn t ()"),
            "{out}"
        );
        assert!(
            out.contains(
                ". worker_threads (2) . on_deadlock (:: runnel :: OnDeadlock :: Panic) \
                 . on_partial_deadlock (:: runnel :: OnDeadlock :: Panic) . build ()"
            ),
            "{out}"
        );
        assert!(
            out.contains("dyn :: core :: future :: Future < Output = () >"),
            "{out}"
        );
    }

    #[test]
    fn attributes_visibility_and_result_are_kept() {
        let out = expand_str(
            Kind::Test,
            quote!(),
            quote!(
                /// Docs.
                #[should_panic]
                pub(crate) async fn t() -> Result<(), Error> {
                    Ok(())
                }
            ),
        );
        assert!(
            out.starts_with(
                "# [:: core :: prelude :: v1 :: test] # [doc = r\" Docs.\"] # [should_panic] \
                 pub (crate) fn t () -> Result < () , Error >"
            ),
            "{out}"
        );
        // The return-type anchor, then the body.
        assert!(
            out.contains("let output : Result < () , Error > = :: core :: unreachable ! () ;"),
            "{out}"
        );
        assert!(
            out.contains("Future < Output = Result < () , Error > >"),
            "{out}"
        );
    }

    #[test]
    fn impl_trait_output_is_not_named() {
        let out = expand_str(
            Kind::Test,
            quote!(),
            quote!(
                async fn t() -> impl Sized {}
            ),
        );
        assert!(!out.contains("unreachable"), "{out}");
        assert!(!out.contains("dyn"), "{out}");
        let out = expand_str(
            Kind::Main,
            quote!(),
            quote!(
                async fn main() -> ! {
                    loop {}
                }
            ),
        );
        assert!(!out.contains("unreachable"), "{out}");
    }

    #[test]
    fn missing_async() {
        let out = expand_str(
            Kind::Main,
            quote!(),
            quote!(
                fn main() {}
            ),
        );
        let errors = errors_of(&out);
        assert_eq!(errors.len(), 1, "{out}");
        assert!(
            errors[0].starts_with("\"the `async` keyword is missing from the function declaration")
        );
        // Still expanded, so `main` exists.
        assert!(out.contains("fn main ()"), "{out}");
    }

    #[test]
    fn signature_errors_are_all_reported() {
        let out = expand_str(
            Kind::Test,
            quote!(),
            quote!(
                #[test]
                fn t<T>(x: T) {}
            ),
        );
        let errors = errors_of(&out);
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(
            !out.contains("# [test]") && !out.contains("v1 :: test"),
            "no #[test], ours or theirs, next to an error: {out}"
        );
        assert!(out.contains("# [allow (dead_code)]"), "{out}");
    }

    #[test]
    fn main_arguments_only_for_main() {
        let out = expand_str(
            Kind::Main,
            quote!(),
            quote!(
                async fn main(x: u8) {}
            ),
        );
        assert!(
            errors_of(&out)[0].contains("cannot take arguments"),
            "{out}"
        );
        let out = expand_str(
            Kind::Main,
            quote!(),
            quote!(
                async fn serve(x: u8) {}
            ),
        );
        assert!(errors_of(&out).is_empty(), "{out}");
    }

    #[test]
    fn method_and_where_clause() {
        let out = expand_str(
            Kind::Main,
            quote!(),
            quote!(
                async fn run(&self) {}
            ),
        );
        assert!(errors_of(&out)[0].contains("takes `self`"), "{out}");
        let out = expand_str(
            Kind::Main,
            quote!(),
            quote!(
                async fn run()
                where
                    u8: Copy,
                {
                }
            ),
        );
        assert!(errors_of(&out)[0].contains("`where` clause"), "{out}");
    }

    #[test]
    fn argument_errors_expand_with_defaults() {
        let out = expand_str(
            Kind::Main,
            quote!(worker_threads = 0),
            quote!(
                async fn main() {}
            ),
        );
        assert_eq!(errors_of(&out).len(), 1, "{out}");
        assert!(out.contains("Builder :: new () . build ()"), "{out}");
    }

    #[test]
    fn not_a_function() {
        let out = expand_str(
            Kind::Test,
            quote!(),
            quote!(
                struct S;
            ),
        );
        let errors = errors_of(&out);
        assert!(
            errors[0].contains("#[runnel::test] can only be used on an `async fn`"),
            "{out}"
        );
        assert!(out.ends_with("struct S ;"), "{out}");
    }
}
