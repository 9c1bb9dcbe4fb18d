//! Outages of the services duban depends on (Kafka, ClickHouse): which errors are outages, and how
//! a component lives through one — the first error logged at once, then one line per interval,
//! not ready meanwhile, a retry delay that grows to a few seconds, and one line when it ends.
//!
//! An error is an outage when its chain holds a Kafka error that is not fatal (a broker that does
//! not answer, a leader moving, a request timing out), a ClickHouse network error or timeout, or an
//! [`Transient`] marker; an [`Unrecoverable`] marker (fenced by a newer instance, corrupt state)
//! and every other error (configuration, a bug) end the process with one line.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::time::{Duration, Instant};

use super::events::{
    InternalEvent, ServiceOutageContinued, ServiceOutageEnded, ServiceOutageStarted,
};
use super::health::Component;

/// A service duban depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kafka,
    ClickHouse,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Kafka => "kafka",
            Service::ClickHouse => "clickhouse",
        }
    }
}

/// An error that ends the process whatever else its chain holds: fenced by a newer instance of the
/// same transactional id or group instance, or state that cannot be read back.
#[derive(Debug)]
pub struct Unrecoverable(pub String);

impl std::fmt::Display for Unrecoverable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unrecoverable {}

/// A failure of a service that a retry from the committed state mends, said by duban's own code
/// where the underlying error does not say so: a topic not read to its end within the deadline,
/// a transactional producer that must be created anew.
#[derive(Debug)]
pub struct Transient(pub Service, pub String);

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Transient {}

/// Kafka error codes that no retry can mend: another instance took over, or the configuration is
/// wrong (authentication, authorization, an invalid setting).
fn kafka_fatal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::Fenced
            | C::ProducerFenced
            | C::FencedInstanceId
            | C::InvalidProducerIdMapping
            | C::TransactionalIdAuthorizationFailed
            | C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::InvalidArgument
            | C::InvalidConfig
            | C::InvalidRequiredAcks
            | C::InvalidTransactionTimeout
            | C::UnsupportedVersion
            | C::UnsupportedFeature
            | C::NotImplemented
    )
}

/// Whether a Kafka error is an outage (retry) rather than the end.
fn kafka_outage(e: &KafkaError) -> bool {
    match e {
        KafkaError::ClientConfig(..)
        | KafkaError::ClientCreation(_)
        | KafkaError::Nul(_)
        | KafkaError::Subscription(_)
        | KafkaError::MessageConsumptionFatal(_) => false,
        KafkaError::Transaction(t) if t.is_fatal() => false,
        other => other.rdkafka_error_code().is_none_or(|c| !kafka_fatal(c)),
    }
}

/// The service an error is an outage of, or `None` when it must end the process.
pub fn outage_of(e: &anyhow::Error) -> Option<Service> {
    // Markers may be a context (found by anyhow's downcast at any depth) or an error in the chain.
    if is_unrecoverable(e) {
        return None;
    }
    if let Some(u) = e.downcast_ref::<Transient>() {
        return Some(u.0);
    }
    for cause in e.chain() {
        if let Some(u) = cause.downcast_ref::<Transient>() {
            return Some(u.0);
        }
        if let Some(k) = cause.downcast_ref::<KafkaError>() {
            return kafka_outage(k).then_some(Service::Kafka);
        }
        if let Some(c) = cause.downcast_ref::<clickhouse::error::Error>() {
            return matches!(
                c,
                clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut
            )
            .then_some(Service::ClickHouse);
        }
    }
    None
}

/// Whether the error ends the process whatever else: fenced, or corrupt state.
pub fn is_unrecoverable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Unrecoverable>().is_some()
        || e.chain()
            .any(|c| c.downcast_ref::<Unrecoverable>().is_some())
}

/// Whether the error says this instance was fenced by a newer one.
pub fn is_fenced(e: &KafkaError) -> bool {
    e.rdkafka_error_code().is_some_and(|c| {
        matches!(
            c,
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::FencedInstanceId
        )
    })
}

/// One component's view of an outage of one service.
pub struct Outage {
    component: String,
    health: Option<Component>,
    since: Option<(Instant, Service)>,
    /// Errors since the last line.
    errors: u64,
    total: u64,
    logged: Instant,
    attempt: u32,
}

impl Outage {
    /// At most one line per outage and component this often.
    pub const LOG_EVERY: Duration = Duration::from_secs(15);
    /// The retry delay starts here and doubles …
    const FIRST_DELAY: Duration = Duration::from_millis(200);
    /// … up to this.
    const MAX_DELAY: Duration = Duration::from_secs(5);

    /// An outage tracker of `component`; with `health`, the component is marked not ready while an
    /// outage lasts (and ready when it ends).
    pub fn new(component: &str, health: Option<Component>) -> Outage {
        Outage {
            component: component.to_string(),
            health,
            since: None,
            errors: 0,
            total: 0,
            logged: Instant::now(),
            attempt: 0,
        }
    }

    /// Whether an outage is going on.
    pub fn ongoing(&self) -> bool {
        self.since.is_some()
    }

