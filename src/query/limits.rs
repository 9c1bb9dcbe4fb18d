//! What one analyst's SQL query may use: memory (a pool that operators spill to disk from), time,
//! a share of the server (concurrent Flight SQL queries), the size of a value that a string or
//! array function builds, and the size of a result `duban sql` collects. Each refusal is one clear
//! error naming the limit and the setting that raises it.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;
use serde::Deserialize;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

/// `[sql]` in duban.toml: limits of `duban sql` and `duban serve-sql` (flags override them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlLimits {
    /// Memory of one query's operators in MiB; sorts, aggregations and joins spill to the temp
    /// folder beyond it, others fail with a clear error. Default 1024.
    pub memory_limit_mb: usize,
    /// A query running longer is stopped, in seconds. Default 300.
    pub query_timeout_secs: u64,
    /// Queries a Flight SQL server runs at once; one more is refused. Default 4.
    pub max_concurrent_queries: usize,
    /// Largest value `repeat`, `lpad`, `rpad`, `array_repeat` or `range` may build, in MiB
    /// (their results are not counted by the memory pool). Default 16.
    pub max_value_mb: usize,
    /// Largest result `duban sql` collects before printing or writing it, in MiB. Default 1024.
    pub max_result_mb: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            memory_limit_mb: 1024,
            query_timeout_secs: 300,
            max_concurrent_queries: 4,
            max_value_mb: 16,
            max_result_mb: 1024,
        }
    }
}

const MIB: usize = 1 << 20;

impl SqlLimits {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.query_timeout_secs.max(1))
    }

    /// The runtime of a session: a memory pool of `memory_limit_mb` shared fairly between the
    /// operators that can spill (the disk manager spills to the OS temp folder).
    pub fn runtime(&self) -> DfResult<Arc<RuntimeEnv>> {
        let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
        RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(self.memory_limit_mb.max(1) * MIB),
                top,
            )))
            .build_arc()
    }

    /// Replace the session's value-building functions by ones that refuse a value over
    /// `max_value_mb` before building it.
    pub fn cap_functions(&self, ctx: &SessionContext) {
        let limit = self.max_value_mb.max(1) * MIB;
        let state = ctx.state();
        for (name, kind) in [
            ("repeat", Growth::RepeatString),
            ("lpad", Growth::PadTo),
            ("rpad", Growth::PadTo),
            ("array_repeat", Growth::RepeatElement),
            ("range", Growth::Range),
            ("generate_series", Growth::Range),
        ] {
            if let Some(inner) = state.scalar_functions().get(name) {
                ctx.register_udf(ScalarUDF::new_from_impl(Capped {
                    inner: inner.clone(),
                    kind,
                    limit,
                }));
            }
        }
    }

    /// The error of a query that ran out of memory, time or result space, told with its limit.
    pub fn explain(&self, e: &DataFusionError) -> Option<String> {
        match e.find_root() {
            // A capped function's own refusal names its setting already.
            DataFusionError::ResourcesExhausted(m) if m.contains("max_value_mb") => Some(m.clone()),
            DataFusionError::ResourcesExhausted(m) => Some(format!(
                "the query needs more memory than its limit of {} MiB ([sql] memory_limit_mb, --memory-limit-mb): {}",
                self.memory_limit_mb,
                m.split_whitespace().collect::<Vec<_>>().join(" ")
            )),
            _ => None,
        }
    }

    /// The error of a query stopped at its time limit.
    pub fn timed_out(&self) -> String {
        format!(
            "the query ran longer than its limit of {} s ([sql] query_timeout_secs, --timeout-secs) and was stopped",
            self.query_timeout_secs
        )
    }
}

/// How a function's result grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: text length × n bytes.
    RepeatString,
    /// `lpad(text, n [, fill])`: n characters (up to 4 bytes each).
    PadTo,
    /// `array_repeat(x, n)`: n elements.
    RepeatElement,
    /// `range(start, stop [, step])`: (stop − start) / step elements.
    Range,
}

/// A built-in function that first checks how large a value it would build.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Capped {
    inner: Arc<ScalarUDF>,
    kind: Growth,
    limit: usize,
}

/// The largest integer of an argument (0 without one).
fn max_int(v: &ColumnarValue) -> DfResult<i64> {
    let a: ArrayRef = v.to_array(1)?;
    let a = cast(&a, &DataType::Int64)?;
    Ok(a.as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .max()
        .unwrap_or(0))
}

