//! Notifications to the units: one webhook per unit (config/units.toml `[webhooks]`), POSTed as
//! JSON with retries and exponential backoff. Every notification is logged on the compacted
//! `<prefix>.alert-notifications` topic (pending → delivered/failed), so a restart resends what
//! was pending and never what was delivered. Delivery is at-least-once only for a crash between
//! the receiver's 2xx and the log write; the `Idempotency-Key` header lets a receiver drop that copy.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::decide::Notification;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Logged with the state change; not yet delivered.
    Pending,
    Delivered,
    /// Every attempt failed.
    Failed,
    /// The unit has no webhook: logged only.
    NoWebhook,
}

/// One record of the notification log, keyed by `notification_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub notification: Notification,
    pub url: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<FixedOffset>>,
}

impl NotificationRecord {
    pub fn new(n: Notification, url: Option<&str>) -> NotificationRecord {
        NotificationRecord {
            status: if url.is_some() {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::NoWebhook
            },
            url: url.map(str::to_string),
            notification: n,
            attempts: 0,
            last_error: None,
            delivered_at: None,
        }
    }
}

/// Retry policy of webhook delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl Delivery {
    pub fn from_config(c: &super::LifecycleConfig) -> Delivery {
        Delivery {
            timeout: Duration::from_millis(c.webhook_timeout_ms),
            attempts: c.webhook_attempts.max(1),
            backoff: Duration::from_millis(c.webhook_backoff_ms),
            backoff_max: Duration::from_millis(c.webhook_backoff_max_ms),
        }
    }

    /// Delay before attempt `n` (1-based; the first attempt has none).
    pub fn delay(&self, n: u32) -> Duration {
        if n <= 1 {
            return Duration::ZERO;
        }
        let f = 2u32.saturating_pow(n - 2);
        self.backoff.saturating_mul(f).min(self.backoff_max)
    }

    /// POST the notification until a 2xx or the attempts run out; returns the final record.
    pub async fn deliver(
        &self,
        client: &reqwest::Client,
        mut rec: NotificationRecord,
        clock: &super::clock::Clock,
    ) -> NotificationRecord {
        let Some(url) = rec.url.clone() else {
            rec.status = DeliveryStatus::NoWebhook;
            return rec;
        };
        while rec.attempts < self.attempts {
            rec.attempts += 1;
            tokio::time::sleep(self.delay(rec.attempts)).await;
            let r = client
                .post(&url)
                .timeout(self.timeout)
                .header("Idempotency-Key", &rec.notification.notification_id)
                .json(&rec.notification)
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => {
                    rec.status = DeliveryStatus::Delivered;
                    rec.delivered_at = clock.now().ok();
                    rec.last_error = None;
                    tracing::info!(target: "duban::lifecycle", id = %rec.notification.notification_id, unit = %rec.notification.unit, attempts = rec.attempts, "notification delivered");
                    return rec;
                }
                Ok(resp) => rec.last_error = Some(format!("{url} answered {}", resp.status())),
                Err(e) => rec.last_error = Some(format!("{url}: {e}")),
            }
            tracing::warn!(target: "duban::lifecycle", id = %rec.notification.notification_id, attempt = rec.attempts, "webhook failed: {}", rec.last_error.as_deref().unwrap_or(""));
        }
        rec.status = DeliveryStatus::Failed;
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let d = Delivery {
            timeout: Duration::from_secs(1),
            attempts: 8,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
        };
        let delays: Vec<u128> = (1..=6).map(|n| d.delay(n).as_millis()).collect();
        assert_eq!(delays, vec![0, 100, 200, 400, 500, 500]);
    }
}
