//! Requests the official SDKs signed (captured from `alibabacloud-vpc20160428` 7.2.2 with its
//! default ACS3-HMAC-SHA256 and with `signature_algorithm = "v2"`, and `aliyun-python-sdk-core`
//! 2.16.1 with `aliyun-python-sdk-vpc` 3.0.48, calling DescribeVpcs with `VpcName="a b"` against
//! a local endpoint, AccessKey `LTAItestkey` / `testsecret/with+chars`): each verifies with the
//! secret, and fails with another secret or with a parameter changed.

use super::*;

const SECRET: &str = "testsecret/with+chars";

fn tea_v3() -> Request {
    let headers = [
        ("Accept-Encoding", "identity"),
        ("host", "127.0.0.1:40667"),
        ("x-acs-version", "2016-04-28"),
        ("x-acs-action", "DescribeVpcs"),
        ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
        ("x-acs-date", "2026-12-02T01:35:45Z"),
        ("x-acs-signature-nonce", "568ae33e9e0e53eb6591da643dd7bb16"),
        ("accept", "application/json"),
        ("x-acs-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("x-acs-credentials-provider", "static_ak"),
        (
            "Authorization",
            "ACS3-HMAC-SHA256 Credential=LTAItestkey,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=c61a9da21e2117b535e9d92aee44ae74d6eb7136680d324af2aafcd43669bcc3",
        ),
        ("Content-Length", "0"),
    ];
    Request::new("POST", "/?PageSize=10&RegionId=cn-hangzhou&VpcName=a+b", headers.map(|(k, v)| (k.to_string(), v.to_string())), Vec::new())
}

fn tea_v1() -> Request {
    let headers = [
        ("Accept-Encoding", "identity"),
        ("host", "127.0.0.1:40667"),
        ("x-acs-version", "2016-04-28"),
        ("x-acs-action", "DescribeVpcs"),
        ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
        ("x-acs-credentials-provider", "static_ak"),
        ("Content-Length", "0"),
    ];
    Request::new(
        "POST",
        "/?Action=DescribeVpcs&Format=json&Version=2016-04-28&Timestamp=2026-12-02T01%3A35%3A45Z&SignatureNonce=9ab4f9ee9620e818e42876261af65ccd&PageSize=10&RegionId=cn-hangzhou&VpcName=a+b&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=LTAItestkey&Signature=Jf8iReUi0Pq9FD9%2BRRkOyGeXqmU%3D",
        headers.map(|(k, v)| (k.to_string(), v.to_string())),
        Vec::new(),
    )
}

fn classic_v1() -> Request {
    let headers = [
        ("Host", "127.0.0.1:40667"),
        ("User-Agent", "AlibabaCloud (Linux 6.18.44-fc-v669;x86_64) Python/3.11.7 Core/2.16.1 python-requests/2.18.3"),
        ("Accept-Encoding", "identity"),
        ("Accept", "*/*"),
        ("Connection", "keep-alive"),
        ("x-acs-action", "DescribeVpcs"),
        ("x-acs-version", "2016-04-28"),
        ("x-sdk-invoke-type", "normal"),
        ("x-sdk-client", "python/2.0.0"),
        ("Content-Length", "0"),
    ];
    Request::new(
        "POST",
        "/?VpcName=a%20b&Version=2016-04-28&Action=DescribeVpcs&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-12-02T01%3A35%3A45Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=64d0c8444709028719e3708bafdace37&AccessKeyId=LTAItestkey&Signature=04uVqTR77oQ7%2Bc4Jy4Nk1DL%2BbH8%3D",
        headers.map(|(k, v)| (k.to_string(), v.to_string())),
        Vec::new(),
    )
}

#[test]
fn what_the_sdks_signed_verifies_with_the_secret() {
    for (name, req) in [("tea v3", tea_v3()), ("tea v1", tea_v1()), ("classic v1", classic_v1())] {
        let signed = signed(&req).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(signed.key_id(), "LTAItestkey", "{name}");
        assert_eq!(verify(&req, &signed, SECRET), Ok(()), "{name}");
        assert!(matches!(verify(&req, &signed, "another secret"), Err(Refused::Mismatch(_))), "{name}: another secret");
    }
    assert!(matches!(signed(&tea_v3()), Ok(Signed::V3 { .. })));
    assert!(matches!(signed(&classic_v1()), Ok(Signed::V1 { .. })));
}

#[test]
fn a_changed_parameter_or_header_is_a_mismatch_that_shows_the_string_signed() {
    for (name, mut req) in [("tea v3", tea_v3()), ("tea v1", tea_v1()), ("classic v1", classic_v1())] {
        let signed = signed(&req).unwrap();
        req.query.iter_mut().find(|(k, _)| k == "VpcName").unwrap().1 = "a c".into();
        let Err(Refused::Mismatch(to_sign)) = verify(&req, &signed, SECRET) else { panic!("{name}: a changed VpcName verified") };
        // The classic SDK splits the message on ':' and compares what follows with its own.
        let message = Refused::Mismatch(to_sign.clone()).to_string();
        assert_eq!(message.split_once("is:").unwrap().1, to_sign);
        if name == "classic v1" {
            assert!(to_sign.starts_with("POST&%2F&AccessKeyId%3DLTAItestkey%26Action%3DDescribeVpcs"), "{to_sign}");
            assert!(to_sign.contains("SignatureType%3D%26"), "the empty SignatureType is signed: {to_sign}");
            assert!(to_sign.contains("VpcName%3Da%2520c"), "spaces signed as %20: {to_sign}");
        }
    }
    // A signed header changed.
    let mut req = tea_v3();
    let signed = signed(&req).unwrap();
    req.headers.iter_mut().find(|(k, _)| k == "x-acs-date").unwrap().1 = "2026-12-02T01:35:46Z".into();
    assert!(matches!(verify(&req, &signed, SECRET), Err(Refused::Mismatch(to_sign)) if to_sign.starts_with("ACS3-HMAC-SHA256\n")));
    // A header not signed may change.
    let mut req = tea_v3();
    req.headers.iter_mut().find(|(k, _)| k == "accept-encoding").unwrap().1 = "gzip".into();
    assert_eq!(verify(&req, &signed, SECRET), Ok(()));
}

#[test]
fn an_unsigned_or_half_signed_request_is_incomplete() {
    let mut req = classic_v1();
    req.query.retain(|(k, _)| k != "Signature");
    assert!(matches!(signed(&req), Err(Refused::Incomplete(_))));
    let mut req = classic_v1();
    req.query.iter_mut().find(|(k, _)| k == "SignatureMethod").unwrap().1 = "HMAC-MD5".into();
    assert!(matches!(signed(&req), Err(Refused::Incomplete(_))));
    let mut req = tea_v3();
    req.headers.iter_mut().find(|(k, _)| k == "authorization").unwrap().1 = "ACS3-HMAC-SHA256 Credential=LTAItestkey".into();
    assert!(matches!(signed(&req), Err(Refused::Incomplete(m)) if m.contains("SignedHeaders")));
    let mut req = tea_v3();
    req.headers.iter_mut().find(|(k, _)| k == "authorization").unwrap().1 = "Bearer x".into();
    assert!(matches!(signed(&req), Err(Refused::Incomplete(_))));
    assert!(matches!(signed(&Request::new("POST", "/?Action=DescribeVpcs", [], Vec::new())), Err(Refused::Incomplete(_))));
}

#[test]
fn encoding_is_rfc_3986() {
    assert_eq!(encode("a b+c/d~e_f.g-h*"), "a%20b%2Bc%2Fd~e_f.g-h%2A");
    assert_eq!(encode("é"), "%C3%A9");
}
