//! Kafka transactions as the connectors, the engine and the lifecycle use them: a transactional
//! producer (initialising it fences and aborts a previous instance with the same id), and one
//! transaction of records plus the consumer offsets they cover, aborted when any part fails.

use anyhow::{Context, Result, anyhow};
use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use std::time::Duration;

/// A record to send: topic, partition (`None`: by the key's hash), key, value.
pub type Out<'a> = (&'a str, Option<i32>, &'a [u8], &'a [u8]);

/// A producer with `transactional.id` = `id`, initialised. `timeout_ms` bounds a transaction
/// (the broker aborts one left open longer, e.g. by a killed process); `who` names the owner in
/// errors.
pub async fn producer(
    bootstrap: &str,
    id: &str,
    timeout_ms: u32,
    who: &str,
) -> Result<FutureProducer> {
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
    .with_context(|| format!("{who}: cannot initialise Kafka transactions"))?;
    Ok(producer)
}

/// One transaction: every record, then the consumer `offsets` (with the group's metadata, so a
/// member that lost the partitions in a rebalance cannot commit them), then commit. On failure the
/// transaction is aborted and the error returned; nothing of it is visible to read_committed
/// readers.
pub async fn transact<'a>(
    producer: &FutureProducer,
    records: Vec<Out<'a>>,
    offsets: Option<(TopicPartitionList, ConsumerGroupMetadata)>,
) -> Result<()> {
    producer
        .begin_transaction()
        .context("cannot begin a Kafka transaction")?;
    let sends: Vec<_> = records
        .into_iter()
        .map(|(topic, partition, key, value)| {
            // An empty value is a tombstone (a null value), which compaction deletes.
            let mut r = FutureRecord::to(topic).key(key);
            if !value.is_empty() {
                r = r.payload(value);
            }
            if let Some(p) = partition {
                r = r.partition(p);
            }
            producer.send(r, Timeout::After(Duration::from_secs(30)))
        })
        .collect();
    let sent = async {
        for r in futures::future::join_all(sends).await {
            r.map_err(|(e, _)| anyhow!("Kafka did not take a record: {e}"))?;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let p = producer.clone();
    let committed = tokio::task::spawn_blocking(move || -> Result<()> {
        sent?;
        if let Some((tpl, meta)) = offsets.filter(|(tpl, _)| tpl.count() > 0) {
            p.send_offsets_to_transaction(&tpl, &meta, Timeout::After(Duration::from_secs(30)))
                .context("cannot add the offsets to the transaction")?;
        }
        p.commit_transaction(Timeout::After(Duration::from_secs(60)))
            .context("cannot commit the Kafka transaction")
    })
    .await
    .context("commit panicked")?;
    if committed.is_err() {
        let p = producer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            p.abort_transaction(Timeout::After(Duration::from_secs(30)))
        })
        .await;
    }
    committed
}
