//! `select_impl!`: the expansion behind `runnel::select!` (tokio's `select!` semantics).
//!
//! Input: `<crate path> ; [biased ;] branches [else => expr]`, where the facade's
//! `macro_rules! select` supplies `$crate` as the path, so the expansion names runnel's
//! support items through whatever name the user's crate knows runnel by.
//!
//! The expansion's invariants: preconditions run first, then every future expression
//! (disabled branches' too), in source order; each future is pinned on the stack of an
//! inner block, so all of them are dropped before the chosen branch's handler runs; a
//! branch whose future completed is never polled again; internal names use
//! `Span::mixed_site`, so they cannot clash with the user's.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream, Parser};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, Pat, Token};

/// tokio's limit too: the disabled-branch mask is one `u64`.
const MAX_BRANCHES: usize = 64;

struct Branch {
    pat: Pat,
    future: Expr,
    condition: Option<Expr>,
    handler: Expr,
}

struct Select {
    biased: bool,
    branches: Vec<Branch>,
    otherwise: Option<Expr>,
}

impl Parse for Select {
    fn parse(input: ParseStream) -> syn::Result<Select> {
        let biased = if input.peek(syn::Ident) && input.peek2(Token![;]) {
            let word: syn::Ident = input.parse()?;
            if word != "biased" {
                return Err(syn::Error::new(
                    word.span(),
                    "select!: expected `biased;` or a branch `pattern = future => handler`",
                ));
            }
            input.parse::<Token![;]>()?;
            true
        } else {
            false
        };
        let mut branches = Vec::new();
        let mut otherwise = None;
        while !input.is_empty() {
            if input.peek(Token![else]) {
                let else_token: Token![else] = input.parse()?;
                if otherwise.is_some() {
                    return Err(syn::Error::new(
                        else_token.span,
                        "select!: only one `else` branch is allowed",
                    ));
                }
                input.parse::<Token![=>]>()?;
                otherwise = Some(parse_handler(input)?);
                continue;
            }
            let pat = Pat::parse_multi_with_leading_vert(input)?;
            input.parse::<Token![=]>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "select!: expected `=` after the pattern: `pattern = future => handler`",
                )
            })?;
            let future: Expr = input.parse()?;
            let condition = if input.peek(Token![,]) && input.peek2(Token![if]) {
                input.parse::<Token![,]>()?;
                input.parse::<Token![if]>()?;
                Some(input.parse()?)
            } else {
                None
            };
            input.parse::<Token![=>]>().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "select!: expected `=>` after the future (or `, if condition`)",
                )
            })?;
            let handler = parse_handler(input)?;
            branches.push(Branch {
                pat,
                future,
                condition,
                handler,
            });
        }
        if branches.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "select! needs at least one branch `pattern = future => handler`",
            ));
        }
        if branches.len() > MAX_BRANCHES {
            return Err(syn::Error::new(
                branches[MAX_BRANCHES].future.span(),
                "select! supports at most 64 branches: nest select! or use a FuturesUnordered",
            ));
        }
        Ok(Select {
            biased,
            branches,
            otherwise,
        })
    }
}

/// A handler as in a `match` arm: a block needs no comma after it, anything else does
/// unless it is the last.
fn parse_handler(input: ParseStream) -> syn::Result<Expr> {
    let handler: Expr = input.parse()?;
    let block_like = matches!(
        handler,
        Expr::Block(_)
            | Expr::If(_)
            | Expr::Match(_)
            | Expr::Loop(_)
            | Expr::While(_)
            | Expr::ForLoop(_)
            | Expr::Unsafe(_)
    );
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    } else if !block_like && !input.is_empty() {
        return Err(syn::Error::new(
            handler.span(),
            "select!: expected `,` after this branch's handler",
        ));
    }
    Ok(handler)
}

/// Strips `mut` and `ref` from bindings, so the pattern can test a reference to the
/// output without moving out of it (the real bindings happen in the final `match`).
struct CleanPattern;

impl VisitMut for CleanPattern {
    fn visit_pat_ident_mut(&mut self, pat: &mut syn::PatIdent) {
        pat.by_ref = None;
        pat.mutability = None;
        syn::visit_mut::visit_pat_ident_mut(self, pat);
    }
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    // The crate path (`$crate` from the facade) runs up to the first `;`.
    let mut tokens = input.into_iter();
    let mut krate = TokenStream::new();
    for token in tokens.by_ref() {
        match &token {
            TokenTree::Punct(p) if p.as_char() == ';' => break,
            _ => krate.extend([token]),
        }
    }
    let rest: TokenStream = tokens.collect();
    match Select::parse.parse2(rest) {
        Ok(select) => generate(&krate, select),
        Err(e) => e.to_compile_error(),
    }
}

