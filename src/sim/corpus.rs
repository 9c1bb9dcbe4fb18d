//! Deterministic corpus generation: people, complaints, planted clusters, frequent complainants,
//! cross-channel resubmissions, channel source ids, and the manifest that records what was planted.

use super::rng::SimRng;
use super::text::{self, BodySpec, DISTRICTS, PROBLEMS, Place, Problem};
use super::{SimConfig, teddy};
use crate::record::Channel;
use anyhow::{Context, bail};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One (channel, source id) the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub channel: Channel,
    pub source_id: String,
}

/// A planted same-issue cluster: one place + problem raised by many distinct people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedCluster {
    pub district: String,
    pub domain: String,
    /// Full location named in every body, e.g. 镜湖区翠湖路锦绣花园.
    pub place: String,
    pub problem: String,
    pub complainants: usize,
    pub records: Vec<ManifestEntry>,
}

/// A planted frequent complainant, focused on one topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedFrequent {
    pub name: String,
    pub phone: String,
    pub domain: String,
    pub topic: String,
    pub place: String,
    pub records: Vec<ManifestEntry>,
}

/// What the simulator served and planted; `GET /sim/manifest` returns it as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub seed: u64,
    pub size: usize,
    pub end_date: NaiveDate,
    pub days: u32,
    /// True when texts were replayed from a teddy CSV (then nothing is planted).
    pub replay: bool,
    pub records: Vec<ManifestEntry>,
    pub clusters: Vec<PlantedCluster>,
    pub frequent: Vec<PlantedFrequent>,
    /// (original, resubmission) pairs, always on different channels.
    pub resubmissions: Vec<(ManifestEntry, ManifestEntry)>,
    /// The subset of `resubmissions` that are exact copies (equal after full-width→half-width
    /// and whitespace normalization); the others are near-duplicates.
    pub exact_resubmissions: Vec<(ManifestEntry, ManifestEntry)>,
}

/// A generated complainant with an identity on every channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    /// Masked or polite form used on public sites (张**, 张先生).
    pub public_name: String,
    pub mobile: String,
    pub nickname: String,
    pub board_user_id: String,
    pub wst_uid: String,
}

/// Why a complaint exists (used by tests and the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    Regular,
    Cluster(usize),
    Frequent(usize),
    Resubmission { of: usize, exact: bool },
    Replay,
}

/// One complaint in channel-neutral form; `wire` renders it into each channel's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimComplaint {
    pub channel: Channel,
    pub source_id: String,
    /// Local Asia/Shanghai time (+08:00).
    pub at: NaiveDateTime,
    pub person: usize,
    pub origin: Origin,
    pub domain: String,
    pub problem: String,
    /// The channel's own category wording.
    pub category: String,
    pub district: String,
    pub location: String,
    pub title: String,
    pub content: String,
    pub handling_unit: String,
    pub status: String,
    /// Last change of the record (hotline `updated_at`), ≥ `at`.
    pub updated_at: NaiveDateTime,
    /// A later status change applied by `POST /sim/hotline/advance` (hotline only).
    pub pending_status: Option<String>,
    /// Board message type: 投诉|求助|建言|咨询.
    pub kind: String,
    pub likes: u32,
    pub reply: Option<String>,
    pub reply_at: Option<NaiveDateTime>,
}

/// The generated corpus: people, complaints sorted by time, and the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Corpus {
    pub people: Vec<Person>,
    pub complaints: Vec<SimComplaint>,
    pub manifest: Manifest,
}

impl Corpus {
    pub fn of_channel(&self, channel: Channel) -> impl Iterator<Item = &SimComplaint> {
        self.complaints.iter().filter(move |c| c.channel == channel)
    }

    pub fn count(&self, channel: Channel) -> usize {
        self.of_channel(channel).count()
    }
}

/// A complaint before channel-specific fields and ids are assigned.
struct Draft {
    person: usize,
    origin: Origin,
    problem: &'static Problem,
    place: Place,
    at: NaiveDateTime,
    channel: Channel,
    content: String,
    title: String,
}

