//! The four channels' wire shapes as served by the simulator (see `schemas/raw/*.schema.json`),
//! and the rendering of a `SimComplaint` into each of them.

use super::corpus::{Person, SimComplaint};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

pub const LOCAL_TIME: &str = "%Y-%m-%d %H:%M:%S";
pub const RFC3339_LOCAL: &str = "%Y-%m-%dT%H:%M:%S+08:00";

/// A 12345 hotline work order (API item and CSV export row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotlineOrder {
    pub order_no: String,
    /// Local time `2026-11-01 09:12:33`.
    pub call_time: String,
    pub caller: String,
    pub phone: String,
    pub content: String,
    pub category: String,
    pub district: String,
    pub address: String,
    pub handling_unit: String,
    pub status: String,
    /// RFC 3339 with +08:00.
    pub updated_at: String,
}

/// `GET /hotline/api/v1/workorders` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotlinePage {
    pub items: Vec<HotlineOrder>,
    pub has_more: bool,
}

/// An item of the board's list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardListItem {
    pub tid: u64,
    pub title: String,
    pub created_at: String,
    pub domain: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

/// `GET /board/api/messages` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardPage {
    pub page: usize,
    pub page_size: usize,
    pub total: usize,
    pub total_pages: usize,
    pub items: Vec<BoardListItem>,
}

/// `GET /board/api/messages/{tid}` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardMessage {
    pub tid: u64,
    pub title: String,
    pub content: String,
    pub user: String,
    pub user_id: String,
    pub created_at: String,
    pub domain: String,
    /// 投诉|求助|建言|咨询.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    /// District.
    pub area: String,
    pub likes: u32,
    pub reply: Option<String>,
    pub reply_at: Option<String>,
}

impl BoardMessage {
    pub fn list_item(&self) -> BoardListItem {
        BoardListItem {
            tid: self.tid,
            title: self.title.clone(),
            created_at: self.created_at.clone(),
            domain: self.domain.clone(),
            kind: self.kind.clone(),
            status: self.status.clone(),
        }
    }
}

/// A 市长信箱 letter (the fields a scraper extracts from the detail page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortalLetter {
    pub no: String,
    pub title: String,
    pub writer: String,
    pub phone: String,
    /// Local time `2026-11-01 10:00:00`.
    pub time: String,
    /// District.
    pub area: String,
    pub content: String,
    pub unit: String,
    pub reply: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WstUser {
    pub uid: String,
    pub name: String,
    pub mobile: String,
}

/// The JSON body of a Wanshitong webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WstSubmission {
    /// Always `submission.created`.
    pub event: String,
    pub submission_id: String,
    /// RFC 3339 with +08:00.
    pub submitted_at: String,
    pub user: WstUser,
    pub title: String,
    pub content: String,
    /// District.
    pub region: String,
    pub location: String,
    pub category: String,
}

pub fn local(t: NaiveDateTime) -> String {
    t.format(LOCAL_TIME).to_string()
}

pub fn rfc3339(t: NaiveDateTime) -> String {
    t.format(RFC3339_LOCAL).to_string()
}

pub fn hotline_order(c: &SimComplaint, p: &Person) -> HotlineOrder {
    HotlineOrder {
        order_no: c.source_id.clone(),
        call_time: local(c.at),
        caller: p.name.clone(),
        phone: p.mobile.clone(),
        content: c.content.clone(),
        category: c.category.clone(),
        district: c.district.clone(),
        address: c.location.clone(),
        handling_unit: c.handling_unit.clone(),
        status: c.status.clone(),
        updated_at: rfc3339(c.updated_at),
    }
}

pub fn board_message(c: &SimComplaint, p: &Person) -> BoardMessage {
    BoardMessage {
        // Board ids are generated as decimal numbers.
        tid: c.source_id.parse().unwrap_or_default(),
        title: c.title.clone(),
        content: c.content.clone(),
        user: p.nickname.clone(),
        user_id: p.board_user_id.clone(),
        created_at: local(c.at),
        domain: c.category.clone(),
        kind: c.kind.clone(),
        status: c.status.clone(),
        area: c.district.clone(),
        likes: c.likes,
        reply: c.reply.clone(),
        reply_at: c.reply_at.map(local),
    }
}

pub fn portal_letter(c: &SimComplaint, p: &Person) -> PortalLetter {
    PortalLetter {
        no: c.source_id.clone(),
        title: c.title.clone(),
        writer: p.public_name.clone(),
        phone: p.mobile.clone(),
        time: local(c.at),
        area: c.district.clone(),
        content: c.content.clone(),
        unit: c.handling_unit.clone(),
        reply: c.reply.clone().unwrap_or_default(),
    }
}

pub fn wst_submission(c: &SimComplaint, p: &Person) -> WstSubmission {
    WstSubmission {
        event: "submission.created".to_string(),
        submission_id: c.source_id.clone(),
        submitted_at: rfc3339(c.at),
        user: WstUser {
            uid: p.wst_uid.clone(),
            name: p.name.clone(),
            mobile: p.mobile.clone(),
        },
        title: c.title.clone(),
        content: c.content.clone(),
        region: c.district.clone(),
        location: c.location.clone(),
        category: c.category.clone(),
    }
}

/// Minimal HTML escaping for text and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The portal's list page (20 letters, newest first).
pub fn portal_list_html(letters: &[PortalLetter], page: usize, has_next: bool) -> String {
    let mut rows = String::new();
    for l in letters {
        let no = html_escape(&l.no);
        rows.push_str(&format!(
            "<tr><td class=\"no\">{no}</td><td class=\"title\"><a href=\"/portal/letters/{no}.html\">{}</a></td><td class=\"date\">{}</td></tr>\n",
            html_escape(&l.title),
            html_escape(l.time.get(..10).unwrap_or(&l.time)),
        ));
    }
    let next = if has_next {
        format!(
            "<a class=\"next\" href=\"/portal/letters?page={}\">下一页</a>",
            page + 1
        )
    } else {
        String::new()
    };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>市长信箱 - 第{page}页</title></head><body>\n<h1>市长信箱</h1>\n<table class=\"letter-list\">\n<tr><th>编号</th><th>标题</th><th>日期</th></tr>\n{rows}</table>\n<div class=\"pager\">{next}</div>\n</body></html>\n"
    )
}

/// The portal's letter detail page.
pub fn portal_detail_html(l: &PortalLetter) -> String {
    let e = html_escape;
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n<div class=\"letter\"><h1 class=\"title\">{}</h1><span class=\"no\">{}</span><span class=\"writer\">{}</span><span class=\"phone\">{}</span><span class=\"time\">{}</span><span class=\"area\">{}</span><div class=\"content\">{}</div><div class=\"unit\">{}</div><div class=\"reply\">{}</div></div>\n</body></html>\n",
        e(&l.title),
        e(&l.title),
        e(&l.no),
        e(&l.writer),
        e(&l.phone),
        e(&l.time),
        e(&l.area),
        e(&l.content),
        e(&l.unit),
        e(&l.reply),
    )
}
