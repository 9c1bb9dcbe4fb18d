//! The simulator's stand-in of the real People's Daily message-board APIs (REAL-FEEDS.md): the
//! unsigned form-posted list, the signed v1 list and content calls, their envelopes and faults.
//!
//! Served under `/pd` (base URL `http://HOST:PORT/pd`): `POST /pd/threads/queryThreadsList` and
//! `/pd/pro-dfbbs-front/threads/queryThreadsList` (form: fid, lastItem, pageSize, state), `POST
//! /pd/v1/threads/list/df` and `/pd/v1/threads/list/bw` and `/pd/v1/threads/content` (JSON:
//! appCode, token, signature, param). As the real site: newest first (largest tid first), a
//! keyset cursor (`lastItem`), list texts cut at 100 characters with `...`, Unix-second times,
//! tids sometimes sent as strings, ` 安徽省 芜湖市` with its leading space, null replies until
//! answered, HTTP 200 `{"code":"SN0006"}` on a bad signature, detail parts to pick by `dataType`.

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDateTime;
use md5::Digest as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

use super::corpus::{Corpus, Person, SimComplaint};
use super::server::SimState;
use crate::record::Channel;

/// The web app's public app code (a constant of liuyan.people.com.cn's front end).
pub const APP_CODE: &str = "PC42ce3bfa4980a9";
/// The board (`fid`) the simulator serves; other boards are empty.
pub const FID: &str = "539";
/// List texts are cut at this many characters, then `...`.
pub const CUT: usize = 100;

/// One message of the board with everything the APIs tell about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    pub tid: u64,
    pub user_id: String,
    pub nick_name: String,
    pub subject: String,
    pub content: String,
    pub at: NaiveDateTime,
    pub type_name: String,
    pub domain_name: String,
    pub state: &'static str,
    pub likes: u32,
    pub reply: Option<String>,
    pub reply_at: Option<NaiveDateTime>,
    pub organization: Option<String>,
}

/// `md5_hex(path + param + md5_hex(app_code)[0..16] + token)`: the v1 APIs' signature.
pub fn signature(path: &str, param: &str, app_code: &str, token: &str) -> String {
    let key = hex::encode(md5::Md5::digest(app_code.as_bytes()));
    let input = format!("{path}{param}{}{token}", &key[..16]);
    hex::encode(md5::Md5::digest(input.as_bytes()))
}

fn unix(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp() - 8 * 3600
}

fn cut(s: &str) -> String {
    if s.chars().count() <= CUT {
        s.to_string()
    } else {
        let head: String = s.chars().take(CUT).collect();
        format!("{head}...")
    }
}

/// A masked nickname as the board shows it: `陈***`.
fn masked(name: &str) -> String {
    let first: String = name.chars().take(1).collect();
    format!("{first}***")
}

impl Thread {
    pub fn from_complaint(c: &SimComplaint, p: &Person) -> Option<Thread> {
        let state = match c.status.as_str() {
            "已回复" => "已办理",
            "办理中" => "办理中",
            _ => "待回复",
        };
        Some(Thread {
            tid: c.source_id.parse().ok()?,
            user_id: p.board_user_id.clone(),
            nick_name: masked(&p.name),
            subject: c.title.clone(),
            content: c.content.clone(),
            at: c.at,
            type_name: c.kind.clone(),
            domain_name: c.category.clone(),
            state,
            likes: c.likes,
            reply: c.reply.clone(),
            reply_at: c.reply_at,
            organization: c.reply.as_ref().map(|_| c.handling_unit.clone()),
        })
    }

    /// The tid as the feed sends it: a number, or for some threads a string.
    fn tid_value(&self, seed: u64) -> Value {
        if super::faults::hit(seed, "pd.tid-as-string", &self.tid.to_string(), 0.3) {
            json!(self.tid.to_string())
        } else {
            json!(self.tid)
        }
    }

