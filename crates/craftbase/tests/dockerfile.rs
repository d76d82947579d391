//! The repository's Dockerfile and .dockerignore, checked against the repository (no container
//! runtime is needed): stages and `COPY --from` names, COPY sources that exist, the binary the
//! builder makes, a CMD that `craftbase` accepts, the port, volume and health check it implies,
//! and a build context that still holds the workspace and every file the code embeds.

use std::path::{Path, PathBuf};

use clap::Parser;
use craftbase::config::{Cli, Command};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One instruction: its keyword (upper case) and the rest, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        if !trimmed.starts_with('#') {
            current.push_str(trimmed);
        }
        let (keyword, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_owned(),
        });
        current.clear();
    }
    out
}

/// A build stage: its name and its instructions.
struct Stage {
    name: String,
    image: String,
    body: Vec<Instruction>,
}

fn stages(all: Vec<Instruction>) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::new();
    for i in all {
        if i.keyword == "FROM" {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            let name = match words.as_slice() {
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let _ = image;
                    (*name).to_owned()
                }
                _ => String::new(),
            };
            out.push(Stage {
                name,
                image: words.first().copied().unwrap_or_default().to_owned(),
                body: Vec::new(),
            });
        } else {
            out.last_mut()
                .expect("an instruction before the first FROM")
                .body
                .push(i);
        }
    }
    out
}

fn dockerfile() -> Vec<Stage> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile at the root");
    stages(instructions(&text))
}

fn find<'s>(stage: &'s Stage, keyword: &str) -> Vec<&'s str> {
    stage
        .body
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

/// A JSON-array (exec form) instruction's words.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not an exec-form array: {args}: {e}"))
}

#[test]
fn the_stages_build_the_release_binary_and_copy_it_into_a_debian_runtime() {
    let stages = dockerfile();
    assert_eq!(stages.len(), 2, "a builder and a runtime stage");
    let (builder, runtime) = (&stages[0], &stages[1]);
    assert!(
        builder.image.starts_with("rust:"),
        "builder: {}",
        builder.image
    );
    assert!(
        runtime.image.starts_with("debian:"),
        "runtime: {}",
        runtime.image
    );
    let builds = find(builder, "RUN").join(" ");
    assert!(
        builds.contains("cargo build --release") && builds.contains("-p craftbase"),
        "the builder builds craftbase in release: {builds}"
    );
    // The replication stream links libpq (pq-sys): headers to build, the library to run.
    assert!(
        builds.contains("libpq-dev"),
        "the builder installs libpq-dev"
    );
    let workdir = find(builder, "WORKDIR")
        .last()
        .copied()
        .expect("builder WORKDIR");

    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    let copies = find(runtime, "COPY");
    let from_builder: Vec<&&str> = copies.iter().filter(|c| c.starts_with("--from=")).collect();
    assert!(
        !from_builder.is_empty(),
        "the runtime copies the binary from the builder"
    );
    for copy in from_builder {
        let words: Vec<&str> = copy.split_whitespace().collect();
        let stage = words[0].trim_start_matches("--from=");
        assert!(
            names[..1].contains(&stage),
            "COPY --from={stage}: no earlier stage of that name"
        );
        assert_eq!(
            words[1],
            format!("{workdir}/target/release/craftbase"),
            "the binary the builder made"
        );
    }

    let installs = find(runtime, "RUN").join(" ");
    assert!(
        installs.contains("postgresql-15"),
        "PostgreSQL 15's server package"
    );
    let user = find(runtime, "USER");
    assert!(
        user.last().is_some_and(|u| *u != "root" && *u != "0"),
        "runs as a non-root user: {user:?}"
    );
}

