//! A Glance task document (a `POST /v2/tasks` body or a whole task): parsing any bytes
//! must not panic; what is accepted obeys the Cloud Images rules, and a rejected input
//! is failure code 111, never a code that blames the image.
#![no_main]

use cloudimg_tasks::{ExportInput, FailureCode, ImportInput, Task, TaskType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(task) = Task::from_json(text, "owner") else {
        return;
    };
    // Whatever was accepted serialises and parses back to the same task.
    let json = serde_json::to_string(&task).expect("a task serialises");
    let back = Task::from_json(&json, "owner").expect("a serialised task parses");
    assert_eq!(back.id, task.id);
    assert_eq!(back.input, task.input);
    match task.task_type {
        TaskType::Import => match ImportInput::parse(&task.input) {
            Ok(i) => {
                assert!(!i.container.is_empty() && !i.object.is_empty());
            }
            Err(e) => assert_eq!(e.failure_code(), FailureCode::Unspecified),
        },
        TaskType::Export => match ExportInput::parse(&task.input) {
            Ok(e) => {
                assert!(!e.container.is_empty());
                assert!(!e.container.contains(['/', '?', '.']), "{}", e.container);
            }
            Err(e) => assert_eq!(e.failure_code(), FailureCode::Unspecified),
        },
    }
});