    /// An item of both lists: texts cut, replies null until answered.
    pub fn list_item(&self, seed: u64) -> Value {
        let answered = self.reply.is_some();
        let at = unix(self.at);
        json!({
            "tid": self.tid_value(seed),
            "fid": FID.parse::<u64>().unwrap_or_default(),
            "userId": self.user_id,
            "nickName": self.nick_name,
            "subject": self.subject,
            "content": cut(&self.content),
            "dateline": at,
            "createDateline": at,
            "threadsCheckTime": at + 600,
            "forumName": "市委书记",
            "typeName": self.type_name,
            "typeId": 5,
            "domainName": self.domain_name,
            "stateInfo": self.state,
            "traceInfo": self.state,
            "processInfo": if answered { "已回复" } else { "" },
            "answerContent": self.reply.as_deref().map(cut),
            "answerDateline": self.reply_at.map(unix),
            "answerOrganization": self.organization,
            "lastAnswerTime": self.reply_at.map(unix),
            "favNum": self.likes,
            "ip": "36.***.***.12",
            "from": " 安徽省 芜湖市",
            "gradeManner": if answered { json!(5) } else { Value::Null },
            "gradeSpeed": if answered { json!(4) } else { Value::Null },
            "attachmentList": [],
            "isOpen": 1,
        })
    }

    /// The v1 content call's parts: the official replies first, the message last (a client
    /// must pick by `dataType`, never by position).
    pub fn content_list(&self, malformed: bool) -> Value {
        let mut parts = Vec::new();
        if let (Some(r), Some(at)) = (&self.reply, self.reply_at) {
            parts.push(
                json!({"dataType": 4, "content": r, "organization": self.organization,
                "dateline": unix(at), "dataId": self.tid * 10 + 4}),
            );
        }
        if !malformed {
            parts.push(
                json!({"dataType": 1, "tid": self.tid, "subject": self.subject,
                "content": self.content, "dateline": unix(self.at), "nickName": self.nick_name,
                "stateInfo": self.state, "typeName": self.type_name}),
            );
        }
        Value::Array(parts)
    }
}

/// The board the stand-in serves: newest (largest tid) first.
#[derive(Debug, Clone, Default)]
pub struct Board {
    threads: Vec<Thread>,
    index: HashMap<u64, usize>,
}

impl Board {
    pub fn new(mut threads: Vec<Thread>) -> Board {
        threads.sort_by_key(|t| std::cmp::Reverse(t.tid));
        let index = threads
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tid, i))
            .collect();
        Board { threads, index }
    }

    /// The corpus's board messages.
    pub fn of_corpus(corpus: &Corpus) -> Board {
        Board::new(
            corpus
                .of_channel(Channel::Board)
                .filter_map(|c| Thread::from_complaint(c, &corpus.people[c.person]))
                .collect(),
        )
    }

    pub fn threads(&self) -> &[Thread] {
        &self.threads
    }

    /// Up to `rows` threads after the cursor (keyset: tids below `last`; all from the newest
    /// when `last` is empty or 0), filtered by `state` (1 all, 2 awaiting, 3 in progress, 4
    /// handled).
    fn page(&self, last: &str, rows: usize, state: u32) -> Vec<&Thread> {
        let below = last.trim().parse::<u64>().ok().filter(|t| *t > 0);
        self.threads
            .iter()
            .filter(|t| below.is_none_or(|b| t.tid < b))
            .filter(|t| match state {
                2 => t.state == "待回复",
                3 => t.state == "办理中",
                4 => t.state == "已办理",
                _ => true,
            })
            .take(rows)
            .collect()
    }
}

fn params(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// `POST /pd/threads/queryThreadsList` (form).
pub async fn list_unsigned(State(s): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let q = params(&body);
    let Some(fid) = q.get("fid").filter(|f| !f.trim().is_empty()) else {
        return Json(json!({"result": "fail", "success": false, "resultDesc": "fid不能为空"}))
            .into_response();
    };
    let rows = q
        .get("pageSize")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 20);
    let state = q
        .get("state")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(1);
    let last = q.get("lastItem").cloned().unwrap_or_default();
    let items: Vec<Value> = if fid.trim() == FID {
        s.pd()
            .page(&last, rows, state)
            .iter()
            .map(|t| t.list_item(s.seed))
            .collect()
    } else {
        Vec::new()
    };
    Json(json!({"result": "success", "success": true, "responseData": items})).into_response()
}