/// Channel weights in `Channel::ALL` order (hotline, board, portal, wanshitong).
const REGULAR_CHANNELS: [u32; 4] = [38, 16, 22, 24];
const CLUSTER_CHANNELS: [u32; 4] = [35, 20, 20, 25];
const FREQUENT_CHANNELS: [u32; 4] = [40, 5, 20, 35];
/// District weights: the urban districts receive more complaints.
pub(crate) const DISTRICT_WEIGHTS: [u32; 7] = [22, 18, 18, 10, 10, 10, 12];
/// Topics of the frequent complainants: property fees, road damage, wage arrears.
const FREQUENT_TOPICS: [&str; 3] = ["物业收费", "路面坑洼", "拖欠工资"];
const FREQUENT_COUNTS: [usize; 3] = [40, 30, 20];
const FREQUENT_MIN: [usize; 3] = [10, 8, 6];

pub const MIN_SIZE: usize = 50;

pub(crate) fn window_start(cfg: &SimConfig) -> NaiveDateTime {
    let start = cfg.end_date - Duration::days(i64::from(cfg.days.max(1)) - 1);
    start.and_time(NaiveTime::MIN)
}

pub(crate) fn window_end(cfg: &SimConfig) -> NaiveDateTime {
    cfg.end_date.and_time(NaiveTime::MIN) + Duration::seconds(86_399)
}

/// Pure generation (reads `teddy_dir` when given, nothing else).
pub fn corpus(cfg: &SimConfig) -> anyhow::Result<Corpus> {
    if cfg.size < MIN_SIZE {
        bail!(
            "sim size {} is too small: at least {MIN_SIZE} complaints are needed to plant clusters",
            cfg.size
        );
    }
    if cfg.days == 0 {
        bail!("sim days must be at least 1");
    }
    let root = SimRng::new(cfg.seed);
    if let Some(dir) = &cfg.teddy_dir
        && let Some(messages) = teddy::load(dir)
            .with_context(|| format!("reading teddy replay corpus in {}", dir.display()))?
    {
        return Ok(replay_corpus(cfg, &root, messages));
    }
    Ok(generated_corpus(cfg, &root))
}

fn problem_named(name: &str) -> &'static Problem {
    PROBLEMS
        .iter()
        .find(|p| p.name == name)
        .unwrap_or(&PROBLEMS[0])
}

pub(crate) fn random_time(rng: &mut SimRng, from: NaiveDateTime, days: i64) -> NaiveDateTime {
    let day = rng.range(0, days.max(1) - 1);
    // Office-hours heavy, some evenings, few nights.
    let hour = match rng.weighted(&[70, 25, 5]) {
        0 => rng.range(8, 17),
        1 => rng.range(18, 22),
        _ => rng.range(0, 7),
    };
    from + Duration::days(day) + Duration::seconds(hour * 3600 + rng.range(0, 3599))
}

fn new_person(rng: &mut SimRng, people: &mut Vec<Person>) -> usize {
    let name = text::person_name(rng);
    let public_name = text::public_name(&name, rng);
    let person = Person {
        public_name,
        mobile: text::mobile(rng),
        nickname: text::nickname(rng),
        board_user_id: format!("{}", 3_000_000 + rng.below(7_000_000)),
        wst_uid: format!("U{:012}", rng.next_u64() % 1_000_000_000_000),
        name,
    };
    people.push(person);
    people.len() - 1
}

fn channel_from(rng: &mut SimRng, weights: &[u32; 4]) -> Channel {
    Channel::ALL[rng.weighted(weights)]
}

/// Occasionally disguises a text the way real submissions arrive: full-width digits/letters and
/// odd whitespace (what downstream normalization must undo).
fn roughen(content: String, rng: &mut SimRng) -> String {
    let mut c = content;
    if rng.chance(0.12) {
        c = text::to_full_width(&c, rng, 0.8);
    }
    if rng.chance(0.1) {
        c = text::odd_whitespace(&c, rng);
    }
    c
}

