//! Providers embedded in the `fabrik` binary, built by `build.rs` from `providers/`.

/// A provider component shipped inside `fabrik`.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    pub name: &'static str,
    pub wasm: &'static [u8],
}

pub const BUNDLED: &[Bundled] = &[
    Bundled {
        name: "cloudflare",
        wasm: include_bytes!(env!("FABRIK_BUNDLED_CLOUDFLARE")),
    },
    Bundled {
        name: "coolify",
        wasm: include_bytes!(env!("FABRIK_BUNDLED_COOLIFY")),
    },
];

pub fn find(name: &str) -> Option<&'static Bundled> {
    BUNDLED.iter().find(|b| b.name == name)
}

pub fn names() -> Vec<&'static str> {
    BUNDLED.iter().map(|b| b.name).collect()
}
