//! Parse and validate: turns a method and its agent attributes into a [`Handler`].

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, FnArg, ImplItemFn, Lit, LitStr, Pat, ReturnType, Type};

/// The attributes this macro owns.
pub(crate) const ATTRIBUTES: &[&str] = &[
    "on_setup",
    "on_start",
    "on_stop",
    "subscribe",
    "rpc",
    "route",
    "periodic",
    "schedule",
    "on_peerlist",
    "on_config",
    "on_health",
    "on_connected",
    "on_disconnected",
];

/// What a handler is for.
pub(crate) enum Role {
    Setup,
    Start,
    Stop,
    Subscribe {
        prefix: LitStr,
        bus: String,
        /// The `OverflowPolicy` variant name.
        overflow: &'static str,
        /// Also receives publications from federated platforms.
        all_platforms: bool,
    },
    Rpc {
        name: String,
        span: Span,
        /// `#[route(METHOD, "/path")]`: an RPC named `web.route METHOD /path` whose return
        /// is converted to a web response.
        route: bool,
    },
    Periodic {
        period_ns: u64,
        wait_ns: u64,
    },
    Cron {
        expr: LitStr,
    },
    Peerlist,
    /// `#[on_health]`.
    Health,
    /// `#[on_connected]`: the bridge (re)connected.
    Connected,
    /// `#[on_disconnected]`: the bridge lost its platform.
    Disconnected,
    /// `#[on_config("pattern", actions = [..])]`: bitmask NEW=1, UPDATE=2, DELETE=4.
    Config {
        pattern: String,
        actions: u8,
    },
}

impl Role {
    pub(crate) fn attribute(&self) -> &'static str {
        match self {
            Role::Setup => "on_setup",
            Role::Start => "on_start",
            Role::Stop => "on_stop",
            Role::Subscribe { .. } => "subscribe",
            Role::Rpc { route: false, .. } => "rpc",
            Role::Rpc { route: true, .. } => "route",
            Role::Periodic { .. } => "periodic",
            Role::Cron { .. } => "schedule",
            Role::Peerlist => "on_peerlist",
            Role::Config { .. } => "on_config",
            Role::Health => "on_health",
            Role::Connected => "on_connected",
            Role::Disconnected => "on_disconnected",
        }
    }
}

/// An RPC parameter.
pub(crate) struct Param {
    pub(crate) name: syn::Ident,
    pub(crate) ty: Type,
    /// A `Caller` parameter: filled from the request, not an argument of the call.
    pub(crate) caller: bool,
}

/// A validated handler method.
pub(crate) struct Handler {
    pub(crate) method: syn::Ident,
    pub(crate) is_async: bool,
    pub(crate) takes_ctx: bool,
    /// Parameters after `self` and the context (the publication / event, or RPC args).
    pub(crate) params: Vec<Param>,
    pub(crate) returns_result: bool,
    pub(crate) return_text: String,
    pub(crate) doc: String,
    pub(crate) roles: Vec<Role>,
}

/// Removes this macro's attributes from `method` and parses them. Other attributes stay.
pub(crate) fn take_roles(method: &mut ImplItemFn, errors: &mut Vec<syn::Error>) -> Vec<Role> {
    let mut roles = Vec::new();
    let mut kept: Vec<Attribute> = Vec::new();
    for attr in std::mem::take(&mut method.attrs) {
        let Some(ident) = attr.path().get_ident().map(|i| i.to_string()) else {
            kept.push(attr);
            continue;
        };
        if ATTRIBUTES.contains(&ident.as_str()) {
            match parse_role(&ident, &attr) {
                Ok(role) => roles.push(role),
                Err(e) => errors.push(e),
            }
        } else {
            if let Some(close) = ATTRIBUTES.iter().find(|a| is_typo(&ident, a)) {
                errors.push(syn::Error::new(
                    attr.path().span(),
                    format!("unknown agent attribute `{ident}`; did you mean `{close}`?"),
                ));
                continue;
            }
            kept.push(attr);
        }
    }
    method.attrs = kept;
    roles
}

