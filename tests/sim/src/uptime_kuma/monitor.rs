//! A monitor row as Uptime Kuma stores and returns it: the columns `add` may set (an
//! unknown key makes the insert fail, the ORM's schema being frozen: `server/database.js`
//! 169 / 425), the table's defaults (1.23 patches, 2.x `db/knex_init_db.js` and
//! migrations), `Monitor.validate()` (`server/model/monitor.js` 1578 in 1.23.16, 1625 at
//! 2.5) and `toJSON()` (72-185 / 116-259). Lines are 1.23.16's, then HEAD's (2.5.3+).

use serde_json::{Map, Value, json};

use super::Version;

/// Columns of the `monitor` table an HTTP or keyword monitor uses, by the names clients
/// send (`bean.import` maps camelCase to the snake_case columns), with their defaults.
/// Fields of other monitor types are accepted and kept as they are.
const COLUMNS: &[(&str, Value)] = &[
    ("type", Value::Null),
    ("name", Value::Null),
    ("description", Value::Null),
    ("url", Value::Null),
    ("method", Value::Null),
    ("body", Value::Null),
    ("headers", Value::Null),
    ("hostname", Value::Null),
    ("port", Value::Null),
    ("interval", Value::Null),
    ("retryInterval", Value::Null),
    ("resendInterval", Value::Null),
    ("maxretries", Value::Null),
    ("timeout", Value::Null),
    ("keyword", Value::Null),
    ("invertKeyword", Value::Null),
    ("ignoreTls", Value::Null),
    ("upsideDown", Value::Null),
    ("maxredirects", Value::Null),
    ("expiryNotification", Value::Null),
    ("packetSize", Value::Null),
    ("parent", Value::Null),
    ("weight", Value::Null),
    ("active", Value::Null),
    ("httpBodyEncoding", Value::Null),
    ("authMethod", Value::Null),
    ("basic_auth_user", Value::Null),
    ("basic_auth_pass", Value::Null),
    ("dns_resolve_type", Value::Null),
    ("dns_resolve_server", Value::Null),
    ("proxyId", Value::Null),
    ("kafkaProducerBrokers", Value::Null),
    ("kafkaProducerSaslOptions", Value::Null),
    ("kafkaProducerTopic", Value::Null),
    ("kafkaProducerMessage", Value::Null),
];

/// Columns 2.x added (its `add` fails on 1.23 with them: no such column).
const COLUMNS_2X: &[&str] = &[
    "conditions",
    "rabbitmqNodes",
    "cacheBust",
    "saveResponse",
    "saveErrorResponse",
    "responseMaxLength",
    "ipFamily",
    "subtype",
    "location",
    "protocol",
];

/// Frontend-only properties 2.x drops before storing (`server/server.js` 769).
const FRONTEND_ONLY_2X: &[&str] = &[
    "humanReadableInterval",
    "globalpingdnsresolvetypeoptions",
    "responsecheck",
];

/// Defaults of the columns a client leaves out.
fn default(column: &str) -> Value {
    match column {
        "interval" => json!(20),
        "retryInterval" | "maxretries" | "timeout" => json!(0),
        "method" => json!("GET"),
        "maxredirects" => json!(10),
        "active" => json!(true),
        "weight" => json!(2000),
        "ignoreTls" | "upsideDown" | "invertKeyword" => json!(false),
        "expiryNotification" => json!(true),
        "packetSize" => json!(56),
        "conditions" => json!([]),
        _ => Value::Null,
    }
}

/// The snake_case column name `bean.import` writes a key to (for error messages).
fn snake(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A monitor as stored: its id, owner and columns.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub id: u64,
    pub user: u64,
    pub fields: Map<String, Value>,
    pub accepted_statuscodes: Vec<String>,
    pub notifications: Vec<u64>,
}

/// Why a write failed, as the handler's `catch` answers it (`{ok:false, msg}`).
pub type Refusal = String;

fn known(version: Version, key: &str) -> bool {
    COLUMNS.iter().any(|(c, _)| *c == key) || (version == Version::V2 && COLUMNS_2X.contains(&key))
}

/// `accepted_statuscodes` checked as both versions do: `.every(code => typeof code ===
/// "string")` on what was sent (S:650 / S:753).
fn status_codes(monitor: &Map<String, Value>) -> Result<Vec<String>, Refusal> {
    match monitor.get("accepted_statuscodes") {
        None | Some(Value::Null) => {
            Err("Cannot read properties of undefined (reading 'every')".to_owned())
        }
        Some(Value::Array(codes)) => codes
            .iter()
            .map(|c| c.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| "Accepted status codes are not all strings".to_owned()),
        Some(_) => Err("monitor.accepted_statuscodes.every is not a function".to_owned()),
    }
}