/// The smallest integer of an argument (0 without one).
fn min_int(v: &ColumnarValue) -> DfResult<i64> {
    let a: ArrayRef = v.to_array(1)?;
    let a = cast(&a, &DataType::Int64)?;
    Ok(a.as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .min()
        .unwrap_or(0))
}

/// The longest text of an argument, in bytes.
fn max_len(v: &ColumnarValue) -> DfResult<i64> {
    let a: ArrayRef = v.to_array(1)?;
    let a = cast(&a, &DataType::Utf8)?;
    let s = a.as_string::<i32>();
    Ok((0..s.len())
        .filter(|i| !s.is_null(*i))
        .map(|i| s.value(i).len() as i64)
        .max()
        .unwrap_or(0))
}

impl Capped {
    /// The most bytes one row's value may take, for these arguments.
    fn bytes(&self, args: &[ColumnarValue]) -> DfResult<u128> {
        let arg = |i: usize| {
            args.get(i)
                .ok_or_else(|| DataFusionError::Plan(format!("{}: too few arguments", self.name())))
        };
        let n = |v: i64| u128::try_from(v).unwrap_or(0);
        Ok(match self.kind {
            Growth::RepeatString => n(max_len(arg(0)?)?) * n(max_int(arg(1)?)?),
            Growth::PadTo => n(max_int(arg(1)?)?) * 4,
            Growth::RepeatElement => n(max_int(arg(1)?)?) * 8,
            Growth::Range => {
                // With one argument, range(stop) counts from 0.
                let (start, stop) = if args.len() == 1 {
                    (0, max_int(arg(0)?)?)
                } else {
                    (min_int(arg(0)?)?, max_int(arg(1)?)?)
                };
                let step = match args.get(2) {
                    Some(s) => min_int(s)?.unsigned_abs().max(1),
                    None => 1,
                };
                n(stop.saturating_sub(start)) / u128::from(step) * 8
            }
        })
    }
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DfResult<datafusion::arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let bytes = self.bytes(&args.args)?;
        if bytes > self.limit as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} would build a value of {} MiB; at most {} MiB ([sql] max_value_mb)",
                self.name(),
                bytes / MIB as u128,
                self.limit / MIB
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ctx(limits: SqlLimits) -> SessionContext {
        let ctx = SessionContext::new_with_config_rt(
            datafusion::prelude::SessionConfig::new(),
            limits.runtime().expect("runtime"),
        );
        limits.cap_functions(&ctx);
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> DfResult<usize> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    }

    #[tokio::test]
    async fn value_builders_refuse_huge_values_before_building_them() {
        let c = ctx(SqlLimits::default()).await;
        for sql in [
            "select repeat('x', 300000000)",
            "select lpad('x', 100000000)",
            "select array_repeat(1, 100000000)",
            "select range(1, 1000000000)",
            "select generate_series(1, 1000000000, 1)",
        ] {
            let e = run(&c, sql).await.expect_err(sql).to_string();
            assert!(
                e.contains("at most 16 MiB ([sql] max_value_mb)"),
                "{sql}: {e}"
            );
        }
        // Ordinary uses work as before.
        assert_eq!(
            run(&c, "select repeat('ab', 3), lpad('7', 3, '0'), range(1, 5)")
                .await
                .ok(),
            Some(1)
        );
        let b = c
            .sql("select repeat('ab', 3) as r, lpad('7', 3, '0') as p")
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&b)
            .expect("text")
            .to_string();
        assert!(text.contains("ababab") && text.contains("007"), "{text}");
    }

    #[tokio::test]
    async fn a_query_over_the_memory_pool_fails_with_the_limit_named() {
        let limits = SqlLimits {
            memory_limit_mb: 32,
            ..SqlLimits::default()
        };
        let c = ctx(limits).await;
        // A hash join's build side of 5 million rows holds far more than 32 MiB and cannot spill.
        let e = run(
            &c,
            "select count(*) from generate_series(1, 5000000) a \
             join generate_series(1, 5000000) b on a.value = b.value",
        )
        .await
        .expect_err("over the pool");
        let told = limits.explain(&e).expect("resources exhausted");
        assert!(
            told.contains("limit of 32 MiB ([sql] memory_limit_mb"),
            "{told}"
        );
        // Grouping and sorting spill to disk instead and finish.
        assert_eq!(
            run(
                &c,
                "select count(distinct value) from generate_series(1, 5000000)"
            )
            .await
            .expect("a grouping spills"),
            1
        );
        assert_eq!(
            run(
                &c,
                "select value from generate_series(1, 5000000) order by value desc"
            )
            .await
            .expect("a sort spills"),
            5_000_000
        );
    }
}