/// The signed envelope of a v1 call, checked: its `param` as sent, or the feed's answer to a
/// bad one (HTTP 200 with `SN0006`).
fn signed_param(path: &str, body: &[u8]) -> Result<Value, Box<Response>> {
    let bad = || Box::new(Json(json!({"code": "SN0006", "msg": "数据格式错误"})).into_response());
    let env: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    let field = |k: &str| env.get(k).and_then(Value::as_str);
    let (Some(app), Some(sig), Some(param)) =
        (field("appCode"), field("signature"), field("param"))
    else {
        return Err(bad());
    };
    let token = field("token").unwrap_or("");
    if app != APP_CODE || sig != signature(path, param, app, token) {
        return Err(bad());
    }
    serde_json::from_str(param).map_err(|_| bad())
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `POST /pd/v1/threads/list/df` and `/bw` (signed JSON).
pub async fn list_v1(
    State(s): State<Arc<SimState>>,
    OriginalUri(uri): OriginalUri,
    body: axum::body::Bytes,
) -> Response {
    let param = match signed_param(uri.path(), &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let rows = param
        .get("rows")
        .and_then(|v| text(Some(v)).parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 50);
    let local = uri.path().ends_with("/df");
    let board = s.pd();
    let items: Vec<&Thread> = if local && text(param.get("fid")) == FID {
        board.page_all(&text(param.get("lastItem")), rows)
    } else {
        Vec::new()
    };
    let last = items.last().map(|t| t.tid.to_string()).unwrap_or_default();
    let data: Vec<Value> = items.iter().map(|t| t.list_item(s.seed)).collect();
    Json(json!({"resultData": {"lastItem": last, "data": data}})).into_response()
}

/// `POST /pd/v1/threads/content` (signed JSON).
pub async fn content_v1(
    State(s): State<Arc<SimState>>,
    OriginalUri(uri): OriginalUri,
    body: axum::body::Bytes,
) -> Response {
    let param = match signed_param(uri.path(), &body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let tid = text(param.get("tid"));
    let board = s.pd();
    match board.get(&tid) {
        Some(t) => {
            let broken = s.malformed_pd(&tid);
            Json(json!({"resultData": {"contentList": t.content_list(broken), "tid": t.tid}}))
                .into_response()
        }
        None => (
            StatusCode::OK,
            Json(json!({"code": "SN0008", "msg": "留言不存在"})),
        )
            .into_response(),
    }
}

/// Real replied messages to serve instead of the corpus's (`--pd-replay FILE`): a CSV with
/// 留言编号, 留言用户, 留言主题, 留言时间, 留言详情, 答复意见, 答复时间 (UTF-8 or GBK), as
/// the teddy data set's `messages_replied.csv`. Tids follow the messages' times, as on the
/// real board; the replying unit is not in the file and is served as a fixed placeholder.
pub fn replay(bytes: &[u8]) -> anyhow::Result<Board> {
    use anyhow::Context;
    let text = crate::connectors::table::decode_export(bytes).0;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .context("reading the header row")?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (Some(user), Some(title), Some(time), Some(body)) = (
        col("留言用户"),
        col("留言主题"),
        col("留言时间"),
        col("留言详情"),
    ) else {
        anyhow::bail!(
            "expected columns 留言用户, 留言主题, 留言时间, 留言详情 (and 答复意见, 答复时间)"
        );
    };
    let (reply, reply_time) = (col("答复意见"), col("答复时间"));
    let mut rows = Vec::new();
    for r in rdr.records() {
        let r = r.context("reading a row")?;
        let f = |i: Option<usize>| i.and_then(|i| r.get(i)).unwrap_or("").trim().to_string();
        let Some(at) = super::teddy::parse_time(&f(Some(time))) else {
            continue;
        };
        let content = f(Some(body));
        if content.is_empty() {
            continue;
        }
        let reply_text = Some(f(reply)).filter(|s| !s.is_empty());
        let reply_at = super::teddy::parse_time(&f(reply_time)).filter(|_| reply_text.is_some());
        rows.push((
            at,
            f(Some(user)),
            f(Some(title)),
            content,
            reply_text,
            reply_at,
        ));
    }
    rows.sort_by_key(|r| r.0);
    let threads = rows
        .into_iter()
        .enumerate()
        .map(|(i, (at, user, subject, content, reply, reply_at))| {
            let answered = reply.is_some() && reply_at.is_some();
            Thread {
                tid: 19_000_000 + 3 * i as u64,
                nick_name: masked(&user),
                user_id: user,
                subject,
                content,
                at,
                type_name: "投诉".into(),
                domain_name: "其他".into(),
                state: if answered { "已办理" } else { "待回复" },
                likes: 0,
                organization: answered.then(|| "有关部门".to_string()),
                reply: reply.filter(|_| answered),
                reply_at: reply_at.filter(|_| answered),
            }
        })
        .collect();
    Ok(Board::new(threads))
}

impl Board {
    pub fn get(&self, tid: &str) -> Option<&Thread> {
        let t: u64 = tid.trim().parse().ok()?;
        self.index.get(&t).map(|&i| &self.threads[i])
    }

    /// Answer every unanswered message at `at` (or an hour after it was written, if later).
    pub fn answer_all(&mut self, at: NaiveDateTime) -> usize {
        // The board's times are whole seconds.
        let at = chrono::Timelike::with_nanosecond(&at, 0).unwrap_or(at);
        let mut n = 0;
        for t in self.threads.iter_mut().filter(|t| t.reply.is_none()) {
            t.reply = Some(format!(
                "网友您好：您反映的“{}”已转有关部门办理，感谢您的监督。",
                t.subject
            ));
            t.reply_at = Some(at.max(t.at + chrono::Duration::hours(1)));
            t.organization = Some("有关部门".into());
            t.state = "已办理";
            n += 1;
        }
        n
    }

    /// A v1 list page: the whole board (showUnAnswer), keyset after `last`.
    pub fn page_all(&self, last: &str, rows: usize) -> Vec<&Thread> {
        self.page(last, rows, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_web_apps() {
        // The web app's key part is md5_hex(appCode)[0..16] = a2eb17f65d6f4b3f.
        let param = r#"{"fid":"539","showUnAnswer":1,"typeId":5,"lastItem":"","position":"0","rows":10,"orderType":2}"#;
        let key = &hex::encode(md5::Md5::digest(APP_CODE.as_bytes()))[..16];
        assert_eq!(key, "a2eb17f65d6f4b3f");
        let by_hand = hex::encode(md5::Md5::digest(
            format!("/v1/threads/list/df{param}{key}").as_bytes(),
        ));
        assert_eq!(
            signature("/v1/threads/list/df", param, APP_CODE, ""),
            by_hand
        );
        assert_ne!(
            signature("/v1/threads/list/bw", param, APP_CODE, ""),
            by_hand
        );
    }

    #[test]
    fn pages_are_newest_first_with_a_keyset_cursor() {
        let t = |tid: u64, content: &str| Thread {
            tid,
            user_id: "u".into(),
            nick_name: "陈***".into(),
            subject: "s".into(),
            content: content.into(),
            at: chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
                .and_then(|d| d.and_hms_opt(9, 0, 0))
                .expect("time"),
            type_name: "投诉".into(),
            domain_name: "城建".into(),
            state: "待回复",
            likes: 0,
            reply: None,
            reply_at: None,
            organization: None,
        };
        let long = "长".repeat(150);
        let b = Board::new(vec![t(5, "a"), t(9, &long), t(7, "c")]);
        let tids = |v: Vec<&Thread>| v.iter().map(|t| t.tid).collect::<Vec<_>>();
        assert_eq!(tids(b.page("0", 2, 1)), [9, 7]);
        assert_eq!(tids(b.page("7", 2, 1)), [5]);
        assert_eq!(tids(b.page("", 5, 2)), [9, 7, 5]);
        assert!(b.page("5", 2, 1).is_empty());
        let item = b.threads()[0].list_item(1);
        let content = item["content"].as_str().expect("content");
        assert!(content.ends_with("...") && content.chars().count() == CUT + 3);
        assert!(item["answerContent"].is_null() && item["from"] == " 安徽省 芜湖市");
        assert_eq!(
            item["dateline"], 1_793_494_800,
            "2026-11-01 09:00 in Shanghai"
        );
        let parts = b.threads()[0].content_list(false);
        assert_eq!(parts[0]["content"].as_str().map(str::len), Some(long.len()));
    }
}
