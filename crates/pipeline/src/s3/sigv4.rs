//! AWS Signature Version 4 for S3 requests (header authorisation, path-style URLs), by the
//! `aws-sigv4` crate: S3's rules (paths encoded once, never normalised) set here, the
//! request's own headers signed. Why the crate and not our own: docs/DESIGN.md, "Crates we
//! tried".

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::time::SystemTime;

/// SHA-256 of the empty body.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Who signs, for which region.
pub(crate) struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    pub(crate) fn new(access_key: &str, secret_key: &str, region: &str) -> Self {
        Signer {
            identity: Credentials::new(access_key, secret_key, None, None, "cloudimg").into(),
            region: region.to_string(),
        }
    }

    /// The headers to add to a request so it is signed at `time`: `x-amz-date`,
    /// `x-amz-content-sha256` (`payload_sha256`, or `UNSIGNED-PAYLOAD`) and
    /// `authorization`. `url` is the request's URL with its query already encoded;
    /// `headers` are the other headers sent (lowercase names), `host` among them. Errs
    /// with the signer's reason when the URL or a header cannot be signed.
    pub(crate) fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        payload_sha256: &str,
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let req = SignableRequest::new(
            method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Precomputed(payload_sha256.to_string()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(req, &params).map_err(|e| e.to_string())?.into_parts();
        let out = instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// AWS's documented example: GET /test.txt with a Range header.
    #[test]
    fn aws_example_get_object() {
        let headers = vec![
            (
                "host".to_string(),
                "examplebucket.s3.amazonaws.com".to_string(),
            ),
            ("range".to_string(), "bytes=0-9".to_string()),
        ];
        let s = Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        );
        let out = s
            .sign(
                "GET",
                "https://examplebucket.s3.amazonaws.com/test.txt",
                &headers,
                EMPTY_SHA256,
                UNIX_EPOCH + Duration::from_secs(1_369_353_600),
            )
            .unwrap();
        let get = |name: &str| {
            out.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-amz-date"), Some("20130524T000000Z"));
        assert_eq!(get("x-amz-content-sha256"), Some(EMPTY_SHA256));
        let a = get("authorization").unwrap();
        assert!(
            a.ends_with(
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{a}"
        );
    }

    #[test]
    fn an_unsignable_url_is_an_error() {
        let s = Signer::new("a", "b", "us-east-1");
        let e = s.sign(
            "GET",
            "http://bad host/x",
            &[],
            EMPTY_SHA256,
            SystemTime::now(),
        );
        assert!(e.is_err(), "{e:?}");
    }
}
