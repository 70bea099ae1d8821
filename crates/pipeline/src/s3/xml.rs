//! The S3 answers we read, parsed from their XML apart from the HTTP exchange, so each
//! parser can be fuzzed alone (`fuzz/fuzz_targets/s3_xml.rs`). Every number in them comes
//! from the network: part numbers outside S3's 1..=10,000 and sizes that do not parse are
//! dropped, never trusted into an index or an allocation.

use crate::error::{Error, ErrorKind, Result};
use crate::hash::normalize_etag;
use crate::store::{ListEntry, ListPage, PartInfo};

/// S3's largest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// Parses an answer, turning an `<Error>` document (which S3 may send even with a 200)
/// into a typed error: `InternalError` and `SlowDown` are worth a retry, the rest are not.
fn parse<'a>(text: &'a str, op: &str, target: &str) -> Result<roxmltree::Document<'a>> {
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        Error::new(ErrorKind::Permanent, op, target, "bad XML in the answer").with_source(e)
    })?;
    if doc.root_element().tag_name().name() == "Error" {
        let code = child_text(doc.root_element(), "Code").unwrap_or_default();
        let kind = if code == "InternalError" || code == "SlowDown" {
            ErrorKind::Transient
        } else {
            ErrorKind::Permanent
        };
        return Err(Error::new(kind, op, target, format!("server error {code}")));
    }
    Ok(doc)
}

fn child_text(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    n.children()
        .find(|c| c.tag_name().name() == name)
        .and_then(|c| c.text())
        .map(str::to_string)
}

/// `ListBucketResult` of `GET /bucket?prefix=..&marker=..`: the named, sized entries.
pub fn list_page(text: &str, target: &str) -> Result<ListPage> {
    let doc = parse(text, "list", target)?;
    let root = doc.root_element();
    let entries = root
        .children()
        .filter(|n| n.tag_name().name() == "Contents")
        .filter_map(|n| {
            Some(ListEntry {
                name: child_text(n, "Key")?,
                size: child_text(n, "Size")?.parse().ok()?,
                etag: normalize_etag(&child_text(n, "ETag").unwrap_or_default()),
            })
        })
        .collect();
    Ok(ListPage {
        entries,
        truncated: child_text(root, "IsTruncated").as_deref() == Some("true"),
    })
}

/// `InitiateMultipartUploadResult`: the upload id.
pub fn upload_id(text: &str, target: &str) -> Result<String> {
    let doc = parse(text, "begin multipart", target)?;
    child_text(doc.root_element(), "UploadId")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Permanent,
                "begin multipart",
                target,
                "no UploadId",
            )
        })
}

/// `ListMultipartUploadsResult`: the newest unfinished upload of exactly `key`.
pub fn upload_of(text: &str, key: &str, target: &str) -> Result<Option<String>> {
    let doc = parse(text, "find multipart", target)?;
    Ok(doc
        .root_element()
        .children()
        .filter(|n| n.tag_name().name() == "Upload")
        .filter(|n| child_text(*n, "Key").as_deref() == Some(key))
        .filter_map(|n| child_text(n, "UploadId"))
        .rfind(|id| !id.is_empty()))
}

/// One page of `ListPartsResult`: the parts, and the marker of the next page when the
/// answer says it is truncated.
pub fn parts_page(text: &str, target: &str) -> Result<(Vec<PartInfo>, Option<u32>)> {
    let doc = parse(text, "list parts", target)?;
    let root = doc.root_element();
    let parts = root
        .children()
        .filter(|n| n.tag_name().name() == "Part")
        .filter_map(|n| {
            Some(PartInfo {
                number: child_text(n, "PartNumber")?
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PART_NUMBER).contains(n))?,
                etag: normalize_etag(&child_text(n, "ETag")?),
                size: child_text(n, "Size")?.parse().ok()?,
            })
        })
        .collect();
    let next = (child_text(root, "IsTruncated").as_deref() == Some("true"))
        .then(|| child_text(root, "NextPartNumberMarker")?.parse().ok())
        .flatten();
    Ok((parts, next))
}

/// `CompleteMultipartUploadResult`: the object's ETag (a 200 can still carry `<Error>`).
pub fn complete_etag(text: &str, target: &str) -> Result<String> {
    let doc = parse(text, "complete multipart", target)?;
    Ok(normalize_etag(
        &child_text(doc.root_element(), "ETag").unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_outside_s3s_numbers_are_dropped() {
        let xml = "<ListPartsResult><IsTruncated>true</IsTruncated>\
            <NextPartNumberMarker>2</NextPartNumberMarker>\
            <Part><PartNumber>0</PartNumber><ETag>\"a\"</ETag><Size>1</Size></Part>\
            <Part><PartNumber>2</PartNumber><ETag>\"B\"</ETag><Size>5</Size></Part>\
            <Part><PartNumber>10001</PartNumber><ETag>\"c\"</ETag><Size>1</Size></Part>\
            </ListPartsResult>";
        let (parts, next) = parts_page(xml, "t").unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!((parts[0].number, parts[0].etag.as_str()), (2, "b"));
        assert_eq!(next, Some(2));
    }

    #[test]
    fn an_error_document_is_typed() {
        let e = list_page("<Error><Code>SlowDown</Code></Error>", "t").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transient);
        let e = upload_id("<Error><Code>AccessDenied</Code></Error>", "t").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(upload_id("<InitiateMultipartUploadResult/>", "t").is_err());
    }
}
