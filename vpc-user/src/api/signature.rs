//! Alibaba Cloud's request signatures, as the official SDKs make them, checked against an
//! AccessKey secret:
//! - `ACS3-HMAC-SHA256` (the Tea SDKs' default): the `Authorization` header names the key and
//!   the signed headers; the signature is hex HMAC-SHA256 over `ACS3-HMAC-SHA256\n` and the hex
//!   SHA-256 of the canonical request (method, path, sorted encoded query, the signed headers,
//!   their names, the body's SHA-256).
//! - HMAC-SHA1, version 1.0 (the classic SDK, and Tea with `signature_algorithm = "v2"`): the
//!   query names the key and carries the signature, base64 HMAC-SHA1 with `secret&` over
//!   `METHOD&%2F&` and the encoded sorted query without `Signature`.
//!
//! Encoding is RFC 3986's (everything but `A-Za-z0-9-_.~` as `%XX`), whatever the client sent:
//! Tea sends spaces as `+`, the classic SDK as `%20`, and both sign `%20`.

use hmac::{Hmac, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest as _, Sha256};

/// What RFC 3986 leaves as it is.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub const V3: &str = "ACS3-HMAC-SHA256";

/// A request as it arrived: the query decoded into pairs, header names in lower case.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// From the raw path-and-query (`/?A=1&B=x+y`), headers and body.
    pub fn new(method: &str, target: &str, headers: impl IntoIterator<Item = (String, String)>, body: Vec<u8>) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query: form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
            headers: headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How a request is signed, and by which AccessKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    V3 { key_id: String, signed_headers: Vec<String>, signature: String },
    V1 { key_id: String, signature: String },
}

impl Signed {
    pub fn key_id(&self) -> &str {
        match self {
            Signed::V3 { key_id, .. } | Signed::V1 { key_id, .. } => key_id,
        }
    }
}

/// Why a signature is refused (the API's codes: `IncompleteSignature`,
/// `InvalidAccessKeyId.NotFound` is the caller's, `SignatureDoesNotMatch`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the request is not signed, or its signature is incomplete: {0}")]
    Incomplete(String),
    /// The string the server signed (the classic SDK shows it after the message's `:`).
    #[error("the request signature does not conform to Alibaba Cloud standards. server string to sign is:{0}")]
    Mismatch(String),
}

/// How `req` says it is signed (none of the two: `Incomplete`).
pub fn signed(req: &Request) -> Result<Signed, Refused> {
    if let Some(auth) = req.header("authorization") {
        let rest = auth.strip_prefix(V3).ok_or_else(|| Refused::Incomplete(format!("Authorization is not {V3}")))?;
        let mut fields = std::collections::BTreeMap::new();
        for part in rest.trim().split(',') {
            if let Some((k, v)) = part.trim().split_once('=') {
                fields.insert(k.trim(), v.trim());
            }
        }
        let field =
            |name: &str| fields.get(name).map(|v| v.to_string()).ok_or_else(|| Refused::Incomplete(format!("Authorization has no {name}")));
        let signed_headers = field("SignedHeaders")?.split(';').map(str::to_string).collect();
        return Ok(Signed::V3 { key_id: field("Credential")?, signed_headers, signature: field("Signature")? });
    }
    let param = |name: &str| req.param(name).map(str::to_string).ok_or_else(|| Refused::Incomplete(format!("no {name}")));
    let method = param("SignatureMethod")?;
    if method != "HMAC-SHA1" || param("SignatureVersion")? != "1.0" {
        return Err(Refused::Incomplete(format!("signature method {method} is not HMAC-SHA1 version 1.0")));
    }
    Ok(Signed::V1 { key_id: param("AccessKeyId")?, signature: param("Signature")? })
}

/// Check `req`'s signature with `secret`, the secret of the key `signed` names.
pub fn verify(req: &Request, signed: &Signed, secret: &str) -> Result<(), Refused> {
    let (to_sign, expected) = sign(req, signed, secret);
    let given = match signed {
        Signed::V3 { signature, .. } | Signed::V1 { signature, .. } => signature,
    };
    // In constant time: a mismatch must not say how much of it matched.
    let same = given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same { Ok(()) } else { Err(Refused::Mismatch(to_sign)) }
}

/// The string to sign of `req` in `signed`'s way, and its signature with `secret` (what a
/// client sends; `signed`'s own signature is not read).
pub fn sign(req: &Request, signed: &Signed, secret: &str) -> (String, String) {
    match signed {
        Signed::V3 { signed_headers, .. } => {
            let to_sign = v3_string_to_sign(req, signed_headers);
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
            mac.update(to_sign.as_bytes());
            (to_sign, hex(&mac.finalize().into_bytes()))
        }
        Signed::V1 { .. } => {
            let to_sign = v1_string_to_sign(req);
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("HMAC takes any key");
            mac.update(to_sign.as_bytes());
            (to_sign, base64::Engine::encode(&base64::engine::general_purpose::STANDARD, mac.finalize().into_bytes()))
        }
    }
}

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// The query sorted by name, each name and value encoded (`exclude`: left out).
fn canonical_query(query: &[(String, String)], exclude: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> =
        query.iter().filter(|(k, _)| Some(k.as_str()) != exclude).map(|(k, v)| (encode(k), encode(v))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn v1_string_to_sign(req: &Request) -> String {
    format!("{}&{}&{}", req.method, encode("/"), encode(&canonical_query(&req.query, Some("Signature"))))
}

fn v3_string_to_sign(req: &Request, signed_headers: &[String]) -> String {
    let headers: String = signed_headers.iter().map(|name| format!("{name}:{}\n", req.header(name).unwrap_or_default().trim())).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(&req.query, None),
        signed_headers.join(";"),
        hex(&Sha256::digest(&req.body))
    );
    format!("{V3}\n{}", hex(&Sha256::digest(canonical.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
