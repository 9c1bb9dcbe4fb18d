//! `[lifecycle]` in duban.toml: deadlines, the API's address and tokens, the clock, webhook
//! delivery. Every field has a default; unknown fields fail at load naming the field.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// Consumer group (and transactional id suffix) of the lifecycle. Default `duban-lifecycle`.
    pub group_id: String,
    /// Address of the alerts HTTP API. Default `127.0.0.1:8686`; empty: no API.
    pub http_bind: String,
    /// How often deadlines are checked, in milliseconds. Default 1000.
    pub tick_interval_ms: u64,
    /// Yellow warning period in working days when the domain has none below. Default: `[rules]
    /// warning_working_days`.
    pub warning_working_days: Option<u32>,
    /// Per-domain warning periods in working days, e.g. `"社会治安" = 3`.
    pub warning_days_by_domain: BTreeMap<String, u32>,
    /// Red: working days for the unit's written reply to the recommendation. Default 10.
    pub reply_working_days: u32,
    /// Holiday calendar (config/holidays.toml format); default: the built-in copy.
    pub holidays: Option<PathBuf>,
    /// A file holding the current time (RFC 3339) for drills and tests; read at every check.
    /// Default: the system clock. Env DUBAN_CLOCK_FILE overrides.
    pub clock_file: Option<PathBuf>,
    /// API tokens, one per person: token → `ROLE` or `ROLE@NAME` (role `supervisor` or
    /// `unit:<unit name>`; the name is recorded as the actor of that person's actions). Env
    /// DUBAN_API_TOKENS adds `token=ROLE@NAME` pairs separated by `;`.
    pub tokens: BTreeMap<String, String>,
    /// Actions a token may post at once before the rate limit applies. Default 20.
    pub actions_burst: u32,
    /// Actions a token may post per minute after its burst (429 beyond). Default 60.
    pub actions_per_minute: u32,
    /// Webhook request timeout in milliseconds. Default 5000.
    pub webhook_timeout_ms: u64,
    /// Attempts per notification before it is logged as failed. Default 8.
    pub webhook_attempts: u32,
    /// First retry delay in milliseconds, doubled per attempt up to `webhook_backoff_max_ms`.
    /// Defaults 500 and 60000.
    pub webhook_backoff_ms: u64,
    pub webhook_backoff_max_ms: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            group_id: "duban-lifecycle".into(),
            http_bind: "127.0.0.1:8686".into(),
            tick_interval_ms: 1000,
            warning_working_days: None,
            warning_days_by_domain: BTreeMap::new(),
            reply_working_days: 10,
            holidays: None,
            clock_file: None,
            tokens: BTreeMap::new(),
            actions_burst: 20,
            actions_per_minute: 60,
            webhook_timeout_ms: 5000,
            webhook_attempts: 8,
            webhook_backoff_ms: 500,
            webhook_backoff_max_ms: 60_000,
        }
    }
}

impl LifecycleConfig {
    /// The URL of the API at the default `http_bind`: where `duban alerts` calls unless told.
    pub fn default_api_url() -> String {
        format!("http://{}", LifecycleConfig::default().http_bind)
    }

    /// The clock file: env DUBAN_CLOCK_FILE, else the config's.
    pub fn clock_file(&self) -> Option<PathBuf> {
        std::env::var_os("DUBAN_CLOCK_FILE")
            .map(PathBuf::from)
            .or_else(|| self.clock_file.clone())
    }

    /// Tokens from the config plus env DUBAN_API_TOKENS (`token=ROLE@NAME;token=ROLE`).
    pub fn all_tokens(&self) -> anyhow::Result<crate::auth::Credentials> {
        let mut pairs: Vec<(String, String)> = self
            .tokens
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Ok(env) = std::env::var("DUBAN_API_TOKENS") {
            for p in env.split(';').filter(|p| !p.trim().is_empty()) {
                let (t, r) = p.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("DUBAN_API_TOKENS: an entry is not token=role")
                })?;
                pairs.push((t.trim().to_string(), r.trim().to_string()));
            }
        }
        let creds = pairs
            .into_iter()
            .map(|(t, r)| {
                let cred = crate::auth::Credential::parse(&r).ok_or_else(|| {
                    anyhow::anyhow!(
                        "[lifecycle] tokens: role `{r}` is not supervisor or unit:<unit name> (with an optional @NAME of 1-40 letters, digits, spaces, ·.-_())"
                    )
                })?;
                Ok((t, cred))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(crate::auth::Credentials::new(creds))
    }

    /// The action rate limit per token.
    pub fn action_rate(&self) -> super::api::ActionRate {
        super::api::ActionRate {
            burst: self.actions_burst,
            per_minute: self.actions_per_minute,
        }
    }

    /// The deadline policy, with the calendar loaded.
    pub fn policy(&self, rules: &crate::config::RuleConfig) -> anyhow::Result<super::Policy> {
        let calendar = super::calendar::WorkCalendar::load(self.holidays.as_deref())?;
        Ok(self.policy_on(rules, calendar))
    }

    /// The deadline policy on `calendar`.
    pub fn policy_on(
        &self,
        rules: &crate::config::RuleConfig,
        calendar: super::calendar::WorkCalendar,
    ) -> super::Policy {
        super::Policy {
            warning_working_days: self
                .warning_working_days
                .unwrap_or(rules.warning_working_days),
            warning_by_domain: self.warning_days_by_domain.clone(),
            reply_working_days: self.reply_working_days,
            calendar,
        }
    }
}