    /// An error: when it is an outage, told (first at once, then once per interval) and the delay
    /// before the next try returned; else the error itself, for the caller to end with.
    pub fn failed(&mut self, e: anyhow::Error) -> anyhow::Result<Duration> {
        let Some(service) = outage_of(&e) else {
            return Err(e);
        };
        self.errors += 1;
        self.total += 1;
        let error = format!("{e:#}");
        match self.since {
            None => {
                self.since = Some((Instant::now(), service));
                self.logged = Instant::now();
                self.errors = 0;
                if let Some(h) = &self.health {
                    h.not_ready(&format!("{} unreachable", service.as_str()));
                }
                ServiceOutageStarted {
                    component: &self.component,
                    service,
                    error: &error,
                }
                .emit();
            }
            Some((since, _)) if self.logged.elapsed() >= Self::LOG_EVERY => {
                ServiceOutageContinued {
                    component: &self.component,
                    service,
                    down: since.elapsed(),
                    errors: self.errors,
                    error: &error,
                }
                .emit();
                self.logged = Instant::now();
                self.errors = 0;
            }
            Some(_) => super::events::ServiceErrorCounted {
                component: &self.component,
                service,
            }
            .emit(),
        }
        let delay = Self::FIRST_DELAY
            .saturating_mul(1 << self.attempt.min(10))
            .min(Self::MAX_DELAY);
        self.attempt += 1;
        Ok(delay)
    }

    /// The service answered: an outage going on ends (told with its length).
    pub fn ok(&mut self) {
        self.attempt = 0;
        if let Some((since, service)) = self.since.take() {
            ServiceOutageEnded {
                component: &self.component,
                service,
                down: since.elapsed(),
                errors: self.total,
            }
            .emit();
            self.total = 0;
            self.errors = 0;
            if let Some(h) = &self.health {
                h.ready();
            }
        }
    }
}

/// Whether the broker of a consumer answers (a metadata request, waiting at most half a second):
/// how an idle consumer in an outage learns that it ended when no record comes to tell it.
pub fn kafka_answers<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl rdkafka::consumer::Consumer<C>,
) -> bool {
    consumer
        .fetch_metadata(None, std::time::Duration::from_millis(500))
        .is_ok()
}

/// Run `op` until it succeeds, living through outages (told through an [`Outage`] of
/// `component`); an error that is not an outage is returned.
pub async fn retry<T, F, Fut>(component: &str, mut op: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut outage = Outage::new(component, None);
    loop {
        match op().await {
            Ok(v) => {
                outage.ok();
                return Ok(v);
            }
            Err(e) => {
                let delay = outage.failed(e)?;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn outages_are_told_apart_from_the_end() {
        let down: anyhow::Error = Err::<(), _>(KafkaError::MessageConsumption(
            RDKafkaErrorCode::AllBrokersDown,
        ))
        .context("lifecycle consumer")
        .unwrap_err();
        assert_eq!(outage_of(&down), Some(Service::Kafka));
        let fenced = anyhow::Error::new(KafkaError::MessageConsumption(
            RDKafkaErrorCode::FencedInstanceId,
        ));
        assert_eq!(outage_of(&fenced), None);
        let marked = anyhow::Error::new(Transient(Service::Kafka, "slow".into()))
            .context("reading the changelog");
        assert_eq!(outage_of(&marked), Some(Service::Kafka));
        let marked = anyhow::anyhow!("no answer")
            .context(Transient(Service::Kafka, "slow".into()))
            .context("restore");
        assert_eq!(outage_of(&marked), Some(Service::Kafka));
        let corrupt = down.context(Unrecoverable("changelog record 7 unreadable".into()));
        assert_eq!(outage_of(&corrupt), None);
        let ch = anyhow::Error::new(clickhouse::error::Error::TimedOut).context("insert");
        assert_eq!(outage_of(&ch), Some(Service::ClickHouse));
        let bad_sql = anyhow::Error::new(clickhouse::error::Error::BadResponse("syntax".into()));
        assert_eq!(outage_of(&bad_sql), None);
        assert_eq!(outage_of(&anyhow::anyhow!("a bug")), None);
    }

    #[test]
    fn an_outage_marks_not_ready_backs_off_and_ends() {
        let h = Component::register("unit-test-outage");
        h.ready();
        let mut o = Outage::new("unit-test-outage", Some(h.clone()));
        let err = || {
            anyhow::Error::new(KafkaError::MessageConsumption(
                RDKafkaErrorCode::AllBrokersDown,
            ))
        };
        let delays: Vec<Duration> = (0..8).map(|_| o.failed(err()).expect("outage")).collect();
        assert!(o.ongoing() && !h.is_ready());
        assert_eq!(delays[0], Duration::from_millis(200));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[7], Duration::from_secs(5));
        assert!(o.failed(anyhow::anyhow!("a bug")).is_err());
        o.ok();
        assert!(!o.ongoing() && h.is_ready());
        assert_eq!(o.failed(err()).expect("outage"), Duration::from_millis(200));
        h.deregister();
    }
}
