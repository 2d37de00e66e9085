//! The layout holds: imports point inward only, no module imports itself back through
//! another, the inner layers name no AWS or Lambda type, and `docs/architecture.md`'s
//! diagrams say what `TRANSITIONS` and `template.yaml` say.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use orders::domain::TRANSITIONS;
use orders_dev::template::Trigger;
use orders_tests::template;

fn source_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/src")
}

/// Every `.rs` file of the library, as its path below `shared/src`.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let root = source_root();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// The code of a file without its comments (line comments are enough: the crate has
/// no block comments) and without its unit tests.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(source_root().join(file)).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a file is: `domain/order.rs` → `domain::order`, `domain/mod.rs` → `domain`.
fn module_of(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Every path a file names that starts at `crate::` or `super::`, with `use` trees
/// (`use crate::a::{b, c::d}`) expanded, resolved to absolute module paths.
fn imports(file: &Path) -> Vec<Vec<String>> {
    let code = code(file);
    let here = module_of(file);
    // `super` of `a/b.rs` is `a`; of `a/b/mod.rs` it is `a` too.
    let parent: Vec<String> = here[..here.len().saturating_sub(1)].to_vec();
    let mut paths = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let start = if rest.starts_with("crate::") {
            Some((vec![], 7))
        } else if rest.starts_with("super::") {
            Some((parent.clone(), 7))
        } else {
            None
        };
        let boundary = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        match start {
            Some((base, skip)) if boundary => {
                let (tree, used) = use_tree(&bytes[i + skip..]);
                for path in tree {
                    let mut full = base.clone();
                    full.extend(path);
                    paths.push(full);
                }
                i += skip + used;
            }
            _ => i += 1,
        }
    }
    paths
}

/// Parses `a::b::{c, d::e}` (or `a::b::Name`) into its paths; answers them and the
/// characters read.
fn use_tree(text: &[char]) -> (Vec<Vec<String>>, usize) {
    let mut i = 0;
    let mut prefix = Vec::new();
    loop {
        let start = i;
        while i < text.len() && (text[i].is_alphanumeric() || text[i] == '_') {
            i += 1;
        }
        if i > start {
            prefix.push(text[start..i].iter().collect::<String>());
        }
        if text[i..].starts_with(&[':', ':']) {
            i += 2;
            if text.get(i) == Some(&'{') {
                i += 1;
                let mut paths = Vec::new();
                loop {
                    while text.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                        i += 1;
                    }
                    if text.get(i) == Some(&'}') || i >= text.len() {
                        return (paths, i + 1);
                    }
                    let (inner, used) = use_tree(&text[i..]);
                    for path in inner {
                        let mut full = prefix.clone();
                        full.extend(path);
                        paths.push(full);
                    }
                    i += used.max(1);
                }
            }
            continue;
        }
        return (vec![prefix], i);
    }
}

/// The longest prefix of `path` that is a module of the crate.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    files
        .iter()
        .map(|file| {
            let here = module_of(file);
            let targets = imports(file)
                .iter()
                .filter_map(|path| resolve(path, &modules))
                .filter(|target| *target != here && !here.starts_with(target))
                .collect();
            (here, targets)
        })
        .collect()
}

/// What each layer may import besides itself (docs/architecture.md, "The layers").
fn allowed(from: &[String], to: &[String]) -> bool {
    let layer = |m: &[String]| m.first().cloned().unwrap_or_default();
    let (from_layer, to_layer) = (layer(from), layer(to));
    if from_layer == to_layer || from_layer == "wiring" || from_layer.is_empty() {
        return true;
    }
    let to_path = to.join("::");
    match from_layer.as_str() {
        "domain" => false,
        "events" => to_layer == "domain",
        "ports" => ["domain", "events"].contains(&to_layer.as_str()),
        "services" | "adapters" => ["domain", "events", "ports"].contains(&to_layer.as_str()),
        "auth" => {
            to_layer == "domain"
                || ["adapters::http::tls", "adapters::http::body"].contains(&to_path.as_str())
        }
        "inbound" => {
            ["domain", "events", "ports", "services", "auth"].contains(&to_layer.as_str())
                || (from.join("::") == "inbound::stream" && to_path == "adapters::dynamo::stream")
        }
        _ => false,
    }
}

#[test]
fn imports_point_inward_only() {
    let graph = graph();
    assert!(graph.len() > 40, "the crate's modules were found");
    let wrong: Vec<String> = graph
        .iter()
        .flat_map(|(from, targets)| {
            targets
                .iter()
                .filter(|to| !allowed(from, to))
                .map(move |to| format!("{} -> {}", from.join("::"), to.join("::")))
        })
        .collect();
    assert!(wrong.is_empty(), "imports that point outward: {wrong:#?}");
}

