//! The documentation kept true: every policy key the validator accepts has its row in
//! docs/policy.md, and every link between README.md and docs/ leads somewhere.

use rollback_guard::Policy;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The keys a table of the policy accepts, as the validator itself lists them: a policy with
/// an unknown key there is refused with "unknown field …, expected one of `a`, `b`, …".
fn accepted_keys(policy_with_unknown_key: &str) -> BTreeSet<String> {
    let err = Policy::from_toml(policy_with_unknown_key)
        .expect_err("an unknown key is refused")
        .to_string();
    let listed = err
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("the refusal lists the keys it accepts: {err}"))
        .1;
    listed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The text of the section whose `## ` heading contains `heading`, up to the next one.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .match_indices("\n## ")
        .map(|(i, _)| i + 1)
        .find(|&i| doc[i..].lines().next().is_some_and(|l| l.contains(heading)))
        .unwrap_or_else(|| panic!("docs/policy.md has no section `## {heading}`"));
    let end = doc[start + 3..]
        .find("\n## ")
        .map_or(doc.len(), |i| start + 3 + i);
    &doc[start..end]
}

#[test]
fn every_policy_key_the_validator_accepts_has_its_row_in_policy_md() {
    let doc = read(&root().join("docs/policy.md"));
    let tables = [
        ("`version`", "unknown_key = 1\n"),
        ("`[guard]`", "[guard]\nunknown_key = 1\n"),
        (
            "`[[target]]`",
            "[[target]]\nname = \"a\"\nfunction = \"f\"\nunknown_key = 1\n",
        ),
        (
            "`[[trigger]]`",
            "[[trigger]]\nalarm = \"a\"\ntarget = \"a\"\naction = \"rollback-alias\"\nunknown_key = 1\n",
        ),
    ];
    let mut checked = 0;
    for (heading, probe) in tables {
        let keys = accepted_keys(probe);
        assert!(keys.len() >= 3, "{heading}: {keys:?}");
        // The top level's tables have sections of their own.
        let keys: Vec<_> = keys
            .into_iter()
            .filter(|k| {
                !(heading == "`version`" && ["guard", "target", "trigger"].contains(&k.as_str()))
            })
            .collect();
        let text = section(&doc, heading);
        let missing: Vec<_> = keys
            .iter()
            .filter(|k| !text.contains(&format!("\n| `{k}` |")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/policy.md's section {heading} has no row for {missing:?}"
        );
        checked += keys.len();
    }
    // version; 16 settings; 8 target keys; 9 trigger keys — a new key adds to these.
    assert!(checked >= 34, "only {checked} keys checked");
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The text outside fenced code blocks.
fn prose(doc: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn anchors(doc: &str) -> BTreeSet<String> {
    prose(doc)
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// Each `](target)` of a document that is not a web address.
fn local_links(doc: &str) -> Vec<String> {
    let text = prose(doc);
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            rest.find(')').map(|end| rest[..end].to_owned())
        })
        .filter(|t| !t.starts_with("http://") && !t.starts_with("https://"))
        .collect()
}

#[test]
fn every_link_between_the_docs_leads_to_a_file_and_a_heading() {
    let root = root();
    let mut docs = vec![root.join("README.md")];
    let mut names: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "docs/ holds {names:?}");
    docs.extend(names);
    let mut broken = Vec::new();
    let mut followed = 0;
    for doc in &docs {
        let text = read(doc);
        for link in local_links(&text) {
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().expect("a folder").join(file)
            };
            followed += 1;
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", doc.display()));
                continue;
            }
            if !fragment.is_empty() && !anchors(&read(&target)).contains(fragment) {
                broken.push(format!("{}: {link} (no such heading)", doc.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(followed >= 20, "only {followed} links followed");
}

#[test]
fn the_anchor_of_a_heading_is_githubs() {
    assert_eq!(
        anchor(" Security: what the guard trusts, and why"),
        "security-what-the-guard-trusts-and-why"
    );
    assert_eq!(anchor(" `[[target]]`"), "target");
    assert_eq!(anchor(" What `make demo` shows"), "what-make-demo-shows");
}