fn generated_corpus(cfg: &SimConfig, root: &SimRng) -> Corpus {
    let size = cfg.size;
    let start = window_start(cfg);
    let end = window_end(cfg);
    let days = i64::from(cfg.days);
    let mut people = Vec::new();
    let mut drafts: Vec<Draft> = Vec::new();
    let mut prng = root.fork("people");

    // Planted same-issue clusters: ~7 per 1200 complaints, 8–20 distinct complainants each.
    let mut crng = root.fork("clusters");
    let n_clusters = ((size * 7 + 600) / 1200).max(1).min(size / 32).min(24);
    let mut cluster_budget = size / 4;
    let mut cluster_problems: Vec<usize> = (0..PROBLEMS.len()).collect();
    crng.shuffle(&mut cluster_problems);
    let mut clusters_meta = Vec::new();
    for i in 0..n_clusters {
        let problem = &PROBLEMS[cluster_problems[i % cluster_problems.len()]];
        let district = DISTRICTS[(i + crng.below(7)) % 7];
        let place = Place::generate(&mut crng, district, problem);
        let span = crng.range(2, 5).min(days);
        let first_day = crng.range(0, days - span);
        let remaining_clusters = n_clusters - i;
        let max_here = (cluster_budget / remaining_clusters).clamp(8, 20);
        let k = crng.range(8, max_here as i64) as usize;
        cluster_budget = cluster_budget.saturating_sub(k);
        for _ in 0..k {
            let person = new_person(&mut prng, &mut people);
            let at = random_time(&mut crng, start + Duration::days(first_day), span);
            let spec = BodySpec {
                problem,
                place: &place,
                contact: None,
                repeat_no: None,
            };
            let content = roughen(text::body(&mut crng, &spec), &mut crng);
            let title = text::title(&mut crng, problem, &place);
            let channel = channel_from(&mut crng, &CLUSTER_CHANNELS);
            drafts.push(Draft {
                person,
                origin: Origin::Cluster(i),
                problem,
                place: place.clone(),
                at,
                channel,
                content,
                title,
            });
        }
        clusters_meta.push((problem, place));
    }

    // Frequent complainants: ~40/30/20 complaints each per 1200, one topic each.
    let mut frng = root.fork("frequent");
    let n_frequent = if size < 100 {
        1
    } else {
        3 * (size / 1200).max(1)
    };
    let mut frequent_meta = Vec::new();
    for f in 0..n_frequent {
        let slot = f % 3;
        let problem = problem_named(FREQUENT_TOPICS[slot]);
        let district = DISTRICTS[frng.weighted(&DISTRICT_WEIGHTS)];
        let place = Place::generate(&mut frng, district, problem);
        let person = new_person(&mut prng, &mut people);
        let count = (FREQUENT_COUNTS[slot] * size.min(1200) / 1200).max(FREQUENT_MIN[slot]);
        let mut times: Vec<NaiveDateTime> = (0..count)
            .map(|_| random_time(&mut frng, start, days))
            .collect();
        times.sort();
        for (n, at) in times.into_iter().enumerate() {
            let contact = frng
                .chance(0.3)
                .then_some((people[person].name.as_str(), people[person].mobile.as_str()));
            let repeat_no = (n > 0 && frng.chance(0.5)).then_some(n + 1);
            let spec = BodySpec {
                problem,
                place: &place,
                contact,
                repeat_no,
            };
            let content = roughen(text::body(&mut frng, &spec), &mut frng);
            let title = text::title(&mut frng, problem, &place);
            let channel = channel_from(&mut frng, &FREQUENT_CHANNELS);
            drafts.push(Draft {
                person,
                origin: Origin::Frequent(f),
                problem,
                place: place.clone(),
                at,
                channel,
                content,
                title,
            });
        }
        frequent_meta.push((person, problem, place));
    }

    // The regular population: most people file 1–2 complaints. The first ones cycle through every
    // problem, district and channel so that a small corpus still covers all of them.
    let mut rrng = root.fork("regular");
    let regular_total = size.saturating_sub(drafts.len());
    let mut i = 0;
    while i < regular_total {
        let person = new_person(&mut prng, &mut people);
        let n = [1, 2, 3][rrng.weighted(&[70, 22, 8])].min(regular_total - i);
        let mut problem = if i < PROBLEMS.len() {
            &PROBLEMS[i]
        } else {
            rrng.pick_ref(PROBLEMS)
        };
        let district = if i < DISTRICTS.len() {
            DISTRICTS[i]
        } else {
            DISTRICTS[rrng.weighted(&DISTRICT_WEIGHTS)]
        };
        let mut place = Place::generate(&mut rrng, district, problem);
        for j in 0..n {
            if j > 0 && rrng.chance(0.5) {
                problem = rrng.pick_ref(PROBLEMS);
                let district = DISTRICTS[rrng.weighted(&DISTRICT_WEIGHTS)];
                place = Place::generate(&mut rrng, district, problem);
            }
            let contact = rrng
                .chance(0.15)
                .then_some((people[person].name.as_str(), people[person].mobile.as_str()));
            let spec = BodySpec {
                problem,
                place: &place,
                contact,
                repeat_no: None,
            };
            let content = roughen(text::body(&mut rrng, &spec), &mut rrng);
            let title = text::title(&mut rrng, problem, &place);
            let at = random_time(&mut rrng, start, days);
            let channel = if i + j < 4 {
                Channel::ALL[i + j]
            } else {
                channel_from(&mut rrng, &REGULAR_CHANNELS)
            };
            drafts.push(Draft {
                person,
                origin: Origin::Regular,
                problem,
                place: place.clone(),
                at,
                channel,
                content,
                title,
            });
        }
        i += n;
    }

    // Cross-channel resubmissions of ~5% of the regular complaints, half exact copies.
    let mut srng = root.fork("resubmissions");
    let mut regular_idx: Vec<usize> = drafts
        .iter()
        .enumerate()
        .filter(|(_, d)| d.origin == Origin::Regular)
        .map(|(i, _)| i)
        .collect();
    srng.shuffle(&mut regular_idx);
    let n_resub = (size / 20).min(regular_idx.len());
    for (k, &of) in regular_idx.iter().take(n_resub).enumerate() {
        let exact = k % 2 == 0;
        let orig = &drafts[of];
        let others: Vec<Channel> = Channel::ALL
            .into_iter()
            .filter(|c| *c != orig.channel)
            .collect();
        let channel = srng.pick(&others);
        let content = if exact {
            text::respace(
                &text::to_full_width(&orig.content, &mut srng, 0.8),
                &mut srng,
            )
        } else {
            text::near_duplicate(&mut srng, &orig.content)
        };
        let at = (orig.at + Duration::minutes(srng.range(30, 48 * 60))).min(end);
        let draft = Draft {
            person: orig.person,
            origin: Origin::Resubmission { of, exact },
            problem: orig.problem,
            place: orig.place.clone(),
            at,
            channel,
            content,
            title: orig.title.clone(),
        };
        drafts.push(draft);
    }

    finish(
        cfg,
        root,
        people,
        drafts,
        &clusters_meta,
        &frequent_meta,
        false,
    )
}