/// Close enough to one of ours to be a typo (and not a well-known attribute).
fn is_typo(ident: &str, ours: &str) -> bool {
    const BUILTIN: &[&str] = &[
        "doc",
        "allow",
        "warn",
        "deny",
        "forbid",
        "expect",
        "cfg",
        "cfg_attr",
        "inline",
        "must_use",
        "deprecated",
        "track_caller",
        "cold",
        "rustfmt",
        "clippy",
        "test",
    ];
    !BUILTIN.contains(&ident) && ident != ours && edit_distance(ident, ours) <= 2 && ident.len() > 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn parse_role(name: &str, attr: &Attribute) -> syn::Result<Role> {
    let no_args = |role: Role| -> syn::Result<Role> {
        match &attr.meta {
            syn::Meta::Path(_) => Ok(role),
            other => Err(syn::Error::new_spanned(
                other,
                format!("`#[{name}]` takes no arguments"),
            )),
        }
    };
    match name {
        "on_setup" => no_args(Role::Setup),
        "on_start" => no_args(Role::Start),
        "on_stop" => no_args(Role::Stop),
        "on_peerlist" => no_args(Role::Peerlist),
        "on_health" => no_args(Role::Health),
        "on_connected" => no_args(Role::Connected),
        "on_disconnected" => no_args(Role::Disconnected),
        "on_config" => {
            let mut pattern = "*".to_owned();
            let mut actions = 0b111u8;
            if let syn::Meta::List(list) = &attr.meta {
                list.parse_args_with(|input: syn::parse::ParseStream<'_>| {
                    if input.peek(LitStr) {
                        pattern = input.parse::<LitStr>()?.value();
                        if input.is_empty() {
                            return Ok(());
                        }
                        input.parse::<syn::Token![,]>()?;
                    }
                    while !input.is_empty() {
                        let key: syn::Ident = input.parse()?;
                        if key != "actions" {
                            return Err(syn::Error::new(
                                key.span(),
                                format!("unknown `on_config` argument `{key}`; expected a name pattern, then optionally `actions = [\"NEW\", \"UPDATE\", \"DELETE\"]`"),
                            ));
                        }
                        input.parse::<syn::Token![=]>()?;
                        let content;
                        syn::bracketed!(content in input);
                        let list = content.parse_terminated(|p| p.parse::<LitStr>(), syn::Token![,])?;
                        actions = 0;
                        for action in list {
                            actions |= match action.value().as_str() {
                                "NEW" => 1,
                                "UPDATE" => 2,
                                "DELETE" => 4,
                                other => {
                                    return Err(syn::Error::new(
                                        action.span(),
                                        format!("unknown config action `{other}`; expected \"NEW\", \"UPDATE\" or \"DELETE\""),
                                    ));
                                }
                            };
                        }
                        if !input.is_empty() {
                            input.parse::<syn::Token![,]>()?;
                        }
                    }
                    Ok(())
                })?;
            }
            Ok(Role::Config { pattern, actions })
        }
        "rpc" => {
            let mut rpc_name = None;
            if !matches!(attr.meta, syn::Meta::Path(_)) {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("name") {
                        let lit: LitStr = meta.value()?.parse()?;
                        let value = lit.value();
                        if value.trim().is_empty() {
                            return Err(syn::Error::new(lit.span(), "an RPC name cannot be empty"));
                        }
                        rpc_name = Some((value, lit.span()));
                        Ok(())
                    } else {
                        Err(meta.error("unknown `rpc` argument; expected `name = \"...\"`"))
                    }
                })?;
            }
            Ok(match rpc_name {
                Some((name, span)) => Role::Rpc {
                    name,
                    span,
                    route: false,
                },
                None => Role::Rpc {
                    name: String::new(),
                    span: attr.span(),
                    route: false,
                },
            })
        }
        "route" => {
            const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
            let usage = "`#[route]` needs a method and a path: `#[route(GET, \"/hvac/summary\")]`";
            let syn::Meta::List(list) = &attr.meta else {
                return Err(syn::Error::new_spanned(attr, usage));
            };
            let (method, path) = list
                .parse_args_with(|input: syn::parse::ParseStream<'_>| {
                    let method: syn::Ident = input.parse()?;
                    input.parse::<syn::Token![,]>()?;
                    let path: LitStr = input.parse()?;
                    Ok((method, path))
                })
                .map_err(|e| syn::Error::new(e.span(), usage))?;
            let m = method.to_string();
            if !METHODS.contains(&m.as_str()) {
                return Err(syn::Error::new(
                    method.span(),
                    format!(
                        "unknown HTTP method `{m}`; expected one of {}",
                        METHODS.join(", ")
                    ),
                ));
            }
            let p = path.value();
            if !p.starts_with('/') || p.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
                return Err(syn::Error::new(
                    path.span(),
                    "a route path starts with `/` and has no spaces, `?` or `#`",
                ));
            }
            Ok(Role::Rpc {
                name: format!("web.route {m} {p}"),
                span: path.span(),
                route: true,
            })
        }
        "subscribe" => {
            let syn::Meta::List(list) = &attr.meta else {
                return Err(syn::Error::new_spanned(
                    attr,
                    "`#[subscribe]` needs a prefix: `#[subscribe(\"devices/\")]`",
                ));
            };
            let mut prefix: Option<LitStr> = None;
            let mut bus = String::new();
            let mut overflow = "DropOldest";
            let mut all_platforms = false;
            list.parse_args_with(|input: syn::parse::ParseStream<'_>| {
                if input.peek(LitStr) {
                    prefix = Some(input.parse()?);
                    if input.is_empty() {
                        return Ok(());
                    }
                    input.parse::<syn::Token![,]>()?;
                }
                while !input.is_empty() {
                    let key: syn::Ident = input.parse()?;
                    input.parse::<syn::Token![=]>()?;
                    if key == "all_platforms" {
                        all_platforms = input.parse::<syn::LitBool>()?.value;
                        if !input.is_empty() {
                            input.parse::<syn::Token![,]>()?;
                        }
                        continue;
                    }
                    let value: LitStr = input.parse()?;
                    match key.to_string().as_str() {
                        "prefix" if prefix.is_none() => prefix = Some(value),
                        "bus" => bus = value.value(),
                        "overflow" => {
                            overflow = match value.value().as_str() {
                                "drop_oldest" => "DropOldest",
                                "drop_newest" => "DropNewest",
                                "disconnect" => "Disconnect",
                                other => {
                                    return Err(syn::Error::new(
                                        value.span(),
                                        format!("unknown overflow policy `{other}`; expected `drop_oldest`, `drop_newest` or `disconnect`"),
                                    ));
                                }
                            }
                        }
                        _ => {
                            return Err(syn::Error::new(
                                key.span(),
                                format!("unknown `subscribe` argument `{key}`; expected a prefix string, then optionally `bus = \"...\"`, `overflow = \"drop_oldest\" | \"drop_newest\" | \"disconnect\"` and `all_platforms = true`"),
                            ));
                        }
                    }
                    if !input.is_empty() {
                        input.parse::<syn::Token![,]>()?;
                    }
                }
                Ok(())
            })?;
            let prefix = prefix.ok_or_else(|| {
                syn::Error::new_spanned(
                    list,
                    "`#[subscribe]` needs a prefix: `#[subscribe(\"devices/\")]`",
                )
            })?;
            check_subscription(&prefix)?;
            Ok(Role::Subscribe {
                prefix,
                bus,
                overflow,
                all_platforms,
            })
        }
        "periodic" => {
            let mut period = None;
            let mut wait = 0u64;
            attr.parse_nested_meta(|meta| {
                let key = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                match key.as_str() {
                    "secs" => {
                        let (ns, span) = seconds(&meta.value()?.parse()?)?;
                        if ns == 0 {
                            return Err(syn::Error::new(span, "the period must be greater than zero"));
                        }
                        period = Some(ns);
                    }
                    "wait" => wait = seconds(&meta.value()?.parse()?)?.0,
                    _ => {
                        return Err(meta.error(
                            "unknown `periodic` argument; expected `secs = N` and optionally `wait = N`",
                        ));
                    }
                }
                Ok(())
            })?;
            let period_ns = period.ok_or_else(|| {
                syn::Error::new_spanned(attr, "`#[periodic]` needs a period: `#[periodic(secs = 5)]`")
            })?;
            Ok(Role::Periodic {
                period_ns,
                wait_ns: wait,
            })
        }
        "schedule" => {
            let mut expr = None;
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("cron") {
                    let lit: LitStr = meta.value()?.parse()?;
                    let fields = lit.value().split_whitespace().count();
                    if fields != 5 {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!("a cron expression has 5 fields (minute hour day-of-month month day-of-week); this one has {fields}"),
                        ));
                    }
                    expr = Some(lit);
                    Ok(())
                } else {
                    Err(meta.error("unknown `schedule` argument; expected `cron = \"m h dom mon dow\"`"))
                }
            })?;
            let expr = expr.ok_or_else(|| {
                syn::Error::new_spanned(attr, "`#[schedule]` needs `cron = \"m h dom mon dow\"`")
            })?;
            Ok(Role::Cron { expr })
        }
        _ => unreachable!("only called for our attributes"),
    }
}

