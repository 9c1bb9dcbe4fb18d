//! `duban serve-sql`: an Arrow Flight SQL server over the lake, so DBeaver, Superset, pandas or
//! any ADBC/JDBC tool can query it. Read-only; every call needs the token of DUBAN_SQL_TOKEN.
//!
//! Auth: `authorization: Bearer TOKEN`, or `Basic` with any user name and TOKEN as the password
//! (a handshake with Basic answers with the bearer header). Statements are planned afresh on each
//! call (tables that appeared in the lake since are seen) under `Access::ReadOnly`: DDL, DML,
//! `COPY` and `SET` are refused with PERMISSION_DENIED, and so are Flight SQL updates and ingests.

use anyhow::{Context, Result};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementSubstraitPlan, CommandStatementUpdate, DoPutPreparedStatementResult,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Stream, TryStreamExt};
use prost::Message;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::{Access, SqlOptions, lake_context_with, plan};

/// The environment variable holding the clients' token.
pub const TOKEN_ENV: &str = "DUBAN_SQL_TOKEN";

const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";

/// The Flight SQL service over one lake folder.
#[derive(Clone)]
pub struct LakeFlightService {
    lake: PathBuf,
    opts: SqlOptions,
    /// One permit per query running (`[sql] max_concurrent_queries`), held until its stream ends.
    slots: Arc<tokio::sync::Semaphore>,
}

static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "duban");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerTransaction, 0_i32);
    b.build().expect("static SQL info builds")
});

impl LakeFlightService {
    pub fn new(lake: &Path, opts: SqlOptions) -> Self {
        let slots = Arc::new(tokio::sync::Semaphore::new(
            opts.limits.max_concurrent_queries.max(1),
        ));
        LakeFlightService {
            lake: lake.to_path_buf(),
            opts,
            slots,
        }
    }

    async fn context(&self) -> Result<SessionContext, Status> {
        lake_context_with(&self.lake, &self.opts)
            .await
            .map_err(|e| Status::unavailable(format!("{e:#}")))
    }

    async fn plan(&self, sql: &str) -> Result<DataFrame, Status> {
        let ctx = self.context().await?;
        plan(&ctx, sql, Access::ReadOnly).await.map_err(sql_status)
    }

    async fn flight_info(
        &self,
        sql: &str,
        ticket: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let df = self.plan(sql).await?;
        let schema = df.schema().as_arrow().clone();
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
            .with_descriptor(descriptor)
            .with_ordered(true);
        Ok(Response::new(info))
    }

    /// Run a query as a stream of batches: it takes one of the server's query slots (refused
    /// with RESOURCE_EXHAUSTED when all are taken) until it ends, and is stopped at its time
    /// limit.
    async fn stream(&self, sql: &str) -> Result<Response<DoGetStream>, Status> {
        use futures::StreamExt;
        // Timed until the result's last batch is sent (or the client goes away): the timer
        // lives in the stream's state with the query slot.
        let mut timer = crate::ops::events::SqlQueryTimer::start("flight");
        let limits = self.opts.limits;
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| {
            timer.failed();
            Status::resource_exhausted(format!(
                "too many queries at once: at most {} run together ([sql] max_concurrent_queries, --max-concurrent); retry when one has ended",
                limits.max_concurrent_queries
            ))
        })?;
        let deadline = tokio::time::Instant::now() + limits.timeout();
        let status = move |e: datafusion::error::DataFusionError| match limits.explain(&e) {
            Some(m) => Status::resource_exhausted(format!("SQL error: {m}")),
            None => Status::internal(format!("SQL error: {e}")),
        };
        let planned = async {
            let df = self.plan(sql).await?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = tokio::time::timeout_at(deadline, df.execute_stream())
                .await
                .map_err(|_| Status::deadline_exceeded(limits.timed_out()))?
                .map_err(status)?;
            Ok::<_, Status>((schema, batches))
        }
        .await;
        let (schema, batches) = match planned {
            Ok(p) => p,
            Err(e) => {
                timer.failed();
                return Err(e);
            }
        };
        // The permit and the timer live in the stream's state: dropped at its end, its error or
        // its drop.
        let limited =
            futures::stream::unfold(Some((batches, permit, timer)), move |state| async move {
                let (mut s, permit, mut timer) = state?;
                match tokio::time::timeout_at(deadline, s.next()).await {
                    Ok(Some(Ok(b))) => Some((Ok(b), Some((s, permit, timer)))),
                    Ok(Some(Err(e))) => {
                        timer.failed();
                        Some((Err(FlightError::Tonic(Box::new(status(e)))), None))
                    }
                    Ok(None) => None,
                    Err(_) => {
                        timer.failed();
                        let e = Status::deadline_exceeded(limits.timed_out());
                        Some((Err(FlightError::Tonic(Box::new(e))), None))
                    }
                }
            });
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(limited.boxed())
            .map_err(Status::from);
        Ok(Response::new(Box::pin(stream)))
    }
}

type DoGetStream = <LakeFlightService as FlightService>::DoGetStream;

