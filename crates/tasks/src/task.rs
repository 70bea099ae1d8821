//! Glance v2 tasks: the task JSON (same field names and shapes as `GET /v2/tasks/{id}`),
//! its life cycle (pending -> processing -> success | failure, `expires_at` = end + 48 h),
//! and the two task inputs, parsed and validated the way Cloud Images does.

use crate::codes::FailureCode;
use crate::error::{Error, Result};
use crate::time;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::SystemTime;
use uuid::Uuid;

/// `import` or `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    /// Object in the user's container -> image.
    Import,
    /// Image -> object in the user's container.
    Export,
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Accepted, not started.
    Pending,
    /// Running.
    Processing,
    /// Done; `result` holds the outcome.
    Success,
    /// Done; `message` says why.
    Failure,
}

impl TaskStatus {
    /// True for success and failure.
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Success | TaskStatus::Failure)
    }
}

/// A Glance v2 task, serialised exactly as Glance returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Task UUID.
    pub id: String,
    /// `import` or `export`.
    #[serde(rename = "type")]
    pub task_type: TaskType,
    /// Life-cycle state.
    pub status: TaskStatus,
    /// The task input as given.
    pub input: Value,
    /// `{"image_id": ...}` or `{"export_location": ...}` on success, else null.
    pub result: Option<Value>,
    /// The project (tenant) that owns the task.
    pub owner: String,
    /// Empty, or why the task failed (`"<code>: ..."`).
    pub message: String,
    /// When the task record may be deleted (end + 48 h); null until it ends.
    pub expires_at: Option<String>,
    /// ISO 8601 UTC.
    pub created_at: String,
    /// ISO 8601 UTC.
    pub updated_at: String,
    /// `/v2/tasks/<id>`.
    #[serde(rename = "self")]
    pub self_link: String,
    /// `/v2/schemas/task`.
    pub schema: String,
}

/// Namespace of the task ids derived from task inputs.
/// Largest task JSON document read or parsed (1 MiB): a task is a few hundred bytes, and a
/// document from a stranger must not cost memory in proportion to its size.
pub const MAX_TASK_JSON: usize = 1 << 20;

const TASK_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f7564_696d_4700_8000_7461736b7321);

/// The id of the task of `task_type` with `input` run by `owner`: a name-based (v5) UUID
/// of the type, the owner and the input in canonical JSON (object keys sorted, no
/// spaces). The same request gets the same id, so a re-run of an interrupted task finds
/// what the first run left (import derives its image id from the task id) instead of
/// making a second image.
pub fn derived_id(task_type: TaskType, input: &Value, owner: &str) -> Uuid {
    let ty = match task_type {
        TaskType::Import => "import",
        TaskType::Export => "export",
    };
    let mut name = format!("{ty}\n{owner}\n");
    canonical_json(input, &mut name);
    Uuid::new_v5(&TASK_ID_NAMESPACE, name.as_bytes())
}

/// Appends `v` as JSON with object keys in byte order, whatever order the map keeps.
fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

impl Task {
    /// A new pending task with a fresh id.
    pub fn new(task_type: TaskType, input: Value, owner: impl Into<String>) -> Task {
        Task::with_id(Uuid::new_v4().to_string(), task_type, input, owner)
    }

    /// A new pending task whose id is [`derived_id`] of its type, input and owner: the
    /// same request run twice is the same task.
    pub fn derived(task_type: TaskType, input: Value, owner: impl Into<String>) -> Task {
        let owner = owner.into();
        let id = derived_id(task_type, &input, &owner);
        Task::with_id(id.to_string(), task_type, input, owner)
    }

    /// A new pending task with a given id (a re-run of the same task keeps its id).
    pub fn with_id(
        id: impl Into<String>,
        task_type: TaskType,
        input: Value,
        owner: impl Into<String>,
    ) -> Task {
        let id = id.into();
        let now = time::now();
        Task {
            self_link: format!("/v2/tasks/{id}"),
            id,
            task_type,
            status: TaskStatus::Pending,
            input,
            result: None,
            owner: owner.into(),
            message: String::new(),
            expires_at: None,
            created_at: now.clone(),
            updated_at: now,
            schema: "/v2/schemas/task".into(),
        }
    }

    /// Reads a task JSON document from `r` (a file named `name`), refusing one of more
    /// than [`MAX_TASK_JSON`] bytes before anything is parsed: at most that much is read.
    pub fn from_reader(r: impl std::io::Read, name: &str, default_owner: &str) -> Result<Task> {
        use std::io::Read;
        let mut text = String::new();
        r.take(MAX_TASK_JSON as u64 + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::input(format!("task JSON {name}: {e}")))?;
        Task::from_json(&text, default_owner)
            .map_err(|e| Error::input(format!("{name}: {}", e.message())))
    }