fn replay_corpus(cfg: &SimConfig, root: &SimRng, mut messages: Vec<teddy::TeddyMessage>) -> Corpus {
    let mut rng = root.fork("replay");
    messages.sort_by_key(|m| std::cmp::Reverse(m.time));
    messages.truncate(cfg.size);
    let newest = messages
        .first()
        .map(|m| m.time.date())
        .unwrap_or(cfg.end_date);
    let shift = cfg.end_date - newest;
    let mut people = Vec::new();
    let mut by_user: HashMap<String, usize> = HashMap::new();
    let mut drafts = Vec::new();
    for m in messages {
        let person = *by_user
            .entry(m.user.clone())
            .or_insert_with(|| new_person(&mut rng, &mut people));
        let district = DISTRICTS
            .iter()
            .find(|d| m.body.contains(**d))
            .copied()
            .unwrap_or_else(|| rng.pick(&DISTRICTS));
        let problem = rng.pick_ref(PROBLEMS);
        let mut place = Place::generate(&mut rng, district, problem);
        place.road.clear();
        place.poi.clear();
        let content = text::truncate_sentences(m.body.trim(), 800);
        let title = if m.title.trim().is_empty() {
            content.chars().take(20).collect()
        } else {
            m.title.trim().to_string()
        };
        let channel = Channel::ALL[rng.below(4)];
        drafts.push(Draft {
            person,
            origin: Origin::Replay,
            problem,
            place,
            at: m.time + shift,
            channel,
            content,
            title,
        });
    }
    finish(cfg, root, people, drafts, &[], &[], true)
}

