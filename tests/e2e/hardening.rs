//! Issue 21's hardening, end to end through the `duban` binary: production commands refuse to
//! run without a secret pseudonym key.

use crate::common::*;

#[test]
fn production_commands_need_a_secret_pseudonym_key() {
    let config = repo("config/duban.toml");
    let config = config.to_str().expect("utf-8 path");
    let commands: [&[&str]; 3] = [
        &["process", "--config", config],
        &["run", "--config", config],
        &[
            "backfill",
            "--config",
            config,
            "--input",
            "missing.csv",
            "--mapping",
            "connectors/board-export.toml",
        ],
    ];
    for args in commands {
        for (key, why) in [
            (None, "DUBAN_PSEUDONYM_KEY is not set"),
            (Some("duban-development-pseudonym-key"), "development key"),
            (Some("short"), "at least 16 bytes"),
        ] {
            let mut cmd = duban();
            cmd.args(args).current_dir(repo("."));
            match key {
                Some(k) => cmd.env(duban::engine::PSEUDONYM_KEY_ENV, k),
                None => cmd.env_remove(duban::engine::PSEUDONYM_KEY_ENV),
            };
            let out = cmd.output().expect("duban runs");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} ran with key {key:?}");
            let last = err.lines().last().unwrap_or_default();
            assert!(
                last.starts_with("error: ") && last.contains(why),
                "{args:?} with key {key:?}: {err}"
            );
        }
    }
}
