//! `#[volttron::agent]`: parse the impl block, validate every handler, expand into the
//! `Agent` implementation.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{ImplItem, ItemImpl, Type};

use crate::handler::{self, Handler, Role};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors: Vec<syn::Error> = Vec::new();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "`#[volttron::agent]` takes no arguments",
        ));
    }
    let mut block: ItemImpl = match syn::parse2(item.clone()) {
        Ok(b) => b,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                "`#[volttron::agent]` goes on an `impl` block of the agent's struct: `#[volttron::agent] impl MyAgent { ... }`",
            )
            .to_compile_error();
            return quote!(#err #item);
        }
    };
    if let Some((_, path, _)) = &block.trait_ {
        errors.push(syn::Error::new_spanned(
            path,
            "`#[volttron::agent]` goes on an inherent `impl` block, not a trait implementation",
        ));
    }

    // Parse: strip our attributes from every method, keep the rest.
    let mut handlers: Vec<Handler> = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let roles = handler::take_roles(method, &mut errors);
        if roles.is_empty() {
            continue;
        }
        match handler::analyse(method, roles) {
            Ok(h) => handlers.push(h),
            Err(e) => errors.push(e),
        }
    }

    // Validate across handlers.
    validate(&mut handlers, &mut errors);

    if !errors.is_empty() {
        let errs = errors.iter().map(syn::Error::to_compile_error);
        // Not for a trait impl: that may already be (a wrong) `impl Agent for ...`.
        let stub = block.trait_.is_none().then(|| stub(&block));
        return quote!(#(#errs)* #block #stub);
    }
    let agent_impl = generate(&block, &handlers);
    quote!(#block #agent_impl)
}

fn validate(handlers: &mut [Handler], errors: &mut Vec<syn::Error>) {
    let mut hooks: HashMap<&'static str, syn::Ident> = HashMap::new();
    let mut rpc_names: HashMap<String, syn::Ident> = HashMap::new();
    for h in handlers.iter_mut() {
        let method = h.method.clone();
        for role in &mut h.roles {
            match role {
                Role::Setup
                | Role::Start
                | Role::Stop
                | Role::Peerlist
                | Role::Health
                | Role::Connected
                | Role::Disconnected => {
                    let attr = role.attribute();
                    if let Some(first) = hooks.get(attr) {
                        errors.push(syn::Error::new(
                            method.span(),
                            format!("`#[{attr}]` is already on `{first}`; an agent has at most one"),
                        ));
                    } else {
                        hooks.insert(attr, method.clone());
                    }
                }
                Role::Rpc { name, span, .. } => {
                    if name.is_empty() {
                        *name = method.to_string();
                        *span = method.span();
                    }
                    if name == "inspect" || name.ends_with(".inspect") {
                        errors.push(syn::Error::new(
                            *span,
                            format!(
                                "the RPC name `{name}` is reserved for introspection; rename the method or export it with `#[rpc(name = \"...\")]`"
                            ),
                        ));
                    } else if let Some(first) = rpc_names.get(name.as_str()) {
                        errors.push(syn::Error::new(
                            *span,
                            format!("duplicate RPC name `{name}`: method `{first}` already exports it"),
                        ));
                    } else {
                        rpc_names.insert(name.clone(), method.clone());
                    }
                }
                _ => {}
            }
        }
    }
}

/// On an error: an `Agent` implementation that never runs, so that code spawning the agent
/// does not add "is not a volttron agent" errors to the real one.
fn stub(block: &ItemImpl) -> TokenStream {
    let self_ty = &block.self_ty;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    quote! {
        impl #impl_generics ::volttron::__private::Agent for #self_ty #where_clause {
            fn __descriptor() -> &'static ::volttron::__private::AgentDescriptor {
                ::core::unreachable!("`#[volttron::agent]` reported a compile error")
            }

            fn __dispatch(
                &mut self,
                _: &::volttron::__private::AgentContext,
                _: ::volttron::__private::Invocation,
            ) -> ::volttron::__private::Dispatch<Self> {
                ::core::unreachable!("`#[volttron::agent]` reported a compile error")
            }
        }
    }
}

/// One `match` arm body calling a handler.
fn call(h: &Handler, extra: &[TokenStream], rpc: bool) -> TokenStream {
    call_as(h, extra, rpc, false)
}

