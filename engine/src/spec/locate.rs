//! Where each field of a YAML document starts, so that errors can name line and column.
//!
//! serde_yaml gives no spans, so the document is parsed a second time with yaml-rust2's
//! event parser, which reports a position for every node.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::diagnostic::Location;

/// Field path → position of its key and of its value.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    keys: HashMap<String, Location>,
    values: HashMap<String, Location>,
}

/// A YAML syntax error with its position.
#[derive(Debug)]
pub struct SyntaxError {
    pub location: Location,
    pub message: String,
}

impl SourceMap {
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let mut builder = Builder::default();
        Parser::new_from_str(text)
            .load(&mut builder, false)
            .map_err(|e| SyntaxError {
                location: to_location(*e.marker()),
                message: e.info().to_owned(),
            })?;
        Ok(builder.map)
    }

    /// Position of the value at `path`, else of its key, else of the nearest ancestor,
    /// else the start of the file.
    pub fn value(&self, path: &str) -> Location {
        let mut current = Some(path);
        while let Some(path) = current {
            if let Some(found) = self.values.get(path).or_else(|| self.keys.get(path)) {
                return *found;
            }
            current = parent(path);
        }
        Location { line: 1, column: 1 }
    }

    /// Position of the key at `path` (for unknown-field errors), else of its value.
    pub fn key(&self, path: &str) -> Location {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

impl SourceMap {
    /// This map with what is under `from` moved to `to` (a path of the effective
    /// document): what was at `to` and below it before is dropped first. An environment's
    /// overrides are read where they are written, under `environments.<name>`.
    pub fn graft(&mut self, from: &str, to: &str) {
        let under = |path: &str, root: &str| {
            path == root
                || path
                    .strip_prefix(root)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        };
        for table in [&mut self.keys, &mut self.values] {
            table.retain(|path, _| !under(path, to));
            let moved: Vec<(String, Location)> = table
                .iter()
                .filter(|(path, _)| under(path, from))
                .map(|(path, location)| (format!("{to}{}", &path[from.len()..]), *location))
                .collect();
            table.extend(moved);
        }
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

fn to_location(marker: Marker) -> Location {
    Location {
        line: marker.line().max(1),
        column: marker.col() + 1,
    }
}

/// Joins a field path: `a` + `b` → `a.b`.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a sequence path: `a` + 1 → `a[1]`.
pub fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        /// Where the mapping-start event was reported, and whether a key has been seen.
        start: Marker,
        has_keys: bool,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Builder {
    map: SourceMap,
    stack: Vec<Frame>,
    done: bool,
}

impl Builder {
    /// The path of the node the next event describes, and whether it is a mapping key.
    fn position(&self) -> (String, bool) {
        match self.stack.last() {
            None => (String::new(), false),
            Some(Frame::Map {
                path, key: None, ..
            }) => (path.clone(), true),
            Some(Frame::Map {
                path,
                key: Some(key),
                ..
            }) => (child(path, key), false),
            Some(Frame::Seq { path, index }) => (item(path, *index), false),
        }
    }

    /// Moves the enclosing collection past the node just finished.
    fn advance(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => self.done = true,
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        if self.done {
            return;
        }
        let (path, is_key) = self.position();
        let location = to_location(marker);
        match event {
            Event::Scalar(text, ..) if is_key => {
                let key_path = child(&path, &text);
                self.map.keys.insert(key_path, location);
                if let Some(Frame::Map {
                    key,
                    start,
                    has_keys,
                    ..
                }) = self.stack.last_mut()
                {
                    // A block mapping's start event is reported after its first key; the
                    // mapping really starts at that key.
                    if !*has_keys && marker.index() < start.index() {
                        self.map.values.insert(path.clone(), location);
                    }
                    *has_keys = true;
                    *key = Some(text);
                }
            }
            Event::Scalar(..) | Event::Alias(..) => {
                if !is_key {
                    self.map.values.entry(path).or_insert(location);
                }
                self.advance();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A complex (non-scalar) key gets a path that no field can have.
                let path = if is_key { child(&path, "?") } else { path };
                self.map.values.entry(path.clone()).or_insert(location);
                self.stack.push(match event {
                    Event::MappingStart(..) => Frame::Map {
                        path,
                        key: None,
                        start: marker,
                        has_keys: false,
                    },
                    _ => Frame::Seq { path, index: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.advance();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "name: a\nhealthcheck:\n  path: /h\n  timeout: 3\nsecrets: [A, B]\nlist:\n  - x: 1\n";

    #[test]
    fn locates_nested_values_and_keys() {
        let map = SourceMap::parse(DOC).expect("valid yaml");
        assert_eq!(map.value(""), Location { line: 1, column: 1 });
        assert_eq!(map.value("healthcheck"), Location { line: 3, column: 3 });
        assert_eq!(map.value("name"), Location { line: 1, column: 7 });
        assert_eq!(map.key("healthcheck.path"), Location { line: 3, column: 3 });
        assert_eq!(
            map.value("healthcheck.timeout"),
            Location {
                line: 4,
                column: 12
            }
        );
        assert_eq!(
            map.value("secrets[1]"),
            Location {
                line: 5,
                column: 14
            }
        );
        assert_eq!(map.value("list[0].x"), Location { line: 7, column: 8 });
    }

    #[test]
    fn unknown_path_falls_back_to_nearest_ancestor() {
        let map = SourceMap::parse(DOC).expect("valid yaml");
        assert_eq!(map.value("healthcheck.interval"), map.value("healthcheck"));
        assert_eq!(map.value("nope"), Location { line: 1, column: 1 });
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = SourceMap::parse("a: [1, 2\nb: 3\n").expect_err("unclosed flow sequence");
        assert!(err.location.line >= 1);
        assert!(!err.message.is_empty());
    }
}
