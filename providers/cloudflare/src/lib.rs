//! Cloudflare DNS provider plugin. Built as a WebAssembly component behind `wit/`; its API logic lands with the plugin-host and providers issues.
