//! Sentry's rules for an app's UI-component `schema` (docs/sentry-protocol.md
//! §3.1), as a validator that names every problem with its place.
//!
//! Sentry validates the schema pasted into the app's settings in two steps
//! (element by element, then the whole document against a JSON schema);
//! this checks the same rules in one pass, so issuebridge's own schema is
//! proven valid before anyone pastes it, and a schema can be checked where
//! no Sentry is at hand. Written by hand because the rules are few and
//! exact, and a JSON-Schema engine would bring a large dependency for them.
//! Unknown keys are accepted everywhere, as Sentry accepts them.

use serde_json::{Map, Value};

/// The element types Sentry knows.
pub const ELEMENT_TYPES: [&str; 4] = ["issue-link", "alert-rule-action", "issue-media", "stacktrace-link"];

/// The only values a text or textarea `default` may take.
pub const TEXT_DEFAULTS: [&str; 2] = ["issue.title", "issue.description"];

/// One problem: where it is (`elements[0].link.uri`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub path: String,
    pub problem: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Every problem Sentry would refuse the schema for; empty when it would
/// accept it. An empty document (`{}` or `""`) is accepted, as Sentry
/// stores it as `{}`.
pub fn validate(schema: &Value) -> Vec<SchemaError> {
    let mut check = Checker::default();
    match schema {
        Value::String(text) if text.is_empty() => {}
        Value::Object(top) if top.is_empty() => {}
        Value::Object(top) => check.document(top),
        _ => check.fail("schema", "must be an object with `elements`"),
    }
    check.errors
}

#[derive(Default)]
struct Checker {
    errors: Vec<SchemaError>,
}

impl Checker {
    fn fail(&mut self, path: &str, problem: impl Into<String>) {
        self.errors.push(SchemaError { path: path.to_owned(), problem: problem.into() });
    }

    fn document(&mut self, top: &Map<String, Value>) {
        let Some(elements) = top.get("elements") else {
            return self.fail("elements", "is required");
        };
        let Some(elements) = elements.as_array() else {
            return self.fail("elements", "must be an array");
        };
        if elements.is_empty() {
            return self.fail("elements", "needs at least one element");
        }
        let mut seen: Vec<&str> = Vec::new();
        for (index, element) in elements.iter().enumerate() {
            let path = format!("elements[{index}]");
            let Some(element) = element.as_object() else {
                self.fail(&path, "must be an object");
                continue;
            };
            let Some(kind) = element.get("type").and_then(Value::as_str) else {
                self.fail(&format!("{path}.type"), "is required");
                continue;
            };
            if !ELEMENT_TYPES.contains(&kind) {
                self.fail(&format!("{path}.type"), format!("{kind:?} is not one of {}", ELEMENT_TYPES.join(", ")));
                continue;
            }
            if seen.contains(&kind) {
                self.fail(&path, format!("Multiple elements of type: {kind}"));
            }
            seen.push(kind);
            match kind {
                "issue-link" => self.issue_link(&path, element),
                "alert-rule-action" => self.alert_rule_action(&path, element),
                "issue-media" => self.issue_media(&path, element),
                _ => self.required_uri(&path, element),
            }
        }
    }

    fn issue_link(&mut self, path: &str, element: &Map<String, Value>) {
        for part in ["link", "create"] {
            let part_path = format!("{path}.{part}");
            match element.get(part).and_then(Value::as_object) {
                Some(action) => {
                    self.required_uri(&part_path, action);
                    self.fieldset(&format!("{part_path}.required_fields"), action.get("required_fields"), true);
                    self.fieldset(&format!("{part_path}.optional_fields"), action.get("optional_fields"), false);
                }
                None => self.fail(&part_path, "is required, an object"),
            }
        }
    }

