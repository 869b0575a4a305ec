//! Providers embedded in the `fabrik` binary, built by `build.rs` from `providers/`.

/// A provider component shipped inside `fabrik`.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    pub name: &'static str,
    pub wasm: &'static [u8],
    /// Hex sha256 of `wasm`, computed by the build: the lock check costs nothing.
    pub sha256: &'static str,
}

pub const BUNDLED: &[Bundled] = &[
    Bundled {
        name: "cloudflare",
        wasm: include_bytes!(env!("FABRIK_BUNDLED_CLOUDFLARE")),
        sha256: env!("FABRIK_BUNDLED_CLOUDFLARE_SHA256"),
    },
    Bundled {
        name: "coolify",
        wasm: include_bytes!(env!("FABRIK_BUNDLED_COOLIFY")),
        sha256: env!("FABRIK_BUNDLED_COOLIFY_SHA256"),
    },
    Bundled {
        name: "powerdns",
        wasm: include_bytes!(env!("FABRIK_BUNDLED_POWERDNS")),
        sha256: env!("FABRIK_BUNDLED_POWERDNS_SHA256"),
    },
    Bundled {
        name: "uptime-kuma",
        wasm: include_bytes!(env!("FABRIK_BUNDLED_UPTIME_KUMA")),
        sha256: env!("FABRIK_BUNDLED_UPTIME_KUMA_SHA256"),
    },
];

pub fn find(name: &str) -> Option<&'static Bundled> {
    BUNDLED.iter().find(|b| b.name == name)
}

pub fn names() -> Vec<&'static str> {
    BUNDLED.iter().map(|b| b.name).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_recorded_digests_are_the_embedded_bytes() {
        for bundled in super::BUNDLED {
            assert_eq!(
                bundled.sha256,
                super::super::sha256_hex(bundled.wasm),
                "{}",
                bundled.name
            );
        }
    }
}