const REPLY_TEMPLATES: &[&str] = &[
    "您好，您反映的问题已转{u}办理。经现场核查，情况基本属实，已责令相关责任方限期整改，我们将持续跟踪。感谢您对我们工作的监督！",
    "您好！收到您的来信后，{u}高度重视，立即安排工作人员到现场调查处理，目前问题已得到解决。如有其他问题，欢迎继续反映。",
    "网友您好，您反映的问题{u}已受理，正在会同相关部门研究解决方案，处理结果将及时向您反馈。",
];

/// Assigns ids, channel-specific fields and the manifest; sorts complaints by time.
fn finish(
    cfg: &SimConfig,
    root: &SimRng,
    people: Vec<Person>,
    mut drafts: Vec<Draft>,
    clusters_meta: &[(&'static Problem, Place)],
    frequent_meta: &[(usize, &'static Problem, Place)],
    replay: bool,
) -> Corpus {
    let mut rng = root.fork("finish");
    let end = window_end(cfg);
    // Stable order by time; ties keep generation order so the seed alone decides the result.
    let mut order: Vec<usize> = (0..drafts.len()).collect();
    order.sort_by_key(|&i| (drafts[i].at, i));
    let mut new_index = vec![0usize; drafts.len()];
    for (pos, &i) in order.iter().enumerate() {
        new_index[i] = pos;
    }
    let mut sorted: Vec<Draft> = Vec::with_capacity(drafts.len());
    {
        let mut slots: Vec<Option<Draft>> = drafts.drain(..).map(Some).collect();
        for &i in &order {
            if let Some(d) = slots[i].take() {
                sorted.push(d);
            }
        }
    }

    let mut seq_per_day: HashMap<(Channel, NaiveDate), u32> = HashMap::new();
    let mut board_tid: u64 = 18_200_000 + (root.fork("tid").next_u64() % 100_000);
    let mut complaints = Vec::with_capacity(sorted.len());
    for d in &sorted {
        let day = d.at.date();
        let seq = seq_per_day.entry((d.channel, day)).or_insert(0);
        *seq += 1;
        let ymd = day.format("%Y%m%d");
        let source_id = match d.channel {
            Channel::Hotline => format!("RX{ymd}{:05}", *seq),
            Channel::Board => {
                board_tid += 1 + rng.below(5) as u64;
                board_tid.to_string()
            }
            Channel::Portal => format!("MX{ymd}{:04}", *seq),
            Channel::Wanshitong => format!("WST{ymd}{:06}", *seq),
        };
        let p = d.problem;
        let unit = if replay {
            "市数据资源管理局".to_string()
        } else {
            p.unit.replace("{d}", &d.place.district)
        };
        let category = match (replay, d.channel) {
            (true, _) => "其他".to_string(),
            (false, Channel::Hotline) => p.hotline_category.to_string(),
            (false, Channel::Board) => p.board_domain.to_string(),
            (false, Channel::Portal) => p.domain.to_string(),
            (false, Channel::Wanshitong) => p
                .hotline_category
                .split('-')
                .next()
                .unwrap_or(p.domain)
                .to_string(),
        };
        let age_days = (end - d.at).num_days();
        let answered = age_days >= 3 && rng.chance(0.7);
        let (status, updated_at) = match d.channel {
            Channel::Hotline => {
                let dispatched = d.at + Duration::minutes(rng.range(1, 30));
                if rng.chance(0.06) {
                    // A later status change of the same order.
                    (
                        "已办结".to_string(),
                        (d.at + Duration::hours(rng.range(20, 96)))
                            .min(end)
                            .max(dispatched),
                    )
                } else if answered {
                    ("已办结".to_string(), dispatched)
                } else {
                    (rng.pick(&["已受理", "办理中"]).to_string(), dispatched)
                }
            }
            Channel::Board => (
                (if answered {
                    "已回复"
                } else {
                    rng.pick(&["未回复", "办理中"])
                })
                .to_string(),
                d.at,
            ),
            Channel::Portal => (
                (if answered { "已办结" } else { "办理中" }).to_string(),
                d.at,
            ),
            Channel::Wanshitong => ("已提交".to_string(), d.at),
        };
        let pending_status =
            (d.channel == Channel::Hotline && status != "已办结" && rng.chance(0.05))
                .then(|| "已办结".to_string());
        let (reply, reply_at) = if answered && matches!(d.channel, Channel::Board | Channel::Portal)
        {
            let at = (d.at + Duration::hours(rng.range(24, 72))).min(end);
            (
                Some(rng.pick(REPLY_TEMPLATES).replace("{u}", &unit)),
                Some(at),
            )
        } else {
            (None, None)
        };
        let kind = ["投诉", "求助", "建言", "咨询"][rng.weighted(&[60, 20, 10, 10])].to_string();
        let likes = match d.origin {
            Origin::Cluster(_) => 10 + rng.below(90) as u32,
            _ => rng.below(20) as u32,
        };
        complaints.push(SimComplaint {
            channel: d.channel,
            source_id,
            at: d.at,
            person: d.person,
            origin: match d.origin {
                Origin::Resubmission { of, exact } => Origin::Resubmission {
                    of: new_index[of],
                    exact,
                },
                o => o,
            },
            domain: p.domain.to_string(),
            problem: p.name.to_string(),
            category,
            district: d.place.district.clone(),
            location: d.place.full(),
            title: d.title.clone(),
            content: d.content.clone(),
            handling_unit: unit,
            status,
            updated_at,
            pending_status,
            kind,
            likes,
            reply,
            reply_at,
        });
    }

    let entry = |c: &SimComplaint| ManifestEntry {
        channel: c.channel,
        source_id: c.source_id.clone(),
    };
    let clusters = clusters_meta
        .iter()
        .enumerate()
        .map(|(i, (problem, place))| {
            let members: Vec<&SimComplaint> = complaints
                .iter()
                .filter(|c| c.origin == Origin::Cluster(i))
                .collect();
            let mut persons: Vec<usize> = members.iter().map(|c| c.person).collect();
            persons.sort_unstable();
            persons.dedup();
            PlantedCluster {
                district: place.district.clone(),
                domain: problem.domain.to_string(),
                place: place.full(),
                problem: problem.name.to_string(),
                complainants: persons.len(),
                records: members.into_iter().map(entry).collect(),
            }
        })
        .collect();
    let frequent = frequent_meta
        .iter()
        .enumerate()
        .map(|(f, (person, problem, place))| PlantedFrequent {
            name: people[*person].name.clone(),
            phone: people[*person].mobile.clone(),
            domain: problem.domain.to_string(),
            topic: problem.name.to_string(),
            place: place.full(),
            records: complaints
                .iter()
                .filter(|c| c.origin == Origin::Frequent(f))
                .map(entry)
                .collect(),
        })
        .collect();
    let mut resubmissions = Vec::new();
    let mut exact_resubmissions = Vec::new();
    for c in &complaints {
        if let Origin::Resubmission { of, exact } = c.origin {
            let pair = (entry(&complaints[of]), entry(c));
            if exact {
                exact_resubmissions.push(pair.clone());
            }
            resubmissions.push(pair);
        }
    }
    let manifest = Manifest {
        seed: cfg.seed,
        size: cfg.size,
        end_date: cfg.end_date,
        days: cfg.days,
        replay,
        records: complaints.iter().map(entry).collect(),
        clusters,
        frequent,
        resubmissions,
        exact_resubmissions,
    };
    Corpus {
        people,
        complaints,
        manifest,
    }
}