    fn alert_rule_action(&mut self, path: &str, element: &Map<String, Value>) {
        self.required_string(path, element, "title");
        let settings_path = format!("{path}.settings");
        let Some(settings) = element.get("settings").and_then(Value::as_object) else {
            return self.fail(&settings_path, "is required, an object");
        };
        if settings.get("type").and_then(Value::as_str) != Some("alert-rule-settings") {
            self.fail(&format!("{settings_path}.type"), "must be \"alert-rule-settings\"");
        }
        self.required_uri(&settings_path, settings);
        self.fieldset(&format!("{settings_path}.required_fields"), settings.get("required_fields"), true);
        self.fieldset(&format!("{settings_path}.optional_fields"), settings.get("optional_fields"), false);
        if let Some(description) = settings.get("description") {
            let length = description.as_str().map(|d| d.chars().count());
            if !matches!(length, Some(1..=140)) {
                self.fail(&format!("{settings_path}.description"), "must be a string of 1 to 140 characters");
            }
        }
    }

    fn issue_media(&mut self, path: &str, element: &Map<String, Value>) {
        self.required_string(path, element, "title");
        let elements_path = format!("{path}.elements");
        let Some(parts) = element.get("elements").and_then(Value::as_array).filter(|parts| !parts.is_empty()) else {
            return self.fail(&elements_path, "is required, an array of at least one item");
        };
        for (index, part) in parts.iter().enumerate() {
            let part_path = format!("{elements_path}[{index}]");
            let Some(part) = part.as_object() else {
                self.fail(&part_path, "must be an object");
                continue;
            };
            match part.get("type").and_then(Value::as_str) {
                Some("header" | "markdown") => self.required_string(&part_path, part, "text"),
                Some("image") => {
                    let url = part.get("url").and_then(Value::as_str).unwrap_or_default();
                    if !(url.starts_with("http") || url.starts_with('/')) {
                        self.fail(&format!("{part_path}.url"), "must start with http or /");
                    }
                }
                Some("video") => self.required_string(&part_path, part, "url"),
                _ => self.fail(&format!("{part_path}.type"), "must be header, markdown, image or video"),
            }
        }
    }

    /// `uri`: required, beginning with one `/`, with no `@` (Sentry builds
    /// the request URL from it, §3.2).
    fn required_uri(&mut self, path: &str, object: &Map<String, Value>) {
        let uri_path = format!("{path}.uri");
        match object.get("uri").and_then(Value::as_str) {
            None => self.fail(&uri_path, "is required, a string"),
            Some(uri) => self.uri(&uri_path, uri),
        }
    }

    fn uri(&mut self, path: &str, uri: &str) {
        if !uri.starts_with('/') || uri.starts_with("//") || uri.contains('@') {
            self.fail(path, format!("{uri:?} must begin with one / and hold no @"));
        }
    }

    fn required_string(&mut self, path: &str, object: &Map<String, Value>, key: &str) {
        if !object.get(key).is_some_and(Value::is_string) {
            self.fail(&format!("{path}.{key}"), "is required, a string");
        }
    }

    fn fieldset(&mut self, path: &str, fields: Option<&Value>, required: bool) {
        let Some(fields) = fields else {
            if required {
                self.fail(path, "is required");
            }
            return;
        };
        let Some(fields) = fields.as_array().filter(|fields| !fields.is_empty()) else {
            return self.fail(path, "must be an array of at least one field");
        };
        for (index, field) in fields.iter().enumerate() {
            let field_path = format!("{path}[{index}]");
            let Some(field) = field.as_object() else {
                self.fail(&field_path, "must be an object");
                continue;
            };
            for key in ["type", "label", "name"] {
                self.required_string(&field_path, field, key);
            }
            match field.get("type").and_then(Value::as_str) {
                Some("select") => self.select(&field_path, field),
                Some("text" | "textarea") => {
                    if let Some(default) = field.get("default") {
                        if !default.as_str().is_some_and(|d| TEXT_DEFAULTS.contains(&d)) {
                            self.fail(&format!("{field_path}.default"), "must be issue.title or issue.description");
                        }
                    }
                }
                Some(other) => {
                    self.fail(&format!("{field_path}.type"), format!("{other:?} is not select, text or textarea"))
                }
                None => {}
            }
        }
    }