/// A planning error: refused writes are PERMISSION_DENIED, other errors INVALID_ARGUMENT.
fn sql_status(e: anyhow::Error) -> Status {
    let msg = format!("{e:#}");
    let refused = [
        "DML not supported",
        "DDL not supported",
        "Statement not supported",
    ];
    if refused.iter().any(|r| msg.contains(r)) {
        Status::permission_denied(format!("read-only server: {msg}"))
    } else {
        Status::invalid_argument(msg)
    }
}

fn read_only() -> Status {
    Status::permission_denied("read-only server: duban's lake is not written through SQL")
}

fn batch_stream(schema: Arc<Schema>, batch: RecordBatch) -> Response<DoGetStream> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

fn handle_sql(handle: &[u8]) -> Result<&str, Status> {
    std::str::from_utf8(handle)
        .map_err(|_| Status::invalid_argument("statement handle is not UTF-8"))
}

fn meta_info(
    any: Vec<u8>,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(any)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

#[tonic::async_trait]
impl FlightSqlService for LakeFlightService {
    type FlightService = LakeFlightService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        // The interceptor has checked the credentials; answer with the bearer token to use.
        let token = request
            .extensions()
            .get::<Token>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no credentials"))?;
        let out = futures::stream::iter(vec![Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.0.clone().into(),
        })]);
        let mut resp: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(out));
        let header = MetadataValue::try_from(format!("Bearer {}", token.0))
            .map_err(|_| Status::internal("token is not a valid header value"))?;
        resp.metadata_mut().insert("authorization", header);
        Ok(resp)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = TicketStatementQuery {
            statement_handle: query.query.clone().into(),
        };
        self.flight_info(
            &query.query,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
        .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let sql = handle_sql(&cmd.prepared_statement_handle)?.to_string();
        self.flight_info(&sql, cmd.as_any().encode_to_vec(), request.into_inner())
            .await
    }

    async fn get_flight_info_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented(
            "Substrait plans are not supported; send SQL",
        ))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let sql = handle_sql(&ticket.statement_handle)?.to_string();
        self.stream(&sql).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let sql = handle_sql(&query.prepared_statement_handle)?.to_string();
        self.stream(&sql).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        // The handle is the statement itself: the server keeps no per-client state.
        let df = self.plan(&query.query).await?;
        let schema = df.schema().as_arrow().clone();
        let IpcMessage(schema_bytes) = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: datafusion::arrow::error::ArrowError| {
                Status::internal(format!("cannot encode the schema: {e}"))
            })?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: query.query.into(),
            dataset_schema: schema_bytes,
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any().encode_to_vec();
        meta_info(any, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        b.append(CATALOG);
        let schema = b.schema();
        Ok(batch_stream(schema, b.build().map_err(Status::from)?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any().encode_to_vec();
        meta_info(any, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        b.append(CATALOG, SCHEMA);
        let schema = b.schema();
        Ok(batch_stream(schema, b.build().map_err(Status::from)?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any().encode_to_vec();
        meta_info(any, &query.into_builder().schema(), request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let ctx = self.context().await?;
        let mut b = query.into_builder();
        let mut names: Vec<String> = ctx
            .catalog(CATALOG)
            .and_then(|c| c.schema(SCHEMA))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        for name in names {
            let table = ctx
                .table_provider(name.as_str())
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            b.append(CATALOG, SCHEMA, &name, "TABLE", table.schema().as_ref())
                .map_err(Status::from)?;
        }
        let schema = b.schema();
        Ok(batch_stream(schema, b.build().map_err(Status::from)?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any().encode_to_vec();
        let schema = table_types_batch()?.schema();
        meta_info(any, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let batch = table_types_batch()?;
        Ok(batch_stream(batch.schema(), batch))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = query.as_any().encode_to_vec();
        let schema = query.into_builder(&SQL_INFO).schema();
        meta_info(any, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let b = query.into_builder(&SQL_INFO);
        let schema = b.schema();
        Ok(batch_stream(schema, b.build().map_err(Status::from)?))
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<DoGetStream>, Status> {
        Err(Status::unimplemented(format!(
            "unsupported ticket {}",
            message.type_url
        )))
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only())
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only())
    }

    async fn do_put_prepared_statement_query(
        &self,
        _query: CommandPreparedStatementQuery,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        Err(Status::unimplemented(
            "statement parameters are not supported",
        ))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn table_types_batch() -> Result<RecordBatch, Status> {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{DataType, Field};
    let schema = Arc::new(Schema::new(vec![Field::new(
        "table_type",
        DataType::Utf8,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["TABLE"]))])
        .map_err(|e| Status::internal(e.to_string()))
}

/// The accepted token, put in the request's extensions by the interceptor.
#[derive(Clone)]
struct Token(String);

/// Check `authorization` (Bearer TOKEN, or Basic with TOKEN as the password) on every call.
fn authenticate(token: &str, req: &mut Request<()>) -> Result<(), Status> {
    use base64::Engine as _;
    let header = req
        .metadata()
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("missing authorization header (Bearer token)"))?
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization header is not text"))?
        .to_string();
    let presented = if let Some(t) = header.strip_prefix("Bearer ") {
        t.trim().to_string()
    } else if let Some(b) = header.strip_prefix("Basic ") {
        // Some clients (Go's Flight) send it without padding.
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b.trim().trim_end_matches('='))
            .map_err(|_| Status::unauthenticated("Basic credentials are not base64"))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        text.split_once(':')
            .map(|(_, pass)| pass.to_string())
            .ok_or_else(|| Status::unauthenticated("Basic credentials lack user:password"))?
    } else {
        return Err(Status::unauthenticated(
            "authorization must be `Bearer TOKEN` or Basic",
        ));
    };
    if !crate::auth::same_secret(presented.as_bytes(), token.as_bytes()) {
        return Err(Status::unauthenticated("invalid token"));
    }
    req.extensions_mut().insert(Token(token.to_string()));
    Ok(())
}

/// The token from DUBAN_SQL_TOKEN; the server does not start without one.
pub fn token_from_env() -> Result<String> {
    let t = std::env::var(TOKEN_ENV)
        .with_context(|| format!("set {TOKEN_ENV} to the token clients must present"))?;
    if t.trim().len() < 8 {
        anyhow::bail!("{TOKEN_ENV} must hold at least 8 characters");
    }
    Ok(t.trim().to_string())
}

/// Serve Flight SQL on 127.0.0.1:`port` (0 picks a free port) until `stop` resolves. The bound
/// address is printed as `listening on 127.0.0.1:PORT`.
pub async fn serve(
    lake: &Path,
    port: u16,
    token: String,
    opts: SqlOptions,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    // Fail now, not at the first query, when the lake is missing.
    lake_context_with(lake, &opts).await?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    tracing::info!(lake = %lake.display(), %addr, "Flight SQL server ready (read-only)");
    crate::ops::Component::register("sql").ready();
    let svc = FlightServiceServer::with_interceptor(
        LakeFlightService::new(lake, opts),
        move |mut req: Request<()>| {
            authenticate(&token, &mut req)?;
            Ok(req)
        },
    );
    tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stop)
        .await
        .context("Flight SQL server failed")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn req(header: &str) -> Request<()> {
        let mut r = Request::new(());
        r.metadata_mut()
            .insert("authorization", header.parse().expect("header"));
        r
    }

    fn service(limits: super::super::SqlLimits) -> LakeFlightService {
        let lake = std::env::temp_dir().join(format!("duban-flight-unit-{}", std::process::id()));
        std::fs::create_dir_all(&lake).expect("lake folder");
        LakeFlightService::new(
            &lake,
            SqlOptions {
                limits,
                ..SqlOptions::default()
            },
        )
    }

    #[tokio::test]
    async fn queries_beyond_the_concurrency_limit_are_refused_until_one_ends() {
        let svc = service(super::super::SqlLimits {
            max_concurrent_queries: 1,
            ..Default::default()
        });
        // A stream not yet read holds its slot.
        let first = svc.stream("select 1").await.expect("first query");
        let refused = svc.stream("select 2").await.err().expect("second refused");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("max_concurrent_queries"),
            "{refused}"
        );
        drop(first);
        assert!(svc.stream("select 3").await.is_ok(), "the slot came back");
    }

    #[tokio::test]
    async fn a_query_is_stopped_at_its_time_limit() {
        let svc = service(super::super::SqlLimits {
            query_timeout_secs: 1,
            ..Default::default()
        });
        let resp = svc
            .stream("select count(*) from generate_series(1, 1000000000000)")
            .await
            .expect("planned");
        let items: Vec<_> = resp.into_inner().collect().await;
        let err = items
            .into_iter()
            .find_map(Result::err)
            .expect("the stream ends in an error");
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err}");
        assert!(err.message().contains("query_timeout_secs"), "{err}");
    }

    #[test]
    fn bearer_and_basic_tokens_are_checked() {
        use base64::Engine as _;
        let token = "s3cret-token";
        assert!(authenticate(token, &mut req("Bearer s3cret-token")).is_ok());
        let e = authenticate(token, &mut req("Bearer wrong")).expect_err("wrong token");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let basic = base64::engine::general_purpose::STANDARD.encode("analyst:s3cret-token");
        assert!(authenticate(token, &mut req(&format!("Basic {basic}"))).is_ok());
        let unpadded =
            base64::engine::general_purpose::STANDARD_NO_PAD.encode("analyst:s3cret-token");
        assert!(authenticate(token, &mut req(&format!("Basic {unpadded}"))).is_ok());
        let bad = base64::engine::general_purpose::STANDARD.encode("analyst:nope");
        assert!(authenticate(token, &mut req(&format!("Basic {bad}"))).is_err());
        assert!(authenticate(token, &mut Request::new(())).is_err());
        assert!(authenticate(token, &mut req("Token s3cret-token")).is_err());
    }
}