    /// Parses a task JSON document (as written by [`Task`] or Glance). A document holding
    /// only `type` and `input` (the body of `POST /v2/tasks`) becomes a new pending task.
    /// One of more than [`MAX_TASK_JSON`] bytes is refused unparsed.
    pub fn from_json(text: &str, default_owner: &str) -> Result<Task> {
        if text.len() > MAX_TASK_JSON {
            return Err(Error::input(format!(
                "task JSON of more than {MAX_TASK_JSON} bytes (MAX_TASK_JSON) is refused unparsed; a task is a few hundred bytes"
            )));
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| Error::input(format!("task JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| Error::input("task JSON must be an object"))?;
        // Glance's task schema: "input" is an object. (A bare number would not even
        // survive a JSON round trip: serde_json reparses large floats inexactly.)
        if obj.get("input").is_some_and(|i| !i.is_object()) {
            return Err(Error::input("task JSON: \"input\" must be an object"));
        }
        if obj.contains_key("status") {
            return serde_json::from_value(v).map_err(|e| Error::input(format!("task JSON: {e}")));
        }
        let task_type: TaskType = serde_json::from_value(
            obj.get("type").cloned().unwrap_or(Value::Null),
        )
        .map_err(|_| Error::input("task JSON: \"type\" must be \"import\" or \"export\""))?;
        let input = obj
            .get("input")
            .cloned()
            .ok_or_else(|| Error::input("task JSON: no \"input\""))?;
        let owner = obj
            .get("owner")
            .and_then(Value::as_str)
            .unwrap_or(default_owner);
        Ok(match obj.get("id").and_then(Value::as_str) {
            Some(id) => Task::with_id(id, task_type, input, owner),
            None => Task::new(task_type, input, owner),
        })
    }

    /// Marks the task as running.
    pub fn start(&mut self) {
        self.status = TaskStatus::Processing;
        self.updated_at = time::now();
    }

    /// Ends the task successfully with `result`.
    pub fn succeed(&mut self, result: Value) {
        self.finish(TaskStatus::Success, Some(result), String::new());
    }

    /// Ends the task with `err`'s code and message.
    pub fn fail(&mut self, err: &Error) {
        let code = err.failure_code();
        let msg = match code {
            // Rejections already start with the code.
            FailureCode::Unspecified => format!("{}: {err}", code.code()),
            _ => err.to_string(),
        };
        self.finish(TaskStatus::Failure, None, msg);
    }

    fn finish(&mut self, status: TaskStatus, result: Option<Value>, message: String) {
        let end = SystemTime::now();
        self.status = status;
        self.result = result;
        self.message = message;
        self.updated_at = time::iso8601(end);
        self.expires_at = Some(time::iso8601(end + time::TASK_TIME_TO_LIVE));
    }

    /// The failure code in `message`, if the task failed.
    pub fn failure_code(&self) -> Option<FailureCode> {
        if self.status != TaskStatus::Failure {
            return None;
        }
        let n = self.message.split(':').next()?.trim().parse().ok()?;
        FailureCode::from_code(n)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a task always serialises")
    }
}

/// The input of an import task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportInput {
    /// Container of the source object.
    pub container: String,
    /// Source object name.
    pub object: String,
    /// The image name (`image_properties.name`).
    pub name: String,
}

impl ImportInput {
    /// Builds the JSON input of an import task.
    pub fn to_json(container: &str, object: &str, name: &str) -> Value {
        serde_json::json!({
            "import_from": format!("{container}/{object}"),
            "import_from_format": "vhd",
            "image_properties": {"name": name},
        })
    }

    /// Parses and validates `{"import_from": "container/object", "import_from_format":
    /// "vhd", "image_properties": {"name": ...}}`. Anything else is code 111.
    pub fn parse(input: &Value) -> Result<ImportInput> {
        let obj = as_object(input)?;
        only_keys(
            obj,
            &["import_from", "import_from_format", "image_properties"],
            "input",
        )?;
        let from = string(obj, "import_from")?;
        let (container, object) = from
            .split_once('/')
            .filter(|(c, o)| !c.is_empty() && !o.is_empty())
            .ok_or_else(|| {
                Error::input(format!("import_from {from:?} must be \"container/object\""))
            })?;
        let format = string(obj, "import_from_format")?;
        if !format.eq_ignore_ascii_case("vhd") {
            return Err(Error::input(format!(
                "import_from_format {format:?} is not supported (only \"vhd\")"
            )));
        }
        let props = obj
            .get("image_properties")
            .ok_or_else(|| Error::input("image_properties is missing"))?
            .as_object()
            .ok_or_else(|| Error::input("image_properties must be an object"))?;
        only_keys(props, &["name"], "image_properties")?;
        let name = string(props, "name")?;
        if name.trim().is_empty() || name.len() > 255 {
            return Err(Error::input(
                "image_properties.name must be 1-255 characters",
            ));
        }
        Ok(ImportInput {
            container: container.to_string(),
            object: object.to_string(),
            name: name.to_string(),
        })
    }
}

/// The input of an export task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInput {
    /// The image to export.
    pub image_uuid: Uuid,
    /// The container that receives `<uuid>.vhd` and its segments.
    pub container: String,
}

impl ExportInput {
    /// Builds the JSON input of an export task.
    pub fn to_json(image: &str, container: &str) -> Value {
        serde_json::json!({"image_uuid": image, "receiving_swift_container": container})
    }