/// `Monitor.validate()` for the fields an HTTP monitor has.
fn validate(version: Version, fields: &Map<String, Value>) -> Result<(), Refusal> {
    let number = |key: &str| fields.get(key).and_then(Value::as_f64);
    match version {
        Version::V1 => {
            if let Some(interval) = number("interval") {
                if interval > 2_073_600.0 {
                    return Err("Interval cannot be more than 2073600 seconds".to_owned());
                }
                if interval < 20.0 {
                    return Err("Interval cannot be less than 20 seconds".to_owned());
                }
            }
        }
        Version::V2 => {
            if number("interval").is_some_and(|i| i < 1.0) {
                return Err("Interval cannot be less than 1 seconds".to_owned());
            }
            if number("retryInterval").is_some_and(|i| i < 1.0) {
                return Err("Retry interval cannot be less than 1 seconds".to_owned());
            }
        }
    }
    Ok(())
}

impl Monitor {
    /// What `add` stores for `sent` (S:643 / S:743), or why it fails.
    pub fn added(version: Version, id: u64, user: u64, sent: &Value) -> Result<Self, Refusal> {
        let Value::Object(sent) = sent else {
            return Err("Cannot read properties of null (reading 'notificationIDList')".into());
        };
        let mut sent = sent.clone();
        let notifications = notification_ids(sent.remove("notificationIDList"));
        let accepted = status_codes(&sent)?;
        sent.remove("accepted_statuscodes");
        if version == Version::V2 {
            for key in FRONTEND_ONLY_2X {
                sent.remove(*key);
            }
            // The handler sets these from the monitor, `undefined` becoming NULL, and
            // `conditions` is NOT NULL (migration 2024-08-24-0000-conditions.js; upstream
            // issue #5360).
            if sent.get("conditions").is_none_or(Value::is_null) {
                return Err(
                    "SQLITE_CONSTRAINT: NOT NULL constraint failed: monitor.conditions".to_owned(),
                );
            }
        }
        if let Some(key) = sent.keys().find(|k| !known(version, k)) {
            return Err(format!(
                "SQLITE_ERROR: table monitor has no column named {}",
                snake(key)
            ));
        }
        // `validate()` sees what was sent: a column left out is `undefined` there and
        // passes every comparison (its default is only the table's).
        validate(version, &sent)?;
        let mut fields = Map::new();
        for (column, _) in COLUMNS {
            fields.insert((*column).to_owned(), default(column));
        }
        if version == Version::V2 {
            for column in COLUMNS_2X {
                fields.insert((*column).to_owned(), default(column));
            }
        }
        for (key, value) in sent {
            if key != "id" {
                fields.insert(key, value);
            }
        }
        Ok(Self {
            id,
            user,
            fields,
            accepted_statuscodes: accepted,
            notifications,
        })
    }

    /// `editMonitor`'s copy of an explicit list of fields (S:696 / S:818): what was not
    /// sent stays (knex drops `undefined` from an UPDATE).
    pub fn edited(&self, version: Version, sent: &Value) -> Result<Self, Refusal> {
        let Value::Object(sent) = sent else {
            return Err("Cannot read properties of null (reading 'id')".into());
        };
        let accepted = status_codes(sent)?;
        let mut next = self.clone();
        for (key, value) in sent {
            let copied = matches!(
                key.as_str(),
                "id" | "active" | "weight" | "notificationIDList"
            ) || !known(version, key);
            if !copied {
                next.fields.insert(key.clone(), value.clone());
            }
        }
        if version == Version::V2 {
            next.fields.remove("retryOnlyOnStatusCodeFailure");
        }
        next.accepted_statuscodes = accepted;
        if let Some(list) = sent.get("notificationIDList") {
            next.notifications = notification_ids(Some(list.clone()));
        }
        validate(version, &next.fields)?;
        Ok(next)
    }

    pub fn active(&self) -> bool {
        self.fields.get("active").and_then(Value::as_bool) != Some(false)
    }

    pub fn set_active(&mut self, active: bool) {
        self.fields.insert("active".to_owned(), json!(active));
    }

