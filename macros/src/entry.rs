//! `#[volttron::main]` and `#[volttron::test]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, Pat};

pub(crate) enum Kind {
    Main,
    Test,
}

pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = e.to_compile_error();
            return quote!(#err #item);
        }
    };
    match expand_fn(&kind, args, &func) {
        Ok(ts) => ts,
        Err(e) => {
            let err = e.to_compile_error();
            // Keep the function so the rest of the crate still type-checks.
            let mut plain = func.clone();
            plain.sig.asyncness = None;
            plain.sig.inputs.clear();
            let attrs = &plain.attrs;
            let vis = &plain.vis;
            let sig = &plain.sig;
            let test_attr = matches!(kind, Kind::Test).then(|| quote!(#[::core::prelude::v1::test]));
            quote!(#err #test_attr #(#attrs)* #vis #sig { ::core::unimplemented!() })
        }
    }
}

fn expand_fn(kind: &Kind, args: TokenStream, func: &ItemFn) -> syn::Result<TokenStream> {
    let mut multi_thread = matches!(kind, Kind::Main);
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("flavor") {
            let value: LitStr = meta.value()?.parse()?;
            match value.value().as_str() {
                "multi_thread" => multi_thread = true,
                "current_thread" => multi_thread = false,
                other => {
                    return Err(syn::Error::new(
                        value.span(),
                        format!("unknown flavor `{other}`; expected `multi_thread` or `current_thread`"),
                    ));
                }
            }
            Ok(())
        } else {
            Err(meta.error(
                "unknown argument; the only argument is `flavor = \"multi_thread\" | \"current_thread\"`",
            ))
        }
    });
    parser.parse2(args)?;

    let sig = &func.sig;
    let what = match kind {
        Kind::Main => "#[volttron::main]",
        Kind::Test => "#[volttron::test]",
    };
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            format!(
                "the `async` keyword is missing from the function declaration: `{what}` runs an `async fn`"
            ),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("`{what}` functions cannot be generic"),
        ));
    }
    let mut setup = TokenStream::new();
    match kind {
        Kind::Main => {
            if let Some(arg) = sig.inputs.first() {
                return Err(syn::Error::new_spanned(arg, "`main` takes no arguments"));
            }
            if sig.ident != "main" {
                // Allowed (e.g. a helper run as main), nothing to check.
            }
        }
        Kind::Test => {
            let mut inputs = sig.inputs.iter();
            if let Some(arg) = inputs.next() {
                let FnArg::Typed(pt) = arg else {
                    return Err(syn::Error::new_spanned(arg, "a test function takes no `self`"));
                };
                let Pat::Ident(pi) = &*pt.pat else {
                    return Err(syn::Error::new_spanned(
                        &pt.pat,
                        "expected a name, like `tp: TestPlatform`",
                    ));
                };
                let name = &pi.ident;
                let ty = &pt.ty;
                setup = quote_spanned! {pt.span()=>
                    let #name: #ty = ::volttron::__private::TestPlatform::start().await;
                };
            }
            if let Some(extra) = inputs.next() {
                return Err(syn::Error::new_spanned(
                    extra,
                    "a `#[volttron::test]` takes at most one argument, a `TestPlatform`",
                ));
            }
        }
    }
    let attrs = &func.attrs;
    let vis = &func.vis;
    let name = &sig.ident;
    let output = &sig.output;
    let body = &func.block;
    let test_attr = matches!(kind, Kind::Test).then(|| quote!(#[::core::prelude::v1::test]));
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis fn #name() #output {
            ::volttron::__private::runtime(#multi_thread).block_on(async move {
                #setup
                #body
            })
        }
    })
}