/// [`call`], with a route's return converted to a web response.
fn call_as(h: &Handler, extra: &[TokenStream], rpc: bool, route: bool) -> TokenStream {
    let method = &h.method;
    let convert = |ret: TokenStream| -> TokenStream {
        if route {
            if h.returns_result {
                quote!(::volttron::__private::RouteReturn::result(#ret))
            } else {
                quote!(::volttron::__private::RouteReturn::value(#ret))
            }
        } else if rpc {
            if h.returns_result {
                quote!(::volttron::__private::RpcReturn::result(#ret))
            } else {
                quote!(::volttron::__private::RpcReturn::value(&#ret))
            }
        } else {
            quote!(::volttron::__private::HandlerReturn::into_outcome(#ret))
        }
    };
    if h.is_async {
        let ctx_arg = h.takes_ctx.then(|| quote!(&__ctx,));
        let ret = convert(quote!(__ret));
        quote! {
            let __ctx = ::core::clone::Clone::clone(__ctx);
            ::volttron::__private::Dispatch::Async(::volttron::__private::Box::new(
                move |mut __this: Self| -> ::core::pin::Pin<::volttron::__private::Box<dyn ::core::future::Future<Output = (Self, ::volttron::__private::Outcome)>>> {
                    ::volttron::__private::Box::pin(async move {
                        let __ret = __this.#method(#ctx_arg #(#extra),*).await;
                        let __out = #ret;
                        (__this, __out)
                    })
                },
            ))
        }
    } else {
        let ctx_arg = h.takes_ctx.then(|| quote!(__ctx,));
        let ret = convert(quote!(__ret));
        quote! {
            let __ret = self.#method(#ctx_arg #(#extra),*);
            ::volttron::__private::Dispatch::Done(#ret)
        }
    }
}

fn generate(block: &ItemImpl, handlers: &[Handler]) -> TokenStream {
    let self_ty = &block.self_ty;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let name = type_name(self_ty);

    let mut subscriptions = Vec::new();
    let mut sub_arms = Vec::new();
    let mut rpcs = Vec::new();
    let mut rpc_arms = Vec::new();
    let mut periodics = Vec::new();
    let mut periodic_arms = Vec::new();
    let mut crons = Vec::new();
    let mut cron_arms = Vec::new();
    let mut configs = Vec::new();
    let mut config_arms = Vec::new();
    let mut setup = None;
    let mut start = None;
    let mut stop = None;
    let mut peerlist = None;
    let mut health = None;
    let mut connected = None;
    let mut disconnected = None;

    for h in handlers {
        let method_name = h.method.to_string();
        for role in &h.roles {
            match role {
                Role::Setup => setup = Some(call(h, &[], false)),
                Role::Start => start = Some(call(h, &[], false)),
                Role::Stop => stop = Some(call(h, &[], false)),
                Role::Peerlist => peerlist = Some(call(h, &[quote!(&__event)], false)),
                Role::Health => health = Some(call(h, &[quote!(&__health)], false)),
                Role::Connected => connected = Some(call(h, &[], false)),
                Role::Disconnected => disconnected = Some(call(h, &[], false)),
                Role::Config { pattern, actions } => {
                    let i = configs.len();
                    configs.push(quote! {
                        ::volttron::__private::ConfigSpec { pattern: #pattern, actions: #actions, handler: #method_name }
                    });
                    let body = call(h, &[quote!(&*__update)], false);
                    config_arms.push(quote!(#i => { #body }));
                }
                Role::Subscribe {
                    prefix,
                    bus,
                    overflow,
                    all_platforms,
                } => {
                    let i = subscriptions.len();
                    let overflow = format_ident!("{}", overflow);
                    subscriptions.push(quote! {
                        ::volttron::__private::SubscriptionSpec {
                            bus: #bus,
                            prefix: #prefix,
                            overflow: ::volttron::__private::OverflowPolicy::#overflow,
                            all_platforms: #all_platforms,
                            handler: #method_name,
                        }
                    });
                    let body = call(h, &[quote!(&*__publication)], false);
                    sub_arms.push(quote!(#i => { #body }));
                }
                Role::Periodic { period_ns, wait_ns } => {
                    let i = periodics.len();
                    periodics.push(quote! {
                        ::volttron::__private::PeriodicSpec {
                            period: ::volttron::__private::Duration::from_nanos(#period_ns),
                            wait: ::volttron::__private::Duration::from_nanos(#wait_ns),
                            handler: #method_name,
                        }
                    });
                    let body = call(h, &[], false);
                    periodic_arms.push(quote!(#i => { #body }));
                }
                Role::Cron { expr } => {
                    let i = crons.len();
                    crons.push(quote! {
                        ::volttron::__private::CronSpec { expr: #expr, handler: #method_name }
                    });
                    let body = call(h, &[], false);
                    cron_arms.push(quote!(#i => { #body }));
                }
                Role::Rpc {
                    name: rpc_name,
                    route,
                    ..
                } => {
                    let i = rpcs.len();
                    // A `Caller` parameter is filled from the request: not an argument.
                    let arguments: Vec<&handler::Param> = h.params.iter().filter(|p| !p.caller).collect();
                    let param_specs = arguments.iter().map(|p| {
                        let n = p.name.to_string();
                        let t = handler::type_text(&p.ty);
                        quote!(::volttron::__private::ParamSpec { name: #n, ty: #t })
                    });
                    let doc = &h.doc;
                    let returns = &h.return_text;
                    rpcs.push(quote! {
                        ::volttron::__private::RpcSpec {
                            name: #rpc_name,
                            params: &[#(#param_specs),*],
                            doc: #doc,
                            returns: #returns,
                        }
                    });
                    let names: Vec<String> = arguments.iter().map(|p| p.name.to_string()).collect();
                    let locals: Vec<syn::Ident> =
                        (0..h.params.len()).map(|k| format_ident!("__arg{}", k)).collect();
                    let mut position = 0usize;
                    let reads: Vec<TokenStream> = h
                        .params
                        .iter()
                        .zip(&locals)
                        .map(|(p, local)| {
                            let ty: &Type = &p.ty;
                            if p.caller {
                                return quote! {
                                    let #local: #ty = ::volttron::__private::Caller::new(__caller.clone());
                                };
                            }
                            let k = position;
                            position += 1;
                            quote! {
                                let #local: #ty = match __reader.next::<#ty>(#k) {
                                    ::core::result::Result::Ok(v) => v,
                                    ::core::result::Result::Err(e) => {
                                        return ::volttron::__private::Dispatch::Done(::core::result::Result::Err(e));
                                    }
                                };
                            }
                        })
                        .collect();
                    let args: Vec<TokenStream> = locals.iter().map(|l| quote!(#l)).collect();
                    let body = call_as(h, &args, true, *route);
                    let reader_mut = (!arguments.is_empty()).then(|| quote!(mut));
                    rpc_arms.push(quote! {
                        #i => {
                            #[allow(unused_variables)]
                            let #reader_mut __reader = match ::volttron::__private::ArgReader::new(#rpc_name, &[#(#names),*], __args) {
                                ::core::result::Result::Ok(r) => r,
                                ::core::result::Result::Err(e) => {
                                    return ::volttron::__private::Dispatch::Done(::core::result::Result::Err(e));
                                }
                            };
                            #(#reads)*
                            #body
                        }
                    });
                }
            }
        }
    }

    let none = quote!(::volttron::__private::Dispatch::none());
    let hook = |body: Option<TokenStream>| body.unwrap_or_else(|| none.clone());
    let setup = hook(setup);
    let start = hook(start);
    let stop = hook(stop);
    let connected = hook(connected);
    let disconnected = hook(disconnected);
    let has_peerlist = peerlist.is_some();
    let has_health = health.is_some();
    let health_arm = match health {
        Some(body) => quote!(::volttron::__private::Invocation::Health(__health) => { #body }),
        None => quote!(::volttron::__private::Invocation::Health(_) => #none,),
    };
    let peer_arm = match peerlist {
        Some(body) => quote!(::volttron::__private::Invocation::Peer(__event) => { #body }),
        None => quote!(::volttron::__private::Invocation::Peer(_) => #none,),
    };
    let indexed = |pattern: TokenStream, arms: Vec<TokenStream>, bind: TokenStream| -> TokenStream {
        if arms.is_empty() {
            quote!(#pattern { .. } => #none,)
        } else {
            quote!(#pattern { #bind } => match index { #(#arms)* _ => #none },)
        }
    };
    let pub_arm = indexed(
        quote!(::volttron::__private::Invocation::Publication),
        sub_arms,
        quote!(index, publication: __publication),
    );
    let rpc_arm = indexed(
        quote!(::volttron::__private::Invocation::Rpc),
        rpc_arms,
        quote!(index, args: __args, caller: __caller),
    );
    let periodic_arm = indexed(
        quote!(::volttron::__private::Invocation::Periodic),
        periodic_arms,
        quote!(index),
    );
    let cron_arm = indexed(
        quote!(::volttron::__private::Invocation::Cron),
        cron_arms,
        quote!(index),
    );
    let config_arm = indexed(
        quote!(::volttron::__private::Invocation::Config),
        config_arms,
        quote!(index, update: __update),
    );

    quote! {
        // Keeps every agent out of the "other types implement `Agent`" list of the error for
        // a type that is not one: the note saying to add `#[volttron::agent]` is the help.
        #[diagnostic::do_not_recommend]
        impl #impl_generics ::volttron::__private::Agent for #self_ty #where_clause {
            fn __descriptor() -> &'static ::volttron::__private::AgentDescriptor {
                static DESCRIPTOR: ::volttron::__private::AgentDescriptor = ::volttron::__private::AgentDescriptor {
                    name: #name,
                    subscriptions: &[#(#subscriptions),*],
                    rpcs: &[#(#rpcs),*],
                    periodics: &[#(#periodics),*],
                    crons: &[#(#crons),*],
                    configs: &[#(#configs),*],
                    on_peerlist: #has_peerlist,
                    on_health: #has_health,
                };
                &DESCRIPTOR
            }

            #[allow(unused_variables, clippy::let_unit_value, clippy::unit_arg)]
            fn __dispatch(
                &mut self,
                __ctx: &::volttron::__private::AgentContext,
                __invocation: ::volttron::__private::Invocation,
            ) -> ::volttron::__private::Dispatch<Self> {
                match __invocation {
                    ::volttron::__private::Invocation::Setup => { #setup }
                    ::volttron::__private::Invocation::Start => { #start }
                    ::volttron::__private::Invocation::Stop => { #stop }
                    ::volttron::__private::Invocation::Connected => { #connected }
                    ::volttron::__private::Invocation::Disconnected => { #disconnected }
                    #pub_arm
                    #rpc_arm
                    #periodic_arm
                    #cron_arm
                    #config_arm
                    #health_arm
                    #peer_arm
                }
            }
        }
    }
}

/// The struct's name as written (last path segment), for alerts and logs.
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        other => handler::type_text(other),
    }
}
