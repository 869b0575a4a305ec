//! End-to-end tests: they run the real `fabrik` binary.

mod apply;
mod cli;
mod convergence;
mod deploy;
mod failure_paths;
mod gc;
mod lifecycle;
mod live;
mod model;
mod new;
mod oci;
mod openapi;
mod provider_cloudflare;
mod provider_coolify;
mod provider_kit;
mod provider_support;
mod providers;
mod real_apis;
mod round_trips;
mod sandbox;
mod schemas;
mod state_postgres;
mod support;
mod templates;
mod validate;
mod verification;