#[test]
fn no_module_imports_itself_back() {
    let graph = graph();
    // Depth-first search for a cycle through any module.
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if !done.insert(node.clone()) {
            return None;
        }
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let cycle = visit(node, &graph, &mut Vec::new(), &mut done);
        let names: Option<Vec<String>> = cycle.map(|c| c.iter().map(|m| m.join("::")).collect());
        assert_eq!(names, None, "a cycle of imports");
    }
}

#[test]
fn the_inner_layers_name_no_aws_or_lambda_type() {
    let crates = [
        "aws_sdk_",
        "aws_config",
        "aws_lambda_events",
        "lambda_http",
        "lambda_runtime",
    ];
    for file in sources() {
        let layer = module_of(&file).first().cloned().unwrap_or_default();
        if !["domain", "events", "ports", "services"].contains(&layer.as_str()) {
            continue;
        }
        let code = code(&file);
        for name in crates {
            assert!(!code.contains(name), "{} names {name}", file.display());
        }
    }
}

/// The fenced Mermaid block of `docs/architecture.md` that starts with `kind`.
fn diagram(kind: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/architecture.md");
    let text = std::fs::read_to_string(path).unwrap();
    let block = text
        .split("```mermaid\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .find(|block| block.trim_start().starts_with(kind))
        .unwrap_or_else(|| panic!("docs/architecture.md has a {kind} diagram"));
    block
        .lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn the_lifecycle_diagram_is_the_transition_table() {
    let drawn: BTreeSet<(String, String, String)> = diagram("stateDiagram-v2")
        .iter()
        .filter(|line| !line.starts_with("[*]") && !line.is_empty())
        .map(|line| {
            let (moves, roles) = line.split_once(':').expect("a move names its roles");
            let (from, to) = moves.split_once("-->").expect("a move");
            let mut roles: Vec<&str> = roles.split(',').map(str::trim).collect();
            roles.sort();
            (from.trim().into(), to.trim().into(), roles.join(", "))
        })
        .collect();
    let table: BTreeSet<(String, String, String)> = TRANSITIONS
        .iter()
        .map(|t| {
            let mut roles: Vec<String> = t
                .allowed
                .iter()
                .map(|r| format!("{r:?}").to_lowercase())
                .collect();
            roles.sort();
            (t.from.to_string(), t.to.to_string(), roles.join(", "))
        })
        .collect();
    assert_eq!(drawn, table);
    assert!(diagram("stateDiagram-v2").contains(&"[*] --> pending".to_string()));
}

/// An edge of the flowchart: from, label (empty for none), to, dotted.
fn flow_edges() -> BTreeSet<(String, String, String, bool)> {
    let node = |text: &str| {
        let text = text.trim();
        let end = text
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        text[..end].to_string()
    };
    diagram("flowchart")
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (arrow, dotted) = if line.contains("-.->") {
                ("-.->", true)
            } else {
                ("-->", false)
            };
            let (from, rest) = line.split_once(arrow).expect("every line is an edge");
            let (label, to) = match rest.trim().strip_prefix('|') {
                Some(labelled) => labelled.split_once('|').unwrap(),
                None => ("", rest),
            };
            (node(from), label.trim().to_string(), node(to), dotted)
        })
        .collect()
}

#[test]
fn the_event_flow_diagram_is_the_template() {
    let template = template();
    let id = |binary: &str| binary.replace('-', "_");
    let mut expected = BTreeSet::new();
    for consumer in template.consumers() {
        match &consumer.trigger {
            Trigger::Stream { .. } => {
                let publisher = id(&consumer.binary);
                expected.insert((
                    "OrdersTable".into(),
                    "stream".into(),
                    publisher.clone(),
                    false,
                ));
                expected.insert((
                    publisher.clone(),
                    "PutEvents".into(),
                    "OrdersBus".into(),
                    false,
                ));
                expected.insert((
                    publisher,
                    "on failure".into(),
                    "PublisherFailures".into(),
                    true,
                ));
            }
            Trigger::Queue { queue, .. } => {
                expected.insert((queue.clone(), String::new(), id(&consumer.binary), false));
            }
        }
    }
    for rule in template.rules().unwrap() {
        for (_, queue) in &rule.targets {
            expected.insert((
                "OrdersBus".into(),
                rule.logical_id.clone(),
                queue.clone(),
                false,
            ));
        }
    }
    let queues = template.queues();
    for queue in &queues {
        if let Some((dead_letters, receives)) = &queue.dead_letter {
            expected.insert((
                queue.logical_id.clone(),
                format!("after {receives} receives"),
                dead_letters.clone(),
                true,
            ));
        }
    }
    assert!(
        queues.iter().any(|q| q.logical_id == "PublisherFailures"),
        "the publisher's on-failure queue is in the template"
    );
    assert_eq!(flow_edges(), expected);
}
