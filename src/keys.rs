//! `kpid keys add --file FILE --tenant NAME`: generates an API key, prints it once on
//! stdout and appends only its SHA-256 to the keys file that `kpid serve --api-keys`
//! reads (created with mode 0600). The format is documented in `kpi_server::auth`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use kpi_server::auth::{check_tenant_name, generate_key, key_line, ApiKeys};

/// `kpid keys`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a random API key for a tenant: the key is printed once on stdout and
    /// only its SHA-256 is appended to the keys file (created with mode 0600).
    Add(AddArgs),
}

#[derive(Debug, Args)]
struct AddArgs {
    /// The API keys file (the one `kpid serve --api-keys` reads).
    #[arg(long, env = "KPID_API_KEYS")]
    file: PathBuf,
    /// The tenant the key acts as: ASCII letters, digits, `-`, `_` and `.`.
    #[arg(long)]
    tenant: String,
}

/// Runs `kpid keys …` to its exit code.
pub(crate) fn run(args: KeysArgs) -> ExitCode {
    match args.command {
        KeysCommand::Add(add_args) => match add(&add_args.file, &add_args.tenant) {
            Ok(key) => {
                // The key on stdout alone, so `KEY=$(kpid keys add …)` captures it.
                println!("{key}");
                eprintln!(
                    "added a key for tenant `{}` to {}; it is shown only this once: keep it \
                     somewhere safe (the file holds only its hash)",
                    add_args.tenant,
                    add_args.file.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kpid keys add: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Generates a key for `tenant`, appends its hash line to `file` and returns the key.
fn add(file: &Path, tenant: &str) -> anyhow::Result<String> {
    check_tenant_name(tenant)?;
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => {
            // Refuse to extend a file the server would refuse to load.
            ApiKeys::parse_lines(&text)
                .with_context(|| format!("{} is not a valid API keys file", file.display()))?;
            Some(text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let key = generate_key().context("the operating system's random number generator failed")?;
    let line = key_line(&key, tenant)?;

    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut out = options
        .open(file)
        .with_context(|| format!("cannot open {} for appending", file.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = out.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} is readable by others (mode {mode:o}); `chmod 600` it",
                file.display()
            );
        }
    }
    let mut text = String::new();
    if existing
        .as_deref()
        .is_some_and(|t| !t.is_empty() && !t.ends_with('\n'))
    {
        text.push('\n');
    }
    if existing.is_none() {
        text.push_str("# kpid API keys: `sha256:<hex of SHA-256 of the key> <tenant>` per line\n");
    }
    text.push_str(&format!(
        "# {tenant}, added {}\n{line}\n",
        jiff::Timestamp::now()
    ));
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_appends_hashes_only_and_the_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        let a = add(&file, "acme").unwrap();
        let b = add(&file, "globex").unwrap();
        assert_ne!(a, b);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&a) && !text.contains(&b), "{text}");
        assert!(!text.contains(&a["kpid_".len()..]), "{text}");
        let keys = ApiKeys::parse(&text).unwrap();
        assert_eq!(keys.tenants(), ["acme", "globex"]);
        assert_eq!(keys.tenant_for_key(&a).unwrap().as_str(), "acme");
        assert_eq!(keys.tenant_for_key(&b).unwrap().as_str(), "globex");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn add_refuses_bad_tenants_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        assert!(add(&file, "a b").is_err());
        assert!(!file.exists(), "nothing written for a bad tenant");
        std::fs::write(&file, "kpid_cleartextkey acme\n").unwrap();
        let err = add(&file, "acme").unwrap_err();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "kpid_cleartextkey acme\n"
        );
    }

    #[test]
    fn add_completes_a_last_line_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "# hand-written").unwrap();
        add(&file, "acme").unwrap();
        let keys = ApiKeys::load(&file).unwrap();
        assert_eq!(keys.len(), 1);
    }
}
