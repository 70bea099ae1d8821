//! One rendering of an error chain for the whole binary, so each cause is said
//! once: library errors often carry their source's text in their own message
//! and also hand the source on, and anyhow's `{:#}` would print both.

/// `err` and its causes joined with `": "`, each cause once.
pub fn chain(err: &anyhow::Error) -> String {
    join(err.chain())
}

/// [`chain`] for a library error held by reference.
pub fn error(err: &(dyn std::error::Error + 'static)) -> String {
    join(std::iter::successors(Some(err), |e| e.source()))
}

fn join<'a>(causes: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut out = String::new();
    for cause in causes {
        let s = cause.to_string();
        if s.is_empty() || out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    once(&out)
}

/// Drops a clause that repeats the one before it or its last word (`swift auth
/// URL: URL: ...`, HTTP libraries name the URL again), or repeats an
/// operating-system error already given (`No such file or directory (os error 2)`).
fn once(line: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for clause in line.split(": ") {
        let os = clause.contains("(os error ");
        let repeats_last = kept
            .last()
            .is_some_and(|l| *l == clause || l.ends_with(&format!(" {clause}")));
        if repeats_last || (os && kept.contains(&clause)) {
            continue;
        }
        kept.push(clause);
    }
    kept.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// A library error that says its source's text and also returns it.
    #[derive(Debug)]
    struct Repeats(io::Error);
    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "open VHD: {}", self.0)
        }
    }
    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_in_its_parents_text_is_said_once() {
        let e = anyhow::Error::new(Repeats(io::Error::from_raw_os_error(2))).context("x.vhd");
        assert_eq!(
            chain(&e),
            "x.vhd: open VHD: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn repeated_clauses_inside_one_message_go() {
        assert_eq!(
            once("head file:///tmp/x: No such file or directory (os error 2): No such file or directory (os error 2)"),
            "head file:///tmp/x: No such file or directory (os error 2)"
        );
        assert_eq!(once("a: b: a"), "a: b: a");
        assert_eq!(
            once("swift auth http://h:1/v1: http://h:1/v1: Connection refused (os error 111)"),
            "swift auth http://h:1/v1: Connection refused (os error 111)"
        );
    }
}