    fn select(&mut self, path: &str, field: &Map<String, Value>) {
        for flag in ["async", "skip_load_on_open"] {
            if field.get(flag).is_some_and(|value| !value.is_boolean()) {
                self.fail(&format!("{path}.{flag}"), "must be true or false");
            }
        }
        if let Some(depends_on) = field.get("depends_on") {
            let names = depends_on.as_array().filter(|names| !names.is_empty());
            if !names.is_some_and(|names| names.iter().all(Value::is_string)) {
                self.fail(&format!("{path}.depends_on"), "must be an array of at least one field name");
            }
        }
        match (field.get("uri"), field.get("options")) {
            (Some(_), Some(_)) | (None, None) => self.fail(path, "a select needs exactly one of `uri` and `options`"),
            (Some(uri), None) => match uri.as_str() {
                Some(uri) => self.uri(&format!("{path}.uri"), uri),
                None => self.fail(&format!("{path}.uri"), "must be a string"),
            },
            (None, Some(options)) => {
                let pairs = options.as_array().filter(|pairs| !pairs.is_empty());
                let well_formed = pairs.is_some_and(|pairs| {
                    pairs.iter().all(|pair| {
                        pair.as_array().is_some_and(|pair| {
                            pair.len() == 2 && pair[0].is_string() && (pair[1].is_string() || pair[1].is_number())
                        })
                    })
                });
                if !well_formed {
                    self.fail(&format!("{path}.options"), "must be an array of at least one [value, label] pair");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(schema: Value) -> Vec<String> {
        validate(&schema).iter().map(ToString::to_string).collect()
    }

    /// A schema that uses every element and field kind, as Sentry's docs
    /// show them.
    fn full() -> Value {
        json!({"elements": [
            {"type": "issue-link",
             "link": {"uri": "/sentry/issue-link/link",
                      "required_fields": [{"type": "select", "name": "ticket", "label": "Ticket",
                                           "uri": "/sentry/select/tickets", "async": true, "skip_load_on_open": true}]},
             "create": {"uri": "/sentry/issue-link/create",
                        "required_fields": [{"type": "text", "name": "title", "label": "Title", "default": "issue.title"}],
                        "optional_fields": [
                            {"type": "textarea", "name": "description", "label": "Description", "default": "issue.description"},
                            {"type": "select", "name": "team", "label": "Team", "uri": "/sentry/select/teams"},
                            {"type": "select", "name": "assignee", "label": "Assignee",
                             "uri": "/sentry/select/assignees", "depends_on": ["team"]},
                            {"type": "select", "name": "status", "label": "Status",
                             "options": [["todo", "To do"], ["done", "Done"], ["p1", 1]]}]}},
            {"type": "alert-rule-action", "title": "Open a ticket",
             "settings": {"type": "alert-rule-settings", "uri": "/sentry/alert-rule-action",
                          "description": "Opens or updates a ticket.",
                          "required_fields": [{"type": "text", "name": "title", "label": "Title"}]}},
            {"type": "issue-media", "title": "Screens",
             "elements": [{"type": "header", "text": "Hi"}, {"type": "image", "url": "/a.png"}, {"type": "video", "url": "/v"}]},
            {"type": "stacktrace-link", "uri": "/sentry/stacktrace-link", "extra": "accepted"}
        ]})
    }

    #[test]
    fn a_schema_by_every_rule_is_accepted_and_so_is_an_empty_one() {
        assert_eq!(problems(full()), Vec::<String>::new());
        assert!(validate(&json!({})).is_empty());
        assert!(validate(&json!("")).is_empty());
    }

    #[test]
    fn each_broken_rule_is_named_with_its_place() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"elements": []}), "elements: needs at least one element"),
            (json!({"elements": {}}), "elements: must be an array"),
            (json!({"other": 1}), "elements: is required"),
            (json!({"elements": [{"type": "issue-frame"}]}), "elements[0].type: \"issue-frame\" is not one of"),
            (
                json!({"elements": [{"type": "stacktrace-link", "uri": "/a"}, {"type": "stacktrace-link", "uri": "/b"}]}),
                "elements[1]: Multiple elements of type: stacktrace-link",
            ),
            (
                json!({"elements": [{"type": "stacktrace-link", "uri": "https://x/y"}]}),
                "elements[0].uri: \"https://x/y\" must begin with one /",
            ),
            (
                json!({"elements": [{"type": "stacktrace-link", "uri": "//evil.example"}]}),
                "must begin with one / and hold no @",
            ),
            (json!({"elements": [{"type": "stacktrace-link", "uri": "/a@b"}]}), "must begin with one / and hold no @"),
            (json!({"elements": [{"type": "stacktrace-link"}]}), "elements[0].uri: is required"),
            (
                json!({"elements": [{"type": "issue-link", "link": {"uri": "/l", "required_fields": []}}]}),
                "elements[0].link.required_fields: must be an array of at least one field",
            ),
            (
                json!({"elements": [{"type": "issue-link", "link": {"uri": "/l", "required_fields": [{"type": "text", "name": "t", "label": "T"}]}}]}),
                "elements[0].create: is required",
            ),
        ];
        for (schema, expected) in cases {
            let found = problems(schema.clone());
            assert!(found.iter().any(|p| p.contains(expected)), "{schema} gave {found:?}, not {expected:?}");
        }
    }

    #[test]
    fn fields_follow_sentrys_field_rules() {
        let with_field = |field: Value| {
            json!({"elements": [{"type": "alert-rule-action", "title": "T",
                "settings": {"type": "alert-rule-settings", "uri": "/a", "required_fields": [field]}}]})
        };
        let at = "elements[0].settings.required_fields[0]";
        let cases = [
            (
                json!({"type": "select", "name": "s", "label": "S"}),
                format!("{at}: a select needs exactly one of `uri` and `options`"),
            ),
            (
                json!({"type": "select", "name": "s", "label": "S", "uri": "/u", "options": [["a", "A"]]}),
                format!("{at}: a select needs exactly one"),
            ),
            (
                json!({"type": "select", "name": "s", "label": "S", "options": []}),
                format!("{at}.options: must be an array"),
            ),
            (
                json!({"type": "select", "name": "s", "label": "S", "options": [["a"]]}),
                format!("{at}.options: must be an array"),
            ),
            (
                json!({"type": "select", "name": "s", "label": "S", "options": [[1, "A"]]}),
                format!("{at}.options: must be an array"),
            ),
            (
                json!({"type": "select", "name": "s", "label": "S", "uri": "/u", "depends_on": []}),
                format!("{at}.depends_on: must be an array"),
            ),
            (
                json!({"type": "select", "name": "s", "label": "S", "uri": "/u", "async": "yes"}),
                format!("{at}.async: must be true or false"),
            ),
            (
                json!({"type": "text", "name": "t", "label": "T", "default": "issue.culprit"}),
                format!("{at}.default: must be issue.title or issue.description"),
            ),
            (json!({"type": "text", "name": "t"}), format!("{at}.label: is required")),
            (
                json!({"type": "checkbox", "name": "c", "label": "C"}),
                format!("{at}.type: \"checkbox\" is not select, text or textarea"),
            ),
        ];
        for (field, expected) in cases {
            let found = problems(with_field(field.clone()));
            assert!(found.iter().any(|p| p.starts_with(&expected)), "{field} gave {found:?}, not {expected:?}");
        }
        let settings = |extra: Value| {
            let mut schema = with_field(json!({"type": "text", "name": "t", "label": "T"}));
            let object = schema["elements"][0]["settings"].as_object_mut().unwrap();
            for (key, value) in extra.as_object().unwrap() {
                object.insert(key.clone(), value.clone());
            }
            schema
        };
        assert!(problems(settings(json!({"description": ""})))[0].contains("1 to 140 characters"));
        assert!(problems(settings(json!({"description": "x".repeat(141)})))[0].contains("1 to 140 characters"));
        assert!(problems(settings(json!({"type": "settings"})))[0].contains("alert-rule-settings"));
        assert!(problems(settings(json!({"description": "x".repeat(140)}))).is_empty());
    }
}
