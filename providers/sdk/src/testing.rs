//! A fake host for unit tests of a provider, run natively with `cargo test` (no
//! component, no Fabrik): every request the SDK would send through the host goes to a
//! handler you give, and what the provider logs is kept.
//!
//! ```ignore
//! use fabrik_provider_sdk::testing::{FakeHost, reply};
//!
//! #[test]
//! fn a_missing_record_reads_as_gone() {
//!     let host = FakeHost::serve(|request| match request.url.as_str() {
//!         "https://api.my-dns.example/v1/records/42" => reply(404, "{}"),
//!         _ => reply(200, r#"{"ok": true}"#),
//!     });
//!     MyDns::configure(vec![("base-url".into(), "https://api.my-dns.example/v1".into())]).unwrap();
//!     assert!(MyDns::read("dns-record".into(), "42".into()).unwrap().is_none());
//!     assert_eq!(host.requests().len(), 1);
//! }
//! ```
//!
//! The fake is per thread (each test runs on its own) and only exists natively: in the
//! component, requests always go to the real host.

use std::cell::RefCell;
use std::rc::Rc;

use crate::LogLevel;
use crate::bindings::fabrik::provider::host::{HttpError, HttpRequest, HttpResponse};

type Handler = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, HttpError>>;

#[derive(Default)]
struct Fake {
    handler: Option<Handler>,
    requests: Vec<HttpRequest>,
    logs: Vec<(LogLevel, String)>,
}

thread_local! {
    static FAKE: RefCell<Option<Rc<RefCell<Fake>>>> = const { RefCell::new(None) };
}

/// The fake host of the current thread, installed by [`FakeHost::serve`] until dropped.
pub struct FakeHost {
    fake: Rc<RefCell<Fake>>,
}

impl FakeHost {
    /// Answers every request the provider sends on this thread with `handler`.
    pub fn serve(
        handler: impl FnMut(&HttpRequest) -> Result<HttpResponse, HttpError> + 'static,
    ) -> Self {
        let fake = Rc::new(RefCell::new(Fake {
            handler: Some(Box::new(handler)),
            ..Fake::default()
        }));
        FAKE.with(|f| *f.borrow_mut() = Some(fake.clone()));
        Self { fake }
    }

    /// The requests sent so far, in order (credentials named, never valued: the real
    /// host attaches them).
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.fake.borrow().requests.clone()
    }

    /// What the provider logged.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.fake.borrow().logs.clone()
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        // Only this host: a `FakeHost` served since (and assigned over this one) stays.
        FAKE.with(|f| {
            let mut installed = f.borrow_mut();
            if installed
                .as_ref()
                .is_some_and(|fake| Rc::ptr_eq(fake, &self.fake))
            {
                *installed = None;
            }
        });
    }
}

/// A response with `status` and a JSON `body`.
pub fn reply(status: u16, body: &str) -> Result<HttpResponse, HttpError> {
    Ok(HttpResponse {
        status,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.as_bytes().to_vec(),
    })
}

fn installed() -> Rc<RefCell<Fake>> {
    FAKE.with(|f| f.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "a provider called the host outside a component: in a unit test, install `fabrik_provider_sdk::testing::FakeHost::serve` first"
        )
    })
}

pub(crate) fn http_send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    let fake = installed();
    let mut fake = fake.borrow_mut();
    fake.requests.push(request.clone());
    let mut handler = fake.handler.take().expect("the handler is not re-entered");
    drop(fake);
    let answer = handler(request);
    installed().borrow_mut().handler = Some(handler);
    answer
}

pub(crate) fn log(level: LogLevel, message: &str) {
    if let Some(fake) = FAKE.with(|f| f.borrow().clone()) {
        fake.borrow_mut().logs.push((level, message.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::fabrik::provider::host::Method;

    fn get() -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            url: "https://api.example.com/x".to_owned(),
            headers: vec![],
            body: None,
            credential: None,
            timeout_ms: None,
        }
    }

    #[test]
    fn a_host_served_over_another_stays_installed() {
        let first = FakeHost::serve(|_| reply(500, "{}"));
        let host = FakeHost::serve(|_| reply(200, "{}"));
        // The first one goes after the second was served: the second stays.
        drop(first);
        assert_eq!(http_send(&get()).map(|r| r.status).ok(), Some(200));
        assert_eq!(host.requests().len(), 1);
        drop(host);
        assert!(FAKE.with(|f| f.borrow().is_none()), "dropped, it is gone");
    }
}