/// Checks what can be checked of a subscription at compile time.
fn check_subscription(prefix: &LitStr) -> syn::Result<()> {
    let text = prefix.value();
    if text.chars().any(|c| c.is_control()) {
        return Err(syn::Error::new(
            prefix.span(),
            "a subscription cannot contain control characters",
        ));
    }
    let levels: Vec<&str> = text.split('/').collect();
    if let Some(pos) = levels.iter().position(|l| *l == "#")
        && pos + 1 != levels.len()
    {
        return Err(syn::Error::new(
            prefix.span(),
            "`#` may only be the last level of a pattern",
        ));
    }
    Ok(())
}

/// A duration literal in seconds (integer or float), as nanoseconds.
fn seconds(expr: &Expr) -> syn::Result<(u64, Span)> {
    let span = expr.span();
    let secs = match expr {
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i.base10_parse::<f64>()?,
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>()?,
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                "expected a number of seconds, like `5` or `0.5`",
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(syn::Error::new_spanned(
            expr,
            "expected a number of seconds between 0 and 1e9",
        ));
    }
    Ok(((secs * 1e9).round() as u64, span))
}

/// Validates the method's signature for its roles.
pub(crate) fn analyse(method: &ImplItemFn, roles: Vec<Role>) -> syn::Result<Handler> {
    let sig = &method.sig;
    let role = &roles[0];
    let attr = role.attribute();
    if let Some(other) = roles.iter().find(|r| r.attribute() != attr) {
        return Err(syn::Error::new(
            sig.ident.span(),
            format!(
                "a method can be `#[{attr}]` or `#[{}]`, not both",
                other.attribute()
            ),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "agent handlers cannot be generic",
        ));
    }
    if matches!(role, Role::Setup) && sig.asyncness.is_some() {
        return Err(syn::Error::new(
            sig.asyncness.span(),
            "`#[on_setup]` cannot be async: it runs before the agent joins the bus; use `#[on_start]` for async work",
        ));
    }
    let mut inputs = sig.inputs.iter().peekable();
    match inputs.next() {
        // `&mut self`, `&self`, or `self: &mut Self`.
        Some(FnArg::Receiver(r)) if matches!(&*r.ty, Type::Reference(_)) => {}
        first => {
            let msg = format!("`#[{attr}]` handlers take `&mut self` (or `&self`) first");
            return Err(match first {
                Some(arg) => syn::Error::new_spanned(arg, msg),
                None => syn::Error::new(sig.paren_token.span.join(), msg),
            });
        }
    }
    let takes_ctx = inputs.peek().is_some_and(|a| is_ref_to(a, "AgentContext"));
    if takes_ctx {
        inputs.next();
    }
    let rest: Vec<&FnArg> = inputs.collect();
    let expected = match role {
        Role::Subscribe { .. } => Some((
            "Publication",
            "fn(&mut self, ctx: &AgentContext, msg: &Publication)",
        )),
        Role::Peerlist => Some((
            "PeerEvent",
            "fn(&mut self, ctx: &AgentContext, event: &PeerEvent)",
        )),
        Role::Health => Some(("Health", "fn(&mut self, ctx: &AgentContext, health: &Health)")),
        Role::Config { .. } => Some((
            "ConfigUpdate",
            "fn(&mut self, ctx: &AgentContext, update: &ConfigUpdate)",
        )),
        _ => None,
    };
    let mut params = Vec::new();
    match (role, expected) {
        (_, Some((ty, shape))) => {
            if rest.len() != 1 || !is_ref_to(rest[0], ty) {
                let msg = format!("`#[{attr}]` handlers look like `{shape}` (the context is optional)");
                return Err(if rest.is_empty() {
                    syn::Error::new(sig.paren_token.span.join(), msg)
                } else {
                    syn::Error::new_spanned(quote::quote!(#(#rest),*), msg)
                });
            }
        }
        (Role::Rpc { route, .. }, None) => {
            if *route && rest.iter().filter(|a| !is_caller_arg(a)).count() > 1 {
                return Err(syn::Error::new_spanned(
                    quote::quote!(#(#rest),*),
                    "`#[route]` handlers take at most one argument, the request: `fn(&mut self, ctx: &AgentContext, request: WebRequest)`",
                ));
            }
            for arg in rest {
                let FnArg::Typed(pt) = arg else {
                    unreachable!("receiver only comes first")
                };
                let Pat::Ident(pi) = &*pt.pat else {
                    return Err(syn::Error::new_spanned(
                        &pt.pat,
                        "RPC parameters must be plain names (they are also the keyword-argument names)",
                    ));
                };
                if let Type::Reference(r) = &*pt.ty {
                    return Err(syn::Error::new_spanned(
                        r,
                        "RPC parameters must be owned types (e.g. `String`, not `&str`): they are deserialized from the request",
                    ));
                }
                params.push(Param {
                    name: pi.ident.clone(),
                    caller: is_named(&pt.ty, "Caller"),
                    ty: (*pt.ty).clone(),
                });
            }
        }
        _ => {
            if !rest.is_empty() {
                return Err(syn::Error::new_spanned(
                    quote::quote!(#(#rest),*),
                    format!("`#[{attr}]` handlers take only `&mut self` and optionally `ctx: &AgentContext`"),
                ));
            }
        }
    }
    let (returns_result, return_text) = match &sig.output {
        ReturnType::Default => (false, "()".to_owned()),
        ReturnType::Type(_, ty) => (is_result(ty), type_text(ty)),
    };
    Ok(Handler {
        method: sig.ident.clone(),
        is_async: sig.asyncness.is_some(),
        takes_ctx,
        params,
        returns_result,
        return_text,
        doc: doc_text(&method.attrs),
        roles,
    })
}

fn is_caller_arg(arg: &FnArg) -> bool {
    matches!(arg, FnArg::Typed(pt) if is_named(&pt.ty, "Caller"))
}

fn is_ref_to(arg: &FnArg, name: &str) -> bool {
    let FnArg::Typed(pt) = arg else { return false };
    let Type::Reference(r) = &*pt.ty else { return false };
    matches!(&*r.elem, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

/// Whether `ty` is a path whose last segment is `name` (`Caller`, `volttron::Caller`).
fn is_named(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

fn is_result(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Result"))
}

/// A type as a readable string.
pub(crate) fn type_text(ty: &Type) -> String {
    let raw = quote::quote!(#ty).to_string();
    raw.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
}

fn doc_text(attrs: &[Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}
