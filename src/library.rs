//! The shipped rule library (`rules/library/`), embedded in the binary so that `rampart run`
//! and `rampart demo` work from any directory with no files beside them.
//!
//! A test keeps this list equal to the directory's contents.

/// `(file name, YAML text)` for every file of `rules/library/`.
pub const FILES: &[(&str, &str)] = &[
    ("account_created.yml", include_str!("../rules/library/account_created.yml")),
    ("download_and_execute.yml", include_str!("../rules/library/download_and_execute.yml")),
    ("history_tampering.yml", include_str!("../rules/library/history_tampering.yml")),
    ("outbound_suspicious_port.yml", include_str!("../rules/library/outbound_suspicious_port.yml")),
    ("password_spraying.yml", include_str!("../rules/library/password_spraying.yml")),
    ("port_scan.yml", include_str!("../rules/library/port_scan.yml")),
    ("promiscuous_mode.yml", include_str!("../rules/library/promiscuous_mode.yml")),
    ("reverse_shell.yml", include_str!("../rules/library/reverse_shell.yml")),
    ("ssh_bruteforce.yml", include_str!("../rules/library/ssh_bruteforce.yml")),
    ("ssh_login_after_failures.yml", include_str!("../rules/library/ssh_login_after_failures.yml")),
    ("ssh_many_sources.yml", include_str!("../rules/library/ssh_many_sources.yml")),
    ("ssh_root_login.yml", include_str!("../rules/library/ssh_root_login.yml")),
    ("su_failed.yml", include_str!("../rules/library/su_failed.yml")),
    ("sudo_abuse.yml", include_str!("../rules/library/sudo_abuse.yml")),
    ("web_scanner.yml", include_str!("../rules/library/web_scanner.yml")),
];

/// The library as `(name, text)` sources for `rampart_rules::load_sources`, each name
/// prefixed with `<builtin>/` so diagnostics say where the rule came from.
pub fn sources() -> Vec<(String, String)> {
    FILES.iter().map(|(n, t)| (format!("<builtin>/rules/library/{n}"), (*t).to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_list_matches_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/library");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(embedded, on_disk, "update src/library.rs when adding a rule file");
    }
}