    pub fn text(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// `toJSON()`: the stored fields with their types, the id, the status codes as an
    /// array, the notifications as `{"id": true}`, and no tags.
    pub fn to_json(&self) -> Value {
        let mut out = self.fields.clone();
        out.insert("id".to_owned(), json!(self.id));
        out.insert("active".to_owned(), json!(self.active()));
        out.insert(
            "accepted_statuscodes".to_owned(),
            json!(self.accepted_statuscodes),
        );
        let notifications: Map<String, Value> = self
            .notifications
            .iter()
            .map(|id| (id.to_string(), json!(true)))
            .collect();
        out.insert(
            "notificationIDList".to_owned(),
            Value::Object(notifications),
        );
        out.insert("tags".to_owned(), json!([]));
        out.insert("childrenIDs".to_owned(), json!([]));
        out.insert("includeSensitiveData".to_owned(), json!(true));
        Value::Object(out)
    }
}

/// `{"3": true, "4": false}` → the ids switched on.
fn notification_ids(list: Option<Value>) -> Vec<u64> {
    let Some(Value::Object(list)) = list else {
        return Vec::new();
    };
    list.iter()
        .filter(|(_, on)| on.as_bool() == Some(true))
        .filter_map(|(id, _)| id.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Value {
        json!({
            "type": "http",
            "name": "api",
            "url": "https://api.example.com/health",
            "accepted_statuscodes": ["200-299"],
            "conditions": [],
        })
    }

    #[test]
    fn add_takes_a_minimal_monitor_with_the_tables_defaults() {
        let monitor = Monitor::added(Version::V2, 1, 1, &minimal()).expect("added");
        let json = monitor.to_json();
        assert_eq!(json["interval"], 20);
        assert_eq!(json["method"], "GET");
        assert_eq!(json["active"], true);
        assert_eq!(json["accepted_statuscodes"], json!(["200-299"]));
    }

    #[test]
    fn add_refuses_as_the_server_does() {
        let mut no_conditions = minimal();
        no_conditions
            .as_object_mut()
            .expect("object")
            .remove("conditions");
        let cases = [
            (
                Version::V2,
                no_conditions,
                "NOT NULL constraint failed: monitor.conditions",
            ),
            (
                Version::V1,
                minimal(),
                "table monitor has no column named conditions",
            ),
            (
                Version::V2,
                json!({"type": "http", "name": "a", "conditions": []}),
                "reading 'every'",
            ),
            (
                Version::V2,
                json!({"type": "http", "name": "a", "conditions": [], "accepted_statuscodes": [200]}),
                "not all strings",
            ),
            (
                Version::V2,
                json!({"type": "http", "conditions": [], "accepted_statuscodes": [], "tags": []}),
                "no column named tags",
            ),
            (
                Version::V2,
                json!({"type": "http", "conditions": [], "accepted_statuscodes": [], "interval": 0}),
                "Interval cannot be less than 1 seconds",
            ),
        ];
        for (version, sent, expected) in cases {
            let refused = Monitor::added(version, 1, 1, &sent).expect_err("refused");
            assert!(refused.contains(expected), "{refused}");
        }
        let mut v1 = minimal();
        v1.as_object_mut().expect("object").remove("conditions");
        v1["interval"] = json!(10);
        assert_eq!(
            Monitor::added(Version::V1, 1, 1, &v1).expect_err("too short"),
            "Interval cannot be less than 20 seconds"
        );
    }

    #[test]
    fn edit_keeps_what_was_not_sent_and_ignores_active() {
        // The bean an edit validates holds the stored row: a monitor added without a
        // retry interval (stored 0) cannot be edited on 2.5 until one is sent.
        let bare = Monitor::added(Version::V2, 1, 1, &minimal()).expect("added");
        let refused = bare
            .edited(
                Version::V2,
                &json!({"id": 1, "accepted_statuscodes": ["200"]}),
            )
            .expect_err("retry interval 0");
        assert_eq!(refused, "Retry interval cannot be less than 1 seconds");
        let mut sent = minimal();
        sent["retryInterval"] = json!(60);
        let monitor = Monitor::added(Version::V2, 1, 1, &sent).expect("added");
        let edited = monitor
            .edited(
                Version::V2,
                &json!({"id": 1, "interval": 60, "active": false, "accepted_statuscodes": ["200"]}),
            )
            .expect("edited");
        assert_eq!(edited.fields["interval"], 60);
        assert_eq!(edited.fields["name"], "api");
        assert!(edited.active(), "active changes by pause and resume only");
        assert!(monitor.edited(Version::V2, &json!({"id": 1})).is_err());
    }
}
