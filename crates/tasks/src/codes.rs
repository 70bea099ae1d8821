//! The Cloud Images failure codes an import task reports, with their messages.
//!
//! The codes are the ones the Cloud Images documentation gives for import validation;
//! everything that is not one of the specific checks is 111 ("unspecified"), as there.

use serde::Serialize;
use std::fmt;

/// Why a task failed, as a Cloud Images code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// 111: anything not covered by a specific code (bad task input, I/O, refused export).
    Unspecified,
    /// 396: the object is not a valid VHD.
    NotVhd,
    /// 413: the VHD's virtual size is over the import limit.
    VirtualSizeTooLarge,
    /// 523: only fixed and dynamic disks can be imported.
    NotFixedOrDynamic,
    /// 609: the object (physical size) is over the import limit.
    PhysicalSizeTooLarge,
    /// 614: the VHD's UUID is all zeros.
    NullUuid,
    /// 721: the VHD has a parent (a differencing disk).
    HasParent,
}

impl FailureCode {
    /// The number Cloud Images uses.
    pub fn code(self) -> u16 {
        match self {
            FailureCode::Unspecified => 111,
            FailureCode::NotVhd => 396,
            FailureCode::VirtualSizeTooLarge => 413,
            FailureCode::NotFixedOrDynamic => 523,
            FailureCode::PhysicalSizeTooLarge => 609,
            FailureCode::NullUuid => 614,
            FailureCode::HasParent => 721,
        }
    }

    /// The code for a number, if it is one of ours.
    pub fn from_code(code: u16) -> Option<FailureCode> {
        Some(match code {
            111 => FailureCode::Unspecified,
            396 => FailureCode::NotVhd,
            413 => FailureCode::VirtualSizeTooLarge,
            523 => FailureCode::NotFixedOrDynamic,
            609 => FailureCode::PhysicalSizeTooLarge,
            614 => FailureCode::NullUuid,
            721 => FailureCode::HasParent,
            _ => return None,
        })
    }

    /// The fixed part of the message (details follow it in task messages).
    pub fn summary(self) -> &'static str {
        match self {
            FailureCode::Unspecified => "the task failed",
            FailureCode::NotVhd => "the object is not a valid VHD",
            FailureCode::VirtualSizeTooLarge => "the VHD's virtual size is over the import limit",
            FailureCode::NotFixedOrDynamic => "only fixed and dynamic VHDs can be imported",
            FailureCode::PhysicalSizeTooLarge => "the object's size is over the import limit",
            FailureCode::NullUuid => "the VHD's UUID is all zeros",
            FailureCode::HasParent => {
                "the VHD has a parent (a differencing disk cannot be imported)"
            }
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in [111, 396, 413, 523, 609, 614, 721] {
            assert_eq!(FailureCode::from_code(c).unwrap().code(), c);
        }
        assert!(FailureCode::from_code(400).is_none());
    }
}
