//! Code generation for `retries`, `backoff`, `retry_delay`, `max_delay`,
//! `jitter`, `new_trace_after`, `timeout` and `cache`: the body becomes a
//! function of the attempt, run by the lifecycle executor under the span.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, Pat, Type};

use crate::expand::Expansion;

impl Expansion<'_> {
    /// `Lifecycle::new(..).retries(..)...run(span, make, outcome)`; `inner`
    /// is the async body of one attempt.
    pub(crate) fn lifecycle(&self, output: &Type, inner: TokenStream) -> TokenStream {
        let krate = &self.krate;
        let args = self.args;
        let retries = args.retries.as_ref().map(|n| {
            let delay = args.retry_delay.as_ref().map_or(100, |d| d.millis);
            let base = match &args.backoff {
                Some(kind) if kind == "fixed" => quote!(.fixed_backoff(#delay)),
                _ => quote!(.exponential_backoff(#delay)),
            };
            let max = args.max_delay.as_ref().map(|d| {
                let ms = d.millis;
                quote!(.max_delay(#ms))
            });
            let jitter = args.jitter.as_ref().map(|j| quote!(.jitter(#j)));
            let relink = args.new_trace_after.as_ref().map(|d| {
                let ms = d.millis;
                quote!(.new_trace_after(#ms))
            });
            quote!(.retries(#n) #base #max #jitter #relink)
        });
        let timeout = args.timeout.as_ref().map(|t| {
            let ms = t.millis;
            quote!(.timeout(#ms))
        });
        let cache = args.cache.as_ref().map(|key| {
            if self.is_result(output) {
                quote!(.cache_ok(__flowtrace_function(), &(#key)))
            } else {
                quote!(.cache(__flowtrace_function(), &(#key)))
            }
        });
        // Validation has checked that every argument is a plain `name: Type`.
        let params: Vec<_> = self
            .sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(pat) => Some((&pat.ident, pat.mutability)),
                    _ => None,
                },
                FnArg::Receiver(_) => None,
            })
            .collect();
        let idents: Vec<_> = params.iter().map(|(i, _)| i).collect();
        let muts: Vec<_> = params.iter().map(|(_, m)| m).collect();
        let make = if args.retries.is_some() {
            quote! {
                move |_| {
                    #(let #muts #idents = #krate::__private::RetryArg::retry_clone(&#idents);)*
                    #inner
                }
            }
        } else {
            quote! {
                {
                    let mut __flowtrace_args = ::core::option::Option::Some((#(#idents,)*));
                    move |_| {
                        let (#(#muts #idents,)*) = match __flowtrace_args.take() {
                            ::core::option::Option::Some(args) => args,
                            ::core::option::Option::None => {
                                ::core::unreachable!("a task body without retries runs once")
                            }
                        };
                        #inner
                    }
                }
            }
        };
        let outcome = self.outcome(output);
        let name = &self.name;
        quote! {
            {
                let __flowtrace_lifecycle = #krate::__private::Lifecycle::new(#name)
                    #retries #timeout #cache;
                __flowtrace_lifecycle.run(__flowtrace_span, #make, #outcome)
            }
        }
    }
}
