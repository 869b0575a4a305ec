//! A provider as large as a Python one (~19 MB, most of it a data segment, as a
//! componentize-py component carries its interpreter's memory image), for measuring how
//! fast the host refuses and loads large components. It only answers `describe`.

// Built from the frozen 0.2.0 contract, so that a 0.2 component stays under test.
wit_bindgen::generate!({ path: "../../../wit/released/0.2.0", world: "provider-plugin" });

use exports::fabrik::provider::provider::{
    Guest, ProgressReport, ProviderError, ProviderInfo, Resource, ResourcePage,
};

/// 18 MiB of initialised data; not zeros, so the linker keeps it as a data segment.
static PAD: [u8; 18 << 20] = [0x5a; 18 << 20];

struct Large;

fn only_describe() -> ProviderError {
    ProviderError::Permanent("the large test provider only answers `describe`".to_owned())
}

impl Guest for Large {
    fn describe() -> ProviderInfo {
        // Reading the padding keeps it in the component.
        let pad = std::hint::black_box(&PAD);
        ProviderInfo {
            name: "large".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: format!("A {} MiB test provider", (pad.len() + usize::from(pad[pad.len() / 2] & 0)) >> 20),
            kinds: vec!["large".to_owned()],
            config: vec![],
            default_origins: vec![],
        }
    }

    fn configure(_: Vec<(String, String)>) -> Result<(), ProviderError> {
        Ok(())
    }

    fn read(_: String, _: String) -> Result<Option<Resource>, ProviderError> {
        Err(only_describe())
    }

    fn create(_: String, _: String, _: String, _: String) -> Result<Resource, ProviderError> {
        Err(only_describe())
    }

    fn update(_: String, _: String, _: String) -> Result<Resource, ProviderError> {
        Err(only_describe())
    }

    fn delete(_: String, _: String, _: String, _: bool) -> Result<(), ProviderError> {
        Err(only_describe())
    }

    fn progress(_: String, _: String) -> Result<ProgressReport, ProviderError> {
        Err(only_describe())
    }

    fn list(_: String, _: String, _: Option<String>) -> Result<ResourcePage, ProviderError> {
        Err(only_describe())
    }

    fn lookup(_: String, _: String, _: String) -> Result<Option<Resource>, ProviderError> {
        Err(only_describe())
    }
}

export!(Large);
