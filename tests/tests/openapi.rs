//! The OpenAPI document `vpc openapi` prints passes a standard validator (openapi-spec-validator,
//! installed from PyPI into a venv under target/ the first time; python3-venv is a CI package).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// target/openapi-venv/bin/openapi-spec-validator, made on first use and reused after.
fn validator() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/openapi-venv");
    let bin = venv.join("bin/openapi-spec-validator");
    if bin.exists() {
        return bin;
    }
    // --clear: a venv an earlier run left half made (no pip, failed install) starts over.
    let made = Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv).output().expect("python3");
    assert!(made.status.success(), "python3 -m venv (is python3-venv installed?):\n{}", text(&made));
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "openapi-spec-validator"])
        .output()
        .expect("pip");
    assert!(pip.status.success(), "pip install openapi-spec-validator:\n{}", text(&pip));
    assert!(bin.exists(), "pip installed openapi-spec-validator but {} is missing", bin.display());
    bin
}

fn validate(validator: &Path, document: &Path) -> std::process::Output {
    Command::new(validator).args(["--validation-errors", "all"]).arg(document).output().expect("openapi-spec-validator")
}

#[test]
fn the_openapi_document_passes_openapi_spec_validator() {
    let out = Command::new(vpc_tests::vpc_bin()).arg("openapi").output().expect("vpc binary (build it: cargo build --bin vpc)");
    assert!(out.status.success(), "vpc openapi:\n{}", text(&out));
    let path = std::env::temp_dir().join(format!("vpc-openapi-{}.json", std::process::id()));
    std::fs::write(&path, &out.stdout).unwrap();
    let checked = validate(&validator(), &path);
    let _ = std::fs::remove_file(&path);
    assert!(checked.status.success(), "openapi-spec-validator rejects `vpc openapi`:\n{}", text(&checked));

    // What the validator accepts but the document must not have either: an empty `required`
    // (invalid in OpenAPI 3.0, which some validators let through) and untyped response bodies.
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    fn no_empty_required(v: &serde_json::Value, at: &str) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Array(a)) = m.get("required") {
                    assert!(!a.is_empty(), "empty \"required\" at {at}");
                }
                for (k, v) in m {
                    no_empty_required(v, &format!("{at}/{k}"));
                }
            }
            serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| no_empty_required(v, &format!("{at}/{i}"))),
            _ => {}
        }
    }
    no_empty_required(&doc, "#");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (code, response) in item["post"]["responses"].as_object().unwrap() {
            if response.get("$ref").is_some() {
                continue;
            }
            let schema = &response["content"]["application/json"]["schema"];
            assert_eq!(schema["type"], "object", "{path} {code}: response schema without a type");
            assert!(schema["properties"].is_object(), "{path} {code}: response schema without properties");
        }
    }
}
