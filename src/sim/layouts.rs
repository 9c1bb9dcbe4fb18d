//! 12345 work-order exports in the layouts real exports have (REAL-FEEDS.md), for the export
//! profiles: a city's 23-column XLSX, a district's yearly files whose headers and times drift, and
//! another city's pushed CSV with category paths. The same orders as the simulator's API.

use super::wire::HotlineOrder;
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The layout an order is exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `city/`: 23 columns, XLSX, 工单生成时间 as an Excel date cell.
    City,
    /// `district/`: every header prefixed `12345`, GBK CSV, 12345受理时间 a date-time, ids `12345…`.
    DistrictPrefixed,
    /// `district/`: unprefixed headers under a title row, XLSX, 受理时间 as plain Excel serial
    /// days, ids `SH…`.
    DistrictSerial,
    /// `district/`: unprefixed headers, GB18030 CSV, 受理时间 a date only, ids `12345…`.
    DistrictDate,
    /// `pushed/`: 工单编号, 工单标题, 工单内容, 推送时间, 承办单位, 问题分类 (a>b>c), 问题点位;
    /// UTF-8 CSV with BOM, times to the minute.
    Pushed,
}

pub const LAYOUTS: [Layout; 5] = [
    Layout::City,
    Layout::DistrictPrefixed,
    Layout::DistrictSerial,
    Layout::DistrictDate,
    Layout::Pushed,
];

impl Layout {
    /// The folder (below the exports folder) its files are in: one per profile.
    pub fn folder(self) -> &'static str {
        match self {
            Layout::City => "city",
            Layout::DistrictPrefixed | Layout::DistrictSerial | Layout::DistrictDate => "district",
            Layout::Pushed => "pushed",
        }
    }

    /// How precisely its times are written: seconds, minutes or days.
    pub fn time_precision_secs(self) -> i64 {
        match self {
            Layout::Pushed => 60,
            Layout::DistrictDate => 86_400,
            _ => 1,
        }
    }
}

/// The layout of an order: fixed by its number.
pub fn layout_of(order_no: &str) -> Layout {
    let h = order_no.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    LAYOUTS[(h % LAYOUTS.len() as u64) as usize]
}

fn categories(o: &HotlineOrder) -> (String, String) {
    let mut parts = o.category.splitn(2, '-');
    let a = parts.next().unwrap_or("").to_string();
    let b = parts.next().unwrap_or("").to_string();
    (a, b)
}

fn reply(o: &HotlineOrder) -> String {
    if o.status == "已办结" {
        format!("已转{}处理，已联系市民，问题已处理。", o.handling_unit)
    } else {
        String::new()
    }
}

fn local(o: &HotlineOrder) -> Result<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(&o.call_time, super::wire::LOCAL_TIME)
        .with_context(|| format!("order {} has call_time {:?}", o.order_no, o.call_time))
}

/// Excel serial days of a local time.
fn serial(t: chrono::NaiveDateTime) -> f64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    (t - epoch).num_milliseconds() as f64 / 86_400_000.0
}

const CITY: [&str; 23] = [
    "工单编号",
    "工号",
    "工单生成时间",
    "诉求地址",
    "诉求区域",
    "内容描述",
    "工单类别",
    "处理描述",
    "客户类型",
    "一级分类",
    "二级分类",
    "三级分类",
    "四级分类",
    "主办单位",
    "是否匿名",
    "服务类型",
    "通话编号",
    "工单类型",
    "新一级分类",
    "新二级分类",
    "新三级分类",
    "新四级分类",
    "新五级分类",
];

const PREFIXED: [&str; 16] = [
    "12345工单编号",
    "12345受理时间",
    "12345工单来源",
    "12345诉求区域",
    "12345诉求地址",
    "12345工单类型",
    "12345内容描述",
    "主办单位",
    "答复市民要点",
    "年",
    "月份",
    "小区名称",
    "街道",
    "行政区",
    "一级业务分类",
    "二级业务分类",
];

const UNPREFIXED: [&str; 16] = [
    "工单编号",
    "受理时间",
    "工单来源",
    "诉求地址",
    "工单类型",
    "内容描述",
    "主办单位",
    "答复市民要点",
    "月份",
    "小区名称",
    "街道",
    "一级分类",
    "二级分类",
    "三级分类",
    "四级分类",
    "五级分类",
];

const PUSHED: [&str; 7] = [
    "工单编号",
    "工单标题",
    "工单内容",
    "推送时间",
    "承办单位",
    "问题分类",
    "问题点位",
];

/// One cell: text, or an Excel date / number.
enum Cell {
    Text(String),
    Date(chrono::NaiveDateTime),
    Number(f64),
}