#[test]
fn every_copy_source_exists_in_the_repository() {
    for stage in dockerfile() {
        for copy in find(&stage, "COPY")
            .iter()
            .chain(find(&stage, "ADD").iter())
        {
            let words: Vec<&str> = copy
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            if copy.contains("--from=") {
                continue;
            }
            assert!(
                words.len() >= 2,
                "COPY needs a source and a destination: {copy}"
            );
            for source in &words[..words.len() - 1] {
                assert!(
                    root().join(source).exists(),
                    "COPY source {source} does not exist in the repository"
                );
            }
        }
    }
}

#[test]
fn the_cmd_is_accepted_by_craftbase_and_matches_port_volume_and_health_check() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    let cmd = exec_form(find(runtime, "CMD").last().expect("a CMD"));
    assert_eq!(cmd[0], "craftbase");
    let cli = Cli::try_parse_from(&cmd).unwrap_or_else(|e| panic!("CMD {cmd:?} is refused: {e}"));
    let Command::Start(start) = cli.command else {
        panic!("CMD runs `craftbase start`")
    };
    assert!(start.host.is_unspecified(), "listens on every interface");

    let exposed: Vec<&str> = find(runtime, "EXPOSE");
    assert_eq!(
        exposed,
        [start.port.to_string().as_str()],
        "EXPOSE the API port"
    );
    let volumes = find(runtime, "VOLUME").join(" ");
    assert!(
        volumes.contains(&format!("\"{}\"", start.data_dir.display())),
        "the data dir {} is a VOLUME: {volumes}",
        start.data_dir.display()
    );
    let health = find(runtime, "HEALTHCHECK").join(" ");
    assert!(
        health.contains(&format!("127.0.0.1:{}/health", start.port)),
        "HEALTHCHECK asks /health on the API port: {health}"
    );
}

/// `.dockerignore` patterns: a path, or `**/name` for that name anywhere. Other glob forms
/// are refused so that this check is extended when the file grows them.
fn ignored(patterns: &[String], path: &Path) -> bool {
    patterns.iter().any(|p| {
        assert!(
            !p.contains(['*', '?', '[', '!']) || p.starts_with("**/") && !p[3..].contains('*'),
            ".dockerignore pattern {p:?} is not understood by this test"
        );
        match p.strip_prefix("**/") {
            Some(name) => path.components().any(|c| c.as_os_str() == name),
            None => path.starts_with(p.trim_end_matches('/')),
        }
    })
}

fn dockerignore() -> Vec<String> {
    std::fs::read_to_string(root().join(".dockerignore"))
        .expect(".dockerignore at the root")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Files the code embeds (`include_str!`/`include_bytes!`), relative to the root.
fn embedded_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("crates"), root().join("bench")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    dirs.push(path);
                }
                continue;
            }
            if path.extension() != Some(std::ffi::OsStr::new("rs")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in ["include_str!(\"", "include_bytes!(\""] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let Some(end) = rest.find('"') else { continue };
                    let file = path.parent().unwrap().join(&rest[..end]);
                    let file = file.canonicalize().unwrap_or(file);
                    let root = root().canonicalize().unwrap();
                    if let Ok(relative) = file.strip_prefix(&root) {
                        out.push(relative.to_owned());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_build_context_keeps_the_workspace_and_every_embedded_file() {
    let patterns = dockerignore();
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("workspace members");
    let mut needed: Vec<PathBuf> = members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(PathBuf::from)
        .collect();
    needed.extend([PathBuf::from("Cargo.toml"), PathBuf::from("Cargo.lock")]);
    let embedded = embedded_files();
    assert!(embedded.len() > 5, "found the embedded files: {embedded:?}");
    needed.extend(embedded);
    for path in needed {
        assert!(root().join(&path).exists(), "{} is missing", path.display());
        assert!(
            !ignored(&patterns, &path),
            "{} is needed by the build but .dockerignore leaves it out",
            path.display()
        );
    }
    assert!(ignored(&patterns, Path::new("target/release/craftbase")));
    assert!(ignored(&patterns, Path::new(".git/HEAD")));
}