fn generate(krate: &TokenStream, select: Select) -> TokenStream {
    let span = Span::mixed_site();
    let n = select.branches.len();
    let n_u32 = n as u32;
    let out_enum = format_ident!("__RunnelSelectOut", span = span);
    let disabled = format_ident!("__runnel_disabled", span = span);
    let cx = format_ident!("__runnel_cx", span = span);
    let start = format_ident!("__runnel_start", span = span);
    let any_pending = format_ident!("__runnel_any_pending", span = span);
    let value = format_ident!("__runnel_value", span = span);
    let output = format_ident!("__runnel_output", span = span);
    let result = format_ident!("__runnel_result", span = span);
    let variants: Vec<_> = (0..n).map(|i| format_ident!("_{}", i)).collect();
    let generics: Vec<_> = (0..n).map(|i| format_ident!("T{}", i)).collect();
    let futs: Vec<_> = (0..n)
        .map(|i| format_ident!("__runnel_future_{}", i, span = span))
        .collect();

    let conditions = select.branches.iter().enumerate().map(|(i, b)| {
        let bit = 1u64 << i;
        b.condition.as_ref().map(|cond| {
            quote_spanned! {span=> if !(#cond) { #disabled |= #bit; } }
        })
    });
    let pinned = select.branches.iter().zip(&futs).map(|(b, f)| {
        let future = &b.future;
        quote_spanned! {span=>
            let mut #f = ::core::pin::pin!(::core::future::IntoFuture::into_future(#future));
        }
    });
    let polls = select.branches.iter().enumerate().map(|(i, b)| {
        let bit = 1u64 << i;
        let index = i as u32;
        let (f, variant) = (&futs[i], &variants[i]);
        let mut test_pat = b.pat.clone();
        CleanPattern.visit_pat_mut(&mut test_pat);
        quote_spanned! {span=>
            #index => {
                if #disabled & #bit != 0 {
                    continue;
                }
                match ::core::future::Future::poll(#f.as_mut(), #cx) {
                    ::core::task::Poll::Ready(#value) => {
                        // Completed: never polled again, whether or not the pattern fits.
                        #disabled |= #bit;
                        #[allow(unused_variables, unreachable_patterns, clippy::match_single_binding)]
                        match &#value {
                            #test_pat => {}
                            _ => continue,
                        }
                        return ::core::task::Poll::Ready(#out_enum::#variant(#value));
                    }
                    ::core::task::Poll::Pending => #any_pending = true,
                }
            }
        }
    });
    let arms = select.branches.iter().zip(&variants).map(|(b, variant)| {
        let (pat, handler) = (&b.pat, &b.handler);
        quote! { #out_enum::#variant(#pat) => #handler, }
    });
    let otherwise = match &select.otherwise {
        Some(expr) => quote! { #expr },
        None => quote_spanned! {span=>
            ::core::panic!(
                "select!: all branches are disabled (their conditions were false, their \
                 futures finished or their patterns did not match) and there is no `else` \
                 branch; add `else => ...` to handle that case"
            )
        },
    };
    let start_expr = if select.biased {
        quote_spanned! {span=> 0u32 }
    } else {
        quote_spanned! {span=> #krate::__private::select_start(#n_u32) }
    };

    quote_spanned! {span=>
        {
            #[allow(non_camel_case_types, dead_code)]
            enum #out_enum<#(#generics,)*> {
                #(#variants(#generics),)*
                Disabled,
            }
            let #output = {
                let mut #disabled: u64 = 0;
                #(#conditions)*
                #(#pinned)*
                let #start: u32 = #start_expr;
                #krate::__private::poll_fn(|#cx| {
                    let mut #any_pending = false;
                    for __runnel_i in 0..#n_u32 {
                        #[allow(clippy::modulo_one)]
                        match (#start + __runnel_i) % #n_u32 {
                            #(#polls)*
                            _ => ::core::unreachable!("select!: branch index out of range"),
                        }
                    }
                    if #any_pending {
                        ::core::task::Poll::Pending
                    } else {
                        ::core::task::Poll::Ready(#out_enum::Disabled)
                    }
                })
                .await
            };
            #[allow(unreachable_patterns)]
            let #result = match #output {
                #(#arms)*
                #out_enum::Disabled => #otherwise,
                _ => ::core::unreachable!("select!: the chosen branch's pattern was checked"),
            };
            #result
        }
    }
}