    /// Parses and validates `{"image_uuid": ..., "receiving_swift_container": ...}`.
    pub fn parse(input: &Value) -> Result<ExportInput> {
        let obj = as_object(input)?;
        only_keys(obj, &["image_uuid", "receiving_swift_container"], "input")?;
        let id = string(obj, "image_uuid")?;
        let image_uuid = Uuid::parse_str(id)
            .map_err(|_| Error::input(format!("image_uuid {id:?} is not a UUID")))?;
        let container = string(obj, "receiving_swift_container")?;
        check_container_name(container)?;
        Ok(ExportInput {
            image_uuid,
            container: container.to_string(),
        })
    }
}

/// Cloud Images refuses container names with `/`, `?` or `.` (and Swift's own limits).
pub fn check_container_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 256 {
        return Err(Error::input(
            "receiving_swift_container must be 1-256 characters",
        ));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '?' | '.')) {
        return Err(Error::input(format!(
            "receiving_swift_container {name:?} contains {c:?}; '/', '?' and '.' are not allowed"
        )));
    }
    Ok(())
}

fn as_object(v: &Value) -> Result<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Error::input("task input must be a JSON object"))
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Error::input(format!(
            "{what} may only hold {}; {k:?} is not allowed",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    obj.get(key)
        .ok_or_else(|| Error::input(format!("{key} is missing")))?
        .as_str()
        .ok_or_else(|| Error::input(format!("{key} must be a string")))
}

#[cfg(test)]
mod tests {

    /// Fuzz find (task_input): a large number inside the input did not survive a JSON
    /// round trip (serde_json's fast float parser is not exact); the crate parses floats
    /// exactly (`float_roundtrip`), so a task's input is what it was.
    #[test]
    fn large_numbers_in_input_round_trip() {
        let text = r#"{"type":"import", "input": {"import_from": "c/o.vhd", "import_frg)_format":222222222222222220000000000016415282065675765530}}"#;
        let task = Task::from_json(text, "owner").unwrap();
        let back = Task::from_json(&serde_json::to_string(&task).unwrap(), "owner").unwrap();
        assert_eq!(back.input, task.input);
    }

    use super::*;

    #[test]
    fn documents_over_the_bound_are_refused_unparsed() {
        let head =
            r#"{"type":"import","input":{"import_from":"c/o.vhd","image_properties":{"name":""#;
        let mut doc = head.to_string();
        doc.push_str(&"a".repeat(MAX_TASK_JSON));
        doc.push_str(r#""}}}"#);
        let e = Task::from_json(&doc, "o").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(e.message().contains("MAX_TASK_JSON"), "{e}");
        // From a reader: only the bound (plus one byte) is read.
        struct Endless(u64);
        impl std::io::Read for Endless {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                b.fill(b'a');
                self.0 += b.len() as u64;
                Ok(b.len())
            }
        }
        let mut r = Endless(0);
        let e = Task::from_reader(&mut r, "big.json", "o").unwrap_err();
        assert!(e.message().starts_with("big.json: "), "{e}");
        assert!(
            r.0 <= MAX_TASK_JSON as u64 + 64 * 1024,
            "read {} bytes",
            r.0
        );
        // At the bound, a document still parses.
        let small = r#"{"type":"import","input":{"import_from":"c/o.vhd"}}"#;
        Task::from_reader(small.as_bytes(), "ok.json", "o").unwrap();
    }

    #[test]
    fn derived_ids_depend_on_the_request_only() {
        let a = serde_json::json!({"import_from": "c/o.vhd", "image_properties": {"name": "x"}, "import_from_format": "vhd"});
        let b: Value = serde_json::from_str(
            r#"{"image_properties":{"name":"x"},"import_from_format":"vhd","import_from":"c/o.vhd"}"#,
        )
        .unwrap();
        let t1 = Task::derived(TaskType::Import, a.clone(), "p1");
        let t2 = Task::derived(TaskType::Import, b, "p1");
        assert_eq!(t1.id, t2.id, "key order does not matter");
        assert_ne!(t1.id, Task::derived(TaskType::Import, a.clone(), "p2").id);
        assert_ne!(t1.id, Task::derived(TaskType::Export, a, "p1").id);
        let other = serde_json::json!({"import_from": "c/o.vhd", "image_properties": {"name": "y"}, "import_from_format": "vhd"});
        assert_ne!(t1.id, Task::derived(TaskType::Import, other, "p1").id);
    }
    use crate::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn a_task_input_that_is_not_an_object_is_refused() {
        // Found by the task_input fuzz target: a number above u64::MAX became a float that
        // did not survive serialising and parsing back.
        for text in [
            r#"{"type": "import", "input": 18447347064709551615}"#,
            r#"{"type": "export", "input": "c/o"}"#,
            r#"{"type": "import", "input": [], "status": "pending"}"#,
        ] {
            let err = Task::from_json(text, "owner").unwrap_err();
            assert_eq!(err.failure_code(), FailureCode::Unspecified, "{text}");
            assert!(err.to_string().contains("must be an object"), "{err}");
        }
    }

    #[test]
    fn import_input_is_strict() {
        let ok = ImportInput::parse(&ImportInput::to_json("c", "a/b.vhd", "img")).unwrap();
        assert_eq!(
            (ok.container.as_str(), ok.object.as_str(), ok.name.as_str()),
            ("c", "a/b.vhd", "img")
        );
        for bad in [
            json!({"import_from": "c/o", "import_from_format": "vhd", "image_properties": {"name": "x", "os_type": "linux"}}),
            json!({"import_from": "c", "import_from_format": "vhd", "image_properties": {"name": "x"}}),
            json!({"import_from": "c/o", "import_from_format": "qcow2", "image_properties": {"name": "x"}}),
            json!({"import_from": "c/o", "import_from_format": "vhd"}),
            json!({"import_from": "c/o", "import_from_format": "vhd", "image_properties": {"name": "x"}, "x": 1}),
            json!([1]),
        ] {
            let e = ImportInput::parse(&bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert_eq!(e.failure_code().code(), 111);
        }
    }

    #[test]
    fn export_input_checks_container_names() {
        let id = "0b6a4b8e-3f6e-4f41-9c4f-2d8f5f3f0a11";
        assert!(ExportInput::parse(&ExportInput::to_json(id, "exports")).is_ok());
        for c in ["a/b", "a?b", "a.b", ""] {
            assert!(
                ExportInput::parse(&ExportInput::to_json(id, c)).is_err(),
                "{c}"
            );
        }
        assert!(ExportInput::parse(&ExportInput::to_json("nope", "c")).is_err());
    }

    #[test]
    fn life_cycle_and_json_shape() {
        let mut t = Task::new(TaskType::Import, ImportInput::to_json("c", "o", "n"), "me");
        assert_eq!(t.status, TaskStatus::Pending);
        t.start();
        t.fail(&Error::rejected(
            FailureCode::HasParent,
            "c/o",
            "parent uuid ...",
        ));
        assert_eq!(t.failure_code(), Some(FailureCode::HasParent));
        let v: Value = serde_json::from_str(&t.to_json()).unwrap();
        for k in [
            "id",
            "type",
            "status",
            "input",
            "result",
            "owner",
            "message",
            "expires_at",
            "created_at",
            "updated_at",
            "self",
            "schema",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["status"], "failure");
        assert_eq!(v["type"], "import");
        let end = time::parse_iso8601(&t.updated_at).unwrap();
        let exp = time::parse_iso8601(t.expires_at.as_deref().unwrap()).unwrap();
        assert_eq!(exp.duration_since(end).unwrap(), time::TASK_TIME_TO_LIVE);
        let back = Task::from_json(&t.to_json(), "x").unwrap();
        assert_eq!(back, t);
        let posted = Task::from_json(
            r#"{"type":"export","input":{"image_uuid":"u","receiving_swift_container":"c"}}"#,
            "o",
        )
        .unwrap();
        assert_eq!(posted.status, TaskStatus::Pending);
        assert_eq!(posted.owner, "o");
    }
}
