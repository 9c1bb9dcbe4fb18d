//! `duban alerts list|show|assign|feedback|verify|escalate|reopen|label`: a client of the lifecycle's
//! HTTP API (the same role checks apply). Errors reach the user as one line with the HTTP status.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct AlertsArgs {
    /// Base URL of the lifecycle's API. Env DUBAN_API_URL.
    #[arg(long, env = "DUBAN_API_URL", default_value_t = super::config::LifecycleConfig::default_api_url())]
    pub api: String,
    /// Bearer token (its role decides what is allowed). Env DUBAN_API_TOKEN.
    #[arg(long, env = "DUBAN_API_TOKEN", hide_env_values = true)]
    pub token: String,
    /// A note of who acts, recorded beside the token holder's name as unverified (at most 40
    /// letters, digits, spaces or ·.-_()). The actor itself is always the token's holder.
    #[arg(long)]
    pub actor: Option<String>,
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// Alerts visible to the token, one a line (or JSON).
    List {
        #[arg(long)]
        level: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One alert with its history, as JSON.
    Show { id: String },
    /// Supervisor: (re)assign to a unit.
    Assign {
        id: String,
        #[arg(long)]
        unit: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Unit: report what was done.
    Feedback {
        id: String,
        #[arg(long)]
        text: String,
    },
    /// Supervisor: verify the unit's fix (green), or `--reject` it back to the unit.
    Verify {
        id: String,
        #[arg(long)]
        reject: bool,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Supervisor: escalate to red on a finding (inaction = 不作为, misconduct = 乱作为).
    Escalate {
        id: String,
        #[arg(long, value_parser = ["inaction", "misconduct"])]
        finding: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Supervisor: reopen a closed (green) alert.
    Reopen {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Supervisor: correct the domain of a complaint or of an issue (a training label; an
    /// issue's open alerts are re-routed to the new domain's unit).
    Label {
        #[arg(long, required_unless_present = "issue", conflicts_with = "issue")]
        complaint: Option<String>,
        #[arg(long)]
        issue: Option<String>,
        #[arg(long)]
        domain: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

async fn call(
    args: &AlertsArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    let url = format!("{}{path}", args.api.trim_end_matches('/'));
    let mut req = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(&args.token);
    if let Some(a) = &args.actor {
        // Percent-encoded: a header value is ASCII, names are often Chinese.
        let encoded: String = a
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b' ' {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        req = req.header("X-Duban-Actor", encoded);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let msg = v
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        bail!("{status}: {msg}");
    }
    Ok(v)
}

pub async fn run(args: AlertsArgs) -> Result<()> {
    use reqwest::Method;
    let (path, body) = match &args.command {
        AlertsCommand::List {
            level,
            status,
            unit,
            json,
        } => {
            let mut q = Vec::new();
            for (k, v) in [("level", level), ("status", status), ("unit", unit)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", urlencode(v)));
                }
            }
            let path = if q.is_empty() {
                "/api/alerts".to_string()
            } else {
                format!("/api/alerts?{}", q.join("&"))
            };
            let v = call(&args, Method::GET, &path, None).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for a in v.as_array().into_iter().flatten() {
                    let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}{}",
                        s("alert_id"),
                        s("level"),
                        s("status"),
                        s("deadline"),
                        s("unit"),
                        if a.get("recurrent").and_then(Value::as_bool).unwrap_or(false) {
                            "[屡治屡犯] "
                        } else {
                            ""
                        },
                        s("summary")
                    );
                }
            }
            return Ok(());
        }
        AlertsCommand::Show { id } => (format!("/api/alerts/{id}"), None),
        AlertsCommand::Assign { id, unit, reason } => (
            format!("/api/alerts/{id}/assign"),
            Some(json!({"unit": unit, "reason": reason})),
        ),
        AlertsCommand::Feedback { id, text } => (
            format!("/api/alerts/{id}/feedback"),
            Some(json!({"text": text})),
        ),
        AlertsCommand::Verify { id, reject, reason } => (
            format!("/api/alerts/{id}/verify"),
            Some(json!({"accepted": !reject, "reason": reason})),
        ),
        AlertsCommand::Escalate {
            id,
            finding,
            reason,
        } => (
            format!("/api/alerts/{id}/escalate"),
            Some(json!({"finding": finding, "reason": reason})),
        ),
        AlertsCommand::Reopen { id, reason } => (
            format!("/api/alerts/{id}/reopen"),
            Some(json!({"reason": reason})),
        ),
        AlertsCommand::Label {
            complaint,
            issue,
            domain,
            reason,
        } => (
            "/api/labels".to_string(),
            Some(
                json!({"complaint_id": complaint, "issue_id": issue, "domain": domain, "reason": reason}),
            ),
        ),
    };
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let v = call(&args, method, &path, body).await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