fn row(o: &HotlineOrder, layout: Layout, seq: usize, broken: bool) -> Result<Vec<Cell>> {
    let t = Cell::Text;
    let at = local(o)?;
    let (c1, c2) = categories(o);
    // A malformed order loses its text.
    let content = if broken {
        String::new()
    } else {
        o.content.clone()
    };
    let month = at.format("%-m").to_string();
    Ok(match layout {
        Layout::City => vec![
            t(o.order_no.clone()),
            t("10086".into()),
            Cell::Date(at),
            t(o.address.clone()),
            t(o.district.clone()),
            t(content),
            t("一般".into()),
            t(reply(o)),
            t("个人".into()),
            t(c1.clone()),
            t(c2.clone()),
            t(String::new()),
            t(String::new()),
            t(o.handling_unit.clone()),
            t("否".into()),
            t("投诉".into()),
            t(format!("{}-{seq}", at.and_utc().timestamp() - 8 * 3600)),
            t("投诉举报类".into()),
            t(c1),
            t(c2),
            t(String::new()),
            t(String::new()),
            t(String::new()),
        ],
        Layout::DistrictPrefixed => vec![
            t(format!("12345{}", o.order_no)),
            t(o.call_time.clone()),
            t("电话".into()),
            t(o.district.clone()),
            t(o.address.clone()),
            t("投诉举报类".into()),
            t(content),
            t(o.handling_unit.clone()),
            t(reply(o)),
            t(at.format("%Y").to_string()),
            t(month),
            t(String::new()),
            t(String::new()),
            t(o.district.clone()),
            t(c1),
            t(c2),
        ],
        Layout::DistrictSerial | Layout::DistrictDate => {
            let (id, time) = if layout == Layout::DistrictSerial {
                (format!("SH{}", o.order_no), Cell::Number(serial(at)))
            } else {
                (
                    format!("12345{}", o.order_no),
                    t(at.format("%Y-%m-%d").to_string()),
                )
            };
            vec![
                t(id),
                time,
                t("电话".into()),
                t(o.address.clone()),
                t("投诉举报类".into()),
                t(content),
                t(o.handling_unit.clone()),
                t(reply(o)),
                t(month),
                t(String::new()),
                t(String::new()),
                t(c1),
                t(c2),
                t(String::new()),
                t(String::new()),
                t(String::new()),
            ]
        }
        Layout::Pushed => {
            let title: String = o.content.chars().take(15).collect();
            let path = [c1, c2]
                .into_iter()
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(">");
            vec![
                t(o.order_no.clone()),
                t(title),
                t(content),
                t(at.format("%Y/%m/%d %H:%M").to_string()),
                t(o.handling_unit.clone()),
                t(path),
                t(o.address.clone()),
            ]
        }
    })
}

fn csv_text(header: &[&str], rows: &[Vec<Cell>]) -> Result<String> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r.iter().map(|c| match c {
            Cell::Text(s) => s.clone(),
            Cell::Date(d) => d.format(super::wire::LOCAL_TIME).to_string(),
            Cell::Number(n) => n.to_string(),
        }))?;
    }
    Ok(String::from_utf8(w.into_inner().context("flushing CSV")?)?)
}

fn xlsx(title: Option<&str>, header: &[&str], rows: &[Vec<Cell>]) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Sheet1")?;
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let mut r: u32 = 0;
    if let Some(t) = title {
        ws.write_string(0, 0, t)?;
        r = 1;
    }
    for (c, h) in header.iter().enumerate() {
        ws.write_string(r, c as u16, *h)?;
    }
    for row in rows {
        r += 1;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(s) => {
                    ws.write_string(r, c, s)?;
                }
                Cell::Number(n) => {
                    ws.write_number(r, c, *n)?;
                }
                Cell::Date(d) => {
                    let dt =
                        ExcelDateTime::parse_from_str(&d.format("%Y-%m-%dT%H:%M:%S").to_string())?;
                    ws.write_datetime_with_format(r, c, &dt, &date)?;
                }
            }
        }
    }
    Ok(wb.save_to_buffer()?)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(path)
}

/// Write every order in its layout's file below `dir`; `broken` orders lose their text.
pub fn write_layouts(
    dir: &Path,
    orders: &[HotlineOrder],
    broken: &HashSet<String>,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for layout in LAYOUTS {
        let mine: Vec<&HotlineOrder> = orders
            .iter()
            .filter(|o| layout_of(&o.order_no) == layout)
            .collect();
        let rows = mine
            .iter()
            .enumerate()
            .map(|(i, o)| row(o, layout, i + 1, broken.contains(&o.order_no)))
            .collect::<Result<Vec<_>>>()?;
        let folder = dir.join(layout.folder());
        let path = match layout {
            Layout::City => write(&folder, "12345工单-市级.xlsx", &xlsx(None, &CITY, &rows)?)?,
            Layout::DistrictPrefixed => {
                let text = csv_text(&PREFIXED, &rows)?;
                write(
                    &folder,
                    "2023年12345工单.csv",
                    &encoding_rs::GBK.encode(&text).0,
                )?
            }
            Layout::DistrictSerial => write(
                &folder,
                "2024年工单明细.xlsx",
                &xlsx(Some("2024年12345工单明细"), &UNPREFIXED, &rows)?,
            )?,
            Layout::DistrictDate => {
                let text = csv_text(&UNPREFIXED, &rows)?;
                write(
                    &folder,
                    "2025年工单.csv",
                    &encoding_rs::GB18030.encode(&text).0,
                )?
            }
            Layout::Pushed => {
                let mut bytes = b"\xEF\xBB\xBF".to_vec();
                bytes.extend_from_slice(csv_text(&PUSHED, &rows)?.as_bytes());
                write(&folder, "工单推送.csv", &bytes)?
            }
        };
        files.push(path);
    }
    Ok(files)
}
