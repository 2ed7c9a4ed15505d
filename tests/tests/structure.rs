//! The house's arrows point down: cli (and the tools it runs) -> daemon -> api -> agent ->
//! dataplane, compile, store, flowlog -> model -> vpc-common. A module importing one above it,
//! or two top-level modules importing each other, fails here with the file that does it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Top-level modules of vpc-user, lowest first. A module may import only those before it.
const LAYERS: &[&[&str]] = &[
    &["packet", "netns"],
    &["model"],
    &["naming"],
    &["compile", "store"],
    &["dataplane"],
    &["flowlog", "monitor"],
    &["agent"],
    &["metrics"],
    &["api"],
    &["daemon"],
    &["tools"],
    &["cli"],
];

fn layer(module: &str) -> usize {
    LAYERS.iter().position(|l| l.contains(&module)).unwrap_or_else(|| panic!("module {module} is in no layer of tests/structure.rs"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `text` names through `crate::`, grouped `use crate::{a, b::c}` included.
fn imports(text: &str) -> BTreeSet<String> {
    names_after(text, "crate::")
}

/// The first path segments after each `prefix` (`crate::`, `super::`) in `text`.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Names at depth one of the braces.
            let (mut depth, mut name, mut top) = (1, String::new(), true);
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => {
                        if top && !name.is_empty() {
                            out.insert(std::mem::take(&mut name));
                        }
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        top = true;
                        name.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 && top {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                    } else if !name.is_empty() {
                        out.insert(std::mem::take(&mut name));
                        top = false;
                    }
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

#[test]
fn imports_point_down_and_top_level_modules_form_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-user/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        // Unit tests may use the tools (the fuzzer's RNG, say): they are not in the product.
        if top == "lib" || top == "main" || file.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for import in imports(&text) {
            if import != top {
                edges.entry((top.clone(), import)).or_insert_with(|| rel.to_path_buf());
            }
        }
    }
    let upward: Vec<String> = edges
        .iter()
        .filter(|((from, to), _)| layer(to) >= layer(from))
        .map(|((from, to), file)| format!("{from} -> {to} ({})", file.display()))
        .collect();
    assert!(upward.is_empty(), "imports that point up or sideways:\n{}", upward.join("\n"));
}

/// The sibling files a file (not a `mod.rs`) names through `super::`.
fn siblings(text: &str, names: &BTreeSet<String>) -> BTreeSet<String> {
    names_after(text, "super::").into_iter().filter(|n| names.contains(n)).collect()
}

#[test]
fn files_of_one_module_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-user/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut dirs: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for file in files.into_iter().filter(|f| !f.ends_with("mod.rs") && !f.ends_with("lib.rs") && !f.ends_with("main.rs")) {
        dirs.entry(file.parent().unwrap().to_path_buf()).or_default().push(file);
    }
    for (dir, files) in dirs {
        let name = |f: &PathBuf| f.file_stem().unwrap().to_string_lossy().into_owned();
        let names: BTreeSet<String> = files.iter().map(name).collect();
        let edges: BTreeMap<String, BTreeSet<String>> =
            files.iter().map(|f| (name(f), siblings(&std::fs::read_to_string(f).unwrap(), &names))).collect();
        // Depth-first search for a path back to where it started.
        fn reaches(from: &str, to: &str, edges: &BTreeMap<String, BTreeSet<String>>, seen: &mut BTreeSet<String>) -> bool {
            edges.get(from).into_iter().flatten().any(|next| next == to || (seen.insert(next.clone()) && reaches(next, to, edges, seen)))
        }
        for file in &names {
            assert!(
                !reaches(file, file, &edges, &mut BTreeSet::new()),
                "{} imports itself through its siblings in {}: {edges:?}",
                file,
                dir.display()
            );
        }
    }
}

#[test]
fn the_import_reader_sees_grouped_and_nested_imports() {
    let text = "use crate::{agent::{Agent, HostOptions}, api::Conn, model};\nlet x = crate::tools::lab::up();";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, ["agent", "api", "model", "tools"]);
}

/// `rustfmt.toml`'s width holds everywhere: the code is as `cargo fmt` leaves it.
#[test]
fn the_code_is_formatted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out =
        std::process::Command::new(env!("CARGO")).args(["fmt", "--all", "--", "--check"]).current_dir(&root).output().expect("cargo fmt");
    assert!(
        out.status.success(),
        "run `cargo fmt --all` (rustup component add rustfmt if it is missing):\n{}{}",
        String::from_utf8_lossy(&out.stdout).lines().take(40).collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}
