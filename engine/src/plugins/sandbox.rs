//! The state a provider instance runs with, and the sandbox policy: WASI with nothing
//! granted, a memory cap, a per-call deadline, and guest output routed to tracing.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::http::HttpGateway;

/// Limits applied to every instance.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Largest linear memory, in bytes.
    pub memory: usize,
    /// Longest one call may take, host calls included.
    pub call_timeout: Duration,
    /// Longest a call that changes something (`create`, `update`, `delete`) may take:
    /// its requests may wait on slow work (see `http::CHANGE_REQUEST_TIMEOUT`).
    pub change_call_timeout: Duration,
}

impl SandboxLimits {
    /// Every call limited to `timeout`.
    pub fn with_call_timeout(self, timeout: Duration) -> Self {
        Self {
            call_timeout: timeout,
            change_call_timeout: timeout,
            ..self
        }
    }

    /// How long `function` may run.
    pub fn timeout_of(&self, function: &str) -> Duration {
        match function {
            "create" | "update" | "delete" => self.change_call_timeout,
            _ => self.call_timeout,
        }
    }
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory: 64 << 20,
            call_timeout: Duration::from_secs(30),
            change_call_timeout: Duration::from_secs(150),
        }
    }
}

/// The store data of one provider instance.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    pub(super) http: Arc<HttpGateway>,
    pub(super) provider: Arc<str>,
    pub(super) deadline: Option<Instant>,
    /// Whether the call running is a `progress` poll.
    pub(super) polling: bool,
    pub(super) stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl HostState {
    pub fn new(provider: &str, http: Arc<HttpGateway>, limits: SandboxLimits) -> Self {
        let provider: Arc<str> = Arc::from(provider);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        // Nothing is granted: no preopened directories, no environment, no arguments, no
        // stdin, and (the builder's defaults) no TCP, UDP or name lookups.
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestOutput::new(
                provider.clone(),
                "stdout",
                None,
                http.clone(),
            ))
            .stderr(GuestOutput::new(
                provider.clone(),
                "stderr",
                Some(stderr_tail.clone()),
                http.clone(),
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                cap: limits.memory,
                exceeded: None,
            },
            http,
            provider,
            deadline: None,
            polling: false,
            stderr_tail,
        }
    }

    /// The call its requests serve.
    pub fn serving(&self) -> super::http::Serving {
        super::http::Serving {
            deadline: self.deadline,
            poll: self.polling,
        }
    }

    /// The last lines the guest wrote to stderr (a Rust panic message lands there).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .map(|tail| tail.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and remembers that the cap was hit, because wasmtime reports the
/// resulting trap only as a message.
pub struct MemoryLimiter {
    cap: usize,
    pub(super) exceeded: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = Some(desired);
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} MiB exceeded (asked for {} MiB)",
                self.cap >> 20,
                desired >> 20
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Guest stdout or stderr, forwarded to tracing line by line, redacted.
#[derive(Clone)]
struct GuestOutput {
    provider: Arc<str>,
    stream: &'static str,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
    redactor: Arc<HttpGateway>,
}

impl GuestOutput {
    fn new(
        provider: Arc<str>,
        stream: &'static str,
        tail: Option<Arc<Mutex<VecDeque<String>>>>,
        redactor: Arc<HttpGateway>,
    ) -> Self {
        Self {
            provider,
            stream,
            tail,
            redactor,
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    /// Written synchronously: the default adapter writes from a background task, which
    /// has not run yet when a guest prints its panic message and aborts.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

impl GuestOutput {
    fn writer(&self) -> LineWriter {
        LineWriter {
            output: self.clone(),
            pending: Vec::new(),
        }
    }
}

/// Longest line kept before it is emitted anyway.
const MAX_LINE: usize = 4096;
/// Lines of stderr kept for error messages.
const TAIL_LINES: usize = 8;

struct LineWriter {
    output: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self, line: &[u8]) {
        let text = self
            .output
            .redactor
            .redact(String::from_utf8_lossy(line).trim_end());
        if text.is_empty() {
            return;
        }
        tracing::info!(provider = %self.output.provider, stream = self.output.stream, "{text}");
        if let Some(tail) = &self.output.tail
            && let Ok(mut tail) = tail.lock()
        {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text);
        }
    }

    fn push(&mut self, buf: &[u8]) {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line);
        }
        if self.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.flush_pending();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_pending();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
