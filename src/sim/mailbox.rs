//! A city portal's letter box (市长信箱) as such sites render it (REAL-FEEDS.md), for the HTML
//! profile: GB2312 list pages by `pageIndex=N` and detail pages of label / value tables.
//!
//! `GET /mailbox/list?pageIndex=N` (15 letters a page, newest first; a letter that is not public
//! has no link), `GET /mailbox/detail?id=NO` (信件编号, 来信时间, 来 信 人, 问题类别, 标　　题,
//! 来信内容, 处理状态, 回复单位, 回复时间, 回复内容). The charset is only in the page's meta tag.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDateTime;
use std::collections::HashMap;
use std::sync::Arc;

use super::corpus::Corpus;
use super::server::SimState;
use super::wire::{LOCAL_TIME, html_escape};
use crate::record::Channel;

pub const PAGE: usize = 15;

/// One letter as the letter box shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Letter {
    pub no: String,
    pub title: String,
    pub writer: String,
    pub at: NaiveDateTime,
    pub category: String,
    pub content: String,
    pub status: String,
    pub unit: Option<String>,
    pub reply: Option<String>,
    pub reply_at: Option<NaiveDateTime>,
    /// Not public: listed without a link, no detail page.
    pub private: bool,
}

/// The letter box: newest first.
#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    letters: Vec<Letter>,
    index: HashMap<String, usize>,
}

impl Mailbox {
    pub fn of_corpus(corpus: &Corpus, seed: u64) -> Mailbox {
        let mut letters: Vec<Letter> = corpus
            .of_channel(Channel::Portal)
            .map(|c| Letter {
                no: c.source_id.clone(),
                title: c.title.clone(),
                writer: corpus.people[c.person].public_name.clone(),
                at: c.at,
                category: c.domain.clone(),
                content: c.content.clone(),
                status: c.status.clone(),
                unit: c.reply.as_ref().map(|_| c.handling_unit.clone()),
                reply: c.reply.clone(),
                reply_at: c.reply_at,
                private: super::faults::hit(seed, "mailbox.private", &c.source_id, 0.08),
            })
            .collect();
        letters.sort_by(|a, b| (b.at, &b.no).cmp(&(a.at, &a.no)));
        let index = letters
            .iter()
            .enumerate()
            .map(|(i, l)| (l.no.clone(), i))
            .collect();
        Mailbox { letters, index }
    }

    pub fn letters(&self) -> &[Letter] {
        &self.letters
    }
}

fn gb2312(status: StatusCode, html: &str) -> Response {
    let (bytes, _, _) = encoding_rs::GBK.encode(html);
    (
        status,
        [(header::CONTENT_TYPE, "text/html")],
        bytes.into_owned(),
    )
        .into_response()
}

const HEAD: &str = "<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=gb2312\">";

/// `GET /mailbox/list?pageIndex=N`.
pub async fn list(
    State(s): State<Arc<SimState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let page = q
        .get("pageIndex")
        .and_then(|p| p.trim().parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let all = s.mailbox.letters();
    let from = ((page - 1) * PAGE).min(all.len());
    let to = (from + PAGE).min(all.len());
    let pages = all.len().div_ceil(PAGE).max(1);
    let mut rows = String::new();
    for (i, l) in all[from..to].iter().enumerate() {
        let title = html_escape(&l.title);
        let cell = if l.private {
            format!("<span title=\"信件不公开\">{title}</span>")
        } else {
            format!(
                "<a href=\"detail?id={}\" target=\"_blank\" title=\"{title}\">{title}</a>",
                html_escape(&l.no)
            )
        };
        rows.push_str(&format!(
            "<tr><td class=\"xh\">{}</td><td class=\"bt\">{cell}</td><td class=\"sj\">{}</td><td class=\"zt\">{}</td></tr>\n",
            from + i + 1,
            l.at.format("%Y-%m-%d"),
            html_escape(&l.status),
        ));
    }
    let next = if page < pages {
        format!("<a href=\"list?pageIndex={}\">下一页</a>", page + 1)
    } else {
        String::new()
    };
    gb2312(
        StatusCode::OK,
        &format!(
            "{HEAD}<title>市长信箱</title></head><body>\n<table class=\"list\">\n<tr><th>序号</th><th>信件标题</th><th>来信日期</th><th>状态</th></tr>\n{rows}</table>\n<div class=\"page\">共{pages}页 第{page}页 {next}</div>\n</body></html>\n"
        ),
    )
}

/// `GET /mailbox/detail?id=NO`.
pub async fn detail(
    State(s): State<Arc<SimState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let letter = q
        .get("id")
        .and_then(|id| s.mailbox.index.get(id.trim()))
        .map(|&i| &s.mailbox.letters[i])
        .filter(|l| !l.private);
    let Some(l) = letter else {
        return gb2312(
            StatusCode::NOT_FOUND,
            &format!(
                "{HEAD}<title>提示</title></head><body><p>该信件不存在或未公开</p></body></html>"
            ),
        );
    };
    let e = |s: &str| html_escape(s);
    let opt = |s: &Option<String>| s.as_deref().map(html_escape).unwrap_or_default();
    let content = l
        .content
        .split('\n')
        .map(|p| format!("<p>{}</p>", e(p.trim())))
        .collect::<String>();
    let reply_at = l
        .reply_at
        .map(|t| t.format(LOCAL_TIME).to_string())
        .unwrap_or_default();
    gb2312(
        StatusCode::OK,
        &format!(
            "{HEAD}<title>{title}</title></head><body>\n<div class=\"xxgk\"><table class=\"xjxq\">\n\
<tr><th>信件编号：</th><td>{no}</td><th>来信时间：</th><td>{at}</td></tr>\n\
<tr><th>来 信 人：</th><td>{writer}</td><th>问题类别：</th><td>{cat}</td></tr>\n\
<tr><th>标　　题：</th><td colspan=\"3\">{title}</td></tr>\n\
<tr><th>来信内容：</th><td colspan=\"3\" class=\"nr\">{content}</td></tr>\n\
<tr><th>处理状态：</th><td>{status}</td><th>回复单位：</th><td>{unit}</td></tr>\n\
<tr><th>回复时间：</th><td colspan=\"3\">{reply_at}</td></tr>\n\
<tr><th>回复内容：</th><td colspan=\"3\">{reply}</td></tr>\n\
</table></div>\n</body></html>\n",
            title = e(&l.title),
            no = e(&l.no),
            at = l.at.format(LOCAL_TIME),
            writer = e(&l.writer),
            cat = e(&l.category),
            status = e(&l.status),
            unit = opt(&l.unit),
            reply = opt(&l.reply),
        ),
    )
}
