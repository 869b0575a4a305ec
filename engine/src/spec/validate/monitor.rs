//! `monitor:`: an uptime monitor of the app's health URL (the `monitor` role's provider
//! watches it once the app is verified). `monitor: {}` takes every default.

use super::*;
use crate::spec::model::{DEFAULT_MONITOR_INTERVAL, DEFAULT_MONITOR_RETRIES, Monitor};

const MONITOR_KEYS: &[&str] = &["interval", "retries", "keyword", "expect_status"];

impl Reader<'_> {
    /// `None` when the spec asks for no monitor (or wrote one that is invalid, reported).
    pub(super) fn monitor(&mut self, top: &Mapping, health: &Healthcheck) -> Option<Monitor> {
        let value = top.get("monitor")?;
        let empty = Mapping::new();
        let mapping = match value {
            Value::Null => &empty,
            other => self.mapping(other, "monitor")?,
        };
        let p = "monitor";
        self.known_keys(mapping, p, MONITOR_KEYS);
        let interval = match Self::get(mapping, "interval") {
            None => Some(DEFAULT_MONITOR_INTERVAL),
            // Uptime Kuma 1.23 refuses less than 20 seconds; a day at most.
            Some(_) => self
                .integer(mapping, p, "interval", 20, 86_400)
                .and_then(|i| u32::try_from(i).ok()),
        };
        let retries = match Self::get(mapping, "retries") {
            None => Some(DEFAULT_MONITOR_RETRIES),
            Some(_) => self
                .integer(mapping, p, "retries", 0, 10)
                .and_then(|i| u32::try_from(i).ok()),
        };
        let keyword = self.string(mapping, p, "keyword");
        if let Some(keyword) = &keyword
            && (keyword.len() > 255 || keyword.chars().any(char::is_control))
        {
            self.error(
                "monitor.keyword",
                "must be one line of at most 255 characters",
            );
        }
        let expect_status = match Self::get(mapping, "expect_status") {
            // The health check's own, if it has one.
            None => health.expect_status,
            Some(_) => self
                .integer(mapping, p, "expect_status", 100, 599)
                .and_then(|s| u16::try_from(s).ok()),
        };
        Some(Monitor {
            interval: interval?,
            retries: retries?,
            keyword,
            expect_status,
        })
    }
}
