//! Kafka transactions as the connectors, the engine and the lifecycle use them: a transactional
//! producer (initialising it fences and aborts a previous instance with the same id), and one
//! transaction of records plus the consumer offsets they cover, aborted when any part fails.
//!
//! Failures are classified for the caller (`ops::outage`): fenced by a newer instance of the same
//! transactional id is [`Unrecoverable`] (the process ends, with one line saying so); every other
//! failure (a broker that does not answer, a rebalance, a producer in a fatal state that must be
//! created anew) is an outage the caller lives through by going back to its committed state. A
//! commit whose outcome is unknown (the broker went away during it) is settled by that too: the
//! next producer with the same id completes or aborts it before anything is read back.

use anyhow::{Context, Result};
use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use std::time::Duration;

use crate::ops::outage::{Service, Transient, Unrecoverable, is_fenced};

/// A record to send: topic, partition (`None`: by the key's hash), key, value.
pub type Out<'a> = (&'a str, Option<i32>, &'a [u8], &'a [u8]);

/// A transactional producer and its `transactional.id`.
#[derive(Clone)]
pub struct TxnProducer {
    pub producer: FutureProducer,
    pub id: String,
}

/// A producer with `transactional.id` = `id`, initialised. `timeout_ms` bounds a transaction
/// (the broker aborts one left open longer, e.g. by a killed process); `who` names the owner in
/// errors.
pub async fn producer(
    bootstrap: &str,
    id: &str,
    timeout_ms: u32,
    who: &str,
) -> Result<TxnProducer> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("transaction.timeout.ms", timeout_ms.to_string())
        .set("message.timeout.ms", timeout_ms.to_string())
        .create()
        .with_context(|| format!("{who}: cannot create the Kafka producer"))?;
    let p = producer.clone();
    tokio::task::spawn_blocking(move || {
        p.init_transactions(Timeout::After(Duration::from_secs(60)))
    })
    .await
    .context("init_transactions panicked")?
    .map_err(|e| classify(e, id))
    .with_context(|| format!("{who}: cannot initialise Kafka transactions"))?;
    Ok(TxnProducer {
        producer,
        id: id.to_string(),
    })
}

/// A Kafka error of a transactional producer as the caller must treat it.
fn classify(e: KafkaError, id: &str) -> anyhow::Error {
    if is_fenced(&e) {
        return anyhow::Error::new(e).context(Unrecoverable(format!(
            "fenced: a newer instance with transactional id {id} took over, so this one stops"
        )));
    }
    match &e {
        KafkaError::Transaction(t) if t.is_fatal() => {
            let why = format!("the producer {id} is in a fatal state and is created anew");
            anyhow::Error::new(e).context(Transient(Service::Kafka, why))
        }
        _ => anyhow::Error::new(e),
    }
}

/// One transaction: every record, then the consumer `offsets` (with the group's metadata, so a
/// member that lost the partitions in a rebalance cannot commit them), then commit. On failure the
/// transaction is aborted (when the producer still can) and the error returned, classified; none
/// of it is visible to read_committed readers unless the broker had already taken the commit.
pub async fn transact<'a>(
    txn: &TxnProducer,
    records: Vec<Out<'a>>,
    offsets: Option<(TopicPartitionList, ConsumerGroupMetadata)>,
) -> Result<()> {
    let (producer, tid) = (&txn.producer, txn.id.clone());
    if let Err(e) = producer.begin_transaction() {
        // An abort that timed out (the broker was away) is still in progress: calling it again
        // finishes it, then the transaction can begin.
        tracing::debug!(target: "duban::bus", "begin after an unfinished abort: {e}");
        let p = producer.clone();
        tokio::task::spawn_blocking(move || {
            p.abort_transaction(Timeout::After(Duration::from_secs(30)))
        })
        .await
        .context("abort panicked")?
        .map_err(|e| classify(e, &tid))
        .context("cannot finish the previous transaction's abort")?;
        producer
            .begin_transaction()
            .map_err(|e| classify(e, &tid))
            .context("cannot begin a Kafka transaction")?;
    }
    let sends: Vec<_> = records
        .into_iter()
        .map(|(topic, partition, key, value)| {
            let mut r = FutureRecord::to(topic).key(key).payload(value);
            if let Some(p) = partition {
                r = r.partition(p);
            }
            producer.send(r, Timeout::After(Duration::from_secs(30)))
        })
        .collect();
    let sent = async {
        for r in futures::future::join_all(sends).await {
            r.map_err(|(e, _)| classify(e, &tid))
                .context("Kafka did not take a record")?;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let p = producer.clone();
    let t = tid.clone();
    let committed = tokio::task::spawn_blocking(move || -> Result<()> {
        sent?;
        if let Some((tpl, meta)) = offsets.filter(|(tpl, _)| tpl.count() > 0) {
            p.send_offsets_to_transaction(&tpl, &meta, Timeout::After(Duration::from_secs(30)))
                .map_err(|e| classify(e, &t))
                .context("cannot add the offsets to the transaction")?;
        }
        p.commit_transaction(Timeout::After(Duration::from_secs(60)))
            .map_err(|e| classify(e, &t))
            .context("cannot commit the Kafka transaction")
    })
    .await
    .context("commit panicked")?;
    if let Err(e) = &committed {
        // A producer fenced or in a fatal state cannot abort; the next one with its id will.
        let fatal =
            e.downcast_ref::<Unrecoverable>().is_some() || e.downcast_ref::<Transient>().is_some();
        if !fatal {
            let p = producer.clone();
            let aborted = tokio::task::spawn_blocking(move || {
                p.abort_transaction(Timeout::After(Duration::from_secs(30)))
            })
            .await;
            if let Ok(Err(a)) = aborted {
                tracing::debug!(target: "duban::bus", "abort after a failed transaction: {a}");
            }
        }
    }
    committed.map_err(|e| {
        if e.downcast_ref::<Unrecoverable>().is_some() {
            e
        } else {
            e.context(format!("transaction of {tid} not committed"))
        }
    })
}
