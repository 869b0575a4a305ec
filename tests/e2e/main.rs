//! End-to-end tests: they run the real `fabrik` binary.

mod apply;
mod cli;
mod new;
mod providers;
mod sandbox;
mod support;
mod templates;
mod validate;
